/**
 * A hostile Cookie header must not cost a request far more than Node's own header parsing. The
 * session needs only the pairs named like its cookie (`sid`, `sid.0`, ...), but the whole header used
 * to go through the cookie parser: 16 KB of `a0=1; a1=1; ...` cost ~400 µs per request where the
 * rest of a load costs ~40 µs. `parseOwnCookies` finds our pairs by searching for the name and hands
 * only those to the parser. The proof is structural (what reaches the parser and the percent-decoder
 * is counted, never timed); a property test pins the answers to parse-the-whole-header-then-pick.
 * `laterOwnValues` does the same for the chunk-toss retry, which searched the header once per chunk
 * name the request carried (1 000 of them: ~15 ms per request).
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";

const handed = vi.hoisted(() => ({ headers: [] as string[] }));

vi.mock("cookie", async (importOriginal) => {
  const actual = await importOriginal<typeof import("cookie")>();
  return {
    ...actual,
    parse: (...args: Parameters<typeof actual.parse>) => {
      handed.headers.push(args[0]);
      return actual.parse(...args);
    },
  };
});

const { MAX_CHUNKS, laterOwnValues, laterValues, parseCookies, parseOwnCookies, readCookieToken } =
  await import("../../src/transport/cookie.js");

afterEach(() => {
  handed.headers.length = 0;
  vi.restoreAllMocks();
});

/** The pairs the parser was handed, counted as it counts them: one per ";"-separated piece. */
const pairsHanded = () => handed.headers.reduce((n, text) => n + text.split(";").length, 0);

const unrelated = (n: number, value: string) =>
  Array.from({ length: n }, (_, i) => `a${i}=${value}`).join("; ");

/** The previous read: the whole header parsed, then our name and chunk names picked. */
function reference(header: string, name: string) {
  const chunk = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.\\d{1,3}$`);
  const all = parseCookies(header);
  // fromEntries, not assignment: a cookie named "__proto__" stays an own key.
  return Object.fromEntries(Object.entries(all).filter(([key]) => key === name || chunk.test(key)));
}

const names = ["sid", "s", "a.b", "s$i+d*", "__proto__", "constructor", "sid.1"];
/** Cookie headers for `name`, in the shapes that trap a search for it. */
const headerFor = (name: string) => {
  const piece = fc.constantFrom(
    name,
    `${name}.0`,
    `${name}.1`,
    `${name}.01`,
    `${name}.00`,
    `${name}.10`,
    `${name}.001`,
    `${name}.999`,
    `${name}.1000`,
    `${name}.x`,
    `${name}.`,
    `x${name}`,
    `${name}x`,
    "=",
    ";",
    " ",
    "\t",
    '"',
    "%41",
    "%",
    "%zz",
    "%E0%A4%A",
    ".",
    "0",
    "\u00a0",
  );
  // Loose pieces in any order, and well-formed pairs with blanks and odd values.
  const loose = fc.array(fc.oneof(piece, fc.string({ maxLength: 2 })), { maxLength: 40 });
  const blank = fc.constantFrom("", " ", "\t", " \t ");
  const pair = fc
    .tuple(blank, piece, blank, blank, fc.array(piece, { maxLength: 4 }), blank)
    .map(([a, key, b, c, value, d]) => `${a}${key}${b}=${c}${value.join("")}${d}`);
  const pairs = fc
    .tuple(fc.array(pair, { maxLength: 12 }), fc.constantFrom(";", "; ", " ;", ";;"))
    .map(([list, separator]) => list.join(separator));
  return fc.oneof(
    loose.map((parts) => parts.join("")),
    pairs,
  );
};
/** Headers in the shapes that trap a name search, each with the cookie name to read. */
const headerCases = fc
  .constantFrom(...names)
  .chain((name) => fc.tuple(fc.constant(name), headerFor(name)));

/** Our reader's answer as a plain object, so it compares with the reference's. */
const own = (header: string, name: string) => ({ ...parseOwnCookies(header, name) });

describe("the cost of reading our cookies does not grow with unrelated pairs", () => {
  it("4 000 unrelated pairs around ours: the parser sees only our pair", () => {
    const header = `${unrelated(2000, "1")}; sid=token; ${unrelated(2000, "1")}`;
    const read = readCookieToken(parseOwnCookies(header, "sid"), "sid", 16_000);
    expect(read).toEqual({ token: "token", present: ["sid"], oversized: false });
    expect(pairsHanded()).toBeLessThanOrEqual(1);
  });

  it("4 000 unrelated %-encoded values: none is percent-decoded", () => {
    const decode = vi.spyOn(globalThis, "decodeURIComponent");
    const header = `${unrelated(4000, "%41%42%43")}; sid=t%2Dk`;
    expect(readCookieToken(parseOwnCookies(header, "sid"), "sid", 16_000).token).toBe("t-k");
    expect(pairsHanded()).toBeLessThanOrEqual(1);
    expect(decode).toHaveBeenCalledTimes(1);
  });

  it("4 000 unrelated pairs and no cookie of ours: nothing reaches the parser", () => {
    const read = readCookieToken(parseOwnCookies(unrelated(4000, "1"), "sid"), "sid", 16_000);
    expect(read).toEqual({ token: undefined, present: [], oversized: false });
    expect(handed.headers).toEqual([]);
  });

  it("4 000 names and values that merely contain ours: nothing reaches the parser", () => {
    const stuffed = Array.from({ length: 4000 }, (_, i) => `xsid${i}=sid=sid.0=%73id`).join("; ");
    expect(own(stuffed, "sid")).toEqual({});
    expect(handed.headers).toEqual([]);
  });

  it("4 000 repeats of our own name: only the first is parsed, as the parser keeps only the first", () => {
    const header = Array.from({ length: 4000 }, (_, i) => `sid=v${i}; sid.0=c${i}`).join("; ");
    expect(own(header, "sid")).toEqual({ sid: "v0", "sid.0": "c0" });
    expect(pairsHanded()).toBe(2);
  });

  it("a name repeated 5 000 times inside pairs costs one search per pair, not one per repeat", () => {
    const header = `x=${"sid".repeat(5000)}; ${"sid".repeat(5000)}; sid=t`;
    const indexOf = vi.spyOn(String.prototype, "indexOf");
    let read: Record<string, string | undefined>;
    let searches: number;
    try {
      read = own(header, "sid");
      searches = indexOf.mock.calls.filter(([needle]) => needle === "sid").length;
    } finally {
      indexOf.mockRestore();
    }
    expect(read).toEqual({ sid: "t" });
    // One search from the start, one after each ";" (two of them).
    expect(searches).toBeLessThanOrEqual(3);
  });

  it("past MAX_CHUNKS chunk names, every name is still reported so a refusal can clear them all", () => {
    const header = Array.from({ length: 1000 }, (_, i) => `sid.${i}=A`).join("; ");
    const read = readCookieToken(parseOwnCookies(header, "sid"), "sid", 16_000);
    expect(read).toMatchObject({ token: undefined, oversized: true });
    expect(read.present).toHaveLength(1000);
    expect(read.present.length).toBeGreaterThan(MAX_CHUNKS);
  });
});

describe("parseOwnCookies reads our pairs exactly as the parser reads them", () => {
  it("matches the name whole: a longer name ending or starting with ours is another cookie", () => {
    expect(own("xsid=a; sidx=b; sid_=c; sid=d", "sid")).toEqual({ sid: "d" });
  });

  it("ignores our name inside another cookie's value", () => {
    expect(own("other=sid=forged; o2= sid=forged; sid=real", "sid")).toEqual({ sid: "real" });
    expect(own("other=sid=forged", "sid")).toEqual({});
  });

  it("trims spaces and tabs around the name and value, and nothing else", () => {
    expect(own(" \t sid \t= \t%41b \t ;\tsid.0 =c", "sid")).toEqual({ sid: "Ab", "sid.0": "c" });
    // A no-break space is not a blank to the parser: that name is "\u00a0sid", not ours.
    expect(own("\u00a0sid=a", "sid")).toEqual({});
  });

  it("keeps a quoted value as the parser does", () => {
    expect(own('sid="quoted value"; sid.0="a"', "sid")).toEqual(
      reference('sid="quoted value"; sid.0="a"', "sid"),
    );
  });

  it("takes chunk names of one to three digits only, as readCookieToken does", () => {
    const header = "sid.0=a; sid.01=b; sid.999=c; sid.1000=d; sid.x=e; sid.=f; sid.1x=g; sid..1=h";
    expect(own(header, "sid")).toEqual({ "sid.0": "a", "sid.01": "b", "sid.999": "c" });
  });

  it("tells apart chunk names the parser tells apart, keeping the first of each", () => {
    const header = "sid.1=a; sid.01=b; sid.001=c; sid.10=d; sid.1=e; sid.01=f; sid.0=g; sid.00=h";
    expect(own(header, "sid")).toEqual({
      "sid.1": "a",
      "sid.01": "b",
      "sid.001": "c",
      "sid.10": "d",
      "sid.0": "g",
      "sid.00": "h",
    });
  });

  it("reads a header with no ';', empty pairs and pairs without '='", () => {
    expect(own("sid=one", "sid")).toEqual({ sid: "one" });
    expect(own(";;sid;sid.0;; ;sid=x;;", "sid")).toEqual({ sid: "x" });
    expect(own("sid=", "sid")).toEqual({ sid: "" });
    expect(parseOwnCookies(null, "sid")).toEqual({});
    expect(parseOwnCookies("", "sid")).toEqual({});
  });

  it("treats a name with regex-special characters as plain text", () => {
    expect(own("s$i+d*=a; sxid=b; s$i+d*.2=c", "s$i+d*")).toEqual({
      "s$i+d*": "a",
      "s$i+d*.2": "c",
    });
  });

  it("keeps a value that does not percent-decode as sent", () => {
    expect(own("sid=a%zzb; sid.0=%E0%A4%A", "sid")).toEqual({ sid: "a%zzb", "sid.0": "%E0%A4%A" });
  });

  it("answers what parsing the whole header and picking our names answers, for any header", () => {
    fc.assert(
      fc.property(headerCases, fc.integer({ min: 0, max: 40 }), ([name, text], maxBytes) => {
        expect(own(text, name)).toEqual(reference(text, name));
        expect(readCookieToken(parseOwnCookies(text, name), name, maxBytes)).toEqual(
          readCookieToken(parseCookies(text), name, maxBytes),
        );
      }),
      { numRuns: 10_000 },
    );
  });
});

describe("laterOwnValues", () => {
  it("answers what laterValues answers for each of our names, for any header", () => {
    fc.assert(
      fc.property(headerCases, fc.integer({ min: 1, max: 4 }), ([name, text], max) => {
        const later = laterOwnValues(text, name, max);
        for (const key of Object.keys(reference(text, name)))
          expect(later.get(key) ?? []).toEqual(laterValues(text, key, max));
        for (const key of later.keys()) expect(reference(text, name)).toHaveProperty([key]);
      }),
      { numRuns: 10_000 },
    );
  });

  it("1 000 chunk names sent once each: nothing reaches the parser", () => {
    const header = Array.from({ length: 1000 }, (_, i) => `sid.${i}=A`).join("; ");
    expect(laterOwnValues(header, "sid", 3).size).toBe(0);
    expect(handed.headers).toEqual([]);
  });

  it("64 chunk names sent 20 times each: at most `max` later values of each are parsed", () => {
    const header = Array.from({ length: 20 }, (_, round) =>
      Array.from({ length: 64 }, (_, i) => `sid.${i}=${round}`).join("; "),
    ).join("; ");
    const later = laterOwnValues(header, "sid", 3);
    expect(later.size).toBe(64);
    expect(later.get("sid.7")).toEqual(["1", "2", "3"]);
    expect(handed.headers.length).toBe(64 * 3);
  });

  it("searches the header for our name once, not once per chunk name", () => {
    const header = Array.from({ length: 64 }, (_, i) => `sid.${i}=A; sid.${i}=B`).join("; ");
    const indexOf = vi.spyOn(String.prototype, "indexOf");
    let needles: unknown[];
    try {
      laterOwnValues(header, "sid", 3);
      needles = indexOf.mock.calls.map(([needle]) => needle);
    } finally {
      indexOf.mockRestore();
    }
    expect(needles.filter((needle) => String(needle).startsWith("sid."))).toEqual([]);
    // One search from the start and one after each of the 127 ";".
    expect(needles.filter((needle) => needle === "sid").length).toBeLessThanOrEqual(128);
  });
});
