import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { withSession } from "../../src/adapters/fetch.js";
import { createSessions } from "../../src/manager.js";

const schema = z.object({ user: z.string().optional() });
const sessions = createSessions({ secret: "type-test-secret-0123456789abcdefghij", schema });

describe("sessionkit/fetch types", () => {
  it("a handler that always answers gives a fetch that always answers (a Worker's fetch type)", () => {
    const fetch = withSession(sessions, (_request, { session }, env: { KEY: string }) => {
      expectTypeOf(session.get("user")).toEqualTypeOf<string | undefined>();
      // @ts-expect-error: not a key of the schema
      session.get("usr");
      return new Response(env.KEY);
    });
    expectTypeOf(fetch).toEqualTypeOf<
      (request: Request, env: { KEY: string }) => Promise<Response>
    >();
  });

  it("a handler that may leave the answer to its runtime (Bun's upgrade) may return undefined", () => {
    const fetch = withSession(
      sessions,
      (request, _context, server: { upgrade(r: Request): boolean }) =>
        server.upgrade(request) ? undefined : new Response("no"),
    );
    expectTypeOf(fetch).returns.toEqualTypeOf<Promise<Response | undefined>>();
  });

  it("the ip option sees the handler's extra arguments", () => {
    withSession(
      sessions,
      (_request, _context, _info: { remoteAddr: { hostname: string } }) => new Response(""),
      {
        ip: (_request, info) => {
          expectTypeOf(info).toEqualTypeOf<{ remoteAddr: { hostname: string } }>();
          return info.remoteAddr.hostname;
        },
      },
    );
  });
});
