/**
 * Property tests for every parser of client input: cookie header, token, chunks, durations, and
 * base64url on both crypto backends.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isBase64Url } from "../../src/crypto/backend.js";
import { backend as nodeBackend } from "../../src/crypto/backend-node.js";
import { backend as webBackend } from "../../src/crypto/backend-web.js";
import { parseDurationMs } from "../../src/internal/duration.js";
import {
  CHUNK_VALUE_BYTES,
  MAX_CHUNKS,
  parseCookies,
  readCookieToken,
  splitToken,
} from "../../src/transport/cookie.js";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Strings that look like Cookie headers: names, "=", ";", "%", quotes, spaces and any code point. */
const cookieish = fc.string({
  unit: fc.oneof(
    fc.constantFrom(
      "sid",
      "sid.0",
      "sid.1",
      "sid.99",
      "=",
      ";",
      " ",
      "%",
      "%zz",
      "%41",
      '"',
      ".",
      ",",
    ),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  ),
  maxLength: 60,
});

describe("cookie header parsing", () => {
  it("parseCookies and readCookieToken never throw on arbitrary header strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: "binary" }), cookieish),
        fc.integer({ min: 0, max: 20_000 }),
        (header, maxBytes) => {
          const cookies = parseCookies(header);
          const read = readCookieToken(cookies, "sid", maxBytes);
          expect(Array.isArray(read.present)).toBe(true);
          if (read.token !== undefined) {
            expect(read.token.length).toBeGreaterThan(0);
            expect(read.token.length).toBeLessThanOrEqual(maxBytes);
          }
          for (const name of read.present)
            expect(name === "sid" || /^sid\.\d{1,3}$/.test(name)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("parseCookies keeps a value that does not percent-decode as sent", () => {
    expect(parseCookies("sid=a%zzb; other=%E0%A4%A")).toMatchObject({
      sid: "a%zzb",
      other: "%E0%A4%A",
    });
    expect(parseCookies(null)).toEqual({});
    expect(parseCookies("")).toEqual({});
  });

  it("never reads past maxBytes and never more than MAX_CHUNKS chunks", () => {
    const cookies = Object.fromEntries(
      Array.from({ length: MAX_CHUNKS + 5 }, (_, i) => [`sid.${i}`, "A"]),
    );
    const read = readCookieToken(cookies, "sid", 1_000_000);
    expect(read.token).toBeUndefined();
    expect(read.oversized).toBe(true);
  });

  it("ignores cookies that merely share the prefix", () => {
    const read = readCookieToken(
      { "sid.x": "a", "sid.0000": "b", sidx: "c", "sid.": "d" },
      "sid",
      16_000,
    );
    expect(read).toEqual({ token: undefined, present: [], oversized: false });
  });
});

describe("token chunking", () => {
  it("split-then-join round-trips a token of any length, and every chunk fits a browser cookie", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_CHUNKS * CHUNK_VALUE_BYTES }),
        fc.constantFrom(...B64URL, "."),
        (length, fill) => {
          const token = `e1.${fill.repeat(length)}`.slice(0, length);
          const parts = splitToken("sid", token);
          const expected = Math.ceil(length / CHUNK_VALUE_BYTES);
          expect(parts).toHaveLength(expected);
          if (expected === 1) expect(parts[0]?.[0]).toBe("sid");
          else expect(parts.map(([name]) => name)).toEqual(parts.map((_, i) => `sid.${i}`));
          for (const [name, value] of parts)
            expect(name.length + 1 + value.length).toBeLessThanOrEqual(4096);
          const read = readCookieToken(
            Object.fromEntries(parts),
            "sid",
            MAX_CHUNKS * CHUNK_VALUE_BYTES,
          );
          expect(read.token).toBe(token);
          expect(read.oversized).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("joins chunks through a real Cookie header in any order the browser sends them", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: CHUNK_VALUE_BYTES + 1, max: 20_000 }),
        fc.nat(),
        (length, seed) => {
          const token = Array.from({ length }, (_, i) => B64URL[(i * 7 + seed) % 64]).join("");
          const parts = splitToken("sid", token);
          const shuffled = [...parts].sort(
            (a, b) => ((a[0].length * seed) % 7) - ((b[0].length * seed) % 7),
          );
          const header = shuffled.map(([name, value]) => `${name}=${value}`).join("; ");
          expect(readCookieToken(parseCookies(header), "sid", 20_000).token).toBe(token);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("durations", () => {
  const UNIT_MS = {
    ms: 1,
    s: 1_000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 604_800_000,
  } as const;
  const unit = fc.constantFrom(...(Object.keys(UNIT_MS) as Array<keyof typeof UNIT_MS>));

  it("parseDurationMs never throws, and answers undefined or a finite whole number of ms", () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.string(), fc.double(), cookieish), (input) => {
        const ms = parseDurationMs(input);
        if (ms !== undefined) {
          expect(Number.isInteger(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("answers undefined, not Infinity, for a number of seconds too large to express in ms", () => {
    expect(parseDurationMs(Number.MAX_VALUE)).toBeUndefined();
    expect(parseDurationMs(1e306)).toBeUndefined();
    expect(parseDurationMs(Number.POSITIVE_INFINITY)).toBeUndefined();
    expect(parseDurationMs(86_400)).toBe(86_400_000);
  });

  it("round-trips generated <n><unit> strings, single and compound", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 100_000 }), unit, fc.constantFrom("", " ")), {
          minLength: 1,
          maxLength: 4,
        }),
        (parts) => {
          const text = parts.map(([n, u, space]) => `${n}${space}${u}`).join(" ");
          const expected = parts.reduce((sum, [n, u]) => sum + n * UNIT_MS[u], 0);
          expect(parseDurationMs(text)).toBe(expected);
          expect(parseDurationMs(parts.map(([n, u]) => `${n}${u}`).join(""))).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("parses decimals and refuses the forms it does not know", () => {
    expect(parseDurationMs("1.5h")).toBe(5_400_000);
    expect(parseDurationMs("1h30m")).toBe(5_400_000);
    for (const bad of [
      "",
      " ",
      "h",
      "1",
      "1y",
      "-1h",
      "1h-",
      "1 hour",
      "1e3s",
      "1h;",
      `${"1".repeat(70)}s`,
    ]) {
      expect(parseDurationMs(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe("base64url on both backends", () => {
  it("runs on the backend SESSIONKIT_BACKEND selects", async () => {
    const { backend } = await import("#crypto-backend");
    expect(backend.name).toBe(process.env.SESSIONKIT_BACKEND === "web" ? "web" : "node");
  });

  const candidate = fc.oneof(
    fc.string({ unit: fc.constantFrom(...B64URL), maxLength: 80 }),
    fc.string({ unit: fc.constantFrom(...B64URL, "=", "+", "/", " ", ".", "\n"), maxLength: 40 }),
    fc.string({ unit: "binary", maxLength: 20 }),
  );

  it("isBase64Url and decodeBase64Url agree between the node and web backends", () => {
    fc.assert(
      fc.property(candidate, (text) => {
        const fromNode = nodeBackend.decodeBase64Url(text);
        const fromWeb = webBackend.decodeBase64Url(text);
        expect(fromNode === null).toBe(!isBase64Url(text));
        expect(fromWeb === null).toBe(!isBase64Url(text));
        if (fromNode && fromWeb) {
          expect(Buffer.from(fromNode).equals(Buffer.from(fromWeb))).toBe(true);
          // Canonical: decoding then encoding gives the same text back, on both backends.
          expect(nodeBackend.encodeBase64Url(fromNode)).toBe(text);
          expect(webBackend.encodeBase64Url(fromWeb)).toBe(text);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("encodes any bytes identically on both backends and decodes them back", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = nodeBackend.encodeBase64Url(bytes);
        expect(webBackend.encodeBase64Url(bytes)).toBe(text);
        expect(isBase64Url(text)).toBe(true);
        expect([...(webBackend.decodeBase64Url(text) ?? [])]).toEqual([...bytes]);
        expect([...(nodeBackend.decodeBase64Url(text) ?? [])]).toEqual([...bytes]);
      }),
      { numRuns: 1000 },
    );
  });

  it("seals on one backend and opens on the other", async () => {
    const ikm = new TextEncoder().encode("k".repeat(32));
    const aad = new TextEncoder().encode("e1.kid.\0sid");
    const [nodeKey, webKey] = await Promise.all([
      nodeBackend.deriveAesKey(ikm, "sessionkit/v1 seal"),
      webBackend.deriveAesKey(ikm, "sessionkit/v1 seal"),
    ]);
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 300 }), async (text) => {
        // Lone surrogates become U+FFFD on both backends, as TextEncoder does.
        const plain = new TextEncoder().encode(text);
        const byNode = await nodeBackend.seal(nodeKey, text, aad);
        const byWeb = await webBackend.seal(webKey, text, aad);
        expect(byNode.length).toBe(12 + plain.length + 16);
        expect([...((await webBackend.open(webKey, byNode, aad)) ?? [0])]).toEqual([...plain]);
        expect([...((await nodeBackend.open(nodeKey, byWeb, aad)) ?? [0])]).toEqual([...plain]);
      }),
      { numRuns: 100 },
    );
  });

  it("signs identically on both backends, and each verifies only the exact canonical MAC", async () => {
    const ikm = new TextEncoder().encode("k".repeat(32));
    const [nodeKey, webKey] = await Promise.all([
      nodeBackend.deriveHmacKey(ikm, "sessionkit/v1 sign"),
      webBackend.deriveHmacKey(ikm, "sessionkit/v1 sign"),
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.nat({ max: 42 }),
        async (data, at) => {
          const mac = await nodeBackend.sign(nodeKey, data);
          expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/);
          expect(await webBackend.sign(webKey, data)).toBe(mac);
          expect(await nodeBackend.verify(nodeKey, data, mac)).toBe(true);
          expect(await webBackend.verify(webKey, data, mac)).toBe(true);
          // Non-canonical last character (unused low bits set), a changed character, a
          // non-ASCII character whose low byte is the right one, and a truncation all fail.
          const last = B64URL.indexOf(mac.charAt(42));
          const variants = [
            mac.slice(0, 42) + B64URL.charAt(last | 1),
            mac.slice(0, at) + (mac.charAt(at) === "A" ? "B" : "A") + mac.slice(at + 1),
            mac.slice(0, at) + String.fromCharCode(mac.charCodeAt(at) + 0x100) + mac.slice(at + 1),
            mac.slice(0, 42),
          ];
          for (const wrong of variants) {
            expect(await nodeBackend.verify(nodeKey, data, wrong)).toBe(false);
            expect(await webBackend.verify(webKey, data, wrong)).toBe(false);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("decodes UTF-8 strictly on both backends: invalid bytes are null, never U+FFFD", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        let expected: string | null;
        try {
          expected = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        } catch {
          expected = null;
        }
        expect(nodeBackend.decodeUtf8(bytes)).toBe(expected);
        expect(webBackend.decodeUtf8(bytes)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
