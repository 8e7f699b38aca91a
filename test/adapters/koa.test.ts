import { createServer } from "node:http";
import { PassThrough } from "node:stream";
import Koa from "koa";
import { describe, expect, it } from "vitest";
import { guard, requireSession, session } from "../../src/adapters/koa.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { type RunningApp, SECRET, switchableStore, testAdapter } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { echoRequest, expectGuardSawRequest } from "../helpers/guard.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

function listen(app: Koa): Promise<RunningApp> {
  app.silent = true; // the /boom route's error is expected: keep Koa's default logger quiet
  return listenLoopback(createServer(app.callback()));
}

testAdapter("koa", (sessions) => {
  const app = new Koa();
  const signedIn = guard(
    requireSession((s: Session) => s.has("user"), {
      redirect: "/login",
      flash: ["info", "sign in first"],
    }),
  );
  app.use(session(sessions));
  app.use(async (ctx) => {
    // The matrix drives untyped sessions: widen whatever data type a type test registered.
    const s: Session = ctx.session;
    switch (`${ctx.method} ${ctx.path}`) {
      case "GET /read":
        ctx.body = JSON.stringify(s.data);
        return;
      case "GET /count": {
        const count = ((s.get("count") as number) ?? 0) + 1;
        s.set("count", count);
        ctx.body = String(count);
        return;
      }
      case "POST /login":
        await s.regenerate({ userId: "ada" });
        s.set("user", "ada");
        ctx.body = "ok";
        return;
      case "POST /destroy":
        s.destroy();
        ctx.body = "bye";
        return;
      case "POST /flash":
        s.flash("info", "saved");
        ctx.body = "ok";
        return;
      case "GET /flashes":
        ctx.body = s.flashes("info");
        return;
      case "POST /act":
        ctx.body = await act(s, ctx.get("x-actions"));
        return;
      case "GET /private":
        return signedIn(ctx, async () => {
          ctx.body = "secret";
        });
      case "GET /large":
        s.set("blob", "x".repeat(8000));
        ctx.body = "ok";
        return;
      case "GET /boom":
        s.set("count", ((s.get("count") as number) ?? 0) + 1);
        throw new Error("boom");
      case "GET /redirect":
        s.set("went", true);
        ctx.redirect("/read");
        return;
      case "GET /stream": {
        s.set("streamed", true);
        const body = new PassThrough();
        body.write("chunk1");
        setTimeout(() => body.end("chunk2"), 10);
        ctx.body = body;
        return;
      }
    }
  });
  return listen(app);
});

describe("sessionkit/koa specifics", () => {
  async function serve(...middleware: Koa.Middleware[]): Promise<RunningApp> {
    const app = new Koa();
    for (const m of middleware) app.use(m);
    return listen(app);
  }

  it("answers 503 in place of the response when the store fails while committing", async () => {
    const store = switchableStore();
    const running = await serve(session(createSessions({ secret: SECRET, store })), (ctx) => {
      const s: Session = ctx.session;
      s.set("n", 1);
      store.down = true;
      ctx.body = { saved: true };
    });
    try {
      const reply = await new Client(running.url).get("/write");
      expect(reply.status).toBe(503);
      expect(reply.headers.get("retry-after")).toBe("5");
      expect(reply.setCookies).toEqual([]);
    } finally {
      await running.close();
    }
  });

  it("keeps the cookie and the error's own headers on ctx.throw's response", async () => {
    const running = await serve(session(createSessions({ secret: SECRET })), (ctx) => {
      const s: Session = ctx.session;
      s.set("seen", true);
      ctx.throw(418, "teapot", { headers: { "x-reason": "tea" } });
    });
    try {
      const reply = await new Client(running.url).get("/");
      expect(reply.status).toBe(418);
      expect(reply.headers.get("x-reason")).toBe("tea");
      expect(reply.setCookies).toHaveLength(1);
    } finally {
      await running.close();
    }
  });

  it("commits writes made by middleware after `await next()` resolves", async () => {
    const running = await serve(
      session(createSessions({ secret: SECRET })),
      async (ctx, next) => {
        await next();
        const s: Session = ctx.session;
        s.set("after", ctx.status);
      },
      (ctx) => {
        ctx.body = JSON.stringify(ctx.session.data);
      },
    );
    try {
      const client = new Client(running.url);
      expect((await client.get("/")).text).toBe("{}");
      expect(JSON.parse((await client.get("/")).text)).toEqual({ after: 200 });
    } finally {
      await running.close();
    }
  });

  it("hands guards the request: method, URL, headers", async () => {
    const running = await serve(
      session(createSessions({ secret: SECRET }), { guards: [echoRequest] }),
      (ctx) => {
        ctx.body = "never";
      },
    );
    try {
      await expectGuardSawRequest(running.url, "/area/item?x=1");
    } finally {
      await running.close();
    }
  });

  it("runs the guards option for every request before downstream middleware", async () => {
    const closed = requireSession(() => false, { status: 401 });
    const running = await serve(
      session(createSessions({ secret: SECRET }), { guards: [closed] }),
      (ctx) => {
        ctx.body = "never";
      },
    );
    try {
      const reply = await new Client(running.url).get("/");
      expect(reply.status).toBe(401);
      expect(reply.text).toBe("Unauthorized");
    } finally {
      await running.close();
    }
  });
});
