import { createServer } from "node:http";
import {
  H3,
  type H3Event,
  getSession as h3GetSession,
  useSession as h3UseSession,
  redirect,
} from "h3";
import { toNodeHandler } from "h3/node";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  clearSession,
  getSession,
  requireSession,
  sealSession,
  sessionGuard,
  sessionMiddleware,
  unsealSession,
  updateSession,
  useSession,
} from "../../src/adapters/h3.js";
import { isSessionError } from "../../src/errors.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { type RunningApp, testAdapter } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { listenLoopback } from "../helpers/listen.js";

vi.mock("../../src/manager.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../src/manager.js")>();
  return { ...original, createSessions: vi.fn(original.createSessions) };
});

function listen(app: H3): Promise<RunningApp> {
  const server = createServer(toNodeHandler(app));
  return listenLoopback(server);
}

const sessionOf = (event: H3Event): Session => event.context.session as Session;

testAdapter("h3", (sessions) => {
  const signedIn = requireSession((s) => s.has("user"), {
    redirect: "/login",
    flash: ["info", "sign in first"],
  });
  // silent: /boom's error is expected; h3 would print it.
  const app = new H3({ silent: true }).use(sessionMiddleware(sessions));
  app.get("/read", (event) => JSON.stringify(sessionOf(event).data));
  app.get("/count", (event) => {
    const session = sessionOf(event);
    const count = ((session.get("count") as number) ?? 0) + 1;
    session.set("count", count);
    return String(count);
  });
  app.post("/login", async (event) => {
    await sessionOf(event).regenerate({ userId: "ada" });
    sessionOf(event).set("user", "ada");
    return "ok";
  });
  app.post("/destroy", (event) => {
    sessionOf(event).destroy();
    return "bye";
  });
  app.post("/flash", (event) => {
    sessionOf(event).flash("info", "saved");
    return "ok";
  });
  app.get("/flashes", (event) => JSON.stringify(sessionOf(event).flashes("info")));
  app.post("/act", async (event) => act(sessionOf(event), event.req.headers.get("x-actions")));
  app.get("/private", () => "secret", { middleware: [sessionGuard(signedIn)] });
  app.get("/large", (event) => {
    sessionOf(event).set("blob", "x".repeat(8000));
    return "ok";
  });
  app.get("/boom", (event) => {
    const session = sessionOf(event);
    session.set("count", ((session.get("count") as number) ?? 0) + 1);
    throw new Error("boom");
  });
  app.get("/redirect", (event) => {
    sessionOf(event).set("went", true);
    return redirect("/read", 302);
  });
  app.get("/stream", (event) => {
    sessionOf(event).set("streamed", true);
    return new ReadableStream({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode("chunk1"));
        await new Promise((r) => setTimeout(r, 10));
        controller.enqueue(new TextEncoder().encode("chunk2"));
        controller.close();
      },
    });
  });
  return listen(app);
});

const password = "h3-adapter-password-0123456789abcdef";

describe("h3 session utilities", () => {
  it("shares one load between concurrent useSession calls on one event", async () => {
    const app = new H3().get("/", async (event) => {
      const [a, b] = await Promise.all([
        useSession(event, { password }),
        useSession(event, { password }),
      ]);
      await a.update({ x: 1 });
      return { same: a.id === b.id, data: b.data };
    });
    const reply = await app.request("/");
    expect(await reply.json()).toEqual({ same: true, data: { x: 1 } });
    // One session, one cookie line, however often it was written.
    expect(reply.headers.getSetCookie()).toHaveLength(1);
  });

  // The manager and getSession's view are class instances (their getters on the prototype): they
  // must still serialize as h3's own objects do, and update/clear work taken off the manager.
  it("useSession's and getSession's objects serialize as h3's own; update and clear work destructured", async () => {
    const shapes = (use: typeof useSession, get: typeof getSession) =>
      new H3().get("/", async (event) => {
        const manager = await use(event, { password });
        const { update, clear } = manager;
        await update({ n: 1 });
        const updated = JSON.parse(JSON.stringify(manager));
        const viewed = JSON.parse(JSON.stringify(await get(event, { password })));
        await clear();
        const cleared = manager.id;
        return {
          keys: Object.keys(updated).sort(),
          viewKeys: Object.keys(viewed).sort(),
          data: updated.data,
          viewData: viewed.data,
          cleared: cleared === undefined,
        };
      });
    const ours = await (await shapes(useSession, getSession).request("/")).json();
    const theirs = await (
      await shapes(h3UseSession as never, h3GetSession as never).request("/")
    ).json();
    expect(ours).toEqual({
      keys: ["data", "id"],
      viewKeys: ["createdAt", "data", "id"],
      data: { n: 1 },
      viewData: { n: 1 },
      cleared: true,
    });
    expect(theirs).toEqual(ours);
  });

  it("writes nothing for getSession until something is stored", async () => {
    const app = new H3().get("/", async (event) => (await getSession(event, { password })).data);
    const reply = await app.request("/");
    expect(await reply.json()).toEqual({});
    expect(reply.headers.getSetCookie()).toEqual([]);
  });

  it("merges a function update, including one that mutates the data and returns nothing", async () => {
    const app = new H3().get("/", async (event) => {
      await updateSession(event, { password }, { a: 1, b: 2 });
      await updateSession<{ a?: number; b?: number }>(event, { password }, (data) => {
        data.a = 10;
        delete data.b;
        return undefined;
      });
      const session = await updateSession(event, { password }, () => ({ c: 3 }));
      return session.data;
    });
    const reply = await app.request("/");
    expect(await reply.json()).toEqual({ a: 10, c: 3 });
  });

  it("seals a token that unsealSession opens and the session header carries back", async () => {
    const config = { password, cookie: false as const };
    const app = new H3()
      .get("/token", async (event) => {
        await updateSession(event, config, { user: "ada" });
        return sealSession(event, config);
      })
      .get("/me", async (event) => (await getSession(event, config)).data);
    const issued = await app.request("/token");
    expect(issued.headers.getSetCookie()).toEqual([]);
    const token = await issued.text();
    const opened = await unsealSession({ req: new Request("http://x/") }, config, token);
    expect(opened.data).toEqual({ user: "ada" });
    const me = await app.request("/me", { headers: { "x-h3-session": token } });
    expect(await me.json()).toEqual({ user: "ada" });
  });

  it("refuses a tampered token in unsealSession with a sessionkit error, as h3 throws", async () => {
    const error = await unsealSession(
      { req: new Request("http://x/") },
      { password },
      "e1.tampered",
    ).catch((e) => e);
    expect(isSessionError(error, "ERR_SESSION_STATE")).toBe(true);
  });

  it("keeps the session cookie on h3's error response", async () => {
    const app = new H3({ silent: true }).get("/", async (event) => {
      await updateSession(event, { password }, { a: 1 });
      throw new Error("after the write");
    });
    const reply = await app.request("/");
    expect(reply.status).toBe(500);
    expect(reply.headers.getSetCookie().map((l) => l.split("=")[0])).toEqual(["h3"]);
  });

  it("clearSession empties the data and deletes the cookie; id is undefined until the next update", async () => {
    const app = new H3().get("/", async (event) => {
      const session = await useSession(event, { password });
      await session.update({ a: 1 });
      await clearSession(event, { password });
      return { id: session.id ?? null, data: session.data };
    });
    const reply = await app.request("/");
    expect(await reply.json()).toEqual({ id: null, data: {} });
    const lines = reply.headers.getSetCookie();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^h3=; Max-Age=0/);
  });

  it("a bare updateSession reseals an existing session and writes its cookie, as h3's does", async () => {
    const app = new H3()
      .get("/start", async (event) => {
        await updateSession(event, { password }, { a: 1 });
        return "ok";
      })
      .get("/touch", async (event) => {
        const session = await updateSession(event, { password });
        return session.data;
      });
    const first = await app.request("/start");
    const cookie = first.headers.getSetCookie()[0]?.split(";")[0] as string;
    const touched = await app.request("/touch", { headers: { cookie } });
    expect(await touched.json()).toEqual({ a: 1 });
    const line = touched.headers.getSetCookie()[0] as string;
    expect(line).toMatch(/^h3=[^;]+; /);
    expect(line.split(";")[0]).not.toBe(cookie);
  });

  it("a bare updateSession after clearSession writes a new, empty session", async () => {
    const app = new H3().get("/", async (event) => {
      const session = await useSession(event, { password });
      await session.update({ a: 1 });
      const before = session.id;
      await clearSession(event, { password });
      await updateSession(event, { password });
      return { fresh: session.id !== undefined && session.id !== before, data: session.data };
    });
    const reply = await app.request("/");
    expect(await reply.json()).toEqual({ fresh: true, data: {} });
    const lines = reply.headers.getSetCookie();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^h3=[^;]+; /);
  });

  it("rejects a missing or short password and h3's iron options with ConfigError", async () => {
    const event = { req: new Request("http://x/") };
    for (const config of [
      {},
      { password: "short" },
      { password, seal: {} },
      { password, cookie: { encode: String } },
    ]) {
      const error = await getSession(event, config as never).catch((e) => e);
      expect(isSessionError(error, "ERR_CONFIG")).toBe(true);
      expect(String(error.message)).not.toContain(password);
    }
  });

  it("creates one manager (one key derivation) per distinct config, not per request", async () => {
    const app = new H3().get(
      "/",
      async (event) => (await useSession(event, { password, name: "once" })).id,
    );
    const before = vi.mocked(createSessions).mock.calls.length;
    const first = await app.request("/");
    const cookie = first.headers.getSetCookie()[0]?.split(";")[0] as string;
    for (let i = 0; i < 3; i++) await app.request("/", { headers: { cookie } });
    expect(vi.mocked(createSessions).mock.calls.length - before).toBe(1);
  });
});

describe("h3 idleTimeout", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("slides on a read past half the window and expires after a whole idle window", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const config = { password, name: "idle", idleTimeout: 60 };
    const app = new H3()
      .get("/write", async (event) => (await updateSession(event, config, { a: 1 })).data)
      .get("/read", async (event) => (await getSession(event, config)).data);
    const first = await app.request("/write");
    let cookie = first.headers.getSetCookie()[0]?.split(";")[0] as string;
    vi.advanceTimersByTime(20_000);
    const early = await app.request("/read", { headers: { cookie } });
    expect(early.headers.getSetCookie()).toEqual([]);
    vi.advanceTimersByTime(20_000);
    const late = await app.request("/read", { headers: { cookie } });
    expect(await late.json()).toEqual({ a: 1 });
    expect(late.headers.getSetCookie()).toHaveLength(1);
    cookie = late.headers.getSetCookie()[0]?.split(";")[0] as string;
    // 40 s after the reseal: 80 s after the write, yet within the slid window.
    vi.advanceTimersByTime(40_000);
    expect(await (await app.request("/read", { headers: { cookie } })).json()).toEqual({ a: 1 });
    vi.advanceTimersByTime(61_000);
    expect(await (await app.request("/read", { headers: { cookie } })).json()).toEqual({});
  });
});

describe("h3's functions and Cache-Control", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const publicly = (event: H3Event) => {
    event.res.headers.set("cache-control", "public, max-age=600");
  };

  it("keeps no-store on a read that reseals a sliding session, against the handler's later Cache-Control", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const config = { password, name: "slide-cache", idleTimeout: 60 };
    const app = new H3()
      .get("/write", async (event) => (await updateSession(event, config, { a: 1 })).data)
      .get("/read", async (event) => {
        const { data } = await getSession(event, config);
        publicly(event);
        return data;
      });
    const first = await app.request("/write");
    const cookie = first.headers.getSetCookie()[0]?.split(";")[0] as string;
    const early = await app.request("/read", { headers: { cookie } });
    expect(early.headers.getSetCookie()).toEqual([]);
    expect(early.headers.get("cache-control")).toBe("public, max-age=600");
    vi.advanceTimersByTime(40_000);
    const resealed = await app.request("/read", { headers: { cookie } });
    expect(resealed.headers.getSetCookie()).toHaveLength(1);
    expect(resealed.headers.get("cache-control")).toBe("no-store");
  });

  it("keeps no-store on the response of a sealSession token, against the handler's later Cache-Control", async () => {
    const app = new H3().get("/token", async (event) => {
      const token = await sealSession(event, { password, cookie: false });
      publicly(event);
      return { token };
    });
    const reply = await app.request("/token");
    expect(reply.headers.getSetCookie()).toEqual([]);
    expect(reply.headers.get("cache-control")).toBe("no-store");
  });

  it("leaves the handler's other headers, and responses without a session cookie, as it set them", async () => {
    const app = new H3()
      .get("/write", async (event) => {
        await updateSession(event, { password }, { a: 1 });
        event.res.headers.set("x-kept", "1");
        event.res.headers.append("vary", "accept");
        return "ok";
      })
      .get("/none", async (event) => {
        await clearSession(event, { password }); // no session to clear: nothing is written
        publicly(event);
        return "ok";
      });
    const written = await app.request("/write");
    expect(written.headers.get("x-kept")).toBe("1");
    expect(written.headers.get("vary")).toBe("accept");
    const none = await app.request("/none");
    expect(none.headers.getSetCookie()).toEqual([]);
    expect(none.headers.get("cache-control")).toBe("public, max-age=600");
  });
});
