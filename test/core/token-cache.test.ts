/**
 * The token cache: a cookie the manager accepted (or issued) skips its decryption or HMAC check on
 * the next request, and nothing else: deadlines, the schema and the store are still consulted.
 */

import { afterEach, describe, expect, it, vi } from "vitest";
import { backend } from "#crypto-backend";
import { ConfigError } from "../../src/errors.js";
import { TokenCache } from "../../src/internal/token-cache.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import { DAY, harness, SECRET, START } from "./harness.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("token cache", () => {
  it("opens a cookie once: the same cookie again is served without decrypting, as fresh data", async () => {
    const h = harness();
    await h.request((s) => s.set("n", 1));
    // The issued token is known already: even its first return costs no decryption.
    const open = vi.spyOn(backend, "open");
    const first = await h.request(
      (s) => {
        expect(s.get("n")).toBe(1);
        s.set("n", 99); // this request's copy only: the client keeps its old cookie below
      },
      { keepJar: true },
    );
    expect(first.session.get("n")).toBe(99);
    const second = await h.request();
    expect(second.session.get("n")).toBe(1);
    expect(open).not.toHaveBeenCalled();
    expect(h.invalid).toEqual([]);
  });

  it("opens every time with tokenCache: false", async () => {
    const h = harness({ tokenCache: false });
    await h.request((s) => s.set("n", 1));
    const open = vi.spyOn(backend, "open");
    await h.request();
    await h.request();
    expect(open).toHaveBeenCalledTimes(2);
  });

  it("still enforces the idle deadline of a cached token", async () => {
    const h = harness({ idleTimeout: "1d" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(2 * DAY);
    const expired = await h.request();
    expect(expired.session.get("n")).toBeUndefined();
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("never caches a refused token: a tampered cookie is checked and refused each time", async () => {
    const h = harness();
    await h.request((s) => s.set("n", 1));
    const token = h.jar.cookies.get("sid") as string;
    const last = token.at(-2) === "A" ? "B" : "A";
    const tampered = `sid=${token.slice(0, -2)}${last}${token.at(-1)}`;
    const open = vi.spyOn(backend, "open");
    await h.request(undefined, { cookie: tampered, keepJar: true });
    await h.request(undefined, { cookie: tampered, keepJar: true });
    expect(open).toHaveBeenCalledTimes(2);
    expect(h.invalid).toEqual(["tampered", "tampered"]);
  });

  it("keeps at most tokenCache entries, the oldest leaving first", async () => {
    const h = harness({ tokenCache: 2 });
    const cookies: string[] = [];
    for (let i = 0; i < 3; i++) {
      h.jar.cookies.clear();
      await h.request((s) => s.set("i", i));
      cookies.push(`sid=${h.jar.cookies.get("sid")}`);
    }
    const open = vi.spyOn(backend, "open");
    await h.request(undefined, { cookie: cookies[2], keepJar: true });
    await h.request(undefined, { cookie: cookies[1], keepJar: true });
    expect(open).not.toHaveBeenCalled();
    const oldest = await h.request(undefined, { cookie: cookies[0], keepJar: true });
    expect(open).toHaveBeenCalledTimes(1);
    expect(oldest.session.get("i")).toBe(0);
  });

  it("keeps a token in use while tokens seen once age out", async () => {
    const h = harness({ tokenCache: 4 });
    await h.request((s) => s.set("hot", true));
    const hot = `sid=${h.jar.cookies.get("sid")}`;
    const open = vi.spyOn(backend, "open");
    for (let i = 0; i < 10; i++) {
      h.jar.cookies.clear();
      await h.request((s) => s.set("i", i)); // a new session: one more token issued and cached
      const back = await h.request(undefined, { cookie: hot, keepJar: true });
      expect(back.session.get("hot")).toBe(true);
    }
    // Ten tokens issued since, more than the cache holds, and the one in use was never reopened.
    expect(open).not.toHaveBeenCalled();
  });

  it("never holds more than its bound, and keeps at least the newest half", () => {
    for (const max of [1, 2, 3, 5, 1000]) {
      const cache = new TokenCache<number>(max, 4096);
      const tokens = Array.from({ length: 3 * max + 7 }, (_, i) => `t${i}`);
      for (const [i, token] of tokens.entries()) cache.set(token, i);
      const answered = tokens.filter((token, i) => cache.get(token) === i).length;
      expect(answered).toBeLessThanOrEqual(max);
      expect(answered).toBeGreaterThanOrEqual(Math.max(1, Math.floor(max / 2)));
    }
  });

  it("with a store, skips the HMAC check and the id hash but still asks the store", async () => {
    const store = memoryStore({ now: () => START }); // the harness clock stays at START here
    const h = harness({ store });
    await h.request((s) => s.set("n", 1));
    const verify = vi.spyOn(backend, "verify");
    const sha256 = vi.spyOn(backend, "sha256");
    expect((await h.request()).session.get("n")).toBe(1);
    expect(verify).not.toHaveBeenCalled();
    expect(sha256).not.toHaveBeenCalled();
    // Destroyed by another request: the cached token no longer opens a session.
    const get = vi.spyOn(store, "get");
    const cookie = h.jar.header() as string;
    await h.request((s) => s.destroy());
    const after = await h.request(undefined, { cookie, keepJar: true });
    expect(get).toHaveBeenCalledTimes(2);
    expect(after.session.get("n")).toBeUndefined();
    expect(h.invalid).toEqual(["unknown-session"]);
  });

  it("refuses a tokenCache that is not a whole number from 0 to 1000000", () => {
    for (const tokenCache of [-1, 1.5, 2_000_000, "10" as unknown as number]) {
      expect(() => createSessions({ secret: SECRET, tokenCache })).toThrow(ConfigError);
    }
    expect(() => createSessions({ secret: SECRET, tokenCache: 0 })).not.toThrow();
  });
});
