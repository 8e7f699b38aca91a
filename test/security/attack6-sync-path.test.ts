/**
 * Attack 6: the synchronous load of a cached cookie token, the quiet commit (closeIfQuiet), the
 * id-derived CSRF seed and the token cache's "gone" ids, attacked on the wire (node:http, Express,
 * Fastify, Koa, Hono) and through the manager.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import compression from "compression";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import Koa from "koa";
import { describe, expect, it } from "vitest";
import { session as expressSession } from "../../src/adapters/express.js";
import { session as fastifySession } from "../../src/adapters/fastify.js";
import { sessionMiddleware as honoSession } from "../../src/adapters/hono.js";
import { session as koaSession } from "../../src/adapters/koa.js";
import { withSession } from "../../src/adapters/node.js";
import { isSessionError } from "../../src/errors.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session, SessionData } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import type { SessionStore } from "../../src/stores/store.js";
import { SECRET } from "../conformance/adapter.js";
import { HOUR, harness, MINUTE, OTHER_SECRET, storeHarness } from "../core/harness.js";
import { countedStore } from "../helpers/counted-store.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

type Running = { url: string; close(): Promise<void> };

async function withServer<R>(running: Running, run: (client: Client) => Promise<R>): Promise<R> {
  try {
    return await run(new Client(running.url));
  } finally {
    await running.close();
  }
}

const untyped = (s: unknown) => s as Session<SessionData>;

/** Express with the session and two routes: `/write` sets n to 1 ("w"), `/read` answers n. */
function readWriteApp(sessions: Sessions): express.Express {
  const app = express();
  app.use(expressSession(sessions));
  app.get("/write", (req, res) => {
    untyped(req.session).set("n", 1);
    res.send("w");
  });
  app.get("/read", (req, res) => {
    res.send(String(untyped(req.session).get("n")));
  });
  return app;
}

/*
 * Found in 08b8c3d, fixed before it shipped (node-response.ts `enqueue`): on a quiet response the
 * first held call went on as `res[method].apply(res, args)`, through whatever the response's method
 * was then. A wrapper a later middleware (or the handler) put over the session's held method is the
 * caller of that held method, so it ran a second time: a body rewriter rewrote twice, a header
 * appender appended twice, and a wrapper that ends only once (express-session's, a body logger's
 * guard) swallowed the real end: the response hung. The call now goes to what lies beneath the hold
 * (HOLDING[method] once released), as the queue's replay does, so each wrapper runs once.
 */
describe("a middleware mounted after the session that wraps res.end / res.writeHead", () => {
  it("express: a wrapper of res.end runs once for a response with nothing to commit", async () => {
    let calls = 0;
    const app = express();
    app.use(expressSession(createSessions({ secret: SECRET })));
    app.use((_req, res, next) => {
      const end = res.end;
      // A body rewriter / logger of the common kind: captures end, adds to what goes out.
      res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
        calls++;
        const body = typeof chunk === "string" || Buffer.isBuffer(chunk) ? `${chunk}!` : chunk;
        return (end as (...a: unknown[]) => ServerResponse).call(this, body, ...rest);
      } as typeof res.end;
      next();
    });
    app.get("/read", (_req, res) => {
      res.setHeader("content-type", "text/plain");
      res.end("hi");
    });
    app.get("/write", (req, res) => {
      untyped(req.session).set("n", 1);
      res.setHeader("content-type", "text/plain");
      res.end("hi");
    });
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      const write = await client.get("/write");
      const writeCalls = calls;
      calls = 0;
      const read = await client.get("/read");
      expect({ write: write.text, writeCalls, read: read.text, readCalls: calls }).toEqual({
        write: "hi!",
        writeCalls: 1,
        read: "hi!",
        readCalls: 1,
      });
    });
  });

  it("node:http: a wrapper of res.writeHead the handler installs runs once", async () => {
    const sessions = createSessions({ secret: SECRET });
    const handler = withSession(sessions, (req, res) => {
      let calls = 0;
      const writeHead = res.writeHead;
      res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
        calls++;
        this.appendHeader("x-seen", String(calls));
        return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
      } as typeof res.writeHead;
      if (req.url === "/write") untyped(req.session).set("n", 1);
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    });
    await withServer(await listenLoopback(createServer(handler)), async (client) => {
      const write = await client.get("/write");
      const writeSeen = write.headers.get("x-seen");
      const read = await client.get("/read"); // cached cookie, nothing changed: quiet
      expect({ writeSeen, readSeen: read.headers.get("x-seen"), body: read.text }).toEqual({
        writeSeen: "1",
        readSeen: "1",
        body: "ok",
      });
    });
  });

  it("express: a wrapper of res.end that ends once (the express-session / body-logger pattern) does not hang the response", async () => {
    const app = express();
    app.use(expressSession(createSessions({ secret: SECRET })));
    app.use((_req, res, next) => {
      const end = res.end;
      let ended = false;
      res.end = function (this: ServerResponse, ...args: unknown[]) {
        if (ended) return false; // a second end is a no-op, as express-session's is
        ended = true;
        return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
      } as unknown as typeof res.end;
      next();
    });
    app.get("/", (_req, res) => {
      res.send("done");
    });
    await withServer(
      await listenLoopback(createServer(app), { closeConnections: true }),
      async (client) => {
        const outcome = await client
          .get("/", { signal: AbortSignal.timeout(1500) })
          .then((r) => r.text)
          .catch((err: Error) => `hung (${err.name})`);
        expect(outcome).toBe("done");
      },
    );
  });

  it("express: compression mounted after the session gzips a quiet response once (read, write, stream)", async () => {
    const app = express();
    app.use(expressSession(createSessions({ secret: SECRET })));
    app.use(compression({ threshold: 0 }));
    const big = "sessionkit ".repeat(500);
    app.get("/write", (req, res) => {
      untyped(req.session).set("n", 1);
      res.send(big);
    });
    app.get("/read", (_req, res) => {
      res.send(big);
    });
    app.get("/stream", (_req, res) => {
      res.setHeader("content-type", "text/plain");
      res.flushHeaders();
      res.write(big);
      setTimeout(() => res.end(big), 5);
    });
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      const w = await client.get("/write");
      const r = await client.get("/read");
      const st = await client.get("/stream");
      expect({
        w: [w.text === big, w.headers.get("content-encoding")],
        r: [r.text === big, r.headers.get("content-encoding")],
        st: [st.text === big + big, st.headers.get("content-encoding")],
      }).toEqual({ w: [true, "gzip"], r: [true, "gzip"], st: [true, "gzip"] });
    });
  });

  it("koa: a downstream middleware's wrapper of ctx.res.end runs once", async () => {
    const app = new Koa();
    app.use(koaSession(createSessions({ secret: SECRET })));
    let calls = 0;
    app.use(async (ctx, next) => {
      const end = ctx.res.end;
      ctx.res.end = function (this: ServerResponse, ...args: unknown[]) {
        calls++;
        return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
      } as typeof ctx.res.end;
      await next();
    });
    app.use((ctx) => {
      ctx.body = "koa";
    });
    await withServer(await listenLoopback(createServer(app.callback())), async (client) => {
      const r = await client.get("/");
      expect({ text: r.text, calls }).toEqual({ text: "koa", calls: 1 });
    });
  });
});

/*
 * Found in 08b8c3d/aa53f67, fixed before it shipped: the node adapters loaded through the manager's
 * internal `loadNow` and skipped `sessions.commit` for a quiet session, so an app that replaced
 * `load` / `commit` on the manager in place (the `Sessions` methods are not readonly; tracing,
 * metrics, audit) saw its load never called and its commit only on writes. The shortcuts now stand
 * in for `load` and `commit` only while those are the manager's own.
 */
describe("a manager whose load or commit the app replaced in place (instrumentation)", () => {
  it("express: the replaced load and commit run for every request, a read included", async () => {
    const sessions = createSessions({ secret: SECRET });
    const seen: string[] = [];
    const load = sessions.load;
    const commit = sessions.commit;
    sessions.load = (input) => {
      seen.push("load");
      return load(input);
    };
    sessions.commit = (s, headers) => {
      seen.push("commit");
      return commit(s, headers);
    };
    const app = readWriteApp(sessions);
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      await client.get("/write");
      await client.get("/read");
      await client.get("/read");
      expect(seen).toEqual(["load", "commit", "load", "commit", "load", "commit"]);
    });
  });
});

describe("changes around the first write (node:http, Express)", () => {
  function expressApp(sessions: Sessions) {
    const app = express();
    const errors: string[] = [];
    app.use(expressSession(sessions));
    app.get("/write", (req, res) => {
      untyped(req.session).set("n", ((untyped(req.session).get("n") as number) ?? 0) + 1);
      res.send(String(untyped(req.session).get("n")));
    });
    app.get("/read", (req, res) => {
      res.send(String(untyped(req.session).get("n")));
    });
    // Changes the session after writeHead on a quiet session: must throw, as it did.
    app.get("/after-head", (req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      try {
        untyped(req.session).set("n", 99);
        res.end("changed");
      } catch (err) {
        errors.push(isSessionError(err, "ERR_SESSION_STATE") ? "state" : String(err));
        res.end("refused");
      }
    });
    // res.end(await work()): work changes the session before end is called.
    app.get("/await-end", async (req, res) => {
      const work = async () => {
        await new Promise((r) => setTimeout(r, 5));
        untyped(req.session).set("n", 42);
        return "done";
      };
      res.end(await work());
    });
    // flushHeaders first on a quiet session, then a streamed body.
    app.get("/flush", (req, res) => {
      res.setHeader("content-type", "text/plain");
      res.flushHeaders();
      setTimeout(() => {
        res.write("a");
        try {
          untyped(req.session).set("n", 7);
        } catch (err) {
          errors.push(isSessionError(err, "ERR_SESSION_STATE") ? "state" : String(err));
        }
        res.end("b");
      }, 5);
    });
    // next(err) with a quiet session, to an error handler that writes the session.
    app.get("/error", (_req, _res, next) => next(new Error("boom")));
    app.use(
      (_err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
        untyped(req.session).flash("error", "boom");
        res.status(500).send("handled");
      },
    );
    return { app, errors };
  }

  it("express: a quiet session changed after writeHead throws ERR_SESSION_STATE and nothing is lost silently", async () => {
    const sessions = createSessions({ secret: SECRET });
    const { app, errors } = expressApp(sessions);
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      await client.get("/write");
      await client.get("/read"); // token now cached: sync load
      const after = await client.get("/after-head");
      const read = await client.get("/read");
      expect({
        after: after.text,
        cookies: after.setCookies.length,
        read: read.text,
        errors,
      }).toEqual({ after: "refused", cookies: 0, read: "1", errors: ["state"] });
    });
  });

  it("express: res.end(await work()) where work changes the session sends the cookie", async () => {
    const sessions = createSessions({ secret: SECRET });
    const { app } = expressApp(sessions);
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      await client.get("/write");
      await client.get("/read");
      const r = await client.get("/await-end");
      const read = await client.get("/read");
      expect({ cookies: r.setCookies.length, read: read.text }).toEqual({ cookies: 1, read: "42" });
    });
  });

  it("express: flushHeaders on a quiet session streams, and a later change throws", async () => {
    const sessions = createSessions({ secret: SECRET });
    const { app, errors } = expressApp(sessions);
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      await client.get("/write");
      await client.get("/read");
      const r = await client.get("/flush");
      const read = await client.get("/read");
      expect({ body: r.text, read: read.text, errors }).toEqual({
        body: "ab",
        read: "1",
        errors: ["state"],
      });
    });
  });

  it("express: next(err) from a route with a cached session reaches the error handler, whose change is saved", async () => {
    const sessions = createSessions({ secret: SECRET });
    const { app } = expressApp(sessions);
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      await client.get("/write");
      await client.get("/read");
      const r = await client.get("/error");
      expect({ status: r.status, text: r.text, cookies: r.setCookies.length }).toEqual({
        status: 500,
        text: "handled",
        cookies: 1,
      });
    });
  });
});

describe("two managers on one request (Express)", () => {
  it("a cookie manager (sync) and a store manager (async): each commits its own change, reads stay quiet", async () => {
    const a = createSessions({ secret: SECRET, cookie: { name: "a" } });
    const b = createSessions({ secret: SECRET, cookie: { name: "b" }, store: memoryStore() });
    const app = express();
    const bSession = (req: express.Request) => (req as unknown as { b: Session }).b;
    app.use(expressSession(a));
    app.use((req, _res, next) => {
      (req as unknown as { a: Session }).a = req.session;
      next();
    });
    app.use(expressSession(b));
    app.use((req, _res, next) => {
      (req as unknown as { b: Session }).b = req.session;
      req.session = (req as unknown as { a: Session }).a as typeof req.session;
      next();
    });
    app.get("/:which", (req, res) => {
      const which = req.params.which;
      if (which === "a" || which === "both") untyped(req.session).set("x", which);
      if (which === "b" || which === "both") untyped(bSession(req)).set("y", which);
      res.send(
        `${String(untyped(req.session).get("x"))} ${String(untyped(bSession(req)).get("y"))}`,
      );
    });
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      const both = await client.get("/both");
      const read = await client.get("/read");
      const onlyB = await client.get("/b");
      const onlyA = await client.get("/a");
      const last = await client.get("/read");
      const names = (lines: string[]) => lines.map((l) => l.split("=")[0]).sort();
      expect({
        both: [both.text, names(both.setCookies)],
        read: [read.text, names(read.setCookies)],
        onlyB: [onlyB.text, names(onlyB.setCookies)],
        onlyA: [onlyA.text, names(onlyA.setCookies)],
        last: last.text,
      }).toEqual({
        both: ["both both", ["a", "b"]],
        read: ["both both", []],
        onlyB: ["both b", ["b"]], // a write moves a lasting cookie's Max-Age
        onlyA: ["a b", ["a"]],
        last: "a b",
      });
    });
  });
});

describe("Fastify with the synchronous load", () => {
  async function fastifyApp(sessions: Sessions, guards = false) {
    const app = Fastify();
    await app.register(
      fastifySession(
        sessions,
        guards
          ? {
              guards: [
                (s) =>
                  untyped(s).get("blocked") === true
                    ? new Response("blocked", { status: 403 })
                    : undefined,
              ],
            }
          : {},
      ),
    );
    app.get("/write", async (request) => {
      untyped(request.session).set("n", ((untyped(request.session).get("n") as number) ?? 0) + 1);
      return String(untyped(request.session).get("n"));
    });
    app.get("/block", async (request) => {
      untyped(request.session).set("blocked", true);
      return "blocked now";
    });
    app.get("/read", async (request) => String(untyped(request.session).get("n")));
    app.get(
      "/pre",
      {
        preHandler: async (request) => {
          await new Promise((r) => setTimeout(r, 2));
          untyped(request.session).set("pre", true);
        },
      },
      async (request) => String(untyped(request.session).get("pre")),
    );
    app.get("/throw", async (request) => {
      untyped(request.session).flash("error", "x");
      throw new Error("route failed");
    });
    app.get("/throw-quiet", async () => {
      throw new Error("route failed");
    });
    app.get("/hijack", (request, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/plain" });
      let state = "none";
      try {
        untyped(request.session).set("late", 1);
      } catch (err) {
        state = isSessionError(err, "ERR_SESSION_STATE") ? "state" : String(err);
      }
      reply.raw.end(state);
    });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    return {
      url,
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    };
  }

  it("a guard on a cached session refuses, reads pass, and done is not called twice", async () => {
    const sessions = createSessions({ secret: SECRET });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      await withServer(await fastifyApp(sessions, true), async (client) => {
        const w = await client.get("/write");
        const r = await client.get("/read");
        await client.get("/block");
        const blocked = await client.get("/read");
        expect({ w: w.text, r: r.text, blocked: [blocked.status, blocked.text] }).toEqual({
          w: "1",
          r: "1",
          blocked: [403, "blocked"],
        });
      });
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => /done|reply was already sent/i.test(w))).toEqual([]);
  });

  it("an async preHandler's change on a cached session is saved", async () => {
    const sessions = createSessions({ secret: SECRET });
    await withServer(await fastifyApp(sessions), async (client) => {
      await client.get("/write");
      await client.get("/read");
      const pre = await client.get("/pre");
      expect(pre.text).toBe("true");
      expect(pre.setCookies).toHaveLength(1);
    });
  });

  it("a route that throws: its change is committed onto the error reply; a quiet one sends nothing", async () => {
    const sessions = createSessions({ secret: SECRET });
    await withServer(await fastifyApp(sessions), async (client) => {
      await client.get("/write");
      await client.get("/read");
      const quiet = await client.get("/throw-quiet");
      const loud = await client.get("/throw");
      expect({
        quiet: [quiet.status, quiet.setCookies.length],
        loud: [loud.status, loud.setCookies.length],
      }).toEqual({ quiet: [500, 0], loud: [500, 1] });
    });
  });

  it("hijack on a cached session: the raw head leaves, a later change throws", async () => {
    const sessions = createSessions({ secret: SECRET });
    await withServer(await fastifyApp(sessions), async (client) => {
      await client.get("/write");
      await client.get("/read");
      const h = await client.get("/hijack");
      const read = await client.get("/read");
      expect({ text: h.text, cookies: h.setCookies.length, read: read.text }).toEqual({
        text: "state",
        cookies: 0,
        read: "1",
      });
    });
  });
});

describe("Koa and Hono with quiet sessions", () => {
  it("koa: a read sends no cookie, a write does, a change after the body is set in a later middleware is saved", async () => {
    const sessions = createSessions({ secret: SECRET });
    const app = new Koa();
    app.use(koaSession(sessions));
    app.use(async (ctx, next) => {
      await next();
      if (ctx.path === "/late") untyped(ctx.session).set("late", true);
    });
    app.use((ctx) => {
      if (ctx.path === "/write") untyped(ctx.session).set("n", 1);
      ctx.body = `${String(untyped(ctx.session).get("n"))} ${String(untyped(ctx.session).get("late"))}`;
    });
    await withServer(await listenLoopback(createServer(app.callback())), async (client) => {
      const w = await client.get("/write");
      const r = await client.get("/read");
      const late = await client.get("/late");
      const after = await client.get("/read");
      expect({
        w: w.setCookies.length,
        r: [r.text, r.setCookies.length],
        late: late.setCookies.length,
        after: after.text,
      }).toEqual({ w: 1, r: ["1 undefined", 0], late: 1, after: "1 true" });
    });
  });

  it("hono: a read gives the handler's own response, a write carries the cookie", async () => {
    const sessions = createSessions({ secret: SECRET });
    const app = new Hono<{ Variables: { session: Session } }>();
    app.use(honoSession(sessions) as never);
    app.get("/write", (c) => {
      untyped(c.get("session")).set("n", 1);
      return c.text("w");
    });
    app.get("/read", (c) => c.text(String(untyped(c.get("session")).get("n"))));
    const first = await app.request("/write");
    const cookie = (first.headers.getSetCookie()[0] ?? "").split(";")[0] as string;
    const read = await app.request("/read", { headers: { cookie } });
    const read2 = await app.request("/read", { headers: { cookie } });
    expect({
      first: first.headers.getSetCookie().length,
      read: [await read.text(), read.headers.getSetCookie().length],
      read2: await read2.text(),
    }).toEqual({ first: 1, read: ["1", 0], read2: "1" });
  });
});

describe("idle slides, renewal and secret rotation with a cached token (sync load)", () => {
  it("node:http: a due touch on a cached token sends a cookie and moves the deadline", async () => {
    let now = Date.now();
    const sessions = createSessions({
      secret: SECRET,
      idleTimeout: "1h",
      cookie: { persistent: true },
      now: () => now,
    });
    const handler = withSession(sessions, (req, res) => {
      if (req.url === "/write") untyped(req.session).set("n", 1);
      res.end(String(untyped(req.session).get("n")));
    });
    await withServer(await listenLoopback(createServer(handler)), async (client) => {
      await client.get("/write");
      await client.get("/read");
      now += 50 * MINUTE; // touch due (touchInterval default)
      const touched = await client.get("/read");
      now += 50 * MINUTE; // 100 minutes since the write: alive only if the touch was saved
      const alive = await client.get("/read");
      expect({
        touched: [touched.text, touched.setCookies.length],
        alive: alive.text,
      }).toEqual({ touched: ["1", 1], alive: "1" });
    });
  });

  it("express: renewInterval on a cached token renews (new cookie) and keeps the data", async () => {
    let now = Date.now();
    const sessions = createSessions({ secret: SECRET, renewInterval: "1h", now: () => now });
    const app = readWriteApp(sessions);
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      await client.get("/write");
      const before = client.cookieHeader();
      await client.get("/read");
      now += 2 * HOUR;
      const renewed = await client.get("/read");
      expect({
        text: renewed.text,
        cookies: renewed.setCookies.length,
        changed: client.cookieHeader() !== before,
      }).toEqual({ text: "1", cookies: 1, changed: true });
    });
  });

  it("a cached token under a secret since rotated out is refused, and under a secret now old is re-sealed", async () => {
    const h1 = harness({ secret: SECRET });
    await h1.request((s) => s.set("n", 1));
    const cookie = h1.jar.header() as string;
    // Same manager instance cannot change its secret; a new one shares no cache. What matters:
    // the cached path must flag `stale` exactly as a fresh open does.
    const rotated = harness({ secret: [OTHER_SECRET, SECRET] });
    const first = await rotated.request(() => {}, { cookie, keepJar: true });
    const second = await rotated.request(() => {}, { cookie, keepJar: true }); // from the cache
    expect({
      first: [first.session.get("n"), first.lines.length],
      second: [second.session.get("n"), second.lines.length],
    }).toEqual({ first: [1, 1], second: [1, 1] });
  });
});

describe("the synchronous load's refusals and mixed schemas (Express)", () => {
  it("a cached token past its idle deadline is refused and cleared; a schema async for some data keeps every write", async () => {
    let now = Date.now();
    const invalid: string[] = [];
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (value: unknown) => {
          const result = { value: value as SessionData };
          // Odd counts validate through a promise, even ones synchronously.
          return ((value as { n?: number }).n ?? 0) % 2 === 1 ? Promise.resolve(result) : result;
        },
      },
    };
    const sessions = createSessions({
      secret: SECRET,
      schema,
      idleTimeout: "1h",
      now: () => now,
      onInvalid: (reason) => invalid.push(reason),
    });
    const app = express();
    app.use(expressSession(sessions as Sessions));
    app.get("/inc", (req, res) => {
      const n = ((untyped(req.session).get("n") as number | undefined) ?? 0) + 1;
      untyped(req.session).set("n", n);
      res.send(String(n));
    });
    app.get("/read", (req, res) => {
      res.send(String(untyped(req.session).get("n")));
    });
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      const seen: string[] = [];
      for (let i = 0; i < 4; i++) {
        seen.push((await client.get("/inc")).text);
        seen.push((await client.get("/read")).text);
      }
      now += 2 * HOUR;
      const expired = await client.get("/read");
      expect({
        seen,
        expired: [expired.text, expired.setCookies.some((l) => /max-age=0/i.test(l))],
        invalid,
        jar: client.jar.size,
      }).toEqual({
        seen: ["1", "1", "2", "2", "3", "3", "4", "4"],
        expired: ["undefined", true],
        invalid: ["expired-idle"],
        jar: 0,
      });
    });
  });
});

describe("CSRF tokens with the derived seed", () => {
  it("regenerate and destroy end tokens; renewal keeps them; a cached-token read verifies them", async () => {
    const h = harness({ renewInterval: "1h" });
    let token = "";
    await h.request(async (s) => {
      s.set("n", 1);
      token = await s.csrfToken();
    });
    const read = await h.request(async (s) => {
      expect(await s.verifyCsrfToken(token)).toBe(true);
    });
    expect(read.lines).toEqual([]);
    h.clock.advance(2 * HOUR);
    await h.request(async (s) => {
      expect(s.id).not.toBe(undefined);
      expect(await s.verifyCsrfToken(token)).toBe(true); // the renewal keeps the seed
    });
    await h.request(async (s) => {
      expect(await s.verifyCsrfToken(token)).toBe(true);
      await s.regenerate({ userId: "ada" });
      expect(await s.verifyCsrfToken(token)).toBe(false);
    });
    await h.request(async (s) => {
      expect(await s.verifyCsrfToken(token)).toBe(false);
    });
  });

  it("a token of the derived seed does not outlive destroy, nor verify on another visitor's session", async () => {
    const h = harness();
    let token = "";
    await h.request(async (s) => {
      s.set("n", 1);
      token = await s.csrfToken();
    });
    const other = harness();
    await other.request(async (s) => {
      s.set("n", 2);
      await s.csrfToken();
    });
    await other.request(async (s) => {
      expect(await s.verifyCsrfToken(token)).toBe(false);
    });
    await h.request(async (s) => {
      s.destroy();
      expect(await s.verifyCsrfToken(token)).toBe(false);
    });
    await h.request(async (s) => {
      expect(await s.verifyCsrfToken(token)).toBe(false);
    });
  });

  it("a token from before the change (a random seed in the record) still verifies, also signed", async () => {
    for (const mode of ["encrypted", "signed"] as const) {
      const h = harness({ mode });
      await h.request((s) => s.set("n", 1));
      let token = "";
      await h.request(async (s) => {
        // As an older version stored it: a seed that is no derivation of the id.
        (s as unknown as { meta: { csrf?: string } }).meta = {
          ...(s as unknown as { meta: object }).meta,
          csrf: "AAAAAAAAAAAAAAAAAAAAAA",
        };
        (s as unknown as { metaChanges: Set<string> }).metaChanges.add("csrf");
        token = await s.csrfToken();
      });
      const seen = await h.request(() => {});
      let ok = false;
      await h.request(async (s) => {
        ok = await s.verifyCsrfToken(token);
      });
      expect({ mode, ok, lines: seen.lines.length }).toEqual({ mode, ok: true, lines: 0 });
    }
  });

  it("express: a token asked after a quiet first write is of the id and verifies on the next request", async () => {
    const sessions = createSessions({ secret: SECRET });
    const app = readWriteApp(sessions);
    app.get("/late-token", async (req, res) => {
      res.write("token:");
      res.end(await req.session.csrfToken());
    });
    app.get("/verify", async (req, res) => {
      res.send(String(await req.session.verifyCsrfToken(req.query.t)));
    });
    await withServer(await listenLoopback(createServer(app)), async (client) => {
      await client.get("/write");
      await client.get("/verify?t=x"); // cache the token
      const late = await client.get("/late-token");
      const token = late.text.slice("token:".length);
      const ok = await client.get(`/verify?t=${encodeURIComponent(token)}`);
      expect({ late: late.status, cookies: late.setCookies.length, ok: ok.text }).toEqual({
        late: 200,
        cookies: 0,
        ok: "true",
      });
    });
  });
});

describe("the token cache's gone ids", () => {
  const counted = countedStore;

  it("a store outage on get flags nothing: the session comes back with the store", async () => {
    let clock = () => 0;
    const inner = memoryStore({ now: () => clock() });
    let down = false;
    const store = new Proxy(inner, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (name === "get" && typeof value === "function") {
          return (...args: unknown[]) => {
            if (down) throw new Error("ECONNREFUSED");
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === "function" ? (value as () => unknown).bind(target) : value;
      },
    }) as SessionStore;
    const h = harness({ store });
    clock = h.clock.now;
    await h.request((s) => s.set("n", 1));
    await h.request(() => {}); // the token is cached
    down = true;
    await expect(h.request(() => {}, { keepJar: true })).rejects.toMatchObject({
      code: "ERR_STORE_UNAVAILABLE",
    });
    down = false;
    const back = await h.request(() => {});
    expect(back.session.get("n")).toBe(1);
  });

  it("two managers sharing a store: a regenerate on one never makes the other refuse the new id", async () => {
    let clock = () => 0;
    const { store } = counted(memoryStore({ now: () => clock() }));
    const m1 = harness({ store });
    const m2 = harness({ store });
    clock = m1.clock.now;
    await m1.request((s) => s.set("n", 1));
    const oldCookie = m1.jar.header() as string;
    await m2.request(() => {}, { cookie: oldCookie, keepJar: true }); // m2 caches the old token
    await m1.request((s) => s.regenerate({ userId: "ada" }));
    const newCookie = m1.jar.header() as string;
    const oldOnM2 = await m2.request(() => {}, { cookie: oldCookie, keepJar: true });
    const newOnM2 = await m2.request(() => {}, { cookie: newCookie, keepJar: true });
    const newOnM2Again = await m2.request(() => {}, { cookie: newCookie, keepJar: true });
    expect({
      old: oldOnM2.session.isNew,
      new: newOnM2.session.isNew,
      again: [newOnM2Again.session.isNew, newOnM2Again.session.userId],
    }).toEqual({ old: true, new: false, again: [false, "ada"] });
  });

  it("the lock option: after a regenerate the old cookie is refused (from the cache), the new one loads", async () => {
    const h = storeHarness({ lock: { ttl: "5s", wait: "2s" } });
    await h.request((s) => s.set("n", 1));
    const oldCookie = h.jar.header() as string;
    await h.request(() => {}, { cookie: oldCookie, keepJar: true }); // cached
    await h.request((s) => s.regenerate({ userId: "ada" }));
    const stale = await h.request(() => {}, { cookie: oldCookie, keepJar: true });
    const stale2 = await h.request(() => {}, { cookie: oldCookie, keepJar: true });
    const fresh = await h.request(() => {});
    expect({
      stale: stale.session.isNew,
      stale2: stale2.session.isNew,
      fresh: [fresh.session.isNew, fresh.session.userId, fresh.session.get("n")],
    }).toEqual({ stale: true, stale2: true, fresh: [false, "ada", 1] });
  });

  it("the lock option, concurrent: a load waiting on a regenerating request refuses the old id; the new id loads, released", async () => {
    const h = storeHarness({ lock: { ttl: "5s", wait: "2s" } });
    await h.request((s) => s.set("n", 1));
    const oldCookie = h.jar.header() as string;
    const req = (cookie: string) => new Request("https://example.com/", { headers: { cookie } });
    const a = await h.sessions.load(req(oldCookie)); // holds the lock
    const waiting = h.sessions.load(req(oldCookie)); // waits for it
    await a.regenerate({ userId: "ada" });
    const headers = new Headers();
    await h.sessions.commit(a, headers);
    const b = await waiting;
    await h.sessions.commit(b, new Headers());
    const newCookie = (headers.getSetCookie()[0] ?? "").split(";")[0] as string;
    const c = await h.sessions.load(req(newCookie));
    await h.sessions.commit(c, new Headers());
    const d = await h.sessions.load(req(newCookie)); // would time out if c kept the lock
    await h.sessions.commit(d, new Headers());
    expect({
      b: b.isNew,
      c: [c.isNew, c.userId, c.get("n")],
      d: d.isNew,
    }).toEqual({ b: true, c: [false, "ada", 1], d: false });
  });

  it("destroyByUser except the current session keeps the current one loading", async () => {
    const h = storeHarness();
    await h.request((s) => s.regenerate({ userId: "ada" }));
    const other = harness({ store: (h.sessions as Sessions).store as SessionStore });
    await other.request((s) => s.regenerate({ userId: "ada" }));
    let current: Session | undefined;
    await h.request(async (s) => {
      current = s as Session;
      await h.sessions.destroyByUser("ada", { except: s as never });
    });
    expect(current).toBeDefined();
    const mine = await h.request(() => {});
    const theirs = await other.request(() => {});
    const theirsAgain = await other.request(() => {});
    expect({
      mine: mine.session.isNew,
      theirs: theirs.session.isNew,
      theirsAgain: theirsAgain.session.isNew,
    }).toEqual({ mine: false, theirs: true, theirsAgain: true });
  });
});

describe("the node:http request event (sync path) with hostile input", () => {
  it("a schema whose validate throws synchronously for a cached token answers 500 (Express, node) and the server lives", async () => {
    let fail = false;
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (value: unknown) => {
          if (fail) throw new Error("validator crashed");
          return { value: value as SessionData };
        },
      },
    };
    const sessions = createSessions({ secret: SECRET, schema });
    const app = readWriteApp(sessions as Sessions);
    const errors: unknown[] = [];
    const log = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      await withServer(await listenLoopback(createServer(app)), async (client) => {
        await client.get("/write");
        await client.get("/read");
        fail = true;
        const r = await client.get("/read");
        fail = false;
        const ok = await client.get("/read");
        expect({ r: r.status, ok: ok.text }).toEqual({ r: 500, ok: "1" });
      });
    } finally {
      console.error = log;
    }
  });

  it("node:http: a nested withSession of the same manager on a cached token runs once and commits once", async () => {
    const sessions = createSessions({ secret: SECRET });
    let runs = 0;
    const inner = withSession(sessions, (req, res) => {
      runs++;
      if (req.url === "/write")
        untyped(req.session).set("n", ((untyped(req.session).get("n") as number) ?? 0) + 1);
      res.end(String(untyped(req.session).get("n")));
    });
    const outer = withSession(sessions, (req, res) => inner(req, res));
    await withServer(
      await listenLoopback(
        createServer((req: IncomingMessage, res: ServerResponse) => void outer(req, res)),
      ),
      async (client) => {
        await client.get("/write");
        await client.get("/read");
        runs = 0;
        const w = await client.get("/write");
        const r = await client.get("/read");
        expect({
          w: [w.text, w.setCookies.length],
          r: [r.text, r.setCookies.length],
          runs,
        }).toEqual({ w: ["2", 1], r: ["2", 0], runs: 2 });
      },
    );
  });
});
