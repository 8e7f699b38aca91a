import Koa from "koa";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  guard,
  type RegisteredSessionData,
  requireSession,
  session,
} from "../../src/adapters/koa.js";
import { createSessions } from "../../src/manager.js";

const schema = z.object({ username: z.string().optional(), visits: z.number().default(0) });
const sessions = createSessions({ secret: "type-test-secret-0123456789abcdefghij", schema });

// What an application writes once, with "sessionkit/koa" as the module name.
declare module "../../src/adapters/koa.js" {
  interface Register {
    data: z.infer<typeof schema>;
  }
}

describe("sessionkit/koa types", () => {
  it("types ctx.session by the registered schema, without casts", () => {
    const app = new Koa();
    app.use(session(sessions));
    app.use((ctx) => {
      expectTypeOf(ctx.session.get("username")).toEqualTypeOf<string | undefined>();
      expectTypeOf(ctx.session.get("visits")).toEqualTypeOf<number | undefined>();
      // @ts-expect-error: not a key of the schema
      ctx.session.get("usernme");
      // @ts-expect-error: visits is a number
      ctx.session.set("visits", "1");
    });
    expectTypeOf<RegisteredSessionData>().toEqualTypeOf<{
      username?: string | undefined;
      visits: number;
    }>();
  });

  it("types ctx.session in a context with custom state and context types", () => {
    const app = new Koa<{ requestId: string }, { locale: string }>();
    app.use((ctx) => {
      expectTypeOf(ctx.session.get("username")).toEqualTypeOf<string | undefined>();
      expectTypeOf(ctx.state.requestId).toEqualTypeOf<string>();
    });
  });

  it("types guards by the registered schema", () => {
    expectTypeOf(
      guard(requireSession((s) => s.get("username") !== undefined, { redirect: "/login" })),
    ).toEqualTypeOf<Koa.Middleware>();
    // @ts-expect-error: not a key of the schema
    guard(requireSession((s) => s.has("nope"), { status: 401 }));
  });

  it("refuses a manager whose data does not match the registered type", () => {
    const other = createSessions({
      secret: "type-test-secret-0123456789abcdefghij",
      schema: z.object({ n: z.number() }),
    });
    // @ts-expect-error: Register says { username, visits }
    session(other);
  });
});
