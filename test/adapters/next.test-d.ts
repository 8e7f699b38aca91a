import type { NextRequest } from "next/server.js";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  getSession,
  requireSession,
  sessionAction,
  sessionProxy,
  withSession,
} from "../../src/adapters/next.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";

const schema = z.object({ user: z.string().optional(), count: z.number().default(0) });
type Data = z.output<typeof schema>;
const sessions = createSessions({ secret: "type-test-secret-0123456789abcdefghij", schema });

describe("sessionkit/next types", () => {
  it("getSession gives the schema's session to a Server Component", async () => {
    const session = await getSession(sessions);
    expectTypeOf(session).toEqualTypeOf<Session<Data>>();
    expectTypeOf(session.get("count")).toEqualTypeOf<number | undefined>();
    // @ts-expect-error: not a key of the schema
    session.get("usr");
  });

  it("sessionAction types the session's get and set, and keeps the action's arguments and result", () => {
    const login = sessionAction(sessions, async (session, form: FormData, remember: boolean) => {
      expectTypeOf(session.get("user")).toEqualTypeOf<string | undefined>();
      session.set("user", String(form.get("user")));
      session.rememberMe(remember);
      // @ts-expect-error: the schema says count is a number
      session.set("count", "many");
      // @ts-expect-error: not a key of the schema
      session.set("role", "admin");
      return session.get("count") ?? 0;
    });
    expectTypeOf(login).toEqualTypeOf<(form: FormData, remember: boolean) => Promise<number>>();
  });

  it("sessionProxy is a Next proxy, and its guards see the schema's session", () => {
    const proxy = sessionProxy(sessions, {
      guards: [requireSession((session) => session.get("user") !== undefined, { redirect: "/" })],
    });
    expectTypeOf(proxy).toEqualTypeOf<(request: NextRequest) => Promise<Response>>();
  });

  it("a proxy guard and a Route Handler see the schema's session: a wrong key does not compile", () => {
    sessionProxy(sessions, {
      guards: [
        requireSession(
          (session) => {
            expectTypeOf(session.userId).toEqualTypeOf<string | undefined>();
            // @ts-expect-error: not a key of the schema
            return session.has("usr");
          },
          { redirect: "/" },
        ),
      ],
    });
    withSession(sessions, (_request, { session }) => {
      // @ts-expect-error: the schema says count is a number
      session.set("count", "many");
      return Response.json(session.get("user") ?? null);
    });
  });

  it("withSession (Route Handlers) passes Next's context through", () => {
    const GET = withSession(
      sessions,
      async (_request, { session }, context: { params: Promise<{ id: string }> }) => {
        expectTypeOf(session.get("count")).toEqualTypeOf<number | undefined>();
        return Response.json({ id: (await context.params).id });
      },
    );
    expectTypeOf(GET).toEqualTypeOf<
      (request: Request, context: { params: Promise<{ id: string }> }) => Promise<Response>
    >();
  });
});
