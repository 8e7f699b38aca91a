/**
 * The `lock` option with Oak on Node when a client abandons a request that holds its session's
 * lock (a long poll that never answers). Behind a fetch server (`app.handle`, as docs/adapters/oak.md
 * shows) the Request's signal lets the lock go at once. Oak 14's own Node server (`app.listen()`)
 * hands the middleware neither a Fetch Request, nor a signal, nor its node:http objects (private
 * class fields), so there the lock waits out its ttl: the known limit the docs state, pinned here so
 * that an Oak that starts exposing one is noticed.
 */
import { createAdaptorServer } from "@hono/node-server";
import { Application, Router } from "@oakserver/oak";
import { describe, expect, it, vi } from "vitest";
import { OakSession } from "../../src/adapters/oak.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import type { SessionStore } from "../../src/stores/store.js";
import { SECRET } from "../conformance/adapter.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";
import { listenOak } from "../helpers/oak.js";

const LOCK_TTL_MS = 20_000;

/** A memory store whose lock state the test reads directly: the keys whose lock is taken. */
function watchedStore(): SessionStore & { held: Set<string> } {
  const inner = memoryStore();
  const held = new Set<string>();
  return {
    ...inner,
    name: "watched-memory",
    held,
    async lock(key, ttlMs, waitMs) {
      const release = await inner.lock(key, ttlMs, waitMs);
      if (!release) return null;
      held.add(key);
      return async () => {
        held.delete(key);
        await release();
      };
    },
  };
}

/** An Oak app with sign-in, a long poll that never answers, and a page. */
function lockedApp() {
  const store = watchedStore();
  const sessions = createSessions({
    secret: SECRET,
    store,
    lock: { wait: "1s", ttl: LOCK_TTL_MS },
  });
  let entered: () => void = () => {};
  const inPoll = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const sources: unknown[] = [];
  const app = new Application({ logErrors: false });
  new OakSession(app, sessions);
  const router = new Router();
  router.post("/login", async (ctx) => {
    await ctx.state.session.regenerate({ userId: "alice" });
    ctx.response.body = "ok";
  });
  router.get("/poll", (ctx) => {
    sources.push(ctx.request.source);
    entered();
    return new Promise<void>(() => {});
  });
  router.get("/", (ctx) => {
    ctx.response.body = `page ${ctx.state.session.userId}`;
  });
  app.use(router.routes());
  return { app, store, inPoll, sources };
}

/** Signs in, starts the long poll with the session's cookie and aborts it once its handler runs. */
async function abandonPoll(url: string, inPoll: Promise<void>): Promise<string> {
  const login = await fetch(`${url}/login`, { method: "POST" });
  expect(login.status).toBe(200);
  const cookie = (login.headers.getSetCookie()[0] as string).split(";")[0] as string;
  const abort = new AbortController();
  const poll = fetch(`${url}/poll`, { headers: { cookie }, signal: abort.signal });
  await inPoll;
  abort.abort();
  await poll.catch(() => undefined);
  return cookie;
}

describe("oak on Node: an abandoned request's session lock", () => {
  it("is let go at once behind a fetch server (app.handle), so the next request is served", async () => {
    const { app, store, inPoll } = lockedApp();
    const server: Listening = await listenLoopback(
      createAdaptorServer({
        hostname: "127.0.0.1",
        // The shape docs/adapters/oak.md shows; Oak's Request type is undici's on Node.
        fetch: async (request, { incoming }) => {
          const response = await app.handle(
            request as unknown as Parameters<typeof app.handle>[0],
            {
              transport: "tcp",
              hostname: incoming.socket.remoteAddress ?? "",
              port: incoming.socket.remotePort ?? 0,
            },
          );
          return (
            (response as unknown as Response | undefined) ?? new Response(null, { status: 404 })
          );
        },
      }) as Parameters<typeof listenLoopback>[0],
      { closeConnections: true },
    );
    try {
      const cookie = await abandonPoll(server.url, inPoll);
      await vi.waitFor(() => expect(store.held.size).toBe(0), { timeout: 2000 });
      const started = performance.now();
      const next = await fetch(`${server.url}/`, { headers: { cookie } });
      expect(next.status).toBe(200);
      expect(await next.text()).toBe("page alice");
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      await server.close();
    }
  });

  it("waits out its ttl on Oak's own Node server (app.listen), which exposes no abort (the known limit)", async () => {
    const { app, store, inPoll, sources } = lockedApp();
    const { url, close } = await listenOak(app);
    try {
      const cookie = await abandonPoll(url, inPoll);
      // No Fetch Request (so no signal) reaches the middleware on this server.
      expect(sources).toEqual([undefined]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(store.held.size).toBe(1);
      const next = await fetch(`${url}/`, { headers: { cookie } });
      expect(next.status).toBe(503);
    } finally {
      await close();
    }
  });
});
