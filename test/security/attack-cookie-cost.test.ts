/**
 * Attack: CPU amplification through the Cookie header. When the first `sid` value is refused, the
 * loader looks for later values of the name (cookie tossing, see duplicate-cookies.test.ts). It used
 * to split the whole header on ";" and run the cookie parser on every pair, percent-decoding each
 * value again: a refused `sid` in front of 16 000 small cookies (197 KB) cost about three times the
 * parse of the header itself (parse 6.9 ms, retry 19.9 ms), and `sid=x` followed by 100 000 bare ";"
 * cost 4 ms where the parse costs 1 µs, on every request, for anyone who can send a header. The scan
 * now searches for the name and parses only the pairs of that name (0.002 ms for both). The proof is
 * structural, as in bounded.test.ts: count the parser's calls; a property test pins the answers to
 * the previous implementation's.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";

const calls = vi.hoisted(() => ({ parse: 0 }));

vi.mock("cookie", async (importOriginal) => {
  const actual = await importOriginal<typeof import("cookie")>();
  return {
    ...actual,
    parse: (...args: Parameters<typeof actual.parse>) => {
      calls.parse++;
      return actual.parse(...args);
    },
  };
});

const { laterValues, parseCookies } = await import("../../src/transport/cookie.js");
const { harness, jarToken } = await import("../core/harness.js");

afterEach(() => {
  calls.parse = 0;
});

const others = (n: number, value = "vvvv") =>
  Array.from({ length: n }, (_, i) => `c${i}=${value}`).join("; ");

describe("a refused sid in front of 10 000 other cookies", () => {
  it("the retry for later sid values parses only pairs that can carry the name", () => {
    const header = `sid=garbage; ${others(10_000, "%41%42%43")}; sid=second`;
    expect(laterValues(header, "sid", 3)).toEqual(["second"]);
    // One parse per pair that mentions the name ("sid=garbage", "sid=second"), not one per pair.
    expect(calls.parse).toBeLessThanOrEqual(2);
  });

  it("names and values that merely contain the name are not parsed either", () => {
    const stuffed = Array.from({ length: 10_000 }, (_, i) => `sid${i}=sid%73id`).join("; ");
    expect(laterValues(`sid=garbage; ${stuffed}`, "sid", 3)).toEqual([]);
    expect(calls.parse).toBeLessThanOrEqual(1);
  });

  it("a refused sid followed by 100 000 bare semicolons is answered without a string per pair", () => {
    // No parser call to count here (an empty pair never reaches it): the old code split the header
    // on ";", 100 001 strings (4-12 ms on the 2-core machine). Counted, not timed: no split on ";".
    const header = `sid=garbage${";".repeat(100_000)}; sid=second`;
    const split = vi.spyOn(String.prototype, "split");
    try {
      expect(laterValues(header, "sid", 3)).toEqual(["second"]);
      expect(split.mock.calls.filter(([separator]) => (separator as unknown) === ";")).toEqual([]);
    } finally {
      split.mockRestore();
    }
  });

  it("a whole load parses the header once, plus the pairs that carry the name", async () => {
    const h = harness({ tokenCache: false });
    await h.request((s) => s.set("user", "ada"));
    const valid = jarToken(h.jar) as string;
    calls.parse = 0;
    const { session } = await h.request(() => {}, {
      cookie: `sid=garbage; ${others(10_000)}; sid=${valid}`,
      keepJar: true,
    });
    // The tossing defence still works: the later, valid value opens.
    expect(session.get("user")).toBe("ada");
    expect(calls.parse).toBeLessThanOrEqual(3);
  });

  it("still reads a later value exactly as the parser would: trimmed, decoded, name matched whole", () => {
    const header = "sid=first; xsid=no; sidx=no; \t sid \t= %41b ; a=sid; sid=third";
    expect(laterValues(header, "sid", 3)).toEqual(["Ab", "third"]);
  });

  it("answers what parsing every pair would answer, for any header", () => {
    // The reference: the previous implementation, which parsed each pair.
    const reference = (header: string, name: string, max: number) => {
      const values: string[] = [];
      let seenFirst = false;
      for (const pair of header.split(";")) {
        const value = parseCookies(pair)[name];
        if (value === undefined) continue;
        if (!seenFirst) {
          seenFirst = true;
          continue;
        }
        values.push(value);
        if (values.length === max) break;
      }
      return values;
    };
    const piece = fc.constantFrom("sid", "s", "id", "=", ";", " ", "\t", "%41", "%", "x", "\u00a0");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
        const header = parts.join("");
        expect(laterValues(header, "sid", 3)).toEqual(reference(header, "sid", 3));
      }),
      { numRuns: 5000 },
    );
  });
});
