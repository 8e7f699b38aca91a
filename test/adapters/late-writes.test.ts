/**
 * A change made after the adapter committed the session (the response has begun: a body write,
 * `flushHeaders`, a returned Response whose body is still streaming) can reach neither the cookie nor
 * the store. It throws ERR_SESSION_STATE where it is made instead of vanishing; reads still work, and
 * changes made before the response began are kept. Checked over real HTTP on node:http, Express,
 * Fastify, the fetch adapter and Hono, with a cookie session and a store session.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import { session as expressSession } from "../../src/adapters/express.js";
import { session as fastifySession } from "../../src/adapters/fastify.js";
import { withSession as fetchSession } from "../../src/adapters/fetch.js";
import { type SessionEnv, sessionMiddleware } from "../../src/adapters/hono.js";
import { withSession as nodeSession } from "../../src/adapters/node.js";
import { isSessionError } from "../../src/errors.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { SECRET } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

/** What the handler saw when it tried to change the session after the response began. */
interface Attempt {
  code: string | undefined;
  readAfter: unknown;
}

/** A change made before the response begins (the registered test schema does not know "early"). */
function early(session: object): void {
  (session as Session).set("early", 1);
}

/** Sets "early", begins the response, then tries to set "late"; records the outcome. */
function lateWrite(untyped: object, attempts: Attempt[]): void {
  const session = untyped as Session;
  let code: string | undefined;
  try {
    session.set("late", 1);
  } catch (err) {
    code = isSessionError(err) ? err.code : String(err);
  }
  attempts.push({ code, readAfter: session.get("early") });
}

/** A body whose code runs while it streams, after the handler returned: it tries the late write. */
function lateBody(session: object, attempts: Attempt[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        lateWrite(session, attempts);
        controller.enqueue(new TextEncoder().encode("done"));
        controller.close();
      },
    },
    // No read ahead: pull runs when the server reads the body, not when the stream is made.
    { highWaterMark: 0 },
  );
}

type Serve = (
  sessions: Sessions,
  attempts: Attempt[],
) => Promise<{ url: string; close(): Promise<void> }>;

function listenNode(handler: Parameters<typeof createServer>[1]) {
  return listenLoopback(createServer(handler));
}

const servers: Record<string, Serve> = {
  "node:http": (sessions, attempts) =>
    listenNode(
      nodeSession(sessions, async (req, res) => {
        if (req.url === "/read") return res.end(JSON.stringify(req.session.data));
        req.session.set("early", 1);
        res.write("part 1; ");
        lateWrite(req.session, attempts);
        res.end("part 2");
      }),
    ),
  express: (sessions, attempts) => {
    const app = express();
    app.use(expressSession(sessions));
    app.get("/read", (req, res) => {
      res.send(JSON.stringify(req.session.data));
    });
    app.get("/", (req, res) => {
      early(req.session);
      res.flushHeaders();
      lateWrite(req.session, attempts);
      res.end("done");
    });
    return listenNode(app);
  },
  fastify: async (sessions, attempts) => {
    const app = Fastify();
    await app.register(fastifySession(sessions));
    app.get("/read", async (request) => JSON.stringify(request.session.data));
    app.get("/", async (request, reply) => {
      early(request.session);
      await reply.send("done");
      lateWrite(request.session, attempts);
      return reply;
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
  fetch: (sessions, attempts) => {
    const handler = fetchSession(sessions, (request, { session }) => {
      if (new URL(request.url).pathname === "/read") {
        return new Response(JSON.stringify(session.data));
      }
      session.set("early", 1);
      return new Response(lateBody(session, attempts));
    });
    return listenFetch(handler);
  },
  hono: (sessions, attempts) => {
    const app = new Hono<SessionEnv>();
    app.use(sessionMiddleware(sessions));
    app.get("/read", (c) => c.text(JSON.stringify(c.get("session").data)));
    app.get("/", (c) => {
      const session = c.get("session");
      session.set("early", 1);
      return c.body(lateBody(session, attempts));
    });
    return listenFetch((request) => app.fetch(request));
  },
};

/** A fetch-style handler on node:http, body streamed as the handler's Response produces it. */
function listenFetch(handler: (request: Request) => Response | Promise<Response>) {
  return listenNode(async (req, res) => {
    const response = await handler(
      new Request(`http://127.0.0.1${req.url}`, {
        method: req.method,
        headers: req.headers as Record<string, string>,
      }),
    );
    res.writeHead(response.status, [...response.headers].flat());
    if (response.body) for await (const chunk of response.body) res.write(chunk);
    res.end();
  });
}

const stores = {
  cookie: () => undefined,
  store: () => memoryStore(),
};

describe("a change after the response began", () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  for (const [name, serve] of Object.entries(servers)) {
    for (const [kind, store] of Object.entries(stores)) {
      it(`${name}, ${kind} session: throws ERR_SESSION_STATE; what was set before is kept`, async () => {
        const attempts: Attempt[] = [];
        const sessions = createSessions({ secret: SECRET, store: store() });
        const app = await serve(sessions as Sessions, attempts);
        open.push(app);
        const client = new Client(app.url);
        const reply = await client.get("/");
        expect(reply.status).toBe(200);
        expect(attempts).toEqual([{ code: "ERR_SESSION_STATE", readAfter: 1 }]);
        expect(JSON.parse((await client.get("/read")).text)).toEqual({ early: 1 });
      });
    }
  }
});
