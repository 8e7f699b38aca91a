import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { describe, expect, it } from "vitest";
import { requireSession, withSession } from "../../src/adapters/fetch.js";
import { isSessionError } from "../../src/errors.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { SessionData } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { testAdapter } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { listenLoopback } from "../helpers/listen.js";

function text(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain" } });
}

testAdapter("fetch", (sessions) => {
  const signedIn = requireSession((s) => s.has("user"), {
    redirect: "/login",
    flash: ["info", "sign in first"],
  });
  const fetch = withSession(sessions, async (request, { session }) => {
    const path = new URL(request.url).pathname;
    switch (`${request.method} ${path}`) {
      case "GET /read":
        return text(JSON.stringify(session.data));
      case "GET /count": {
        const count = ((session.get("count") as number) ?? 0) + 1;
        session.set("count", count);
        return text(String(count));
      }
      case "POST /login":
        await session.regenerate({ userId: "ada" });
        session.set("user", "ada");
        return text("ok");
      case "POST /destroy":
        session.destroy();
        return text("bye");
      case "POST /flash":
        session.flash("info", "saved");
        return text("ok");
      case "GET /flashes":
        return text(JSON.stringify(session.flashes("info")));
      case "POST /act":
        return text(await act(session, request.headers.get("x-actions")));
      case "GET /private":
        return (await signedIn(session, request)) ?? text("secret");
      case "GET /large":
        session.set("blob", "x".repeat(8000));
        return text("ok");
      case "GET /boom":
        // A fetch runtime turns a throw into its own 500 without headers; a handler that wants the
        // cookie on its error page answers it itself, as here.
        session.set("count", ((session.get("count") as number) ?? 0) + 1);
        return text("boom", 500);
      case "GET /redirect":
        session.set("went", true);
        return Response.redirect(
          new URL("/read", request.url).href.replace(/^.*\/\/[^/]+/, "http://x"),
          302,
        );
      case "GET /stream": {
        session.set("streamed", true);
        const body = new ReadableStream({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode("chunk1"));
            await new Promise((r) => setTimeout(r, 10));
            controller.enqueue(new TextEncoder().encode("chunk2"));
            controller.close();
          },
        });
        return new Response(body);
      }
      default:
        return text("not found", 404);
    }
  });
  const server = createAdaptorServer({ fetch, hostname: "127.0.0.1" });
  return listenLoopback(server as Server);
});

describe("withSession: a handler that returns no Response (its runtime answered, as Bun after an upgrade)", () => {
  const secret = "fetch-undefined-secret-0123456789abcdef";
  /** The Cookie pair of a session in which "user" is "ada". */
  const signedInCookie = async (sessions: Sessions<SessionData>) => {
    const signIn = withSession(sessions, (_request, { session }) => {
      session.set("user", "ada");
      return new Response("ok");
    });
    const response = await signIn(new Request("http://localhost/"));
    return response.headers.getSetCookie()[0]?.split(";")[0];
  };

  it("returns undefined and commits nothing for an unchanged session, even with a touch due", async () => {
    let now = 1_000_000;
    const sessions = createSessions({ secret, idleTimeout: "30m", now: () => now });
    const cookie = await signedInCookie(sessions);
    now += 20 * 60_000; // past the touch interval: a commit would re-seal
    let seen: unknown;
    const upgraded = withSession(sessions, (_request, { session }) => {
      seen = session.get("user");
      return undefined;
    });
    const request = new Request("http://localhost/socket", { headers: { cookie: cookie ?? "" } });
    await expect(upgraded(request)).resolves.toBeUndefined();
    expect(seen).toBe("ada");
  });

  for (const [mode, store] of [
    ["cookie", () => undefined],
    ["memory store", (now: () => number) => memoryStore({ now })],
  ] as const) {
    it(`${mode}: returns undefined for a session due for renewal, which waits for the next request`, async () => {
      let now = 1_000_000;
      const sessions = createSessions({
        secret,
        store: store(() => now),
        renewInterval: "1h",
        now: () => now,
      });
      const cookie = await signedInCookie(sessions);
      now += 2 * 3_600_000; // past renewInterval: the load renews the id in memory
      const upgraded = withSession(sessions, (_request, { session }) => {
        expect(session.get("user")).toBe("ada");
        return undefined;
      });
      const request = () =>
        new Request("http://localhost/socket", { headers: { cookie: cookie ?? "" } });
      await expect(upgraded(request())).resolves.toBeUndefined();
      // Nothing was committed: the cookie the client still holds opens the same session.
      const again = await sessions.load(request());
      expect(again.get("user")).toBe("ada");
    });
  }

  it("lets go of the session's lock when the handler returns nothing", async () => {
    const sessions = createSessions({
      secret,
      store: memoryStore(),
      lock: { wait: "200ms", ttl: "30s" },
    });
    const cookie = await signedInCookie(sessions);
    const request = () =>
      new Request("http://localhost/socket", { headers: { cookie: cookie ?? "" } });
    const upgraded = withSession(sessions, () => undefined);
    await expect(upgraded(request())).resolves.toBeUndefined();
    // Held on, the next request would wait its 200 ms and fail with ERR_LOCK_TIMEOUT (a 503).
    const next = await withSession(sessions, (_request, { session }) =>
      Response.json(session.get("user")),
    )(request());
    expect([next.status, await next.json()]).toEqual([200, "ada"]);
  });

  it("refuses with ERR_SESSION_STATE when the handler changed the session, naming the way out", async () => {
    const sessions = createSessions({ secret });
    const upgraded = withSession(sessions, (_request, { session }) => {
      session.set("user", "ada");
      return undefined;
    });
    const err = await upgraded(new Request("http://localhost/socket")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isSessionError(err, "ERR_SESSION_STATE")).toBe(true);
    expect((err as Error).message).toContain("sessions.commit(session, headers)");
  });

  it("a change committed into the upgrade's own headers first is kept and not refused", async () => {
    const sessions = createSessions({ secret, store: memoryStore() });
    const upgradeHeaders = new Headers();
    const upgraded = withSession(sessions, async (_request, { session }) => {
      session.set("user", "ada");
      await sessions.commit(session, upgradeHeaders);
      return undefined;
    });
    await expect(upgraded(new Request("http://localhost/socket"))).resolves.toBeUndefined();
    const cookie = upgradeHeaders.getSetCookie()[0]?.split(";")[0] ?? "";
    const again = await sessions.load(new Request("http://localhost/", { headers: { cookie } }));
    expect(again.get("user")).toBe("ada");
  });
});

describe("withSession's ip option", () => {
  it("records the address it gives, from the request and the handler's extra arguments, on a store session", async () => {
    const sessions = createSessions({
      secret: "fetch-ip-secret-0123456789abcdefghijkl",
      store: memoryStore(),
    });
    const calls: unknown[] = [];
    const fetch = withSession(
      sessions,
      async (_request, { session }, _info: { remoteAddr: string }) => {
        await session.regenerate({ userId: "ada" });
        return new Response("ok");
      },
      {
        ip: (request, info) => {
          calls.push(request.url);
          return info.remoteAddr;
        },
      },
    );
    await fetch(new Request("http://localhost/login"), { remoteAddr: "203.0.113.7" });
    const [device] = await sessions.listByUser("ada");
    expect(device?.ip).toBe("203.0.113.7");
    expect(calls).toEqual(["http://localhost/login"]);
  });

  it("is not called for a visitor who writes nothing", async () => {
    const sessions = createSessions({
      secret: "fetch-ip-secret-0123456789abcdefghijkl",
      store: memoryStore(),
    });
    let called = 0;
    const fetch = withSession(sessions, () => new Response("ok"), {
      ip: () => {
        called++;
        return "203.0.113.7";
      },
    });
    await fetch(new Request("http://localhost/"));
    expect(called).toBe(0);
  });
});
