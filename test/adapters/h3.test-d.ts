import { H3, type H3Event } from "h3";
import { describe, expectTypeOf, it } from "vitest";
import {
  getSession,
  type SessionConfig,
  type SessionManager,
  updateSession,
  useSession,
} from "../../src/adapters/h3.js";
import type { Session } from "../../src/session.js";

const password = "type-test-password-0123456789abcdefghij";
declare const event: H3Event;

describe("sessionkit/h3 types", () => {
  it("keeps h3's signatures: a data type parameter on useSession, getSession and updateSession", async () => {
    const session = await useSession<{ count: number }>(event, { password });
    expectTypeOf(session).toEqualTypeOf<SessionManager<{ count: number }>>();
    expectTypeOf(session.data.count).toEqualTypeOf<number | undefined>();
    expectTypeOf(session.id).toEqualTypeOf<string | undefined>();
    await session.update({ count: 1 });
    await session.update((data) => ({ count: (data.count ?? 0) + 1 }));
    // @ts-expect-error: count is a number
    await session.update({ count: "1" });
    expectTypeOf((await getSession<{ a: string }>(event, { password })).data.a).toEqualTypeOf<
      string | undefined
    >();
    await updateSession<{ a: string }>(event, { password }, { a: "x" });
  });

  it("requires a password and knows h3's options", () => {
    const config: SessionConfig = {
      password,
      name: "app",
      maxAge: 60,
      cookie: { sameSite: "strict" },
      sessionHeader: false,
    };
    expectTypeOf(config.cookie).toEqualTypeOf<SessionConfig["cookie"]>();
    // @ts-expect-error: password is required, as in h3
    const missing: SessionConfig = { name: "app" };
    void missing;
  });

  it("types event.context.session for the sessionkit middleware", () => {
    new H3().get("/", (e) => {
      expectTypeOf(e.context.session).toEqualTypeOf<Session | undefined>();
      return "ok";
    });
  });
});
