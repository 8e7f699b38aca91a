import { PassThrough } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { guard, requireSession, session } from "../../src/adapters/fastify.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { type RunningApp, SECRET, switchableStore, testAdapter } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { echoRequest, expectGuardSawRequest } from "../helpers/guard.js";
import { Client } from "../helpers/http.js";

async function listen(app: FastifyInstance): Promise<RunningApp> {
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, close: () => app.close() };
}

// The matrix drives untyped sessions: widen whatever data type a type test registered.
const untyped = (request: FastifyRequest): Session => request.session;

testAdapter("fastify", async (sessions) => {
  const app = Fastify();
  await app.register(session(sessions));
  const signedIn = guard(
    requireSession((s: Session) => s.has("user"), {
      redirect: "/login",
      flash: ["info", "sign in first"],
    }),
  );

  app.get("/read", async (request, reply) =>
    reply.type("text/plain").send(JSON.stringify(request.session.data)),
  );
  app.get("/count", async (request) => {
    const s = untyped(request);
    const count = ((s.get("count") as number) ?? 0) + 1;
    s.set("count", count);
    return String(count);
  });
  app.post("/login", async (request) => {
    await request.session.regenerate({ userId: "ada" });
    untyped(request).set("user", "ada");
    return "ok";
  });
  app.post("/destroy", async (request) => {
    request.session.destroy();
    return "bye";
  });
  app.post("/flash", async (request) => {
    request.session.flash("info", "saved");
    return "ok";
  });
  app.get("/flashes", async (request) => request.session.flashes("info"));
  app.post("/act", async (request) =>
    act(untyped(request), request.headers["x-actions"] as string | undefined),
  );
  app.get("/private", { preHandler: signedIn }, async () => "secret");
  app.get("/large", async (request) => {
    untyped(request).set("blob", "x".repeat(8000));
    return "ok";
  });
  app.get("/boom", async (request) => {
    const s = untyped(request);
    s.set("count", ((s.get("count") as number) ?? 0) + 1);
    throw new Error("boom");
  });
  app.get("/redirect", async (request, reply) => {
    untyped(request).set("went", true);
    return reply.redirect("/read", 302);
  });
  app.get("/stream", async (request, reply) => {
    untyped(request).set("streamed", true);
    const body = new PassThrough();
    body.write("chunk1");
    setTimeout(() => body.end("chunk2"), 10);
    return reply.type("text/plain").send(body);
  });
  return listen(app);
});

describe("sessionkit/fastify specifics", () => {
  it("answers 503 in place of the reply when the store fails while committing", async () => {
    const store = switchableStore();
    const app = Fastify();
    await app.register(session(createSessions({ secret: SECRET, store })));
    app.get("/write", async (request) => {
      untyped(request).set("n", 1);
      store.down = true;
      return { saved: true };
    });
    const running = await listen(app);
    try {
      const reply = await new Client(running.url).get("/write");
      expect(reply.status).toBe(503);
      expect(reply.headers.get("retry-after")).toBe("5");
      expect(reply.headers.get("content-type")).toMatch(/^text\/plain/);
      expect(reply.setCookies).toEqual([]);
    } finally {
      await running.close();
    }
  });

  it("decorates routes of child plugins too, and appends to cookies a route sets", async () => {
    const app = Fastify();
    await app.register(session(createSessions({ secret: SECRET })));
    await app.register(async (child) => {
      child.get("/child", async (request, reply) => {
        untyped(request).set("child", true);
        return reply.header("set-cookie", "theme=dark; Path=/").send("ok");
      });
    });
    const running = await listen(app);
    try {
      const reply = await new Client(running.url).get("/child");
      expect(reply.setCookies.map((l) => l.split("=")[0])).toEqual(["theme", "sid"]);
    } finally {
      await running.close();
    }
  });

  it("hands guards the request: method, URL, headers", async () => {
    const app = Fastify();
    await app.register(session(createSessions({ secret: SECRET })));
    app.delete("/area/item", { preHandler: guard(echoRequest) }, async () => "never");
    const running = await listen(app);
    try {
      await expectGuardSawRequest(running.url, "/area/item?x=1");
    } finally {
      await running.close();
    }
  });

  it("runs the guards option for every request before the routes", async () => {
    const app = Fastify();
    const closed = requireSession(() => false, { status: 404 });
    await app.register(session(createSessions({ secret: SECRET }), { guards: [closed] }));
    app.get("/", async () => "never");
    const running = await listen(app);
    try {
      const reply = await new Client(running.url).get("/");
      expect(reply.status).toBe(404);
      expect(reply.text).toBe("Not Found");
    } finally {
      await running.close();
    }
  });
});
