import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { Application, Router } from "@oakserver/oak";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OakSession, requireSession, sessionGuard } from "../../src/adapters/oak.js";
import { createSessions } from "../../src/manager.js";
import { type RunningApp, SECRET, testAdapter } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { echoRequest, expectGuardSawRequest } from "../helpers/guard.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";
import { listenOak } from "../helpers/oak.js";

function matrixApp(sessions: any): Application {
  const app = new Application({ logErrors: false });
  new OakSession(app, sessions);
  const signedIn = requireSession((s) => s.has("user"), {
    redirect: "/login",
    flash: ["info", "sign in first"],
  });
  const router = new Router();
  router
    .get("/read", (ctx) => {
      ctx.response.body = JSON.stringify(ctx.state.session.raw.data);
    })
    .get("/count", async (ctx) => {
      const count = (((await ctx.state.session.get("count")) as number | undefined) ?? 0) + 1;
      await ctx.state.session.set("count", count);
      ctx.response.body = String(count);
    })
    .post("/login", async (ctx) => {
      await ctx.state.session.regenerate({ userId: "ada" });
      await ctx.state.session.set("user", "ada");
      ctx.response.body = "ok";
    })
    .post("/destroy", async (ctx) => {
      await ctx.state.session.destroy();
      ctx.response.body = "bye";
    })
    .post("/flash", async (ctx) => {
      await ctx.state.session.flash("info", "saved");
      ctx.response.body = "ok";
    })
    .get("/flashes", async (ctx) => {
      ctx.response.body = JSON.stringify(await ctx.state.session.flashes("info"));
    })
    // The visits act on the session under the seed's async API: the one `raw` hands guards.
    .post("/act", async (ctx) => {
      ctx.response.type = "json";
      ctx.response.body = await act(ctx.state.session.raw, ctx.request.headers.get("x-actions"));
    })
    .get("/private", sessionGuard(signedIn), (ctx) => {
      ctx.response.body = "secret";
    })
    .delete("/area/item", sessionGuard(echoRequest), (ctx) => {
      ctx.response.body = "never";
    })
    .get("/large", async (ctx) => {
      await ctx.state.session.set("blob", "x".repeat(8000));
      ctx.response.body = "ok";
    })
    .get("/boom", async (ctx) => {
      await ctx.state.session.set(
        "count",
        (((await ctx.state.session.get("count")) as number | undefined) ?? 0) + 1,
      );
      throw new Error("boom");
    })
    .get("/redirect", async (ctx) => {
      await ctx.state.session.set("went", true);
      ctx.response.redirect("/read");
    })
    .get("/stream", async (ctx) => {
      await ctx.state.session.set("streamed", true);
      ctx.response.body = new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode("chunk1"));
          await new Promise((r) => setTimeout(r, 10));
          controller.enqueue(new TextEncoder().encode("chunk2"));
          controller.close();
        },
      });
    });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** Oak's fetch-style entry (`app.handle`, as on Bun, Workers or any fetch server) behind node:http. */
function serveHandle(app: Application): Promise<RunningApp> {
  const server = createAdaptorServer({
    fetch: async (request: Request) =>
      (await app.handle(request as unknown as Parameters<typeof app.handle>[0])) ??
      new Response(null, { status: 500 }),
    hostname: "127.0.0.1",
  });
  return listenLoopback(server as Server);
}

// The full matrix through Oak's middleware chain, served by app.handle: every Set-Cookie line reaches the wire.
testAdapter("oak (app.handle)", (sessions) => serveHandle(matrixApp(sessions)));

describe("oak on Oak's own Node server (app.listen on a fixed free port)", () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await listenOak(matrixApp(createSessions({ secret: SECRET })));
  });
  afterAll(() => app?.close());

  it("counts across requests, with one Set-Cookie on the first write only", async () => {
    const client = new Client(app.url);
    const first = await client.get("/count");
    expect(first.text).toBe("1");
    expect(first.setCookies).toHaveLength(1);
    expect(first.headers.get("cache-control")).toBe("no-store");
    const second = await client.get("/count");
    expect(second.text).toBe("2");
    expect((await client.get("/read")).setCookies).toEqual([]);
  });

  it("keeps the cookie on Oak's error response and on a guard's redirect", async () => {
    const client = new Client(app.url);
    const boom = await client.get("/boom");
    expect(boom.status).toBe(500);
    expect(boom.setCookies).toHaveLength(1);
    const denied = await client.get("/private");
    expect(denied.status).toBe(303);
    expect(denied.headers.get("location")).toBe("/login");
    expect(JSON.parse((await client.get("/read")).text)).toEqual({ count: 1 });
  });

  it("hands guards the request: method, URL, headers (Oak on Node has no Fetch request of its own)", async () => {
    await expectGuardSawRequest(app.url, "/area/item?x=1");
  });

  // Upstream: Oak 14's Node server copies headers with `setHeader` per line, so only the last
  // Set-Cookie of a response is sent. A chunked cookie session cannot work there until Oak fixes it;
  // this case flips (and fails) on the day it does, so the caveat in the adapter's docs can go.
  it.fails("sends every Set-Cookie line of a chunked session (Oak 14 on Node sends only the last)", async () => {
    const reply = await new Client(app.url).get("/large");
    expect(reply.setCookies.map((l) => l.split("=")[0])).toEqual([
      "sid.0",
      "sid.1",
      "sid.2",
      "sid.3",
    ]);
  });
});
