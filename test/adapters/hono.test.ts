import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { Hono } from "hono";
import { stream } from "hono/streaming";
import { describe, expect, it } from "vitest";
import {
  requireSession,
  type SessionEnv,
  sessionGuard,
  sessionMiddleware,
} from "../../src/adapters/hono.js";
import { StoreUnavailableError } from "../../src/errors.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import { SECRET, switchableStore, testAdapter } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { listenLoopback } from "../helpers/listen.js";

function buildApp(sessions: Sessions): Hono<SessionEnv> {
  const signedIn = requireSession((s) => s.has("user"), {
    redirect: "/login",
    flash: ["info", "sign in first"],
  });
  const app = new Hono<SessionEnv>();
  app.use(sessionMiddleware(sessions));
  app.get("/read", (c) => c.text(JSON.stringify(c.get("session").data)));
  app.get("/count", (c) => {
    const session = c.get("session");
    const count = ((session.get("count") as number) ?? 0) + 1;
    session.set("count", count);
    return c.text(String(count));
  });
  app.post("/login", async (c) => {
    const session = c.get("session");
    await session.regenerate({ userId: "ada" });
    session.set("user", "ada");
    return c.text("ok");
  });
  app.post("/destroy", (c) => {
    c.get("session").destroy();
    return c.text("bye");
  });
  app.post("/flash", (c) => {
    c.get("session").flash("info", "saved");
    return c.text("ok");
  });
  app.get("/flashes", (c) => c.text(JSON.stringify(c.get("session").flashes("info"))));
  app.post("/act", async (c) => c.text(await act(c.get("session"), c.req.header("x-actions"))));
  app.get("/private", sessionGuard(signedIn), (c) => c.text("secret"));
  app.get("/large", (c) => {
    c.get("session").set("blob", "x".repeat(8000));
    return c.text("ok");
  });
  app.get("/boom", (c) => {
    const session = c.get("session");
    session.set("count", ((session.get("count") as number) ?? 0) + 1);
    throw new Error("boom");
  });
  app.get("/redirect", (c) => {
    c.get("session").set("went", true);
    return c.redirect("/read", 302);
  });
  app.get("/stream", (c) => {
    c.get("session").set("streamed", true);
    return stream(c, async (s) => {
      await s.write("chunk1");
      await new Promise((r) => setTimeout(r, 10));
      await s.write("chunk2");
    });
  });
  // Hono's default error page is plain text; keep it, but do not print the expected /boom error.
  app.onError((_err, c) => c.text("Internal Server Error", 500));
  return app;
}

testAdapter("hono", (sessions) => {
  const server = createAdaptorServer({ fetch: buildApp(sessions).fetch, hostname: "127.0.0.1" });
  return listenLoopback(server as Server);
});

describe("hono adapter specifics", () => {
  it("works as a bare fetch handler (app.request), carrying the session across requests", async () => {
    const app = buildApp(createSessions({ secret: SECRET }));
    const first = await app.request("http://127.0.0.1/count");
    expect(await first.text()).toBe("1");
    const cookie = first.headers.getSetCookie()[0]?.split(";")[0] as string;
    const second = await app.request("http://127.0.0.1/count", { headers: { cookie } });
    expect(await second.text()).toBe("2");
  });

  it("runs the guards option before every route it covers", async () => {
    const app = new Hono<SessionEnv>();
    app.use(
      sessionMiddleware(createSessions({ secret: SECRET }), {
        guards: [requireSession((s) => s.has("user"), { status: 401 })],
      }),
    );
    app.get("/", (c) => c.text("secret"));
    const reply = await app.request("http://127.0.0.1/");
    expect(reply.status).toBe(401);
    expect(await reply.text()).toBe("Unauthorized");
  });

  it("answers 503 for a StoreUnavailableError that a handler let reach Hono's error handler", async () => {
    const base = switchableStore();
    const store = Object.assign(base, {
      async listByUser() {
        if (base.down) throw new StoreUnavailableError("the switchable store is down");
        return [];
      },
    });
    const sessions = createSessions({ secret: SECRET, store });
    const app = new Hono<SessionEnv>();
    app.use(sessionMiddleware(sessions));
    app.get("/devices", async (c) => {
      store.down = true;
      try {
        return c.json(await sessions.listByUser("ada"));
      } finally {
        store.down = false;
      }
    });
    app.onError((_err, c) => c.text("Internal Server Error", 500));
    const reply = await app.request("http://127.0.0.1/devices");
    expect(reply.status).toBe(503);
    expect(reply.headers.get("retry-after")).toBe("5");
  });

  it("keeps a custom onError answer and still commits the cookie onto it", async () => {
    const app = new Hono<SessionEnv>();
    app.use(sessionMiddleware(createSessions({ secret: SECRET })));
    app.get("/", (c) => {
      c.get("session").set("seen", true);
      throw new Error("nope");
    });
    app.onError((_err, c) => c.json({ error: "sorry" }, 418));
    const reply = await app.request("http://127.0.0.1/");
    expect(reply.status).toBe(418);
    expect(await reply.json()).toEqual({ error: "sorry" });
    expect(reply.headers.getSetCookie()).toHaveLength(1);
  });
});

describe("sessionkit/hono: the client's address for a devices page", () => {
  it("records what the ip option gives (getConnInfo on Node), and none without it", async () => {
    const { getConnInfo } = await import("@hono/node-server/conninfo");
    for (const [withIp, expected] of [
      [true, "127.0.0.1"],
      [false, undefined],
    ] as const) {
      const sessions = createSessions({ secret: SECRET, store: memoryStore() });
      const app = new Hono<SessionEnv>();
      app.use(
        sessionMiddleware(sessions, withIp ? { ip: (c) => getConnInfo(c).remote.address } : {}),
      );
      app.get("/login", async (c) => {
        await c.get("session").regenerate({ userId: "ada" });
        return c.text("ok");
      });
      const server = createAdaptorServer({ fetch: app.fetch, hostname: "127.0.0.1" });
      const listening = await listenLoopback(server as Server);
      try {
        expect((await fetch(`${listening.url}/login`)).status).toBe(200);
        const [device] = await sessions.listByUser("ada");
        expect(device?.ip).toBe(expected);
      } finally {
        await listening.close();
      }
    }
  });
});
