/**
 * When the commit fails (a store outage), every adapter answers 503 in place of the handler's
 * response. The body it drops must be released: a file stream left unread keeps its descriptor
 * open (a database cursor its connection, an upstream fetch its socket), so every request during an
 * outage would leak one until the process runs out.
 */
import { createReadStream, type ReadStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { Application } from "@oakserver/oak";
import Fastify from "fastify";
import { H3 } from "h3";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { session } from "../../src/adapters/fastify.js";
import { withSession } from "../../src/adapters/fetch.js";
import { sessionMiddleware as h3Session } from "../../src/adapters/h3.js";
import { sessionMiddleware as honoSession, type SessionEnv } from "../../src/adapters/hono.js";
import { sessionMiddleware as oakSession } from "../../src/adapters/oak.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { SECRET, switchableStore } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";

const THIS_FILE = fileURLToPath(import.meta.url);

/** A body that waits for news, and records whether it was cancelled. */
function feed(): { body: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull: () => new Promise(() => undefined),
    cancel: () => {
      cancelled = true;
    },
  });
  return { body, cancelled: () => cancelled };
}

describe("sessionkit/fastify: a payload the failed commit replaces", () => {
  it("closes a file stream the 503 replaced", async () => {
    const store = switchableStore();
    const app = Fastify();
    await app.register(session(createSessions({ secret: SECRET, store })));
    let file: ReadStream | undefined;
    app.get("/download", async (request, reply) => {
      (request.session as Session).set("downloads", 1);
      store.down = true;
      file = createReadStream(THIS_FILE);
      return reply.type("text/plain").send(file);
    });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const reply = await new Client(url).get("/download");
      expect(reply.status).toBe(503);
      const stream = file as ReadStream;
      // Closing the descriptor takes a turn of the thread pool; an abandoned stream never closes.
      const closed = await Promise.race([
        new Promise((resolve) =>
          stream.closed ? resolve(true) : stream.once("close", () => resolve(true)),
        ),
        new Promise((resolve) => setTimeout(() => resolve(false), 2000)),
      ]);
      expect(closed).not.toBe(false);
    } finally {
      store.down = false;
      await app.close();
    }
  });

  it("cancels a Web stream the 503 replaced", async () => {
    const store = switchableStore();
    const app = Fastify();
    await app.register(session(createSessions({ secret: SECRET, store })));
    let cancelled = false;
    app.get("/feed", async (request, reply) => {
      (request.session as Session).set("seen", 1);
      store.down = true;
      const body = new ReadableStream({
        pull: () => new Promise(() => undefined), // a feed that waits for news
        cancel: () => {
          cancelled = true;
        },
      });
      return reply.type("text/plain").send(body);
    });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const reply = await new Client(url).get("/feed");
      expect(reply.status).toBe(503);
      expect(cancelled).toBe(true);
    } finally {
      store.down = false;
      await app.close();
    }
  });
});

describe("the fetch-based adapters: a body the failed commit replaces", () => {
  it("fetch withSession cancels the handler's body", async () => {
    const store = switchableStore();
    const news = feed();
    const handler = withSession(createSessions({ secret: SECRET, store }), (_request, ctx) => {
      ctx.session.set("seen", 1);
      store.down = true;
      return new Response(news.body);
    });
    const reply = await handler(new Request("http://127.0.0.1/feed"));
    expect(reply.status).toBe(503);
    expect(news.cancelled()).toBe(true);
  });

  it("Hono cancels c.res's body", async () => {
    const store = switchableStore();
    const news = feed();
    const app = new Hono<SessionEnv>();
    app.use(honoSession(createSessions({ secret: SECRET, store })));
    app.get("/feed", (c) => {
      c.get("session").set("seen", 1);
      store.down = true;
      return c.body(news.body);
    });
    const reply = await app.request("/feed");
    expect(reply.status).toBe(503);
    expect(news.cancelled()).toBe(true);
  });

  it("h3 cancels a stream the handler returned, bare or in a Response", async () => {
    const store = switchableStore();
    const bare = feed();
    const wrapped = feed();
    const app = new H3().use(h3Session(createSessions({ secret: SECRET, store })));
    const write = (event: { context: { session?: Session } }) => {
      event.context.session?.set("seen", 1);
      store.down = true;
    };
    app.get("/bare", (event) => {
      write(event);
      return bare.body;
    });
    app.get("/wrapped", (event) => {
      write(event);
      return new Response(wrapped.body);
    });
    expect((await app.request("/bare")).status).toBe(503);
    expect((await app.request("/wrapped")).status).toBe(503);
    expect(bare.cancelled()).toBe(true);
    expect(wrapped.cancelled()).toBe(true);
  });

  it("Oak cancels the response body it replaces", async () => {
    const store = switchableStore();
    const news = feed();
    const app = new Application({ logErrors: false });
    app.use(oakSession(createSessions({ secret: SECRET, store })));
    app.use(async (ctx) => {
      await ctx.state.session.set("seen", 1);
      store.down = true;
      ctx.response.body = news.body;
    });
    const request = new Request("http://127.0.0.1/feed");
    const reply = await app.handle(request as unknown as Parameters<typeof app.handle>[0]);
    expect(reply?.status).toBe(503);
    expect(news.cancelled()).toBe(true);
  });
});
