/**
 * Bad input is a fresh session (DESIGN invariant 8): every refused token gives an empty, new session
 * and exactly one onInvalid call with the right reason, and load never throws.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { InvalidReason } from "../../src/index.js";
import {
  counterIds,
  DAY,
  HOUR,
  harness,
  jarToken,
  MINUTE,
  OTHER_SECRET,
  SECRET,
} from "./harness.js";

const TOKEN_FAILURES: readonly InvalidReason[] = ["malformed", "unknown-key", "tampered"];

function b64(text: string): Buffer {
  return Buffer.from(text, "base64url");
}

/** Flips one bit of the decoded bytes of the last token part and re-encodes canonically. */
function flipDecodedBit(part: string, byteIndex: number, bit = 0): string {
  const bytes = b64(part);
  bytes[byteIndex] = (bytes[byteIndex] as number) ^ (1 << bit);
  return bytes.toString("base64url");
}

/** Issues a token holding `{ secret: "kept" }` and returns it with the harness that issued it. */
async function issued(options: Parameters<typeof harness>[0] = {}) {
  const h = harness({ generateId: counterIds(), ...options });
  await h.request((s) => s.set("note", "kept"));
  const token = jarToken(h.jar, h.sessions.cookieName);
  if (token === undefined) throw new Error("no token was issued");
  h.invalid.length = 0;
  return { h, token };
}

/** Loads one token as the `sid` cookie and returns the session and the reasons reported. */
async function loadToken(h: ReturnType<typeof harness>, token: string, cookieName = "sid") {
  h.invalid.length = 0;
  const { session, lines } = await h.request(() => {}, {
    cookie: `${cookieName}=${token}`,
    keepJar: true,
  });
  return { session, reasons: [...h.invalid], lines };
}

function expectFresh(
  result: Awaited<ReturnType<typeof loadToken>>,
  reason: InvalidReason | readonly InvalidReason[],
) {
  expect(result.session.isNew).toBe(true);
  expect(result.session.data).toEqual({});
  expect(result.reasons).toHaveLength(1);
  if (typeof reason === "string") expect(result.reasons[0]).toBe(reason);
  else expect(reason).toContain(result.reasons[0]);
}

describe("encrypted tokens: one case per tampered part", () => {
  it("accepts the untampered token (control case)", async () => {
    const { h, token } = await issued();
    const result = await loadToken(h, token);
    expect(result.session.isNew).toBe(false);
    expect(result.session.get("note")).toBe("kept");
    expect(result.reasons).toEqual([]);
  });

  it("refuses an unknown version prefix as malformed", async () => {
    const { h, token } = await issued();
    expectFresh(await loadToken(h, `e9${token.slice(2)}`), "malformed");
  });

  it("refuses a signed-format version on an encrypted-mode manager as malformed", async () => {
    const { h, token } = await issued();
    expectFresh(await loadToken(h, `s1${token.slice(2)}`), "malformed");
  });

  it("refuses a changed key id as unknown-key", async () => {
    const { h, token } = await issued();
    const [version, kid, body] = token.split(".") as [string, string, string];
    const otherKid = kid === "AAAAAA" ? "BBBBBB" : "AAAAAA";
    expectFresh(await loadToken(h, `${version}.${otherKid}.${body}`), "unknown-key");
  });

  it("refuses a flipped IV bit as tampered", async () => {
    const { h, token } = await issued();
    const [version, kid, body] = token.split(".") as [string, string, string];
    expectFresh(await loadToken(h, `${version}.${kid}.${flipDecodedBit(body, 5)}`), "tampered");
  });

  it("refuses a flipped ciphertext bit as tampered", async () => {
    const { h, token } = await issued();
    const [version, kid, body] = token.split(".") as [string, string, string];
    const middle = 12 + Math.floor((b64(body).length - 28) / 2);
    expectFresh(
      await loadToken(h, `${version}.${kid}.${flipDecodedBit(body, middle, 3)}`),
      "tampered",
    );
  });

  it("refuses a flipped tag bit as tampered", async () => {
    const { h, token } = await issued();
    const [version, kid, body] = token.split(".") as [string, string, string];
    const last = b64(body).length - 1;
    expectFresh(
      await loadToken(h, `${version}.${kid}.${flipDecodedBit(body, last, 7)}`),
      "tampered",
    );
  });

  it("refuses a non-canonical last character (unused low bits set) as malformed", async () => {
    const { h, token } = await issued();
    const rest = (token.length - token.lastIndexOf(".") - 1) % 4;
    // With 2 or 3 characters in the last quantum the low bits of the last character are unused.
    expect([2, 3]).toContain(rest);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(token.at(-1) as string);
    const sibling = alphabet[last ^ 1] as string;
    expectFresh(await loadToken(h, token.slice(0, -1) + sibling), "malformed");
  });
});

describe("signed tokens: one case per tampered part", () => {
  it("refuses a changed payload as tampered, even when the new payload is well-formed JSON", async () => {
    const { h, token } = await issued({ mode: "signed" });
    const [version, kid, payload, mac] = token.split(".") as [string, string, string, string];
    const json = b64(payload).toString("utf8");
    expect(json).toContain('"note":"kept"');
    const forged = Buffer.from(json.replace('"note":"kept"', '"note":"admin"')).toString(
      "base64url",
    );
    expectFresh(await loadToken(h, `${version}.${kid}.${forged}.${mac}`), "tampered");
  });

  it("refuses a flipped mac bit as tampered", async () => {
    const { h, token } = await issued({ mode: "signed" });
    const [version, kid, payload, mac] = token.split(".") as [string, string, string, string];
    expectFresh(
      await loadToken(h, `${version}.${kid}.${payload}.${flipDecodedBit(mac, 0)}`),
      "tampered",
    );
  });

  it("refuses a mac of the wrong length as malformed", async () => {
    const { h, token } = await issued({ mode: "signed" });
    expectFresh(
      await loadToken(h, `${token.slice(0, token.lastIndexOf(".") + 1)}AAAA`),
      "malformed",
    );
  });

  it("refuses a changed key id as unknown-key", async () => {
    const { h, token } = await issued({ mode: "signed" });
    const [version, , payload, mac] = token.split(".") as [string, string, string, string];
    expectFresh(await loadToken(h, `${version}.zzzzzz.${payload}.${mac}`), "unknown-key");
  });

  it("refuses an encrypted-format token on a signed-mode manager as malformed", async () => {
    const { token } = await issued();
    const { h } = await issued({ mode: "signed" });
    expectFresh(await loadToken(h, token), "malformed");
  });
});

describe("every bit of a token matters", () => {
  /** Every single-bit change of the token's characters that a client could still send in a header. */
  function bitFlips(token: string, picks?: Array<[number, number]>): string[] {
    const all: Array<[number, number]> =
      picks ??
      [...token].flatMap((_, i) =>
        [0, 1, 2, 3, 4, 5, 6, 7].map((bit): [number, number] => [i, bit]),
      );
    const out: string[] = [];
    for (const [i, bit] of all) {
      const flipped = String.fromCharCode(token.charCodeAt(i) ^ (1 << bit));
      const candidate = token.slice(0, i) + flipped + token.slice(i + 1);
      try {
        new Headers({ cookie: `sid=${candidate}` });
      } catch {
        continue; // NUL, CR, LF: no client can send these, so there is nothing to refuse.
      }
      out.push(candidate);
    }
    return out;
  }

  for (const mode of ["encrypted", "signed"] as const) {
    it(`refuses every single-bit flip of a short ${mode} token`, async () => {
      const { h, token } = await issued({ mode });
      expect(token.length).toBeLessThan(300);
      const flips = bitFlips(token);
      // Only the few flips producing NUL, CR or LF are unsendable.
      expect(flips.length).toBeGreaterThan(token.length * 8 - token.length);
      for (const candidate of flips) {
        const result = await loadToken(h, candidate);
        expect(result.session.isNew, candidate).toBe(true);
        expect(result.session.get("note")).toBeUndefined();
        expect(result.reasons).toHaveLength(1);
        expect(TOKEN_FAILURES).toContain(result.reasons[0]);
      }
    });
  }

  it("refuses a sample of single-bit flips of a long chunked token", async () => {
    const { h, token } = await issued({ maxSize: 64_000 });
    await h.request((s) => s.set("big", "x".repeat(9000)));
    const long = jarToken(h.jar) as string;
    expect(long.length).toBeGreaterThan(12_000);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: long.length - 1 }), fc.nat({ max: 7 }), async (i, bit) => {
        const [candidate] = bitFlips(long, [[i, bit]]);
        fc.pre(candidate !== undefined);
        const result = await loadToken(h, candidate as string);
        expect(result.session.isNew).toBe(true);
        expect(result.session.get("big")).toBeUndefined();
        expect(result.reasons).toHaveLength(1);
        expect(TOKEN_FAILURES).toContain(result.reasons[0]);
      }),
      { numRuns: 150 },
    );
    expect(token).not.toBe(long);
  });

  it("refuses every proper prefix of a token (truncation)", async () => {
    const { h, token } = await issued();
    for (let length = 0; length < token.length; length++) {
      const result = await loadToken(h, token.slice(0, length));
      expect(result.session.isNew, `prefix of ${length}`).toBe(true);
      expect(result.reasons).toHaveLength(1);
      expect(TOKEN_FAILURES).toContain(result.reasons[0]);
    }
  });

  it("refuses a token with one character appended", async () => {
    const { h, token } = await issued();
    expectFresh(await loadToken(h, `${token}A`), TOKEN_FAILURES);
  });
});

describe("tokens from elsewhere", () => {
  it("refuses a token sealed with another secret as unknown-key", async () => {
    const { token } = await issued({ secret: OTHER_SECRET });
    const { h } = await issued();
    expectFresh(await loadToken(h, token), "unknown-key");
  });

  it("refuses a token whose key id matches but whose secret differs as tampered", async () => {
    const { token } = await issued({ secret: { main: OTHER_SECRET } });
    const { h } = await issued({ secret: { main: SECRET } });
    expectFresh(await loadToken(h, token), "tampered");
  });

  it("refuses a token moved to another cookie name as tampered (the name is bound)", async () => {
    const { token } = await issued({ cookie: { name: "sid" } });
    const { h } = await issued({ cookie: { name: "app" } });
    expectFresh(await loadToken(h, token, "app"), "tampered");
  });

  it("refuses a signed token moved to another cookie name as tampered", async () => {
    const { token } = await issued({ mode: "signed", cookie: { name: "sid" } });
    const { h } = await issued({ mode: "signed", cookie: { name: "app" } });
    expectFresh(await loadToken(h, token, "app"), "tampered");
  });

  it("gives a fresh session with a known reason for arbitrary garbage and never throws", async () => {
    const { h } = await issued();
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 300 }), async (garbage) => {
        let headers: Headers;
        try {
          headers = new Headers({ cookie: `sid=${garbage}` });
        } catch {
          fc.pre(false);
          return;
        }
        h.invalid.length = 0;
        const session = await h.sessions.load(headers);
        expect(session.isNew).toBe(true);
        expect(session.data).toEqual({});
        expect(h.invalid.length).toBeLessThanOrEqual(1);
        for (const reason of h.invalid) expect([...TOKEN_FAILURES, "oversized"]).toContain(reason);
      }),
      { numRuns: 300 },
    );
  });

  it("gives a fresh session for garbage shaped like a token (version, key id, base64url body)", async () => {
    const { h, token } = await issued();
    const kid = token.split(".")[1] as string;
    const b64chars = fc.string({
      unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
      maxLength: 200,
    });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("e1", "s1", "i1"), b64chars, async (version, body) => {
        const result = await loadToken(h, `${version}.${kid}.${body}`);
        expect(result.session.isNew).toBe(true);
        expect(result.reasons).toHaveLength(1);
        expect(TOKEN_FAILURES).toContain(result.reasons[0]);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses an empty cookie value as malformed and clears it", async () => {
    const { h } = await issued();
    const result = await loadToken(h, "");
    expectFresh(result, "malformed");
    expect(result.lines).toHaveLength(1);
    expect(result.lines[0]).toMatch(/^sid=; Max-Age=0; /);
  });
});

describe("deadlines, by the fake clock", () => {
  it("refuses a cookie at its idle deadline and accepts it a millisecond before", async () => {
    const h = harness({ idleTimeout: "30m", absoluteTimeout: "1d", generateId: counterIds() });
    await h.request((s) => s.set("n", 1));
    const token = jarToken(h.jar) as string;
    h.clock.advance(30 * MINUTE - 1);
    const before = await loadToken(h, token);
    expect(before.session.get("n")).toBe(1);
    expect(before.reasons).toEqual([]);
    h.clock.advance(1);
    expectFresh(await loadToken(h, token), "expired-idle");
  });

  it("refuses a cookie past its absolute deadline while idle time remains", async () => {
    const h = harness({ idleTimeout: "30m", absoluteTimeout: "1h", generateId: counterIds() });
    await h.request((s) => s.set("n", 1));
    // Active use every 20 minutes keeps the idle deadline moving (touch interval: 7.5 minutes).
    for (let i = 0; i < 2; i++) {
      h.clock.advance(20 * MINUTE);
      const { session, lines } = await h.request();
      expect(session.get("n")).toBe(1);
      expect(lines).toHaveLength(1);
    }
    const token = jarToken(h.jar) as string;
    h.clock.advance(20 * MINUTE); // 60 minutes since creation, 20 since the last touch
    expectFresh(await loadToken(h, token), "expired-absolute");
    expect(h.events.at(-1)).toMatchObject({ type: "expired", reason: "absolute" });
  });

  it("refuses an old cookie replayed after its deadline even though the browser kept it", async () => {
    const h = harness({ idleTimeout: "1h", generateId: counterIds() });
    await h.request((s) => s.set("n", 1));
    const old = jarToken(h.jar) as string;
    h.clock.advance(2 * HOUR);
    expectFresh(await loadToken(h, old), "expired-idle");
  });

  it("clears an expired cookie on a response that writes nothing else", async () => {
    const h = harness({ idleTimeout: "1h" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(DAY);
    const { lines, headers } = await h.request();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sid=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; /);
    expect(headers.get("cache-control")).toBe("no-store");
    expect(h.jar.cookies.size).toBe(0);
  });
});

describe("hooks", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("a throwing onInvalid hook does not make load throw, and the hook's error is reported", async () => {
    const reported: unknown[] = [];
    vi.stubGlobal("reportError", (err: unknown) => reported.push(err));
    const h = harness({
      onInvalid: () => {
        throw new Error("hook bug");
      },
    });
    const session = await h.sessions.load(new Headers({ cookie: "sid=e1.garbage.token" }));
    expect(session.isNew).toBe(true);
    expect(reported).toHaveLength(1);
    expect(String(reported[0])).toContain("onInvalid");
    expect((reported[0] as Error).cause).toBeInstanceOf(Error);
    expect(String(reported[0])).not.toContain("garbage");
  });

  it("a throwing onEvent hook does not make commit throw", async () => {
    const reported: unknown[] = [];
    vi.stubGlobal("reportError", (err: unknown) => reported.push(err));
    const h = harness({
      onEvent: () => {
        throw new Error("audit log down");
      },
    });
    const { lines } = await h.request((s) => s.set("n", 1));
    expect(lines).toHaveLength(1);
    expect(reported).toHaveLength(1);
    expect(String(reported[0])).toContain("onEvent");
  });
});
