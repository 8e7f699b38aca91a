/**
 * `requireCsrfToken` on Hono behind a middleware that already read the body (`c.req.parseBody()`,
 * `validator("form", ...)`, `c.req.text()`): Hono keeps what it read on `c.req`, and the guard reads
 * the form field from that, over real HTTP on loopback.
 */
import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { type Handler, Hono, type MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as honoAdapter from "../../src/adapters/hono.js";
import { createSessions } from "../../src/manager.js";
import type { RunningApp } from "../conformance/adapter.js";
import { SECRET } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

type Env = honoAdapter.SessionEnv;

const readers: Record<string, MiddlewareHandler<Env>> = {
  "parse-body": async (c, next) => {
    await c.req.parseBody();
    await next();
  },
  "form-validator": validator("form", (value) => value) as unknown as MiddlewareHandler<Env>,
  "form-data": async (c, next) => {
    await c.req.formData();
    await next();
  },
  text: async (c, next) => {
    await c.req.text();
    await next();
  },
  json: async (c, next) => {
    await c.req.json().catch(() => undefined);
    await next();
  },
};

let running: RunningApp;
let client: Client;
let token: string;

beforeAll(async () => {
  const app = new Hono<Env>();
  app.use(honoAdapter.sessionMiddleware(createSessions({ secret: SECRET })));
  app.get("/token", async (c) => c.text(await c.get("session").csrfToken()));
  const guard = honoAdapter.sessionGuard(honoAdapter.requireCsrfToken());
  // The handler reads the body again after the guard: Hono's cache must still serve it.
  const done: Handler<Env> = async (c) => c.text(`done ${(await c.req.parseBody()).amount}`);
  for (const [name, reader] of Object.entries(readers)) app.post(`/${name}`, reader, guard, done);
  app.post("/guard-first", guard, readers["parse-body"] as MiddlewareHandler<Env>, done);
  running = await listenLoopback(
    createAdaptorServer({ fetch: app.fetch, hostname: "127.0.0.1" }) as Server,
  );
  client = new Client(running.url);
  token = (await client.get("/token")).text;
});

afterAll(() => running?.close());

const urlencoded = (fields: Record<string, string>) => ({
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});

function multipart(fields: Record<string, string>) {
  const boundary = "----sessionkit-test-boundary";
  const parts = Object.entries(fields).map(
    ([name, value]) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  return {
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
    body: `${parts.join("")}--${boundary}--\r\n`,
  };
}

describe("requireCsrfToken on Hono after a reader of the body", () => {
  for (const name of ["parse-body", "form-validator", "form-data", "text"]) {
    it(`${name}: the form's token passes, a missing or wrong one is refused`, async () => {
      const ok = await client.post(`/${name}`, urlencoded({ amount: "10", _csrf: token }));
      expect([ok.status, ok.text]).toEqual([200, "done 10"]);
      const missing = await client.post(`/${name}`, urlencoded({ amount: "10" }));
      expect(missing.status).toBe(403);
      const wrong = await client.post(`/${name}`, urlencoded({ amount: "10", _csrf: `${token}x` }));
      expect(wrong.status).toBe(403);
    });
  }

  it("reads a multipart form that parseBody already read (re-encoded with a boundary of its own)", async () => {
    const ok = await client.post("/parse-body", multipart({ amount: "7", _csrf: token }));
    expect([ok.status, ok.text]).toEqual([200, "done 7"]);
    const missing = await client.post("/parse-body", multipart({ amount: "7" }));
    expect(missing.status).toBe(403);
  });

  it("finds no form in a JSON body a reader parsed, even with a _csrf member", async () => {
    const reply = await client.post("/json", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ amount: "10", _csrf: token }),
    });
    expect(reply.status).toBe(403);
  });

  it("still reads the raw body's clone when the guard comes first", async () => {
    const ok = await client.post("/guard-first", urlencoded({ amount: "10", _csrf: token }));
    expect([ok.status, ok.text]).toEqual([200, "done 10"]);
  });

  it("keeps maxFormBytes: a form Hono kept past the limit is not read", async () => {
    const app = new Hono<Env>();
    app.use(honoAdapter.sessionMiddleware(createSessions({ secret: SECRET })));
    app.get("/token", async (c) => c.text(await c.get("session").csrfToken()));
    app.post(
      "/small",
      readers["parse-body"] as MiddlewareHandler<Env>,
      honoAdapter.sessionGuard(honoAdapter.requireCsrfToken({ maxFormBytes: 150 })),
      (c) => c.text("done"),
    );
    const server = await listenLoopback(
      createAdaptorServer({ fetch: app.fetch, hostname: "127.0.0.1" }) as Server,
    );
    try {
      const small = new Client(server.url);
      const own = (await small.get("/token")).text;
      const ok = await small.post("/small", urlencoded({ _csrf: own }));
      expect(ok.status).toBe(200);
      const big = await small.post("/small", urlencoded({ _csrf: own, pad: "x".repeat(300) }));
      expect(big.status).toBe(403);
    } finally {
      await server.close();
    }
  });
});
