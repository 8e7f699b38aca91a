/**
 * The HTTP benchmark's servers. Each serves the same two routes on 127.0.0.1:
 * - `GET /read`: reads the counter `n` from the session (written once before; the client sends its
 *   cookie) and answers it as text. A bare app answers "1".
 * - `GET /write`: increments the counter, answers the new value. A bare app increments a global.
 * Every app is built the way its documentation shows, with defaults, cookies not `Secure` (plain http).
 */
import { randomBytes } from "node:crypto";
import { createServer, IncomingMessage, type Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Hono } from "hono";
import type { Session as HonoSession } from "hono-sessions";
import type { Session, SessionData } from "../../dist/session.js";
import type { SessionStore } from "../../dist/stores/store.js";

// Frameworks and peers load inside each app's start(), so a server process loads only its own.

/**
 * For a peer whose type declarations would change types the rest of the repository sees
 * (@fastify/session redeclares fastify's `request.session`): a specifier TypeScript does not resolve.
 */
const importUntyped = (specifier: string): Promise<{ default: unknown }> => import(specifier);

/** sessionkit's session, whatever data type the repository's type tests register globally. */
const sk = (session: unknown) => session as Session<SessionData>;

export const SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz"; // fixed, never printed
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
/** Every Redis key the HTTP servers write starts with this; the benchmark deletes them at the end. */
export const REDIS_PREFIX = "skbench:http:";

export type Framework = "node:http" | "express" | "fastify" | "h3" | "hono";
export type Store = "none" | "cookie" | "memory" | "redis";
/** "probe": no session and no peer, a row that isolates one cost of a framework (see its app). */
export type Side = "bare" | "sessionkit" | "peer" | "probe";

export interface AppSpec {
  name: string;
  framework: Framework;
  side: Side;
  store: Store;
  label: string;
  start: () => Promise<Server>;
}

const count = (value: unknown) => (typeof value === "number" ? value : 0) + 1;

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

async function nodeRedis() {
  const { createClient } = await import("redis");
  const client = createClient({ url: REDIS_URL });
  client.on("error", (err: Error) => console.error("redis:", err.message));
  await client.connect();
  return client;
}

async function sessionkitSessions(store: Store) {
  const { createSessions } = await import("../../dist/index.js");
  let target: SessionStore | undefined;
  if (store === "memory") target = (await import("../../dist/stores/memory.js")).memoryStore();
  if (store === "redis") {
    const { redisStore } = await import("../../dist/stores/redis.js");
    target = redisStore({ client: await nodeRedis(), prefix: `${REDIS_PREFIX}sk:` });
  }
  return createSessions({ secret: SECRET, store: target });
}

let bareCounter = 0;

// ---- node:http

const nodeBare: AppSpec = {
  name: "node-bare",
  framework: "node:http",
  side: "bare",
  store: "none",
  label: "bare node:http",
  start: () =>
    listen(
      createServer((req, res) => {
        res.setHeader("content-type", "text/plain; charset=utf-8");
        res.end(req.url === "/write" ? String(++bareCounter) : "1");
      }),
    ),
};

const nodeSessionkit: AppSpec = {
  name: "node-sessionkit-cookie",
  framework: "node:http",
  side: "sessionkit",
  store: "cookie",
  label: "sessionkit/node (cookie)",
  start: async () => {
    const { withSession } = await import("../../dist/adapters/node.js");
    const sessions = await sessionkitSessions("cookie");
    return listen(
      createServer(
        withSession(sessions, (req, res) => {
          const session = sk(req.session);
          res.setHeader("content-type", "text/plain; charset=utf-8");
          if (req.url === "/write") {
            const n = count(session.get("n"));
            session.set("n", n);
            res.end(String(n));
          } else res.end(String(session.get("n")));
        }),
      ),
    );
  },
};

/**
 * Bare node:http plus the one thing Express's `app.handle` does to every request before any
 * middleware runs: it swaps the request's and the response's prototype for its app's own
 * (`Object.setPrototypeOf`). Compared with bare node:http in the same run, this row shows what that
 * alone costs, a cost every Express row carries and that no middleware can avoid (bench/README.md).
 */
const nodeSetPrototype: AppSpec = {
  name: "node-set-prototype",
  framework: "node:http",
  side: "probe",
  store: "none",
  label: "node:http + setPrototypeOf (as Express)",
  start: () => {
    const request = Object.create(IncomingMessage.prototype) as object;
    const response = Object.create(ServerResponse.prototype) as object;
    return listen(
      createServer((req, res) => {
        Object.setPrototypeOf(req, request);
        Object.setPrototypeOf(res, response);
        res.setHeader("content-type", "text/plain; charset=utf-8");
        res.end(req.url === "/write" ? String(++bareCounter) : "1");
      }),
    );
  },
};

// ---- Express

async function expressApp() {
  const { default: express } = await import("express");
  return express();
}

const expressBare: AppSpec = {
  name: "express-bare",
  framework: "express",
  side: "bare",
  store: "none",
  label: "bare Express",
  start: async () => {
    const app = await expressApp();
    app.get("/read", (_req, res) => {
      res.send("1");
    });
    app.get("/write", (_req, res) => {
      res.send(String(++bareCounter));
    });
    return listen(createServer(app));
  },
};

function expressSessionkit(store: "cookie" | "memory" | "redis"): AppSpec {
  return {
    name: `express-sessionkit-${store}`,
    framework: "express",
    side: "sessionkit",
    store,
    label: `sessionkit/express (${store})`,
    start: async () => {
      const { session } = await import("../../dist/adapters/express.js");
      const app = await expressApp();
      app.use(session(await sessionkitSessions(store)));
      app.get("/read", (req, res) => {
        res.send(String(sk(req.session).get("n")));
      });
      app.get("/write", (req, res) => {
        const n = count(sk(req.session).get("n"));
        sk(req.session).set("n", n);
        res.send(String(n));
      });
      return listen(createServer(app));
    },
  };
}

function expressSessionPeer(store: "memory" | "redis"): AppSpec {
  return {
    name: `express-session-${store}`,
    framework: "express",
    side: "peer",
    store,
    label: store === "memory" ? "express-session (MemoryStore)" : "express-session + connect-redis",
    start: async () => {
      const { default: expressSession } = await import("express-session");
      const app = await expressApp();
      const peerStore =
        store === "memory"
          ? new expressSession.MemoryStore()
          : new (await import("connect-redis")).RedisStore({
              client: await nodeRedis(),
              prefix: `${REDIS_PREFIX}cr:`,
            });
      app.use(
        expressSession({
          secret: SECRET,
          resave: false,
          saveUninitialized: false,
          store: peerStore,
        }),
      );
      type Data = { n?: number };
      app.get("/read", (req, res) => {
        res.send(String((req.session as unknown as Data).n));
      });
      app.get("/write", (req, res) => {
        const data = req.session as unknown as Data;
        data.n = count(data.n);
        res.send(String(data.n));
      });
      return listen(createServer(app));
    },
  };
}

// ---- Fastify

type FastifyInstance = import("fastify").FastifyInstance;

async function fastifyApp(): Promise<FastifyInstance> {
  const { default: Fastify } = await import("fastify");
  return Fastify({ logger: false });
}

async function fastifyListen(app: FastifyInstance): Promise<Server> {
  await app.listen({ port: 0, host: "127.0.0.1" });
  return app.server as Server;
}

const fastifyBare: AppSpec = {
  name: "fastify-bare",
  framework: "fastify",
  side: "bare",
  store: "none",
  label: "bare Fastify",
  start: async () => {
    const app = await fastifyApp();
    app.get("/read", async () => "1");
    app.get("/write", async () => String(++bareCounter));
    return fastifyListen(app);
  },
};

function fastifySessionkit(store: "cookie" | "memory"): AppSpec {
  return {
    name: `fastify-sessionkit-${store}`,
    framework: "fastify",
    side: "sessionkit",
    store,
    label: `sessionkit/fastify (${store})`,
    start: async () => {
      const { session } = await import("../../dist/adapters/fastify.js");
      const app = await fastifyApp();
      await app.register(session(await sessionkitSessions(store)));
      app.get("/read", async (request) => String(sk(request.session).get("n")));
      app.get("/write", async (request) => {
        const n = count(sk(request.session).get("n"));
        sk(request.session).set("n", n);
        return String(n);
      });
      return fastifyListen(app);
    },
  };
}

/** The get/set surface both Fastify peers give `request.session`. */
type PeerSession = { get(key: string): unknown; set(key: string, value: unknown): void };
const peer = (session: unknown) => session as PeerSession;

const fastifySecure: AppSpec = {
  name: "fastify-secure-session",
  framework: "fastify",
  side: "peer",
  store: "cookie",
  label: "@fastify/secure-session (cookie)",
  start: async () => {
    const plugin = (await importUntyped("@fastify/secure-session")).default;
    const app = await fastifyApp();
    await app.register(plugin as never, {
      key: randomBytes(32),
      cookie: { path: "/", httpOnly: true, sameSite: "lax" },
    });
    app.get("/read", async (request) => String(peer(request.session).get("n")));
    app.get("/write", async (request) => {
      const n = count(peer(request.session).get("n"));
      peer(request.session).set("n", n);
      return String(n);
    });
    return fastifyListen(app);
  },
};

const fastifySessionPeer: AppSpec = {
  name: "fastify-session-memory",
  framework: "fastify",
  side: "peer",
  store: "memory",
  label: "@fastify/session (MemoryStore)",
  start: async () => {
    const cookie = (await importUntyped("@fastify/cookie")).default;
    const plugin = (await importUntyped("@fastify/session")).default;
    const app = await fastifyApp();
    await app.register(cookie as never);
    await app.register(plugin as never, {
      secret: SECRET,
      saveUninitialized: false,
      cookie: { secure: false, path: "/", httpOnly: true, sameSite: "lax" },
    });
    app.get("/read", async (request) => String(peer(request.session).get("n")));
    app.get("/write", async (request) => {
      const n = count(peer(request.session).get("n"));
      peer(request.session).set("n", n);
      return String(n);
    });
    return fastifyListen(app);
  },
};

// ---- h3

const H3_CONFIG = { password: SECRET, cookie: { secure: false } };

const h3Bare: AppSpec = {
  name: "h3-bare",
  framework: "h3",
  side: "bare",
  store: "none",
  label: "bare h3",
  start: async () => {
    const { H3 } = await import("h3");
    const { toNodeHandler } = await import("h3/node");
    const app = new H3();
    app.get("/read", () => "1");
    app.get("/write", () => String(++bareCounter));
    return listen(createServer(toNodeHandler(app)));
  },
};

interface UseSessionLike {
  data: { n?: number };
  update(update: { n: number }): Promise<unknown>;
}

function h3Sessions(side: "sessionkit" | "peer"): AppSpec {
  return {
    name: `h3-${side}-useSession`,
    framework: "h3",
    side,
    store: "cookie",
    label: side === "sessionkit" ? "sessionkit/h3 useSession (cookie)" : "h3 useSession (cookie)",
    start: async () => {
      const { H3, useSession: h3UseSession } = await import("h3");
      const { toNodeHandler } = await import("h3/node");
      const use = (
        side === "sessionkit"
          ? (await import("../../dist/adapters/h3.js")).useSession
          : h3UseSession
      ) as (event: unknown, config: typeof H3_CONFIG) => Promise<UseSessionLike>;
      const app = new H3();
      app.get("/read", async (event) => String((await use(event, H3_CONFIG)).data.n));
      app.get("/write", async (event) => {
        const session = await use(event, H3_CONFIG);
        const n = count(session.data.n);
        await session.update({ n });
        return String(n);
      });
      return listen(createServer(toNodeHandler(app)));
    },
  };
}

// ---- Hono

async function honoListen(app: { fetch: Hono["fetch"] }): Promise<Server> {
  const { serve } = await import("@hono/node-server");
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () =>
      resolve(server as Server),
    );
  });
}

const honoBare: AppSpec = {
  name: "hono-bare",
  framework: "hono",
  side: "bare",
  store: "none",
  label: "bare Hono",
  start: async () => {
    const { Hono } = await import("hono");
    const app = new Hono();
    app.get("/read", (c) => c.text("1"));
    app.get("/write", (c) => c.text(String(++bareCounter)));
    return honoListen(app);
  },
};

function honoSessionkit(store: "cookie" | "memory"): AppSpec {
  return {
    name: `hono-sessionkit-${store}`,
    framework: "hono",
    side: "sessionkit",
    store,
    label: `sessionkit/hono (${store})`,
    start: async () => {
      const { Hono } = await import("hono");
      const { sessionMiddleware } = await import("../../dist/adapters/hono.js");
      const sessions = await sessionkitSessions(store);
      const app = new Hono<{ Variables: { session: Session<SessionData> } }>();
      app.use(sessionMiddleware(sessions));
      app.get("/read", (c) => c.text(String(c.get("session").get("n"))));
      app.get("/write", (c) => {
        const session = c.get("session");
        const n = count(session.get("n"));
        session.set("n", n);
        return c.text(String(n));
      });
      return honoListen(app);
    },
  };
}

function honoSessionsPeer(store: "cookie" | "memory"): AppSpec {
  return {
    name: `hono-sessions-${store}`,
    framework: "hono",
    side: "peer",
    store,
    label: store === "cookie" ? "hono-sessions (CookieStore)" : "hono-sessions (MemoryStore)",
    start: async () => {
      const { Hono } = await import("hono");
      const { CookieStore, MemoryStore, sessionMiddleware } = await import("hono-sessions");
      const app = new Hono<{ Variables: { session: HonoSession<{ n: number }> } }>();
      app.use(
        "*",
        sessionMiddleware({
          store: store === "cookie" ? new CookieStore() : new MemoryStore(),
          // Required by CookieStore. With MemoryStore it would seal the id into every response's
          // cookie (iron): left out there, the cheapest setup the peer allows (the id is a random UUID).
          ...(store === "cookie" ? { encryptionKey: SECRET } : {}),
          cookieOptions: { path: "/", httpOnly: true, sameSite: "Lax" },
        }),
      );
      app.get("/read", (c) => c.text(String(c.get("session").get("n"))));
      app.get("/write", (c) => {
        const session = c.get("session");
        const n = count(session.get("n"));
        session.set("n", n);
        return c.text(String(n));
      });
      return honoListen(app);
    },
  };
}

/** Every server, in table order. */
export const APPS: readonly AppSpec[] = [
  nodeBare,
  nodeSessionkit,
  nodeSetPrototype,
  expressBare,
  expressSessionkit("cookie"),
  expressSessionkit("memory"),
  expressSessionPeer("memory"),
  expressSessionkit("redis"),
  expressSessionPeer("redis"),
  fastifyBare,
  fastifySessionkit("cookie"),
  fastifySecure,
  fastifySessionkit("memory"),
  fastifySessionPeer,
  h3Bare,
  h3Sessions("sessionkit"),
  h3Sessions("peer"),
  honoBare,
  honoSessionkit("cookie"),
  honoSessionsPeer("cookie"),
  honoSessionkit("memory"),
  honoSessionsPeer("memory"),
];

export function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}
