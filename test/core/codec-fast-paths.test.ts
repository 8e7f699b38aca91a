/**
 * The hand-written fast paths of the codec and transport, checked against what they replace, plus
 * the small correctness fixes that came with them (issue 3).
 */
import { serialize } from "cookie";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { utf8Length } from "../../src/internal/record.js";
import { type CookieSettings, createCookieWriter } from "../../src/transport/cookie.js";
import { counterIds, DAY, harness, jarToken } from "./harness.js";

const settingsArb: fc.Arbitrary<CookieSettings> = fc.record({
  name: fc.constantFrom("sid", "__Host-sid", "app_session"),
  path: fc.constantFrom("/", "/app", "/a-b/c"),
  domain: fc.constantFrom(undefined, "example.com", ".example.com"),
  httpOnly: fc.boolean(),
  secure: fc.constantFrom(true, false, "auto" as const),
  sameSite: fc.constantFrom("lax" as const, "strict" as const, "none" as const),
  partitioned: fc.boolean(),
  priority: fc.constantFrom(undefined, "low" as const, "medium" as const, "high" as const),
  persistent: fc.boolean(),
});

function reference(
  s: CookieSettings,
  secure: boolean,
  name: string,
  value: string,
  maxAge?: number,
) {
  return serialize(name, value, {
    encode: (v) => v,
    path: s.path,
    domain: s.domain,
    httpOnly: s.httpOnly,
    secure,
    sameSite: s.sameSite,
    partitioned: s.partitioned,
    priority: s.priority,
    maxAge,
    expires: maxAge === 0 ? new Date(0) : undefined,
  });
}

describe("Set-Cookie writer", () => {
  it("writes byte for byte what cookie.serialize writes, for every setting, lifetime and chunking", () => {
    fc.assert(
      fc.property(
        settingsArb,
        fc.boolean(),
        fc.constantFrom(undefined, 0, 1, 604800),
        fc.constantFrom(10, 4000, 4001, 9000),
        fc.subarray(["sid", "sid.0", "sid.1", "sid.2"]),
        (settings, secure, maxAge, length, present) => {
          const token = `e1.kid.${"A".repeat(length)}`;
          const writer = createCookieWriter(settings);
          const parts =
            token.length <= 4000
              ? [[settings.name, token]]
              : Array.from({ length: Math.ceil(token.length / 4000) }, (_, i) => [
                  `${settings.name}.${i}`,
                  token.slice(i * 4000, (i + 1) * 4000),
                ]);
          const written = new Set(parts.map(([name]) => name));
          const expected = [
            ...parts.map(([name, value]) =>
              reference(settings, secure, name as string, value as string, maxAge),
            ),
            ...present
              .filter((name) => !written.has(name))
              .map((name) => reference(settings, secure, name, "", 0)),
          ];
          expect(writer.write(secure, token, maxAge, present)).toEqual(expected);
          const cleared = [...new Set([...present, settings.name])];
          expect(writer.clear(secure, present)).toEqual(
            cleared.map((name) => reference(settings, secure, name, "", 0)),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("record size guard", () => {
  it("counts UTF-8 bytes exactly as TextEncoder encodes them, lone surrogates included", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 60 }), (text) => {
        expect(utf8Length(text)).toBe(new TextEncoder().encode(text).length);
      }),
      { numRuns: 3000 },
    );
    expect(utf8Length("\ud800")).toBe(3);
    expect(utf8Length("\udc00\ud800")).toBe(6);
    expect(utf8Length("😀")).toBe(4);
  });
});

describe("issue 3 correctness items", () => {
  it("gives a new session the configured lifetime as Max-Age (604800 for 7 days, not 604799)", async () => {
    // The absolute deadline counts from load; the commit comes a little later, as in production.
    const h = harness({ absoluteTimeout: "7d" });
    const { setCookies } = await h.request((s) => {
      s.set("n", 1);
      h.clock.advance(300);
    });
    expect(setCookies[0]?.maxAge).toBe((7 * DAY) / 1000);
  });

  it("a flash refused past maxSize leaves nothing to write, so commit sends no cookie", async () => {
    const h = harness({ maxSize: 400 });
    await h.request((s) => s.set("n", 1));
    const { lines, session } = await h.request((s) => {
      expect(() => s.flash("info", "x".repeat(500))).toThrow(/maxSize/);
      expect(s.isDirty).toBe(false);
    });
    expect(session.isNew).toBe(false);
    expect(lines).toEqual([]);
  });

  it("refuses a sealed body shorter than an IV and a tag as malformed, not tampered", async () => {
    const h = harness({ generateId: counterIds() });
    await h.request((s) => s.set("n", 1));
    const token = jarToken(h.jar) as string;
    const prefix = token.slice(0, token.indexOf(".", 3) + 1);
    for (const bytes of [1, 12, 27]) {
      h.invalid.length = 0;
      const body = Buffer.alloc(bytes, 7).toString("base64url");
      const { session } = await h.request(() => {}, {
        cookie: `sid=${prefix}${body}`,
        keepJar: true,
      });
      expect(session.isNew).toBe(true);
      expect(h.invalid).toEqual(["malformed"]);
    }
  });
});
