import Fastify, { type FastifyRequest, type preHandlerAsyncHookHandler } from "fastify";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  guard,
  type RegisteredSessionData,
  requireSession,
  session,
} from "../../src/adapters/fastify.js";
import { createSessions } from "../../src/manager.js";

const schema = z.object({ username: z.string().optional(), visits: z.number().default(0) });
const sessions = createSessions({ secret: "type-test-secret-0123456789abcdefghij", schema });

// What an application writes once, with "sessionkit/fastify" as the module name.
declare module "../../src/adapters/fastify.js" {
  interface Register {
    data: z.infer<typeof schema>;
  }
}

describe("sessionkit/fastify types", () => {
  it("types request.session by the registered schema, without casts", async () => {
    const app = Fastify();
    await app.register(session(sessions));
    app.get("/", async (request) => {
      expectTypeOf(request.session.get("username")).toEqualTypeOf<string | undefined>();
      expectTypeOf(request.session.get("visits")).toEqualTypeOf<number | undefined>();
      // @ts-expect-error: not a key of the schema
      request.session.get("usernme");
      // @ts-expect-error: visits is a number
      request.session.set("visits", "1");
      return "ok";
    });
    expectTypeOf<RegisteredSessionData>().toEqualTypeOf<{
      username?: string | undefined;
      visits: number;
    }>();
  });

  it("types request.session on routes with their own generics", () => {
    const app = Fastify();
    app.get<{ Params: { id: string } }>("/:id", async (request) => {
      expectTypeOf(request.params.id).toEqualTypeOf<string>();
      expectTypeOf(request.session.get("username")).toEqualTypeOf<string | undefined>();
      return "ok";
    });
    expectTypeOf<FastifyRequest["session"]["data"]>().toEqualTypeOf<
      Readonly<Partial<{ username?: string | undefined; visits: number }>>
    >();
  });

  it("types guards by the registered schema", () => {
    expectTypeOf(
      guard(requireSession((s) => s.get("username") !== undefined, { redirect: "/login" })),
    ).toEqualTypeOf<preHandlerAsyncHookHandler>();
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
