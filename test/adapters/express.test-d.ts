import express from "express";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  guard,
  type RegisteredSessionData,
  requireSameOrigin,
  requireSession,
  session,
} from "../../src/adapters/express.js";
import { createSessions } from "../../src/manager.js";

const schema = z.object({ username: z.string().optional(), visits: z.number().default(0) });
const sessions = createSessions({ secret: "type-test-secret-0123456789abcdefghij", schema });

// What an application writes once, with "sessionkit/express" as the module name.
declare module "../../src/adapters/express.js" {
  interface Register {
    data: z.infer<typeof schema>;
  }
}

describe("sessionkit/express types", () => {
  it("types req.session by the registered schema, without casts", () => {
    const app = express();
    app.use(session(sessions));
    app.get("/", (req, res) => {
      expectTypeOf(req.session.get("username")).toEqualTypeOf<string | undefined>();
      expectTypeOf(req.session.get("visits")).toEqualTypeOf<number | undefined>();
      // @ts-expect-error: not a key of the schema
      req.session.get("usernme");
      // @ts-expect-error: visits is a number
      req.session.set("visits", "1");
      res.end();
    });
    expectTypeOf<RegisteredSessionData>().toEqualTypeOf<{
      username?: string | undefined;
      visits: number;
    }>();
  });

  it("types guards by the registered schema", () => {
    const signedIn = guard(
      requireSession((s) => s.get("username") !== undefined, { redirect: "/login" }),
    );
    expectTypeOf(signedIn).toEqualTypeOf<express.RequestHandler>();
    // @ts-expect-error: not a key of the schema
    guard(requireSession((s) => s.has("nope"), { status: 401 }));
  });

  it("takes requireSameOrigin as a middleware guard and as a route guard, without a type argument", () => {
    expectTypeOf(
      session(sessions, { guards: [requireSameOrigin()] }),
    ).toEqualTypeOf<express.RequestHandler>();
    expectTypeOf(
      guard(requireSameOrigin({ trustedOrigins: ["https://a.example"] })),
    ).toEqualTypeOf<express.RequestHandler>();
    // @ts-expect-error: trustedOrigins is a list of strings
    requireSameOrigin({ trustedOrigins: "https://a.example" });
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
