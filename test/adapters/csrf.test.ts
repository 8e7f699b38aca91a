/**
 * `requireCsrfToken` on every adapter (but next, tested with its own app), over real HTTP on
 * loopback. Each app has two routes:
 *
 *   GET  /token    -> body: await session.csrfToken()
 *   POST /transfer -> behind requireCsrfToken() in the framework's guard idiom; body "done <amount>"
 *                     where the handler reads the form after the guard (the fetch-based adapters),
 *                     "done" where the guard sees no body (the node-based ones)
 *
 * On the fetch-based adapters the guard also reads the `_csrf` form field; on the node-based ones
 * only the header, and Express shows the handler-side check after express.urlencoded.
 */
import type { Server } from "node:http";
import { createServer } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { Application, Router } from "@oakserver/oak";
import express from "express";
import Fastify from "fastify";
import { H3 } from "h3";
import { toNodeHandler } from "h3/node";
import { Hono } from "hono";
import Koa from "koa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as expressAdapter from "../../src/adapters/express.js";
import * as fastifyAdapter from "../../src/adapters/fastify.js";
import * as fetchAdapter from "../../src/adapters/fetch.js";
import * as h3Adapter from "../../src/adapters/h3.js";
import * as honoAdapter from "../../src/adapters/hono.js";
import * as koaAdapter from "../../src/adapters/koa.js";
import * as nodeAdapter from "../../src/adapters/node.js";
import * as oakAdapter from "../../src/adapters/oak.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { type RunningApp, SECRET } from "../conformance/adapter.js";
import { Client, type Reply } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";
import { listenOak } from "../helpers/oak.js";
import { listen as listenExpress } from "./express-app.js";

type Serve = (sessions: Sessions<any>) => Promise<RunningApp>;

const text = (res: import("node:http").ServerResponse, body: string) => {
  res.setHeader("content-type", "text/plain");
  res.end(body);
};

/** The form's `amount`, read by the handler after the guard read its clone. */
const amountOf = (form: { get(name: string): unknown }) => `done ${form.get("amount")}`;

function serveFetchHandler(fetch: (request: Request) => Promise<Response>): Promise<RunningApp> {
  return listenLoopback(createAdaptorServer({ fetch, hostname: "127.0.0.1" }) as Server);
}

function oakApp(sessions: Sessions<any>, readsBody: boolean): Application {
  const app = new Application({ logErrors: false });
  new oakAdapter.OakSession(app, sessions);
  const router = new Router();
  router
    .get("/token", async (ctx) => {
      ctx.response.body = await ctx.state.session.csrfToken();
    })
    .post("/transfer", oakAdapter.sessionGuard(oakAdapter.requireCsrfToken()), async (ctx) => {
      ctx.response.body = readsBody ? amountOf(await ctx.request.body.formData()) : "done";
    });
  app.use(router.routes());
  return app;
}

/** Adapters whose guard is handed the request body. */
const FETCH_BASED: Array<[name: string, serve: Serve]> = [
  [
    "fetch",
    (sessions) => {
      const csrf = fetchAdapter.requireCsrfToken();
      return serveFetchHandler(
        fetchAdapter.withSession(sessions, async (request, { session }) => {
          if (request.method === "GET") return new Response(await session.csrfToken());
          const denied = await csrf(session, request);
          if (denied) return denied;
          return new Response(amountOf(await request.formData()));
        }),
      );
    },
  ],
  [
    "hono",
    (sessions) => {
      const app = new Hono<honoAdapter.SessionEnv>();
      app.use(honoAdapter.sessionMiddleware(sessions));
      app.get("/token", async (c) => c.text(await c.get("session").csrfToken()));
      app.post("/transfer", honoAdapter.sessionGuard(honoAdapter.requireCsrfToken()), async (c) => {
        const body = await c.req.parseBody();
        return c.text(`done ${body.amount}`);
      });
      return serveFetchHandler(async (request) => app.fetch(request));
    },
  ],
  [
    "h3",
    (sessions) => {
      const app = new H3({ silent: true }).use(h3Adapter.sessionMiddleware(sessions));
      const sessionOf = (event: { context: Record<string, unknown> }) =>
        event.context.session as Session;
      app.get("/token", (event) => sessionOf(event).csrfToken());
      app.post("/transfer", async (event) => amountOf(await event.req.formData()), {
        middleware: [h3Adapter.sessionGuard(h3Adapter.requireCsrfToken())],
      });
      return listenLoopback(createServer(toNodeHandler(app)));
    },
  ],
  [
    "oak (app.handle on a fetch server)",
    (sessions) => {
      const app = oakApp(sessions, true);
      return serveFetchHandler(
        async (request) =>
          ((await app.handle(request as unknown as Parameters<typeof app.handle>[0])) as
            | Response
            | undefined) ?? new Response(null, { status: 500 }),
      );
    },
  ],
];

/** Adapters whose guard sees the headers only. */
const NODE_BASED: Array<[name: string, serve: Serve]> = [
  [
    "node:http",
    (sessions) =>
      listenLoopback(
        createServer(
          nodeAdapter.withSession(
            sessions,
            async (req, res) => {
              if (req.method === "GET") return text(res, await req.session.csrfToken());
              return text(res, "done");
            },
            { guards: [nodeAdapter.requireCsrfToken()] },
          ),
        ),
      ),
  ],
  [
    "express",
    (sessions) => {
      const app = express();
      app.use(expressAdapter.session(sessions));
      app.get("/token", async (req, res) => {
        res.send(await (req.session as Session).csrfToken());
      });
      app.post(
        "/transfer",
        expressAdapter.guard(expressAdapter.requireCsrfToken()),
        (_req, res) => {
          res.send("done");
        },
      );
      return listenExpress(app);
    },
  ],
  [
    "koa",
    (sessions) => {
      const app = new Koa();
      app.use(koaAdapter.session(sessions));
      app.use(async (ctx, next) => {
        if (ctx.method !== "GET") return next();
        ctx.body = await (ctx.session as Session).csrfToken();
      });
      app.use(koaAdapter.guard(koaAdapter.requireCsrfToken()));
      app.use((ctx) => {
        ctx.body = "done";
      });
      return listenLoopback(createServer(app.callback()));
    },
  ],
  [
    "fastify",
    async (sessions) => {
      const app = Fastify();
      await app.register(fastifyAdapter.session(sessions));
      app.get("/token", async (request) => (request.session as Session).csrfToken());
      // Fastify parses urlencoded bodies only with a plugin; the guard must not need one.
      app.addContentTypeParser(
        "application/x-www-form-urlencoded",
        { parseAs: "string" },
        (_req, body, done) => done(null, body),
      );
      app.post(
        "/transfer",
        { preHandler: fastifyAdapter.guard(fastifyAdapter.requireCsrfToken()) },
        async () => "done",
      );
      const url = await app.listen({ port: 0, host: "127.0.0.1" });
      return { url, close: () => app.close() };
    },
  ],
  ["oak (app.listen, Oak's own Node server)", (sessions) => listenOak(oakApp(sessions, false))],
];

const FORM = { "content-type": "application/x-www-form-urlencoded" };

function expectRefused(reply: Reply): void {
  expect(reply.status).toBe(403);
  expect(reply.headers.get("cache-control")).toBe("no-store");
  expect(reply.headers.get("content-type")).toMatch(/^text\/plain/);
  expect(reply.text).toBe("Forbidden: missing or invalid CSRF token");
}

/** What every adapter must do with the header, on cookie sessions and on store sessions. */
function headerCases(serve: Serve): void {
  for (const [mode, make] of [
    ["cookie sessions", () => createSessions({ secret: SECRET })],
    ["store sessions", () => createSessions({ secret: SECRET, store: memoryStore() })],
  ] as const) {
    describe(mode, () => {
      let app: RunningApp;
      beforeAll(async () => {
        app = await serve(make());
      });
      afterAll(() => app?.close());

      it("a new visitor gets a token and a cookie; its POST with the token in the header passes", async () => {
        const client = new Client(app.url);
        const page = await client.get("/token");
        expect(page.setCookies).toHaveLength(1);
        const token = page.text;
        expect(token).toMatch(/^c1\./);
        const post = await client.post("/transfer", {
          headers: { "x-csrf-token": token, ...FORM },
          body: "amount=10",
        });
        expect(post.status).toBe(200);
        expect(post.text).toMatch(/^done/);
      });

      it("refuses a POST without a token, or with another visitor's: 403, no-store, plain text", async () => {
        const client = new Client(app.url);
        await client.get("/token");
        expectRefused(await client.post("/transfer", { headers: FORM, body: "amount=10" }));
        const other = (await new Client(app.url).get("/token")).text;
        expectRefused(
          await client.post("/transfer", {
            headers: { "x-csrf-token": other, ...FORM },
            body: "amount=10",
          }),
        );
      });
    });
  }
}

describe.each(FETCH_BASED)("requireCsrfToken on %s (the guard reads the body)", (_name, serve) => {
  headerCases(serve);

  describe("form fields", () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await serve(createSessions({ secret: SECRET }));
    });
    afterAll(() => app?.close());

    it("passes an urlencoded form with the `_csrf` field, and the handler still reads the body", async () => {
      const client = new Client(app.url);
      const token = (await client.get("/token")).text;
      const body = new URLSearchParams({ amount: "10", _csrf: token }).toString();
      const post = await client.post("/transfer", { headers: FORM, body });
      expect(post.status).toBe(200);
      expect(post.text).toBe("done 10");
      const forged = new URLSearchParams({ amount: "10", _csrf: `${token.slice(0, -2)}AA` });
      expectRefused(await client.post("/transfer", { headers: FORM, body: forged.toString() }));
    });

    it("passes a multipart form with the `_csrf` field, and the handler still reads the body", async () => {
      const client = new Client(app.url);
      const token = (await client.get("/token")).text;
      const form = new FormData();
      form.set("amount", "25");
      form.set("_csrf", token);
      const post = await client.post("/transfer", { body: form });
      expect(post.status).toBe(200);
      expect(post.text).toBe("done 25");
      const without = new FormData();
      without.set("amount", "25");
      expectRefused(await client.post("/transfer", { body: without }));
    });
  });
});

describe.each(NODE_BASED)(
  "requireCsrfToken on %s (the guard sees the body only as a parser before it read it)",
  (name, serve) => {
    headerCases(serve);

    // Fastify parses the body (here with a raw-string parser) before a preHandler guard runs; the
    // other apps mount no parser before their guard, so the stream is unread and stays the handler's.
    const parsedFirst = name === "fastify";
    it(`a form field alone ${parsedFirst ? "passes" : "does not pass"} the guard`, async () => {
      const app = await serve(createSessions({ secret: SECRET }));
      try {
        const client = new Client(app.url);
        const token = (await client.get("/token")).text;
        const body = new URLSearchParams({ amount: "10", _csrf: token }).toString();
        const reply = await client.post("/transfer", { headers: FORM, body });
        if (parsedFirst) expect([reply.status, reply.text]).toEqual([200, "done"]);
        else expectRefused(reply);
      } finally {
        await app.close();
      }
    });
  },
);

/** Apps whose body parser runs before the guard: the fields it parsed reach the guard's Request. */
const PARSED_FIRST: Array<[name: string, serve: Serve]> = [
  [
    "express, express.urlencoded and express.json before the guard",
    (sessions) => {
      const app = express();
      app.use(express.urlencoded({ extended: true }), express.json());
      app.use(expressAdapter.session(sessions, { guards: [expressAdapter.requireCsrfToken()] }));
      app.get("/token", async (req, res) => {
        res.send(await (req.session as Session).csrfToken());
      });
      app.post("/transfer", (req, res) => {
        res.send(`done ${req.body.amount}`);
      });
      return listenExpress(app);
    },
  ],
  [
    "koa, a body parser before the guard (ctx.request.body)",
    (sessions) => {
      const app = new Koa();
      app.use(async (ctx, next) => {
        // What koa-bodyparser and koa-body do: the parsed fields on ctx.request.body.
        let text = "";
        for await (const chunk of ctx.req) text += chunk;
        const type = ctx.get("content-type");
        (ctx.request as { body?: unknown }).body = type.includes("json")
          ? JSON.parse(text || "{}")
          : Object.fromEntries(new URLSearchParams(text));
        await next();
      });
      app.use(koaAdapter.session(sessions, { guards: [koaAdapter.requireCsrfToken()] }));
      app.use(async (ctx) => {
        ctx.body =
          ctx.method === "GET"
            ? await (ctx.session as Session).csrfToken()
            : `done ${(ctx.request as { body?: { amount?: string } }).body?.amount}`;
      });
      return listenLoopback(createServer(app.callback()));
    },
  ],
  [
    "fastify, @fastify/formbody and a route guard",
    async (sessions) => {
      const app = Fastify();
      await app.register((await import("@fastify/formbody")).default);
      await app.register(fastifyAdapter.session(sessions));
      app.get("/token", async (request) => (request.session as Session).csrfToken());
      app.post(
        "/transfer",
        { preHandler: fastifyAdapter.guard(fastifyAdapter.requireCsrfToken()) },
        async (request) => `done ${(request.body as { amount?: string }).amount}`,
      );
      const url = await app.listen({ port: 0, host: "127.0.0.1" });
      return { url, close: () => app.close() };
    },
  ],
];

describe.each(PARSED_FIRST)("requireCsrfToken on %s", (_name, serve) => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await serve(createSessions({ secret: SECRET }));
  });
  afterAll(() => app?.close());

  it("passes a form with the visitor's `_csrf` field; the handler still has the parsed body", async () => {
    const client = new Client(app.url);
    const token = (await client.get("/token")).text;
    const body = new URLSearchParams({ amount: "10", _csrf: token }).toString();
    const reply = await client.post("/transfer", { headers: FORM, body });
    expect([reply.status, reply.text]).toEqual([200, "done 10"]);
  });

  it("refuses a form without the field, with a forged or another visitor's one", async () => {
    const client = new Client(app.url);
    const token = (await client.get("/token")).text;
    const other = (await new Client(app.url).get("/token")).text;
    const refused: Record<string, string>[] = [
      { amount: "10" },
      { amount: "10", _csrf: `${token}x` },
      { _csrf: other },
      // qs (express.urlencoded extended) makes this an object, the flat parsers another name.
      { amount: "10", "_csrf[a]": token },
    ];
    for (const fields of refused) {
      const body = new URLSearchParams(fields).toString();
      expectRefused(await client.post("/transfer", { headers: FORM, body }));
    }
  });

  it("does not take a JSON body's `_csrf` property for a form field", async () => {
    const client = new Client(app.url);
    const token = (await client.get("/token")).text;
    const body = JSON.stringify({ amount: "10", _csrf: token });
    const reply = await client.post("/transfer", {
      headers: { "content-type": "application/json" },
      body,
    });
    // Fastify has no JSON route schema here and parses it; the guard must still refuse.
    expectRefused(reply);
  });
});

describe("the handler-side check on Express, after express.urlencoded", () => {
  let app: RunningApp;
  beforeAll(async () => {
    const server = express();
    server.use(expressAdapter.session(createSessions({ secret: SECRET })));
    server.get("/token", async (req, res) => {
      res.send(await req.session.csrfToken());
    });
    server.post("/form", express.urlencoded({ extended: false }), async (req, res) => {
      if (!(await req.session.verifyCsrfToken(req.body?._csrf))) {
        res.status(403).type("text/plain").send("Forbidden");
        return;
      }
      res.send(`done ${req.body.amount}`);
    });
    app = await listenExpress(server);
  });
  afterAll(() => app?.close());

  it("accepts the form's own token and refuses a missing, forged or other visitor's one", async () => {
    const client = new Client(app.url);
    const token = (await client.get("/token")).text;
    const post = (fields: Record<string, string>) =>
      client.post("/form", { headers: FORM, body: new URLSearchParams(fields).toString() });
    const ok = await post({ amount: "10", _csrf: token });
    expect(ok.status).toBe(200);
    expect(ok.text).toBe("done 10");
    expect((await post({ amount: "10" })).status).toBe(403);
    expect((await post({ amount: "10", _csrf: `${token}x` })).status).toBe(403);
    const other = (await new Client(app.url).get("/token")).text;
    expect((await post({ amount: "10", _csrf: other })).status).toBe(403);
  });
});

describe("requireCsrfToken after a multipart parser that keeps the text fields (multer, koa-body)", () => {
  let app: RunningApp;
  beforeAll(async () => {
    const server = express();
    // What multer does: the files go elsewhere (req.file), the text fields to req.body.
    server.use(async (req, _res, next) => {
      if (req.method !== "POST") return next();
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const form = await new Response(Buffer.concat(chunks), {
        headers: { "content-type": req.headers["content-type"] ?? "" },
      }).formData();
      req.body = Object.fromEntries([...form].filter(([, value]) => typeof value === "string"));
      next();
    });
    server.use(
      expressAdapter.session(createSessions({ secret: SECRET }), {
        guards: [expressAdapter.requireCsrfToken()],
      }),
    );
    server.get("/token", async (req, res) => {
      res.send(await req.session.csrfToken());
    });
    server.post("/upload", (req, res) => {
      res.send(`done ${req.body.amount}`);
    });
    app = await listenExpress(server);
  });
  afterAll(() => app?.close());

  it("judges the parsed fields, not the raw body's Content-Length: an upload past maxFormBytes passes with its token", async () => {
    const client = new Client(app.url);
    const token = (await client.get("/token")).text;
    const upload = (fields: Record<string, string>) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(fields)) form.append(name, value);
      // Twice the default maxFormBytes: the raw body's Content-Length says 2 MiB and more.
      form.append("photo", new Blob([new Uint8Array(2 * 1_048_576)]), "photo.jpg");
      return client.post("/upload", { body: form });
    };
    const ok = await upload({ amount: "10", _csrf: token });
    expect([ok.status, ok.text]).toEqual([200, "done 10"]);
    expectRefused(await upload({ amount: "10" }));
    expectRefused(await upload({ amount: "10", _csrf: `${token}x` }));
  });
});

describe("requireCsrfToken after a parser that leaves the form as bytes (Fastify parseAs buffer, express.raw)", () => {
  let app: RunningApp;
  beforeAll(async () => {
    const server = Fastify();
    await server.register(fastifyAdapter.session(createSessions({ secret: SECRET })));
    server.addContentTypeParser(
      "application/x-www-form-urlencoded",
      { parseAs: "buffer" },
      (_req, body, done) => done(null, body),
    );
    server.get("/token", async (request) => (request.session as Session).csrfToken());
    server.post(
      "/transfer",
      { preHandler: fastifyAdapter.guard(fastifyAdapter.requireCsrfToken()) },
      async (request) => `done ${new URLSearchParams(String(request.body)).get("amount")}`,
    );
    const url = await server.listen({ port: 0, host: "127.0.0.1" });
    app = { url, close: () => server.close() };
  });
  afterAll(() => app?.close());

  it("reads the field from the bytes as it does from a string, and refuses without it", async () => {
    const client = new Client(app.url);
    const token = (await client.get("/token")).text;
    const post = (fields: Record<string, string>) =>
      client.post("/transfer", { headers: FORM, body: new URLSearchParams(fields).toString() });
    const ok = await post({ amount: "10", _csrf: token });
    expect([ok.status, ok.text]).toEqual([200, "done 10"]);
    expectRefused(await post({ amount: "10" }));
    expectRefused(await post({ amount: "10", _csrf: `${token}x` }));
  });
});

// Two tabs of one browser share the cookie: tab B's request renews the id (renewInterval) while
// tab A's form, rendered before, is still open. The token is bound to the session's seed, which a
// renewal keeps, so tab A's POST passes with the renewed cookie.
describe.each([
  ["express (header)", NODE_BASED.find(([name]) => name === "express")?.[1] as Serve, false],
  ["hono (form field)", FETCH_BASED.find(([name]) => name === "hono")?.[1] as Serve, true],
])("a form open across a renewal another tab made, on %s", (_name, serve, asField) => {
  const HOUR_MS = 3_600_000;
  for (const [mode, store] of [
    ["cookie sessions", false],
    ["store sessions", true],
  ] as const) {
    it(`passes requireCsrfToken: ${mode}`, async () => {
      let now = Date.UTC(2025, 0, 1);
      const clock = () => now;
      const sessions = createSessions({
        secret: SECRET,
        renewInterval: "1h",
        now: clock,
        ...(store ? { store: memoryStore({ now: clock }) } : {}),
      });
      const app = await serve(sessions);
      try {
        const browser = new Client(app.url);
        const tabA = (await browser.get("/token")).text;
        const before = browser.cookieHeader();
        now += HOUR_MS + 60_000;
        const tabB = await browser.get("/token");
        expect(tabB.status).toBe(200);
        expect(tabB.setCookies).toHaveLength(1); // the renewal
        expect(browser.cookieHeader()).not.toBe(before);
        const post = asField
          ? browser.post("/transfer", {
              headers: FORM,
              body: new URLSearchParams({ amount: "10", _csrf: tabA }).toString(),
            })
          : browser.post("/transfer", {
              headers: { "x-csrf-token": tabA, ...FORM },
              body: "amount=10",
            });
        const reply = await post;
        expect([reply.status, reply.text]).toEqual([200, asField ? "done 10" : "done"]);
        // Tab B's own token passes too; a stranger's does not.
        const other = (await new Client(app.url).get("/token")).text;
        expectRefused(
          await browser.post("/transfer", { headers: { "x-csrf-token": other, ...FORM } }),
        );
        const fromB = await browser.post("/transfer", {
          headers: { "x-csrf-token": tabB.text, ...FORM },
          body: "amount=5",
        });
        expect(fromB.status).toBe(200);
      } finally {
        await app.close();
      }
    });
  }
});
