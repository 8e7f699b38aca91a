/**
 * Any JSON object survives a cookie round trip in both modes, and a Standard Schema (Zod 4,
 * Valibot 1, ArkType 2) applies defaults and refuses data that does not conform.
 */
import { type } from "arktype";
import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createSessions, isSessionError } from "../../src/index.js";
import { type Harness, harness, jarToken, storeHarness } from "./harness.js";

/** Nested JSON objects with unicode keys and strings (any code point, lone surrogates included). */
const jsonObject = fc.dictionary(
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.jsonValue({ maxDepth: 4, stringUnit: "binary" }),
  { maxKeys: 8 },
);

describe("round trip of JSON data", () => {
  for (const mode of ["encrypted", "signed"] as const) {
    it(`returns any JSON object unchanged through a ${mode} cookie`, async () => {
      const h = harness({ mode, maxSize: 256_000 });
      await fc.assert(
        fc.asyncProperty(jsonObject, async (data) => {
          h.jar.cookies.clear();
          h.invalid.length = 0;
          const written = await h.request((s) => s.update(data));
          const keys = Object.keys(data);
          expect(written.lines.length > 0).toBe(keys.length > 0);
          const { session } = await h.request();
          expect(h.invalid).toEqual([]);
          expect(session.isNew).toBe(keys.length === 0);
          expect(JSON.stringify(session.data)).toBe(JSON.stringify(data));
          expect(session.data).toStrictEqual(JSON.parse(JSON.stringify(data)));
        }),
        { numRuns: 150 },
      );
    });
  }

  it("keeps a __proto__ key as data, not as the prototype", async () => {
    const h = harness();
    const data = JSON.parse('{"__proto__": {"isAdmin": true}, "plain": 1}') as Record<
      string,
      unknown
    >;
    await h.request((s) => s.update(data));
    const { session } = await h.request();
    expect(Object.keys(session.data)).toEqual(["__proto__", "plain"]);
    expect((session.data as { isAdmin?: unknown }).isAdmin).toBeUndefined();
    expect(Object.getPrototypeOf(session.data)).toBe(Object.prototype);
  });

  it("a signed cookie is readable by the client, an encrypted one is not", async () => {
    const signed = harness({ mode: "signed" });
    await signed.request((s) => s.set("visible", "hello-there"));
    const signedToken = jarToken(signed.jar) as string;
    const payload = signedToken.split(".")[2] as string;
    expect(Buffer.from(payload, "base64url").toString()).toContain('"visible":"hello-there"');

    const sealed = harness();
    await sealed.request((s) => s.set("visible", "hello-there"));
    const sealedToken = jarToken(sealed.jar) as string;
    expect(sealedToken.startsWith("e1.")).toBe(true);
    expect(
      Buffer.from(sealedToken.split(".")[2] as string, "base64url").toString("latin1"),
    ).not.toContain("hello-there");
  });
});

describe("schemas", () => {
  const cases = [
    ["Zod 4", z.object({ username: z.string().optional(), visits: z.number().default(0) })],
    [
      "Valibot 1",
      v.object({ username: v.optional(v.string()), visits: v.optional(v.number(), 0) }),
    ],
    ["ArkType 2", type({ "username?": "string", visits: "number = 0" })],
  ] as const;

  for (const [name, schema] of cases) {
    it(`applies ${name} defaults to a fresh session without writing a cookie`, async () => {
      const h = harness({ schema });
      const { session, lines } = await h.request();
      expect(session.data).toEqual({ visits: 0 });
      expect(lines).toEqual([]);
    });

    it(`round-trips ${name}-valid data`, async () => {
      const h = harness({ schema });
      await h.request((s) => {
        s.set("username", "ada");
        s.set("visits", ((s.get("visits") as number) ?? 0) + 1);
      });
      const { session } = await h.request();
      expect(session.data).toEqual({ username: "ada", visits: 1 });
      expect(h.invalid).toEqual([]);
    });

    it(`gives a fresh session and onInvalid("schema") for data that fails the ${name} schema`, async () => {
      const writer = harness();
      await writer.request((s) => s.set("visits", "many"));
      const h = harness({ schema });
      const { session, lines } = await h.request(() => {}, {
        cookie: `sid=${jarToken(writer.jar)}`,
      });
      expect(session.isNew).toBe(true);
      expect(session.data).toEqual({ visits: 0 });
      expect(h.invalid).toEqual(["schema"]);
      expect(h.events).toMatchObject([{ type: "invalid", reason: "schema" }]);
      // The refused cookie is cleared so the browser stops sending it.
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^sid=; Max-Age=0;/);
    });
  }

  it("fills a default the stored data lacks (a field added to the schema later)", async () => {
    const writer = harness();
    await writer.request((s) => s.set("username", "ada"));
    const h = harness({
      schema: z.object({ username: z.string().optional(), visits: z.number().default(0) }),
    });
    const { session } = await h.request(() => {}, { cookie: `sid=${jarToken(writer.jar)}` });
    expect(session.isNew).toBe(false);
    expect(session.data).toEqual({ username: "ada", visits: 0 });
  });
});

describe("a schema that does not describe an object", () => {
  const secret = "s".repeat(32);
  for (const [name, schema, said] of [
    ["Zod string", z.string(), "string"],
    ["Zod array", z.array(z.string()), "array"],
    ["ArkType number", type("number"), "number"],
  ] as const) {
    it(`${name} is a ConfigError at start-up, naming what the schema describes`, () => {
      let caught: unknown;
      try {
        createSessions({ secret, schema });
      } catch (err) {
        caught = err;
      }
      expect(isSessionError(caught, "ERR_CONFIG")).toBe(true);
      expect((caught as Error).message).toContain(`output is ${said}`);
    });
  }

  it("object schemas, unions, and schemas that cannot describe themselves are accepted", () => {
    for (const schema of [
      z.object({ a: z.string() }),
      z.record(z.string(), z.number()),
      z.union([z.object({ a: z.string() }), z.object({ b: z.number() })]),
      z.object({ n: z.string().transform(Number) }),
      z.any(),
      type({ "a?": "string" }),
      v.object({ a: v.string() }),
      v.string(), // Valibot cannot say what it describes: left to validation, which refuses it
    ]) {
      expect(() => createSessions({ secret, schema })).not.toThrow();
    }
  });
});

describe("data keys are any string", () => {
  it("get() of a key the session does not hold is undefined, even one Object.prototype has", async () => {
    const h = harness();
    const { session } = await h.request();
    expect(session.get("constructor")).toBeUndefined();
    expect(session.get("toString")).toBeUndefined();
    session.set("constructor", 1);
    expect(session.get("constructor")).toBe(1);
  });
});

describe("a write the schema refuses", () => {
  const schema = z.object({ theme: z.enum(["light", "dark"]).default("light") });

  it("throws ERR_SESSION_SCHEMA in the request that wrote it, naming the key, and saves nothing", async () => {
    const untyped: unknown = "purple"; // what a form or JSON body hands a handler
    // Untyped harnesses: the point is a value the types would have refused.
    const both: Harness[] = [harness({ schema }) as unknown as Harness, storeHarness({ schema })];
    for (const h of both) {
      await h.request((s) => s.regenerate({ userId: "u1" }));
      const before = h.jar.header();
      const err = await h
        .request((s) => s.set("theme", untyped))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(isSessionError(err, "ERR_SESSION_SCHEMA")).toBe(true);
      expect((err as Error).message).toContain("at theme");
      expect((err as Error).message).not.toContain("purple"); // a value never reaches a message
      // The visitor keeps the session they had: same cookie, still signed in, nothing lost.
      expect(h.jar.header()).toBe(before);
      const next = await h.request();
      expect(next.session.userId).toBe("u1");
      expect(next.session.get("theme")).toBe("light");
      expect(h.invalid).toEqual([]);
    }
  });

  it("also refuses a transform whose output fails the schema, before it is saved (README)", async () => {
    // A cookie holding "5" loads as 5; written back, 5 is no string: said at commit, not by a
    // sign-out on the next load.
    const schema = z.object({ n: z.string().transform(Number) });
    const h = harness({ schema }) as unknown as Harness;
    const plain = harness();
    await plain.request((s) => s.set("n", "5"));
    const err = await h
      .request(
        (s) => {
          expect(s.get("n")).toBe(5);
          s.set("n", 6);
        },
        { cookie: plain.jar.header() },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isSessionError(err, "ERR_SESSION_SCHEMA")).toBe(true);
  });
});
