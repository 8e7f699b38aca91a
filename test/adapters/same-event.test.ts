/**
 * On node:http, Express and Fastify, a request whose session loads without waiting (a cookie session
 * whose token the manager opened or issued before) reaches the handler in the request's own event,
 * as in an app without sessions, and a response with nothing to commit leaves unheld. The handler
 * tells which: a microtask queued as the request arrived has or has not run yet.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import express from "express";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { session } from "../../src/adapters/express.js";
import { session as fastifySession } from "../../src/adapters/fastify.js";
import { withSession } from "../../src/adapters/node.js";
import { createSessions } from "../../src/manager.js";
import type { Session, SessionData } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { SECRET } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

type Marked = { microtaskRan?: boolean };

/** Marks the request, then queues the microtask that flips the mark. */
function mark(req: IncomingMessage): void {
  const marked = req as IncomingMessage & Marked;
  marked.microtaskRan = false;
  queueMicrotask(() => {
    marked.microtaskRan = true;
  });
}

/** `/write` sets n; `/read` answers "<n> <whether the microtask ran before the handler>". */
function answer(s: Session<SessionData>, path: string | undefined, ran: boolean | undefined) {
  if (path === "/write") s.set("n", ((s.get("n") as number | undefined) ?? 0) + 1);
  return `${String(s.get("n"))} ${String(ran)}`;
}

type Start = (store: boolean) => Promise<{ url: string; close(): Promise<void> }>;

const servers: Record<string, Start> = {
  "node:http": async (store) => {
    const sessions = createSessions({ secret: SECRET, store: store ? memoryStore() : undefined });
    const handler = withSession(sessions, (req, res) => {
      res.end(answer(req.session, req.url, (req as Marked).microtaskRan));
    });
    return listenLoopback(
      createServer((req: IncomingMessage, res: ServerResponse) => {
        mark(req);
        void handler(req, res);
      }),
    );
  },
  express: async (store) => {
    const app = express();
    app.use((req, _res, next) => {
      mark(req);
      next();
    });
    app.use(session(createSessions({ secret: SECRET, store: store ? memoryStore() : undefined })));
    app.get(["/read", "/write"], (req, res) => {
      res.send(answer(req.session, req.path, (req as Marked).microtaskRan));
    });
    return listenLoopback(createServer(app));
  },
  fastify: async (store) => {
    const app = Fastify();
    app.addHook("onRequest", (request, _reply, done) => {
      mark(request.raw);
      done();
    });
    await app.register(
      fastifySession(createSessions({ secret: SECRET, store: store ? memoryStore() : undefined })),
    );
    for (const path of ["/read", "/write"]) {
      app.get(path, (request) =>
        answer(request.session, path, (request.raw as Marked).microtaskRan),
      );
    }
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    return { url, close: () => app.close() };
  },
};

describe.each(Object.entries(servers))("%s", (_name, start) => {
  it("runs the handler in the request's event for a cookie session seen before, and commits no read", async () => {
    const running = await start(false);
    try {
      const client = new Client(running.url);
      const first = await client.get("/read"); // no cookie: a new session is made asynchronously
      const written = await client.get("/write");
      const read = await client.get("/read");
      const again = await client.get("/write");
      expect({
        first: first.text,
        written: written.text,
        read: read.text,
        readCookies: read.setCookies.length,
        again: again.text,
        againCookies: again.setCookies.length,
      }).toEqual({
        first: "undefined true",
        written: "1 true",
        read: "1 false",
        readCookies: 0,
        again: "2 false",
        againCookies: 1,
      });
    } finally {
      await running.close();
    }
  });

  it("waits for a store session's load, as before", async () => {
    const running = await start(true);
    try {
      const client = new Client(running.url);
      await client.get("/write");
      const read = await client.get("/read");
      expect(read.text).toBe("1 true");
      expect(read.setCookies).toEqual([]);
    } finally {
      await running.close();
    }
  });
});
