/**
 * Session ids (OWASP: "Session ID Properties", "Session ID Entropy", "Session ID Content",
 * "Session ID Name Fingerprinting", storage): 256 bits from the platform CSPRNG, base64url, stored
 * only as SHA-256 hashes, compared in constant time, never in a log line or error.
 */

import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { backend } from "#crypto-backend";
import { backend as nodeBackend } from "../../src/crypto/backend-node.js";
import { backend as webBackend } from "../../src/crypto/backend-web.js";
import { generateSessionId, hashSessionId } from "../../src/crypto/id.js";
import { createSessions, type SessionEvent } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";
import { sqliteStore } from "../../src/stores/sqlite.js";
import { fakeClock, harness, jarToken, SECRET } from "../core/harness.js";

// Spies on node:crypto's CSPRNG and constant-time comparison, as the node backend imports them.
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return {
    ...actual,
    timingSafeEqual: vi.fn(actual.timingSafeEqual),
    randomFillSync: vi.fn(actual.randomFillSync),
  };
});
const nodeCrypto = await import("node:crypto");

afterEach(() => {
  vi.mocked(nodeCrypto.timingSafeEqual).mockClear();
  vi.mocked(nodeCrypto.randomFillSync).mockClear();
  vi.restoreAllMocks();
});

const ID = /^[A-Za-z0-9_-]{43}$/;

describe("session ids", () => {
  it("are 43 base64url characters: 32 bytes (256 bits) from the backend's CSPRNG", async () => {
    const randomBytes = vi.spyOn(backend, "randomBytes");
    const sessions = createSessions({ secret: SECRET });
    const session = await sessions.load(new Headers());
    expect(session.id).toMatch(ID);
    expect(randomBytes).toHaveBeenCalledWith(32);
    const bytes = randomBytes.mock.results[0]?.value as Uint8Array;
    expect(Buffer.from(bytes).toString("base64url")).toBe(session.id);
  });

  it("the node backend draws them from node:crypto randomFillSync, through a 4 KB pool", () => {
    // 200 ids take 6 400 bytes, more than one pool holds: at least one refill must happen.
    const ids = new Set(Array.from({ length: 200 }, () => generateSessionId(nodeBackend)));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(ID);
    expect(nodeCrypto.randomFillSync).toHaveBeenCalled();
  });

  it("the web backend draws them from crypto.getRandomValues", () => {
    const getRandomValues = vi.spyOn(globalThis.crypto, "getRandomValues");
    expect(generateSessionId(webBackend)).toMatch(ID);
    expect(getRandomValues).toHaveBeenCalled();
  });

  it("10 000 ids are distinct, and every one of their 256 bits is balanced", async () => {
    const sessions = createSessions({ secret: SECRET });
    const ids = new Set<string>();
    const ones = new Array<number>(256).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const { id } = await sessions.load(new Headers());
      expect(id).toMatch(ID);
      ids.add(id);
      const bytes = Buffer.from(id, "base64url");
      for (let bit = 0; bit < 256; bit++) {
        ones[bit] = (ones[bit] as number) + (((bytes[bit >> 3] as number) >> (bit & 7)) & 1);
      }
    }
    expect(ids.size).toBe(10_000);
    // 5 000 +- 6 standard deviations (50 each): a stuck or biased bit fails, chance does not.
    for (const count of ones) expect(Math.abs(count - 5_000)).toBeLessThan(300);
  });
});

describe("ids are stored only hashed", () => {
  async function signIn(
    store: ReturnType<typeof memoryStore> | ReturnType<typeof sqliteStore>,
    now: () => number,
  ) {
    const h = harness({ store, now });
    const { session } = await h.request(async (s) => {
      await s.regenerate({ userId: "alice" });
      s.set("user", "alice");
    });
    return { id: session.id, token: jarToken(h.jar) as string };
  }

  it("memory store: the key is base64url(SHA-256(id)); neither id nor token appears raw", async () => {
    const clock = fakeClock();
    const store = memoryStore({ now: clock.now });
    const { id, token } = await signIn(store, clock.now);
    const raw = [...store.rawEntries()];
    expect(raw).toHaveLength(1);
    const [key, json] = raw[0] as [string, string, number];
    expect(key).toBe(await hashSessionId(backend, id));
    expect(key).toBe(createHashB64(id));
    for (const text of [key, json]) {
      expect(text).not.toContain(id);
      expect(text).not.toContain(token.split(".")[3]);
    }
  });

  it("sqlite store: reading the table raw shows the hash only", async () => {
    const clock = fakeClock();
    const db = new Database(":memory:");
    const { id } = await signIn(sqliteStore({ db, now: clock.now }), clock.now);
    const rows = db.prepare("SELECT * FROM sessionkit_sessions").all() as Array<
      Record<string, unknown>
    >;
    expect(rows).toHaveLength(1);
    expect(rows[0]?.key).toBe(createHashB64(id));
    expect(JSON.stringify(rows)).not.toContain(id);
  });
});

function createHashB64(text: string): string {
  return nodeCrypto.createHash("sha256").update(text).digest("base64url");
}

describe("constant-time verification", () => {
  async function issued(options: Parameters<typeof harness>[0]) {
    // Without the token cache, which would answer for the token it issued without a MAC check.
    const h = harness({ tokenCache: false, ...options });
    await h.request((s) => s.set("user", "alice"));
    return { h, token: jarToken(h.jar) as string };
  }

  it("the node backend compares MACs with timingSafeEqual", async () => {
    const key = await nodeBackend.deriveHmacKey(new TextEncoder().encode(SECRET), "test");
    const data = "payload";
    const mac = await nodeBackend.sign(key, data);
    expect(await nodeBackend.verify(key, data, mac)).toBe(true);
    expect(nodeCrypto.timingSafeEqual).toHaveBeenCalledTimes(1);
  });

  it("the web backend verifies MACs with subtle.verify", async () => {
    const verify = vi.spyOn(globalThis.crypto.subtle, "verify");
    const key = await webBackend.deriveHmacKey(new TextEncoder().encode(SECRET), "test");
    const data = "payload";
    const mac = await webBackend.sign(key, data);
    expect(await webBackend.verify(key, data, mac)).toBe(true);
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it.each([
    ["signed cookie (s1)", { mode: "signed" as const }],
    ["store id token (i1)", { store: memoryStore() }],
  ])(
    "loading a %s verifies its MAC in constant time, accepted or tampered",
    async (_label, options) => {
      const clock = fakeClock();
      const { h, token } = await issued({
        ...options,
        now: clock.now,
        ...("store" in options ? { store: memoryStore({ now: clock.now }) } : {}),
      });
      const subtleVerify = vi.spyOn(globalThis.crypto.subtle, "verify");
      const constantTime = () =>
        backend.name === "node"
          ? vi.mocked(nodeCrypto.timingSafeEqual).mock.calls.length
          : subtleVerify.mock.calls.length;
      const before = constantTime();
      const ok = await h.request(() => {}, { cookie: `sid=${token}`, keepJar: true });
      expect(ok.session.data).toEqual({ user: "alice" });
      const mac = token.split(".").at(-1) as string;
      const flipped = `${mac[0] === "A" ? "B" : "A"}${mac.slice(1)}`;
      const bad = await h.request(() => {}, {
        cookie: `sid=${token.slice(0, -mac.length)}${flipped}`,
        keepJar: true,
      });
      expect(bad.session.isNew).toBe(true);
      expect(constantTime() - before).toBe(2);
    },
  );
});

describe("nothing leaks the id or the token (name fingerprinting, logs)", () => {
  it("the default cookie name is the generic sid", () => {
    expect(createSessions({ secret: SECRET }).cookieName).toBe("sid");
  });

  it("events, invalid reasons and errors never carry the id, token or secret", async () => {
    const events: SessionEvent[] = [];
    const clock = fakeClock();
    const h = harness({
      store: memoryStore({ now: clock.now }),
      now: clock.now,
      onEvent: (e) => events.push(e),
    });
    const { session } = await h.request(async (s) => {
      await s.regenerate({ userId: "alice" });
    });
    const token = jarToken(h.jar) as string;
    await h.request(() => {}, { cookie: `sid=${token}x`, keepJar: true });
    await h.request((s) => s.destroy());
    const errors: string[] = [];
    try {
      createSessions({ secret: SECRET.slice(0, 20) });
    } catch (err) {
      errors.push(String(err), JSON.stringify(err));
    }
    const cookieSessions = createSessions({ secret: SECRET, maxSize: 256 });
    const big = await cookieSessions.load(new Headers());
    try {
      big.set("blob", "x".repeat(1000));
    } catch (err) {
      errors.push(String(err));
    }
    expect(errors).toHaveLength(3);
    const said = JSON.stringify({ events, invalid: h.invalid, errors });
    expect(events.map((e) => e.type)).toEqual(["created", "invalid", "destroyed"]);
    for (const secretThing of [session.id, token, SECRET, SECRET.slice(0, 20), big.id]) {
      expect(said).not.toContain(secretThing);
    }
  });
});
