import { Hono, type MiddlewareHandler } from "hono";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  requireSession,
  type SessionEnv,
  sessionGuard,
  sessionMiddleware,
} from "../../src/adapters/hono.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";

const schema = z.object({ username: z.string().optional(), visits: z.number().default(0) });
const sessions = createSessions({ secret: "type-test-secret-0123456789abcdefghij", schema });
type Data = z.infer<typeof schema>;

describe("sessionkit/hono types", () => {
  it("types c.get('session') through Hono's Variables from the manager's type", () => {
    const app = new Hono<SessionEnv<typeof sessions>>();
    app.use(sessionMiddleware(sessions));
    app.get("/", (c) => {
      expectTypeOf(c.get("session")).toEqualTypeOf<Session<Data>>();
      expectTypeOf(c.get("session").get("username")).toEqualTypeOf<string | undefined>();
      expectTypeOf(c.get("session").get("visits")).toEqualTypeOf<number | undefined>();
      // @ts-expect-error: not a key of the schema
      c.get("session").get("usernme");
      // @ts-expect-error: visits is a number
      c.get("session").set("visits", "1");
      return c.text("ok");
    });
  });

  it("accepts the data type itself, and combines with the app's own bindings", () => {
    const app = new Hono<{ Bindings: { DB: string } } & SessionEnv<Data>>();
    app.get("/", (c) => {
      expectTypeOf(c.env.DB).toEqualTypeOf<string>();
      expectTypeOf(c.get("session").get("visits")).toEqualTypeOf<number | undefined>();
      return c.text("ok");
    });
  });

  it("a middleware kept in a variable typed by the app's Env (Workers: made on the first request)", () => {
    type Env = { Bindings: { SESSION_SECRET: string; PROXY: boolean } } & SessionEnv<Data>;
    const app = new Hono<Env>();
    let middleware: MiddlewareHandler<Env> | undefined;
    app.use((c, next) => {
      middleware ??= sessionMiddleware(createSessions({ secret: c.env.SESSION_SECRET, schema }), {
        ip: (c) => {
          expectTypeOf(c.env.PROXY).toEqualTypeOf<boolean>();
          return c.req.header("cf-connecting-ip");
        },
      });
      return middleware(c, next);
    });
    app.get("/", (c) => {
      expectTypeOf(c.get("session").get("visits")).toEqualTypeOf<number | undefined>();
      return c.text("ok");
    });
  });

  it("types the session on a chained app without a declared Env", () => {
    new Hono().use(sessionMiddleware(sessions)).get("/", (c) => {
      expectTypeOf(c.get("session").get("username")).toEqualTypeOf<string | undefined>();
      // @ts-expect-error: not a key of the schema
      c.get("session").get("nope");
      return c.text("ok");
    });
  });

  it("checks guards against the schema", () => {
    const app = new Hono<SessionEnv<typeof sessions>>();
    app.get(
      "/private",
      sessionGuard(
        requireSession<Data>((s) => s.get("username") !== undefined, { redirect: "/login" }),
      ),
    );
    // @ts-expect-error: guards read schema keys only
    requireSession<Data>((s) => s.has("usernme"), { status: 401 });
  });
});
