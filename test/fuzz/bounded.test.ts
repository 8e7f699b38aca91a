/**
 * Oversized requests are answered in bounded time and memory (issue 7): 100 cookies, a 64 KB Cookie
 * header, 1 000 chunk cookies and a 64 KB session header. The proof is structural: the reader looks up
 * at most MAX_CHUNKS + 1 of our cookie names whatever the header holds, an oversized token never
 * reaches base64 decoding or any cipher, and the answer is a fresh session with the right reason.
 * The timing bound at the end is only a generous sanity check.
 */

import { afterEach, describe, expect, it, vi } from "vitest";
import { backend } from "#crypto-backend";
import { memoryStore } from "../../src/stores/memory.js";
import {
  CHUNK_VALUE_BYTES,
  MAX_CHUNKS,
  MAX_CLEARED,
  parseCookies,
  readCookieToken,
} from "../../src/transport/cookie.js";
import { fakeClock, harness, jarToken } from "../core/harness.js";

const KB64 = 64 * 1024;

afterEach(() => {
  vi.restoreAllMocks();
});

/** Spies on every crypto entry point a token could reach. */
function spyCrypto() {
  return [
    vi.spyOn(backend, "decodeBase64Url"),
    vi.spyOn(backend, "open"),
    vi.spyOn(backend, "verify"),
    vi.spyOn(backend, "sha256"),
  ];
}

/** Wraps parsed cookies so every name the reader looks up is counted. */
function countingCookies(cookies: Record<string, string | undefined>) {
  const lookups: string[] = [];
  const proxy = new Proxy(cookies, {
    get(target, key, receiver) {
      if (typeof key === "string") lookups.push(key);
      return Reflect.get(target, key, receiver);
    },
  });
  return { proxy, lookups };
}

async function issuedToken(options: Parameters<typeof harness>[0] = {}) {
  // Without the token cache: these tests count the work of opening a token the server has not seen.
  const h = harness({ tokenCache: false, ...options });
  await h.request((s) => s.set("owner", "victim"));
  const token = jarToken(h.jar);
  if (!token) throw new Error("no token");
  h.invalid.length = 0;
  return { h, token };
}

function load(h: ReturnType<typeof harness>, headers: Record<string, string>) {
  return h.sessions.load(new Request("https://example.com/", { headers }));
}

describe("1 000 chunk cookies", () => {
  const header = Array.from({ length: 1000 }, (_, i) => `sid.${i}=${"A".repeat(40)}`).join("; ");

  it("the reader looks up at most MAX_CHUNKS + 1 names and refuses the set whole", () => {
    const { proxy, lookups } = countingCookies(parseCookies(header));
    const read = readCookieToken(proxy, "sid", 16_000);
    expect(read).toMatchObject({ token: undefined, oversized: true });
    expect(read.present).toHaveLength(1000);
    // One lookup of the plain name, then the chunks in order until MAX_CHUNKS.
    expect(lookups.length).toBeLessThanOrEqual(MAX_CHUNKS + 1);
    expect(
      lookups.filter((k) => /^sid\.\d+$/.test(k)).every((k) => Number(k.slice(4)) < MAX_CHUNKS),
    ).toBe(true);
  });

  it("answers a fresh session with reason oversized, without touching any cipher", async () => {
    const { h } = await issuedToken();
    const spies = spyCrypto();
    const session = await load(h, { cookie: header });
    expect(session.isNew).toBe(true);
    expect(session.data).toEqual({});
    expect(h.invalid).toEqual(["oversized"]);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });

  it("a refused set of chunks is cleared, MAX_CLEARED names a response, until none is left", async () => {
    const { h } = await issuedToken();
    let left = header.split("; ");
    let responses = 0;
    while (left.length > 0 && responses < 10) {
      const { lines } = await h.request(() => {}, { cookie: left.join("; ") });
      responses++;
      // Bounded per response: a clearing line per name of a 1 000-name header was 104 KB.
      expect(lines.length).toBeLessThanOrEqual(MAX_CLEARED + 1);
      expect(lines.every((l) => l.includes("Max-Age=0"))).toBe(true);
      const cleared = new Set(lines.map((l) => l.slice(0, l.indexOf("="))));
      left = left.filter((pair) => !cleared.has(pair.slice(0, pair.indexOf("="))));
    }
    // So the client stops sending them, over a handful of responses.
    expect(left).toEqual([]);
    expect(responses).toBe(Math.ceil(1000 / MAX_CLEARED));
  });
});

describe("a 64 KB Cookie header", () => {
  it("one 64 KB sid cookie: fresh, reason oversized, never decoded", async () => {
    const { h } = await issuedToken();
    const spies = spyCrypto();
    const session = await load(h, { cookie: `sid=e1.${"A".repeat(KB64)}` });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["oversized"]);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });

  it("64 KB of other cookies around a valid one: the valid one still opens, read once", async () => {
    const { h, token } = await issuedToken();
    const filler = Array.from({ length: 1600 }, (_, i) => `c${i}=${"x".repeat(36)}`).join("; ");
    expect(filler.length).toBeGreaterThan(KB64);
    const decode = vi.spyOn(backend, "decodeBase64Url");
    const session = await load(h, { cookie: `${filler}; sid=${token}` });
    expect(session.data).toEqual({ owner: "victim" });
    expect(decode).toHaveBeenCalledTimes(1);
  });

  it("64 KB of chunks, each within the chunk size: refused once the join passes maxSize", () => {
    const chunk = "A".repeat(CHUNK_VALUE_BYTES);
    const header = Array.from({ length: 16 }, (_, i) => `sid.${i}=${chunk}`).join("; ");
    const { proxy, lookups } = countingCookies(parseCookies(header));
    const read = readCookieToken(proxy, "sid", 16_000);
    expect(read).toMatchObject({ token: undefined, oversized: true });
    // The join stops at the chunk that crosses maxSize: 4 chunks of 4 000 bytes, then the fifth.
    expect(lookups.filter((k) => k.startsWith("sid.")).length).toBe(5);
  });

  it("a 64 KB session header is refused before decoding", async () => {
    const { h } = await issuedToken({ header: "x-session" });
    const spies = spyCrypto();
    const session = await load(h, { "x-session": `i1.${"A".repeat(KB64)}` });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["oversized"]);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

describe("100 cookies", () => {
  it("100 identical duplicated cookies open the original data once", async () => {
    const { h, token } = await issuedToken();
    const decode = vi.spyOn(backend, "decodeBase64Url");
    const header = Array.from({ length: 100 }, () => `sid=${token}`).join("; ");
    const session = await load(h, { cookie: header });
    expect(session.data).toEqual({ owner: "victim" });
    expect(h.invalid).toEqual([]);
    expect(decode).toHaveBeenCalledTimes(1);
  });

  it("of 100 sid cookies, four at most are tried: a stale one first still finds ours", async () => {
    const { h, token } = await issuedToken();
    const decode = vi.spyOn(backend, "decodeBase64Url");
    const header = ["sid=garbage", ...Array.from({ length: 99 }, () => `sid=${token}`)].join("; ");
    const session = await load(h, { cookie: header });
    expect(session.data).toEqual({ owner: "victim" });
    expect(h.invalid).toEqual(["malformed"]);
    expect(decode.mock.calls.length).toBeLessThanOrEqual(2);
  });

  it("100 refused sid cookies: four are tried, then a fresh session, not a search", async () => {
    const { h, token } = await issuedToken();
    const decode = vi.spyOn(backend, "decodeBase64Url");
    const tampered = `${token.slice(0, -2)}${token.endsWith("AA") ? "BA" : "AA"}`;
    const header = Array.from({ length: 100 }, () => `sid=${tampered}`).join("; ");
    const session = await load(h, { cookie: header });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["tampered", "tampered", "tampered", "tampered"]);
    expect(decode.mock.calls.length).toBeLessThanOrEqual(4);
  });

  it("100 store-mode cookies of other names cost no store lookup", async () => {
    const clock = fakeClock();
    const store = memoryStore({ now: clock.now });
    const { h } = await issuedToken({ store, now: clock.now });
    const get = vi.spyOn(store, "get");
    const header = Array.from({ length: 100 }, (_, i) => `n${i}=i1.x.y.z`).join("; ");
    const session = await load(h, { cookie: header });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual([]);
    expect(get).not.toHaveBeenCalled();
  });
});

describe("timing sanity bound", () => {
  // Not the proof (the structural tests above are): a generous bound that catches an accidental
  // quadratic path. 50 ms is ~100x what these requests take on the 2-core CI machine.
  it("each hostile request answers in under 50 ms, median of 20 runs", async () => {
    const { h } = await issuedToken({ header: "x-session" });
    const requests: Record<string, Record<string, string>> = {
      "100 cookies": {
        cookie: Array.from({ length: 100 }, (_, i) => `c${i}=${"v".repeat(20)}`).join("; "),
      },
      "64 KB Cookie header": { cookie: `sid=${"A".repeat(KB64)}` },
      "1 000 chunk cookies": {
        cookie: Array.from({ length: 1000 }, (_, i) => `sid.${i}=${"A".repeat(40)}`).join("; "),
      },
      "64 KB session header": { "x-session": "A".repeat(KB64) },
    };
    for (const [label, headers] of Object.entries(requests)) {
      const times: number[] = [];
      for (let run = 0; run < 20; run++) {
        const t0 = performance.now();
        const session = await load(h, headers);
        await h.sessions.commit(session, new Headers());
        times.push(performance.now() - t0);
        expect(session.isNew).toBe(true);
      }
      times.sort((a, b) => a - b);
      expect(times[10], label).toBeLessThan(50);
    }
  });
});
