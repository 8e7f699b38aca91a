/**
 * `reply.hijack()` with the Fastify plugin: Fastify then runs no onSend hook, where the plugin
 * commits, and the handler writes `reply.raw` itself. The session must still be committed before
 * that raw head leaves, and a change made after it must throw rather than vanish. Real Fastify over
 * real HTTP on loopback, with a cookie session and a memory store session.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { session } from "../../src/adapters/fastify.js";
import { isSessionError } from "../../src/errors.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { SECRET, switchableStore } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";

const untyped = (request: FastifyRequest): Session => request.session;

const MODES: [string, () => Sessions][] = [
  ["cookie session", () => createSessions({ secret: SECRET })],
  ["memory store session", () => createSessions({ secret: SECRET, store: memoryStore() })],
];

async function serve(
  sessions: Sessions,
  routes: (app: FastifyInstance) => void,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const app = Fastify();
  await app.register(session(sessions));
  app.get("/read", async (request) => JSON.stringify(request.session.data));
  app.post("/set", async (request) => {
    untyped(request).set("n", 1);
    return "ok";
  });
  routes(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return {
    client: new Client(url),
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}

describe.each(MODES)("a hijacked Fastify reply commits its session (%s)", (_mode, make) => {
  it("saves a value set before reply.raw.end and sends its cookie", async () => {
    const { client, close } = await serve(make(), (app) => {
      app.get("/hijack", (request, reply) => {
        reply.hijack();
        untyped(request).set("hijacked", "yes");
        reply.raw.end("raw body");
      });
    });
    try {
      const first = await client.get("/hijack");
      expect(first.status).toBe(200);
      expect(first.text).toBe("raw body");
      expect(first.setCookies).toHaveLength(1);
      expect(first.setCookies[0]).toMatch(/^sid=.+; Path=\/; HttpOnly; SameSite=Lax/);
      const next = await client.get("/read");
      expect(JSON.parse(next.text)).toEqual({ hijacked: "yes" });
    } finally {
      await close();
    }
  });

  it("commits an SSE-style hijack at its head, then streams, and refuses a change after the head", async () => {
    let lateChange: unknown;
    const { client, close } = await serve(make(), (app) => {
      app.get("/events", (request, reply) => {
        reply.hijack();
        untyped(request).set("subscribed", true);
        reply.raw.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
        });
        reply.raw.write("data: one\n\n");
        let sent = 1;
        const timer = setInterval(() => {
          sent++;
          reply.raw.write(`data: ${sent}\n\n`);
          if (sent === 3) {
            clearInterval(timer);
            try {
              untyped(request).set("late", true);
            } catch (err) {
              lateChange = err;
            }
            reply.raw.end();
          }
        }, 20);
      });
    });
    try {
      const events = await client.get("/events");
      expect(events.status).toBe(200);
      expect(events.headers.get("content-type")).toBe("text/event-stream");
      expect(events.text).toBe("data: one\n\ndata: 2\n\ndata: 3\n\n");
      expect(events.setCookies).toHaveLength(1);
      expect(isSessionError(lateChange, "ERR_SESSION_STATE")).toBe(true);
      const next = await client.get("/read");
      expect(JSON.parse(next.text)).toEqual({ subscribed: true });
    } finally {
      await close();
    }
  });

  it("adds no Set-Cookie to a hijacked reply whose session did not change", async () => {
    const { client, close } = await serve(make(), (app) => {
      app.get("/hijack-read", (request, reply) => {
        reply.hijack();
        reply.raw.end(`n=${String(untyped(request).get("n"))}`);
      });
    });
    try {
      const fresh = await client.get("/hijack-read");
      expect(fresh.text).toBe("n=undefined");
      expect(fresh.setCookies).toEqual([]);
      expect((await client.post("/set")).setCookies).toHaveLength(1);
      const known = await client.get("/hijack-read");
      expect(known.text).toBe("n=1");
      expect(known.setCookies).toEqual([]);
    } finally {
      await close();
    }
  });

  it("still sends one cookie when the route commits itself and writes it (the earlier documented way)", async () => {
    const sessions = make();
    const { client, close } = await serve(sessions, (app) => {
      app.get("/self-commit", async (request, reply) => {
        untyped(request).set("hijacked", "committed");
        reply.hijack();
        const headers = new Headers();
        await sessions.commit(request.session, headers);
        reply.raw.writeHead(200, {
          "content-type": "text/plain",
          "set-cookie": headers.getSetCookie(),
        });
        reply.raw.end("raw");
      });
    });
    try {
      const committed = await client.get("/self-commit");
      expect(committed.text).toBe("raw");
      expect(committed.setCookies).toHaveLength(1);
      expect(JSON.parse((await client.get("/read")).text)).toEqual({ hijacked: "committed" });
    } finally {
      await close();
    }
  });

  it("sends regenerate's new id, a destroy's clearing cookie and a flash from hijacked replies", async () => {
    const { client, close } = await serve(make(), (app) => {
      app.post("/login", async (request, reply) => {
        await request.session.regenerate({ userId: "ada" });
        request.session.flash("info", "welcome");
        reply.hijack();
        reply.raw.writeHead(303, { location: "/read" }).end();
      });
      app.get("/flashes", (request, reply) => {
        reply.hijack();
        reply.raw.end(JSON.stringify(request.session.flashes("info")));
      });
      app.post("/logout", (request, reply) => {
        request.session.destroy();
        reply.hijack();
        reply.raw.end("bye");
      });
      app.get("/user", async (request) => String(request.session.userId));
    });
    try {
      await client.post("/set");
      const before = client.cookieHeader();
      const login = await client.post("/login");
      expect(login.status).toBe(303);
      expect(login.setCookies).toHaveLength(1);
      expect(client.cookieHeader()).not.toBe(before);
      expect((await client.get("/user")).text).toBe("ada");
      expect(JSON.parse((await client.get("/flashes")).text)).toEqual(["welcome"]);
      expect(JSON.parse((await client.get("/flashes")).text)).toEqual([]);
      const logout = await client.post("/logout");
      expect(logout.setCookies).toHaveLength(1);
      expect(logout.setCookies[0]).toMatch(/Max-Age=0/);
      expect(client.jar.size).toBe(0);
      expect((await client.get("/user")).text).toBe("undefined");
    } finally {
      await close();
    }
  });
});

describe("the hijack hold costs replies that do not hijack nothing", () => {
  it("holds reply.raw only once reply.hijack() is called", async () => {
    const heldBefore: boolean[] = [];
    const heldAfter: boolean[] = [];
    const isHeld = (res: object) => Object.hasOwn(res, "end") || Object.hasOwn(res, "writeHead");
    const { client, close } = await serve(createSessions({ secret: SECRET }), (app) => {
      app.get("/normal", async (request, reply) => {
        untyped(request).set("n", 1);
        heldBefore.push(isHeld(reply.raw));
        return "ok";
      });
      app.get("/hijack", (request, reply) => {
        heldBefore.push(isHeld(reply.raw));
        reply.hijack();
        heldAfter.push(isHeld(reply.raw));
        untyped(request).set("n", 2);
        reply.raw.end("raw");
      });
    });
    try {
      expect((await client.get("/normal")).setCookies).toHaveLength(1);
      expect((await client.get("/hijack")).setCookies).toHaveLength(1);
      expect(heldBefore).toEqual([false, false]);
      expect(heldAfter).toEqual([true]);
      expect(JSON.parse((await client.get("/read")).text)).toEqual({ n: 2 });
    } finally {
      await close();
    }
  });
});

describe("a hijacked Fastify reply, store specifics", () => {
  it("answers 503 in place of the raw reply when the store fails while committing", async () => {
    const store = switchableStore();
    const { client, close } = await serve(createSessions({ secret: SECRET, store }), (app) => {
      app.get("/hijack", (request, reply) => {
        reply.hijack();
        untyped(request).set("n", 2);
        store.down = true;
        reply.raw.end("raw body");
      });
    });
    try {
      const reply = await client.get("/hijack");
      expect(reply.status).toBe(503);
      expect(reply.headers.get("retry-after")).toBe("5");
      expect(reply.setCookies).toEqual([]);
      expect(reply.text).not.toContain("raw body");
    } finally {
      store.down = false;
      await close();
    }
  });

  it("lets the session lock go when the hijacked reply commits", async () => {
    const sessions = createSessions({
      secret: SECRET,
      store: memoryStore(),
      lock: { wait: "1s", ttl: "20s" },
    });
    const { client, close } = await serve(sessions, (app) => {
      app.get("/hijack", (request, reply) => {
        reply.hijack();
        untyped(request).set("hijacked", "yes");
        reply.raw.end("raw body");
      });
    });
    try {
      await client.post("/set");
      expect((await client.get("/hijack")).status).toBe(200);
      const started = performance.now();
      const next = await client.get("/read");
      expect(next.status).toBe(200);
      expect(JSON.parse(next.text)).toEqual({ n: 1, hijacked: "yes" });
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await close();
    }
  });
});
