import { createReadStream, writeFileSync } from "node:fs";
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from "node:http";
import { connect, createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createAdaptorServer } from "@hono/node-server";
import { Application, Router } from "@oakserver/oak";
import express from "express";
import Fastify from "fastify";
import { H3, redirect } from "h3";
import { toNodeHandler } from "h3/node";
import { Hono } from "hono";
import { compress } from "hono/compress";
import Koa from "koa";
import { describe, expect, it } from "vitest";
import { session as expressSession } from "../../src/adapters/express.js";
import {
  guard as fastifyGuard,
  session as fastifySession,
  requireSession,
} from "../../src/adapters/fastify.js";
import { createHandler, withSession as fetchSession } from "../../src/adapters/fetch.js";
import {
  getSession,
  sessionMiddleware as h3Session,
  updateSession,
  useSession,
} from "../../src/adapters/h3.js";
import { sessionMiddleware as honoSession, type SessionEnv } from "../../src/adapters/hono.js";
import { session as koaSession } from "../../src/adapters/koa.js";
import { requireSameOrigin, withSession } from "../../src/adapters/node.js";
import { OakSession, sessionMiddleware as oakSession } from "../../src/adapters/oak.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { SECRET } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

const file = join(tmpdir(), `sessionkit-edge-${process.pid}.txt`);
writeFileSync(file, "file body ".repeat(5000));

const s = (x: { session: Session }) => x.session as Session;

/** Raw HTTP/1.1 request, for HEAD and odd headers fetch will not send. */
function raw(url: string, method: string, path: string, headers: Record<string, string> = {}) {
  return new Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }>((resolve, reject) => {
    const req = httpRequest(new URL(path, url), { method, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("latin1");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("express edge cases", () => {
  function app() {
    const sessions = createSessions({ secret: SECRET });
    const a = express();
    a.use(expressSession(sessions));
    a.all("/send", (req, res) => {
      s(req).set("n", 1);
      res.send("hello");
    });
    a.get("/etag", (req, res) => {
      s(req).set("n", 2);
      res.send("same body");
    });
    a.get("/file", (req, res, next) => {
      s(req).set("f", 1);
      res.sendFile(file, (err) => err && next(err));
    });
    a.get("/pipeline", async (req, res) => {
      s(req).set("p", 1);
      await pipeline(createReadStream(file), res);
    });
    return listenLoopback(createServer(a));
  }

  it("HEAD via res.send commits the cookie with no body", async () => {
    const running = await app();
    try {
      const r = await raw(running.url, "HEAD", "/send");
      expect(r.status).toBe(200);
      expect(r.body).toBe("");
      expect(r.headers["set-cookie"]?.length).toBe(1);
    } finally {
      await running.close();
    }
  });

  it("304 from res.send's fresh check keeps the cookie", async () => {
    const running = await app();
    try {
      const first = await raw(running.url, "GET", "/etag");
      const etag = first.headers.etag as string;
      expect(etag).toBeTruthy();
      const r = await raw(running.url, "GET", "/etag", { "if-none-match": etag });
      expect(r.status).toBe(304);
      expect(r.headers["set-cookie"]?.length).toBe(1);
    } finally {
      await running.close();
    }
  });

  it("sendFile, HEAD sendFile, 304 sendFile and pipeline commit the cookie", async () => {
    const running = await app();
    try {
      const got = await raw(running.url, "GET", "/file");
      expect(got.status).toBe(200);
      expect(got.body.length).toBe(50000);
      expect(got.headers["set-cookie"]?.length).toBe(1);
      const head = await raw(running.url, "HEAD", "/file");
      expect(head.status).toBe(200);
      expect(head.headers["set-cookie"]?.length).toBe(1);
      const cond = await raw(running.url, "GET", "/file", {
        "if-none-match": got.headers.etag as string,
      });
      expect(cond.status).toBe(304);
      expect(cond.headers["set-cookie"]?.length).toBe(1);
      const p = await raw(running.url, "GET", "/pipeline");
      expect(p.status).toBe(200);
      expect(p.body.length).toBe(50000);
      expect(p.headers["set-cookie"]?.length).toBe(1);
    } finally {
      await running.close();
    }
  });

  it("malformed and huge Cookie headers are a fresh session, not an error", async () => {
    const running = await app();
    try {
      for (const cookie of [
        ";;;=;",
        "=",
        "sid",
        "sid=%E0%A4%A",
        `sid=${"a".repeat(15000)}`,
        "sid=a; sid=b; sid.0=x",
      ]) {
        const r = await raw(running.url, "GET", "/send", { cookie });
        expect(r.status, cookie.slice(0, 30)).toBe(200);
        expect(r.headers["set-cookie"]?.length).toBeGreaterThanOrEqual(1);
      }
    } finally {
      await running.close();
    }
  });
});

/** A cookie-session manager whose touch falls due after a minute, on a clock `later` moves 5 minutes. */
function touchySessions() {
  let now = 1_000_000;
  const sessions = createSessions({
    secret: SECRET,
    idleTimeout: "30m",
    touchInterval: "1m",
    now: () => now,
  });
  const later = () => {
    now += 5 * 60_000;
  };
  return { sessions, later };
}

/**
 * Signs in, lets a touch fall due, signs out, all under `base`, where the session middleware is
 * mounted a second time: the outer mount's touch must not re-seal the session signed out.
 */
async function expectSignOutHolds(url: string, base: string, later: () => void): Promise<void> {
  const client = new Client(url);
  await client.post(`${base}/login`);
  later();
  expect((await client.post(`${base}/logout`)).status).toBe(200);
  expect((await client.get(`${base}/me`)).text).toBe("none");
}

describe("second mount of the session middleware on one request", () => {
  it("express: a destroy in the inner mount is not undone by the outer one's touch", async () => {
    const { sessions, later } = touchySessions();
    const a = express();
    a.use(expressSession(sessions));
    const sub = express.Router();
    sub.use(expressSession(sessions));
    sub.post("/logout", (req, res) => {
      s(req).destroy();
      res.send("bye");
    });
    sub.post("/login", (req, res) => {
      s(req).set("user", "ada");
      res.send("ok");
    });
    sub.get("/me", (req, res) => {
      res.send(String(s(req).get("user") ?? "none"));
    });
    a.use("/sub", sub);
    const running = await listenLoopback(createServer(a));
    try {
      await expectSignOutHolds(running.url, "/sub", later);
    } finally {
      await running.close();
    }
  });

  it("koa: a destroy in the inner mount is not undone by the outer one's touch", async () => {
    const { sessions, later } = touchySessions();
    const a = new Koa();
    a.use(koaSession(sessions));
    a.use(koaSession(sessions));
    a.use((ctx) => {
      if (ctx.path === "/login") s(ctx).set("user", "ada");
      if (ctx.path === "/logout") s(ctx).destroy();
      ctx.body = String(s(ctx).get("user") ?? "none");
    });
    const running = await listenLoopback(createServer(a.callback()));
    try {
      await expectSignOutHolds(running.url, "", later);
    } finally {
      await running.close();
    }
  });

  it("fetch: a withSession or createHandler inside a withSession given the same Request reuses its session", async () => {
    const { sessions, later } = touchySessions();
    let loads = 0;
    const load = sessions.load;
    // Counted on the manager itself: a copy would not be the manager that loaded the session.
    const counted = Object.assign(sessions, {
      load: (input: Parameters<typeof load>[0]) => {
        loads++;
        return load(input);
      },
    });
    const inner = fetchSession(counted, (request, { session }) => {
      const path = new URL(request.url).pathname;
      if (path === "/login") session.set("user", "ada");
      if (path === "/logout") session.destroy();
      return new Response(String(session.get("user") ?? "none"));
    });
    const page = createHandler(counted)
      .addPropsResolver(({ handle }) => ({ user: handle.get("user") }))
      .render(({ user }) => new Response(String(user ?? "none")));
    const outer = fetchSession(counted, (request) =>
      new URL(request.url).pathname === "/page" ? page(request) : inner(request),
    );
    const server = createAdaptorServer({ fetch: outer, hostname: "127.0.0.1" });
    const running = await listenLoopback(server as import("node:http").Server);
    try {
      await expectSignOutHolds(running.url, "", later);
      const client = new Client(running.url);
      await client.post("/login");
      expect((await client.get("/page")).text).toBe("ada");
      // One load per request: login, logout, me; then login and page.
      expect(loads).toBe(5);
    } finally {
      await running.close();
    }
  });
});

describe("node edge cases", () => {
  it("HEAD and pipeline() on node:http commit the cookie", async () => {
    const sessions = createSessions({ secret: SECRET });
    const handler = withSession(sessions, async (req, res) => {
      req.session.set("x", 1);
      if (req.method === "HEAD") return res.end();
      await pipeline(createReadStream(file), res);
    });
    const running = await listenLoopback(createServer(handler));
    try {
      const head = await raw(running.url, "HEAD", "/");
      expect(head.headers["set-cookie"]?.length).toBe(1);
      const got = await raw(running.url, "GET", "/");
      expect(got.body.length).toBe(50000);
      expect(got.headers["set-cookie"]?.length).toBe(1);
    } finally {
      await running.close();
    }
  });
});

describe("HTTP/2 (node:http2's compatibility API)", () => {
  /** One h2c request; the status is NaN when the server reset the stream without answering. */
  function h2(url: string, headers: Record<string, string>) {
    return new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const client = connect(url);
        client.on("error", reject);
        const req = client.request(headers);
        let head: IncomingHttpHeaders = {};
        let body = "";
        req.on("response", (h) => {
          head = h;
        });
        req.setEncoding("utf8");
        req.on("data", (c: string) => {
          body += c;
        });
        req.on("close", () => {
          client.close();
          resolve({ status: Number(head[":status"]), headers: head, body });
        });
        req.end();
      },
    );
  }

  async function serveH2(handler: (req: never, res: never) => unknown) {
    const server = createHttp2Server(handler as never);
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { url, close: () => new Promise((done) => server.close(done)) };
  }

  it("node withSession answers with the cookie, and guards see the :authority as the host", async () => {
    const sessions = createSessions({ secret: SECRET });
    const handler = withSession(
      sessions,
      (req, res) => {
        req.session.set("n", 1);
        res.end(`saw ${req.url}`);
      },
      { guards: [requireSameOrigin()] },
    );
    const running = await serveH2(handler);
    try {
      const got = await h2(running.url, { ":path": "/x", ":authority": "app.example.com" });
      expect(got.status).toBe(200);
      expect(got.body).toBe("saw /x");
      expect(got.headers["set-cookie"]?.[0]).toMatch(/^sid=.*; Secure/);
      const post = await h2(running.url, {
        ":path": "/x",
        ":method": "POST",
        ":authority": "app.example.com",
        origin: "http://app.example.com",
      });
      expect(post.status).toBe(200);
    } finally {
      await running.close();
    }
  });

  it("koa answers with the cookie", async () => {
    const app = new Koa();
    app.use(koaSession(createSessions({ secret: SECRET })));
    app.use((ctx) => {
      s(ctx).set("n", 1);
      ctx.body = "ok";
    });
    const running = await serveH2(app.callback());
    try {
      const got = await h2(running.url, { ":path": "/", ":authority": "app.example.com" });
      expect(got.status).toBe(200);
      expect(got.body).toBe("ok");
      expect(got.headers["set-cookie"]?.length).toBe(1);
    } finally {
      await running.close();
    }
  });
});

const honoListen = (app: Hono<any>) =>
  listenLoopback(createAdaptorServer({ fetch: app.fetch, hostname: "127.0.0.1" }) as Server);

describe("hono", () => {
  it("c.redirect, c.body(null, 204), HEAD and hono/compress (gzip) carry the cookie", async () => {
    const app = new Hono<SessionEnv>();
    app.use(compress());
    app.use(honoSession(createSessions({ secret: SECRET })));
    app.get("/r", (c) => {
      c.get("session").set("a", 1);
      return c.redirect("/x");
    });
    app.get("/n", (c) => {
      c.get("session").set("a", 1);
      return c.body(null, 204);
    });
    app.get("/big", (c) => {
      c.get("session").set("a", 1);
      return c.text("x".repeat(5000));
    });
    const r = await honoListen(app);
    try {
      for (const [m, p, st] of [
        ["GET", "/r", 302],
        ["GET", "/n", 204],
        ["HEAD", "/big", 200],
      ] as const) {
        const x = await raw(r.url, m, p);
        expect(x.status, p).toBe(st);
        expect(x.headers["set-cookie"]?.length, p).toBe(1);
      }
      const z = await raw(r.url, "GET", "/big", { "accept-encoding": "gzip" });
      expect(z.headers["content-encoding"]).toBe("gzip");
      expect(z.headers["set-cookie"]?.length).toBe(1);
    } finally {
      await r.close();
    }
  });
  it("second mount: app.route of a sub-app with its own middleware; a sign-out there holds", async () => {
    const { sessions, later } = touchySessions();
    const sub = new Hono<SessionEnv>();
    sub.use(honoSession(sessions));
    sub.post("/login", (c) => {
      c.get("session").set("user", "ada");
      return c.text("ok");
    });
    sub.post("/logout", (c) => {
      c.get("session").destroy();
      return c.text("bye");
    });
    sub.get("/me", (c) => c.text(String(c.get("session").get("user") ?? "none")));
    const app = new Hono<SessionEnv>();
    app.use(honoSession(sessions));
    app.route("/sub", sub);
    const r = await honoListen(app);
    try {
      await expectSignOutHolds(r.url, "/sub", later);
    } finally {
      await r.close();
    }
  });
});

describe("h3", () => {
  it("redirect(), getSession before useSession, useSession twice; second mount of sessionMiddleware: a sign-out holds", async () => {
    const { sessions, later } = touchySessions();
    const app = new H3();
    const config = { password: SECRET, cookie: { secure: false } };
    app.get("/r", async (event) => {
      await updateSession(event, config, { a: 1 });
      return redirect("/x");
    });
    app.get("/twice", async (event) => {
      const g = await getSession(event, config);
      const a = await useSession(event, config);
      const b = await useSession(event, config);
      await a.update({ n: ((g.data as any).n ?? 0) + 1 });
      return String((b.data as any).n);
    });
    const sub = new H3();
    sub.use(h3Session(sessions));
    sub.post("/login", (e) => {
      e.context.session!.set("user", "ada");
      return "ok";
    });
    sub.post("/logout", (e) => {
      e.context.session!.destroy();
      return "bye";
    });
    sub.get("/me", (e) => String(e.context.session!.get("user") ?? "none"));
    app.use(h3Session(sessions));
    app.mount("/sub", sub);
    const r = await listenLoopback(createServer(toNodeHandler(app)));
    try {
      const x = await raw(r.url, "GET", "/r");
      expect(x.status).toBe(302);
      expect(x.headers["set-cookie"]?.length).toBe(1);
      const c = new Client(r.url);
      expect((await c.get("/twice")).text).toBe("1");
      expect((await c.get("/twice")).text).toBe("2");
      await expectSignOutHolds(r.url, "/sub", later);
    } finally {
      await r.close();
    }
  });
});

describe("oak", () => {
  it("ctx.response.redirect, a middleware before OakSession that throws; second mount on a router: a sign-out holds", async () => {
    const { sessions, later } = touchySessions();
    const app = new Application({ logErrors: false });
    app.use(async (ctx, next) => {
      if (ctx.request.url.pathname === "/early") throw new Error("early");
      await next();
    });
    new OakSession(app, sessions);
    const router = new Router();
    router.get("/r", (ctx) => {
      (ctx.state.session.raw as Session).set("a", 1);
      ctx.response.redirect("/x");
    });
    router.post("/login", oakSession(sessions) as any, (ctx) => {
      (ctx.state.session.raw as Session).set("user", "ada");
      ctx.response.body = "ok";
    });
    router.post("/logout", oakSession(sessions) as any, (ctx) => {
      (ctx.state.session.raw as Session).destroy();
      ctx.response.body = "bye";
    });
    router.get("/me", (ctx) => {
      ctx.response.body = String((ctx.state.session.raw as Session).get("user") ?? "none");
    });
    app.use(router.routes());
    const server = createAdaptorServer({
      fetch: async (request: Request) =>
        (await app.handle(request as any)) ?? new Response(null, { status: 500 }),
      hostname: "127.0.0.1",
    });
    const r = await listenLoopback(server as Server);
    try {
      const x = await raw(r.url, "GET", "/r");
      expect(x.status).toBe(302);
      expect(x.headers["set-cookie"]?.length).toBe(1);
      expect((await raw(r.url, "GET", "/early")).status).toBe(500);
      await expectSignOutHolds(r.url, "", later);
    } finally {
      await r.close();
    }
  });
});

describe("fastify", () => {
  it("reply.redirect, code(204), HEAD and a throwing route hook carry the cookie; a guard stops later preHandlers", async () => {
    const app = Fastify();
    await app.register(fastifySession(createSessions({ secret: SECRET })));
    const order: string[] = [];
    app.addHook("preHandler", async (request) => {
      order.push(`app:${s(request as never).get("user") ?? "-"}`);
    });
    app.get("/r", async (request, reply) => {
      s(request as never).set("a", 1);
      return reply.redirect("/x");
    });
    app.get("/n", async (request, reply) => {
      s(request as never).set("a", 1);
      return reply.code(204).send();
    });
    app.get("/h", async (request) => {
      s(request as never).set("a", 1);
      return "body";
    });
    app.get(
      "/throwhook",
      {
        onRequest: async (request) => {
          s(request as never).set("a", 1);
          throw new Error("hook");
        },
      },
      async () => "x",
    );
    app.get(
      "/g",
      {
        preHandler: [
          fastifyGuard(requireSession((x) => (x as Session).has("user"), { redirect: "/login" })),
          async () => {
            order.push("route-pre");
          },
        ],
      },
      async () => "secret",
    );
    await app.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://127.0.0.1:${(app.server.address() as any).port}`;
    try {
      for (const [m, p, st] of [
        ["GET", "/r", 302],
        ["GET", "/n", 204],
        ["HEAD", "/h", 200],
        ["GET", "/throwhook", 500],
      ] as const) {
        const x = await raw(url, m, p);
        expect(x.status, p).toBe(st);
        expect(x.headers["set-cookie"]?.length, p).toBe(1);
      }
      const g = await raw(url, "GET", "/g");
      expect(g.status).toBe(303);
      expect(order).not.toContain("route-pre");
    } finally {
      await app.close();
    }
  });
});

describe("koa edge cases", () => {
  it("ctx.body = stream, ctx.redirect and HEAD carry the cookie", async () => {
    const app = new Koa();
    app.use(koaSession(createSessions({ secret: SECRET })));
    app.use((ctx) => {
      s(ctx).set("n", 1);
      if (ctx.path === "/redirect") ctx.redirect("/x");
      else ctx.body = createReadStream(file);
    });
    const running = await listenLoopback(createServer(app.callback()));
    try {
      const got = await raw(running.url, "GET", "/");
      expect(got.body.length).toBe(50000);
      expect(got.headers["set-cookie"]?.length).toBe(1);
      const head = await raw(running.url, "HEAD", "/");
      expect(head.body).toBe("");
      expect(head.headers["set-cookie"]?.length).toBe(1);
      const moved = await raw(running.url, "GET", "/redirect");
      expect(moved.status).toBe(302);
      expect(moved.headers["set-cookie"]?.length).toBe(1);
    } finally {
      await running.close();
    }
  });
});

describe("a cookie name with regular-expression characters", () => {
  it("reads back its own cookie and chunks, not a look-alike", async () => {
    const sessions = createSessions({ secret: SECRET, cookie: { name: "s.id+*|^$" } });
    const handler = withSession(sessions, (req, res) => {
      const n = ((req.session.get("n") as number) ?? 0) + 1;
      req.session.set("n", n);
      if (req.url === "/large") req.session.set("blob", "y".repeat(8000));
      res.end(String(n));
    });
    const running = await listenLoopback(createServer(handler));
    try {
      const client = new Client(running.url);
      expect((await client.get("/")).text).toBe("1");
      client.jar.set("sXid+*|^$", "junk");
      client.jar.set("s.id+*|^$.junk", "junk");
      expect((await client.get("/")).text).toBe("2");
      expect((await client.get("/large")).text).toBe("3");
      expect(
        [...client.jar.keys()].filter((k) => /^s\.id\+\*\|\^\$\.\d$/.test(k)).length,
      ).toBeGreaterThan(1);
      expect((await client.get("/")).text).toBe("4");
    } finally {
      await running.close();
    }
  });
});
