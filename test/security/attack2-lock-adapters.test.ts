/**
 * The `lock` option when a client abandons a request that holds its session's lock, on every adapter
 * but the node-based ones (attack2-lock.test.ts): a handler that never answers (a long poll that
 * stops when its client goes) never commits, so only the client's abort can let the lock go. Without
 * that, the visitor's next request waits `lock.wait` and gets 503 until the lock's ttl (30 s here).
 */
import type { Server } from "node:http";
import { createServer } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { Application, Router } from "@oakserver/oak";
import Fastify from "fastify";
import { H3 } from "h3";
import { toNodeHandler } from "h3/node";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { session as fastifySession } from "../../src/adapters/fastify.js";
import { createHandler, withSession } from "../../src/adapters/fetch.js";
import { sessionMiddleware as h3Session } from "../../src/adapters/h3.js";
import { sessionMiddleware as honoSession, type SessionEnv } from "../../src/adapters/hono.js";
import { OakSession } from "../../src/adapters/oak.js";
import { createSessions, type Session, type Sessions } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";
import { SECRET } from "../core/harness.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";

function locked(): Sessions {
  return createSessions({ secret: SECRET, store: memoryStore(), lock: { wait: "1s", ttl: "30s" } });
}

/** A handler that has been entered, and never answers. */
function longPoll() {
  let entered: () => void = () => {};
  const inHandler = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const never = <T>(): Promise<T> => {
    entered();
    return new Promise<T>(() => {});
  };
  return { inHandler, never };
}

/**
 * Signs in (POST /login), starts GET /poll with the session's cookie, aborts it once its handler
 * runs, then asks GET / with the same cookie: it must answer at once, not wait out the lock.
 */
async function expectNextRequestServed(server: Listening, inHandler: Promise<void>) {
  try {
    const login = await fetch(`${server.url}/login`, { method: "POST" });
    expect(login.status).toBe(200);
    const cookie = (login.headers.getSetCookie()[0] as string).split(";")[0] as string;
    const abort = new AbortController();
    const poll = fetch(`${server.url}/poll`, { headers: { cookie }, signal: abort.signal });
    await inHandler;
    abort.abort();
    await poll.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    const next = await fetch(`${server.url}/`, { headers: { cookie } });
    expect(next.status).toBe(200);
    expect(await next.text()).toBe("page alice");
    expect(performance.now() - started).toBeLessThan(500);
  } finally {
    await server.close();
  }
}

const fetchServer = (fetch: (request: Request) => Promise<Response>) =>
  listenLoopback(
    // @hono/node-server swaps the global Response by default, which h3's node handler, in this
    // process too, does not recognise: an error answer of h3 then went out as "[object Response]".
    createAdaptorServer({ fetch, hostname: "127.0.0.1", overrideGlobalObjects: false }) as Server,
    { closeConnections: true },
  );

describe("an abandoned request's session lock is let go at once", () => {
  it("fastify: the visitor's next request is not blocked until the lock's ttl", async () => {
    const { inHandler, never } = longPoll();
    const app = Fastify();
    await app.register(fastifySession(locked()));
    app.post("/login", async (request) => {
      await request.session.regenerate({ userId: "alice" });
      return "ok";
    });
    app.get("/poll", () => never());
    app.get("/", async (request) => `page ${request.session.userId}`);
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    const server: Listening = {
      url,
      port: Number(new URL(url).port),
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    };
    await expectNextRequestServed(server, inHandler);
  });

  it("fetch withSession: the visitor's next request is not blocked until the lock's ttl", async () => {
    const { inHandler, never } = longPoll();
    const handler = withSession(locked(), async (request, { session }) => {
      const path = new URL(request.url).pathname;
      if (path === "/login") {
        await session.regenerate({ userId: "alice" });
        return new Response("ok");
      }
      if (path === "/poll") return never<Response>();
      return new Response(`page ${session.userId}`);
    });
    await expectNextRequestServed(await fetchServer(handler), inHandler);
  });

  it("fetch createHandler: the visitor's next request is not blocked until the lock's ttl", async () => {
    const { inHandler, never } = longPoll();
    const handler = createHandler(locked())
      .addPropsResolver(async ({ request, handle }) => {
        if (new URL(request.url).pathname === "/login")
          await handle.regenerate({ userId: "alice" });
        return { path: new URL(request.url).pathname, userId: handle.userId };
      })
      .render(({ path, userId }) => {
        if (path === "/login") return new Response("ok");
        if (path === "/poll") return never<Response>();
        return new Response(`page ${userId}`);
      });
    await expectNextRequestServed(await fetchServer(handler), inHandler);
  });

  it("hono: the visitor's next request is not blocked until the lock's ttl", async () => {
    const { inHandler, never } = longPoll();
    const app = new Hono<SessionEnv>();
    app.use(honoSession(locked()));
    app.post("/login", async (c) => {
      await c.get("session").regenerate({ userId: "alice" });
      return c.text("ok");
    });
    app.get("/poll", () => never<Response>());
    app.get("/", (c) => c.text(`page ${c.get("session").userId}`));
    await expectNextRequestServed(await fetchServer(async (r) => app.fetch(r)), inHandler);
  });

  it("h3 sessionMiddleware: the visitor's next request is not blocked until the lock's ttl", async () => {
    const { inHandler, never } = longPoll();
    const app = new H3().use(h3Session(locked()));
    app.post("/login", async (event) => {
      await event.context.session?.regenerate({ userId: "alice" });
      return "ok";
    });
    app.get("/poll", () => never<string>());
    app.get("/", (event) => `page ${event.context.session?.userId}`);
    const server = await listenLoopback(createServer(toNodeHandler(app)), {
      closeConnections: true,
    });
    await expectNextRequestServed(server, inHandler);
  });

  it("oak (app.handle on a fetch server): the visitor's next request is not blocked until the lock's ttl", async () => {
    const { inHandler, never } = longPoll();
    const app = new Application();
    new OakSession(app, locked());
    const router = new Router();
    router.post("/login", async (ctx) => {
      await ctx.state.session.regenerate({ userId: "alice" });
      ctx.response.body = "ok";
    });
    router.get("/poll", () => never<void>());
    router.get("/", (ctx) => {
      ctx.response.body = `page ${ctx.state.session.userId}`;
    });
    app.use(router.routes());
    // Oak's Response type is undici's on Node: the same object as the global one.
    const server = await fetchServer(async (request) => {
      const response = await app.handle(request as unknown as Parameters<typeof app.handle>[0]);
      return (response as unknown as Response | undefined) ?? new Response(null, { status: 500 });
    });
    await expectNextRequestServed(server, inHandler);
  });
});

/**
 * Signs in, sends GET /boom (whose handler throws after a session change), then GET /: the thrown
 * request commits nothing, so only the adapter can let its lock go; the next request must not wait
 * out `lock.wait` for it.
 */
async function expectServedAfterThrow(server: Listening) {
  try {
    const login = await fetch(`${server.url}/login`, { method: "POST" });
    const cookie = (login.headers.getSetCookie()[0] as string).split(";")[0] as string;
    const boom = await fetch(`${server.url}/boom`, { headers: { cookie } });
    expect(boom.status).toBe(500);
    await boom.arrayBuffer();
    const started = performance.now();
    const next = await fetch(`${server.url}/`, { headers: { cookie } });
    expect([next.status, await next.text()]).toEqual([200, "page alice"]);
    expect(performance.now() - started).toBeLessThan(500);
  } finally {
    await server.close();
  }
}

describe("a handler that throws lets its session's lock go", () => {
  const boom = (session: { set(key: string, value: unknown): void }) => {
    session.set("half", "done");
    throw new Error("handler failed");
  };

  it("fetch withSession", async () => {
    const handler = withSession(locked(), async (request, { session }) => {
      const path = new URL(request.url).pathname;
      if (path === "/login") {
        await session.regenerate({ userId: "alice" });
        return new Response("ok");
      }
      if (path === "/boom") boom(session);
      return new Response(`page ${session.userId}`);
    });
    await expectServedAfterThrow(
      await fetchServer(async (request) =>
        handler(request).catch(() => new Response("failed", { status: 500 })),
      ),
    );
  });

  it("hono", async () => {
    const app = new Hono<SessionEnv>();
    app.use(honoSession(locked()));
    app.post("/login", async (c) => {
      await c.get("session").regenerate({ userId: "alice" });
      return c.text("ok");
    });
    app.get("/boom", (c) => boom(c.get("session")));
    app.get("/", (c) => c.text(`page ${c.get("session").userId}`));
    await expectServedAfterThrow(await fetchServer(async (r) => app.fetch(r)));
  });

  it("h3 sessionMiddleware", async () => {
    const app = new H3({ silent: true }).use(h3Session(locked()));
    app.post("/login", async (event) => {
      await event.context.session?.regenerate({ userId: "alice" });
      return "ok";
    });
    app.get("/boom", (event) => boom(event.context.session as Session));
    app.get("/", (event) => `page ${event.context.session?.userId}`);
    await expectServedAfterThrow(
      await listenLoopback(createServer(toNodeHandler(app)), { closeConnections: true }),
    );
  });

  it("fastify", async () => {
    const app = Fastify();
    await app.register(fastifySession(locked()));
    app.post("/login", async (request) => {
      await request.session.regenerate({ userId: "alice" });
      return "ok";
    });
    app.get("/boom", async (request) => boom(request.session));
    app.get("/", async (request) => `page ${request.session.userId}`);
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    await expectServedAfterThrow({
      url,
      port: Number(new URL(url).port),
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    });
  });

  it("oak (app.handle on a fetch server)", async () => {
    const app = new Application({ logErrors: false });
    new OakSession(app, locked());
    const router = new Router();
    router.post("/login", async (ctx) => {
      await ctx.state.session.regenerate({ userId: "alice" });
      ctx.response.body = "ok";
    });
    router.get("/boom", (ctx) => boom(ctx.state.session.raw));
    router.get("/", (ctx) => {
      ctx.response.body = `page ${ctx.state.session.userId}`;
    });
    app.use(router.routes());
    await expectServedAfterThrow(
      await fetchServer(async (request) => {
        const response = await app.handle(request as unknown as Parameters<typeof app.handle>[0]);
        return (response as unknown as Response | undefined) ?? new Response(null, { status: 500 });
      }),
    );
  });
});

/** A Request that counts reads of its signal: on @hono/node-server the first read builds one. */
class CountingRequest extends Request {
  signalReads = 0;
  override get signal(): AbortSignal {
    this.signalReads++;
    return super.signal;
  }
}

async function signedIn(sessions: Sessions): Promise<string> {
  const login = withSession(sessions, async (_request, { session }) => {
    await session.regenerate({ userId: "alice" });
    return new Response("ok");
  });
  const response = await login(new Request("http://app.test/login"));
  return (response.headers.getSetCookie()[0] as string).split(";")[0] as string;
}

describe("the abort watch costs nothing without a lock, and covers a client gone before the load", () => {
  it("fetch: a request already aborted when its session loads lets the lock go", async () => {
    const sessions = locked();
    const cookie = await signedIn(sessions);
    const { inHandler, never } = longPoll();
    const handler = withSession(sessions, (request, { session }) =>
      new URL(request.url).pathname === "/poll"
        ? never<Response>()
        : new Response(`page ${session.userId}`),
    );
    void handler(
      new Request("http://app.test/poll", { headers: { cookie }, signal: AbortSignal.abort() }),
    );
    await inHandler;
    const next = await handler(new Request("http://app.test/", { headers: { cookie } }));
    expect(next.status).toBe(200);
    expect(await next.text()).toBe("page alice");
  });

  it("fetch withSession and createHandler read the request's signal only when the session holds a lock", async () => {
    const page = (sessions: Sessions) => [
      withSession(sessions, () => new Response("page")),
      createHandler(sessions).render(() => new Response("page")),
    ];
    const unlocked = createSessions({ secret: SECRET, store: memoryStore() });
    const lockedSessions = locked();
    const reads = async (sessions: Sessions, cookie: string) => {
      const counts: number[] = [];
      for (const handler of page(sessions)) {
        const request = new CountingRequest("http://app.test/", { headers: { cookie } });
        expect((await handler(request)).status).toBe(200);
        counts.push(request.signalReads);
      }
      return counts;
    };
    expect(await reads(unlocked, await signedIn(unlocked))).toEqual([0, 0]);
    expect(await reads(lockedSessions, await signedIn(lockedSessions))).toEqual([1, 1]);
  });

  it("fastify: a normal reply in a locked app commits once and lets the lock go", async () => {
    const app = Fastify();
    await app.register(fastifySession(locked()));
    app.get("/", async (request) => {
      const visits = ((request.session.get("visits") as number | undefined) ?? 0) + 1;
      request.session.set("visits", visits);
      return `visit ${visits}`;
    });
    try {
      const first = await app.inject({ url: "/" });
      const cookies = first.headers["set-cookie"];
      expect(Array.isArray(cookies) ? cookies.length : 1).toBe(1);
      const cookie = String(cookies).split(";")[0] as string;
      const started = performance.now();
      const second = await app.inject({ url: "/", headers: { cookie } });
      expect(second.body).toBe("visit 2");
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await app.close();
    }
  });
});
