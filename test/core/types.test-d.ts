/** The schema's type reaches `session.get` and `session.set`; without a schema, data is a JSON object. */
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  createSessions,
  type InferSessionData,
  type Session,
  type Sessions,
} from "../../src/index.js";

const SECRET = "s3cr3t-for-tests-0123456789-abcdefghijklmnop";

describe("with a Zod schema", () => {
  const sessions = createSessions({
    secret: SECRET,
    schema: z.object({ username: z.string(), visits: z.number().default(0) }),
  });
  type Data = { username: string; visits: number };

  it("infers the data type from the schema", () => {
    expectTypeOf(sessions).toEqualTypeOf<Sessions<Data>>();
  });

  it("types get by key", async () => {
    const session = await sessions.load(new Headers());
    expectTypeOf(session.get("username")).toEqualTypeOf<string | undefined>();
    expectTypeOf(session.get("visits")).toEqualTypeOf<number | undefined>();
    expectTypeOf(session.data).toEqualTypeOf<Readonly<Partial<Data>>>();
    expectTypeOf(session.expiresAt).toEqualTypeOf<number>();
  });

  it("refuses a wrong value type and an unknown key", async () => {
    const session = await sessions.load(new Headers());
    session.set("username", "ada");
    // @ts-expect-error username is a string
    session.set("username", 1);
    // @ts-expect-error not a key of the schema
    session.get("nope");
    // @ts-expect-error not a key of the schema
    session.set("nope", "x");
    // @ts-expect-error not a key of the schema
    session.update({ nope: 1 });
    session.update({ visits: 2 });
  });
});

describe("without a schema", () => {
  const sessions = createSessions({ secret: SECRET });

  it("data is Record<string, unknown>", async () => {
    expectTypeOf<InferSessionData<undefined>>().toEqualTypeOf<Record<string, unknown>>();
    expectTypeOf(sessions).toEqualTypeOf<Sessions<Record<string, unknown>>>();
    const session = await sessions.load(new Headers());
    expectTypeOf(session).toEqualTypeOf<Session<Record<string, unknown>>>();
    expectTypeOf(session.get("anything")).toEqualTypeOf<unknown>();
    session.set("anything", { nested: [1, "two"] });
  });
});
