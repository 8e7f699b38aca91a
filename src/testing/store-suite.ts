import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSessions, type Sessions } from "../manager.js";
import type { SessionMeta, SessionPatch, SessionStore, StoredSession } from "../stores/store.js";
import { checkConcurrentCalls } from "./store-concurrency.js";
import { checkConcurrentRequests } from "./store-concurrency-requests.js";
import { checkAgainstCookies } from "./store-differential.js";
import { base64Url, checkAgainstModel, seedsToRun, storeKeyOf } from "./store-model.js";
import { checkMoveRaces, checkMoveSemantics } from "./store-move.js";

/** What the suite hands the store factory. */
export interface StoreSuiteContext {
  /** A fake clock (epoch ms) the suite controls; stores with `clock: "injected"` must read time only from it. */
  now: () => number;
}

/** How the suite drives one store. */
export interface StoreSuiteOptions {
  /**
   * "injected": the store honours `ctx.now` for expiry (memory, sqlite, postgres, mysql);
   * "server": the store uses its server's clock/TTL (redis) — expiry is then tested by writing
   * `expiresAt` already in the past (`Date.now() - 1000`), never by sleeping.
   */
  clock: "injected" | "server";
  /** Returns every raw persisted key/row/value as one string, to prove the raw session id never appears in storage. */
  dumpRaw: () => Promise<string>;
  /** Store-specific tests, run inside the suite's describe block. */
  extra?: () => void;
  /** Called after each test to wipe the store's data (e.g. TRUNCATE / FLUSH of its own keys). */
  reset?: () => Promise<void>;
}

const HOUR_MS = 3_600_000;
const CONCURRENT_WRITERS = 50;
const LARGE_SESSION_CHARS = 200 * 1024;
/** Random sequences per store and calls in each (store-model.ts). */
const MODEL_RUNS = 6;
const MODEL_STEPS = 150;
/** Random concurrency runs per store and rounds in each (store-concurrency*.ts). */
const CONCURRENCY_RUNS = 3;
const CONCURRENCY_ROUNDS = 20;
// Test-only: the suite's manager needs a secret of >= 32 characters; nothing it seals leaves the test.
const SUITE_SECRET = "sessionkit-store-conformance-suite-secret";

/**
 * The conformance suite every `SessionStore` runs: the edge cases of `stores/store.ts` against the
 * real backend, then the manager's guarantees through `createSessions` (strict ids, per-key patches
 * that lose no concurrent update, user indexes, the lock).
 *
 * `factory` is called once per test (so keep clients and pools outside it, created once); `reset`
 * runs after each test, then the store's `close()`. Optional methods (`listByUser`, `deleteByUser`,
 * `sweep`, `lock`) are tested when present and reported as skipped when absent.
 *
 * @example
 * ```ts
 * import { testStore } from "sessionkit/testing";
 * import { memoryStore } from "sessionkit/stores/memory";
 *
 * let store: ReturnType<typeof memoryStore>;
 * testStore("memory", (ctx) => (store = memoryStore({ now: ctx.now })), {
 *   clock: "injected",
 *   dumpRaw: async () => JSON.stringify([...store.rawEntries()]),
 * });
 * ```
 */
export function testStore(
  name: string,
  factory: (ctx: StoreSuiteContext) => SessionStore | Promise<SessionStore>,
  options: StoreSuiteOptions,
): void {
  const injected = options.clock === "injected";

  describe(`${name} store conformance`, () => {
    let clock = 0;
    const ctx: StoreSuiteContext = { now: () => clock };
    let store: SessionStore;

    beforeEach(async () => {
      // Real time as the start, so a server clock and the fake clock agree on what "later" means.
      clock = Date.now();
      store = await factory(ctx);
    });
    afterEach(async () => {
      await options.reset?.();
      await store.close?.();
    });

    const later = (ms = HOUR_MS) => clock + ms;
    const concurrencyRun = (seed: number) => ({
      store,
      now: ctx.now,
      advance: (ms: number) => {
        clock += ms;
      },
      randomKey,
      secret: SUITE_SECRET,
      seed,
      rounds: CONCURRENCY_ROUNDS,
    });
    /** Writes an entry that is past its deadline by the store's own clock, without sleeping. */
    async function setExpired(key: string, session: StoredSession): Promise<void> {
      if (injected) {
        await store.set(key, session, clock + 1000);
        clock += 1000; // expiresAt <= now is expired: the deadline instant itself counts
      } else {
        await store.set(key, session, Date.now() - 1000);
      }
    }

    describe("store calls", () => {
      it("resolves undefined for a key it never stored", async () => {
        expect(await store.get(randomKey())).toBeUndefined();
      });

      it("round-trips data and meta, including userId, flash message fields, the remember-me flag and the CSRF seed", async () => {
        const key = randomKey();
        const session: StoredSession = {
          data: { count: 3, nested: { list: [1, "two", null, true] }, empty: {} },
          meta: {
            ...metaAt(clock),
            userId: "user-1",
            "flash:0mjabc12300x1a2b3c": ["info", "one"],
            "flash:0mjabc12301x9z8y7w": ["error", "two"],
            userAgent: "Mozilla/5.0",
            ip: "203.0.113.7",
            label: "laptop",
            persistent: false,
            csrf: "q2Lx8Q0bXWv7cJmT4nKd1A",
          },
        };
        await store.set(key, session, later());
        expect(await store.get(key)).toEqual(session);
      });

      it("replaces the whole record when a key is set again", async () => {
        const key = randomKey();
        await store.set(
          key,
          { data: { a: 1, b: 2 }, meta: { ...metaAt(clock), label: "x" } },
          later(),
        );
        await store.set(key, { data: { c: 3 }, meta: metaAt(clock + 5) }, later());
        expect(await store.get(key)).toEqual({ data: { c: 3 }, meta: metaAt(clock + 5) });
      });

      it("treats an entry past its deadline as not found by get, patch and touch", async () => {
        const key = randomKey();
        await setExpired(key, { data: { a: 1 }, meta: metaAt(clock) });
        expect(await store.get(key)).toBeUndefined();
        expect(await store.patch(key, { set: { b: 2 }, delete: [] }, later())).toBe(false);
        expect(await store.touch(key, clock, later())).toBe(false);
        // Neither late write may have revived it.
        expect(await store.get(key)).toBeUndefined();
      });

      it.runIf(injected)("keeps an entry until the instant of its deadline", async () => {
        const key = randomKey();
        const deadline = clock + 1000;
        await store.set(key, { data: { a: 1 }, meta: metaAt(clock) }, deadline);
        clock = deadline - 1;
        expect(await store.get(key)).toEqual({ data: { a: 1 }, meta: metaAt(deadline - 1000) });
        clock = deadline;
        expect(await store.get(key)).toBeUndefined();
      });

      it("patch sets and deletes data keys, replacing top-level values whole", async () => {
        const key = randomKey();
        await store.set(key, { data: { a: 1, b: 2, c: { x: 1 } }, meta: metaAt(clock) }, later());
        const patch = { set: { b: 3, c: { y: 2 }, d: [4] }, delete: ["a", "never-there"] };
        expect(await store.patch(key, patch, later())).toBe(true);
        expect((await store.get(key))?.data).toEqual({ b: 3, c: { y: 2 }, d: [4] });
      });

      it("patch shallow-merges meta and a null field removes it, flash message fields included", async () => {
        const key = randomKey();
        const meta: SessionMeta = {
          ...metaAt(clock),
          userId: "u",
          label: "phone",
          "flash:0mjabc12300x1a2b3c": ["info", "a"],
          "flash:0mjabc12301x9z8y7w": ["error", "b"],
        };
        await store.set(key, { data: {}, meta }, later());
        // One message read (removed), one added: the other message's field is left as it was.
        const metaPatch: SessionPatch["meta"] = {
          touchedAt: clock + 7,
          label: null,
          "flash:0mjabc12300x1a2b3c": null,
          "flash:0mjabd0000000zzzzz": ["success", "c"],
          persistent: true,
        };
        expect(await store.patch(key, { set: {}, delete: [], meta: metaPatch }, later())).toBe(
          true,
        );
        const got = await store.get(key);
        expect(got?.meta).toEqual({
          ...metaAt(clock),
          touchedAt: clock + 7,
          userId: "u",
          "flash:0mjabc12301x9z8y7w": ["error", "b"],
          "flash:0mjabd0000000zzzzz": ["success", "c"],
          persistent: true,
        });
        expect(got?.meta).not.toHaveProperty("label");
      });

      it("patch sets, replaces and removes the CSRF seed as any meta field", async () => {
        const key = randomKey();
        await store.set(key, { data: { a: 1 }, meta: metaAt(clock) }, later());
        const seeds = ["q2Lx8Q0bXWv7cJmT4nKd1A", "Zm9vYmFyYmF6cXV4cXV1dQ"];
        for (const csrf of seeds) {
          expect(await store.patch(key, { set: {}, delete: [], meta: { csrf } }, later())).toBe(
            true,
          );
          expect(await store.get(key)).toEqual({
            data: { a: 1 },
            meta: { ...metaAt(clock), csrf },
          });
        }
        const cleared = { set: {}, delete: [], meta: { csrf: null } };
        expect(await store.patch(key, cleared, later())).toBe(true);
        const got = await store.get(key);
        expect(got).toEqual({ data: { a: 1 }, meta: metaAt(clock) });
        expect(got?.meta).not.toHaveProperty("csrf");
      });

      it.runIf(injected)("patch moves the deadline", async () => {
        const key = randomKey();
        const start = clock;
        await store.set(key, { data: { a: 1 }, meta: metaAt(start) }, start + 1000);
        expect(await store.patch(key, { set: { b: 2 }, delete: [] }, start + 5000)).toBe(true);
        clock = start + 2000;
        expect((await store.get(key))?.data).toEqual({ a: 1, b: 2 });
        clock = start + 5000;
        expect(await store.get(key)).toBeUndefined();
      });

      it("patch of a missing key resolves false and creates nothing", async () => {
        const key = randomKey();
        const userId = `ghost-${randomKey()}`;
        const patch = { set: { a: 1 }, delete: [], meta: { userId, touchedAt: clock } };
        expect(await store.patch(key, patch, later())).toBe(false);
        expect(await store.get(key)).toBeUndefined();
        expect(await options.dumpRaw()).not.toContain(key);
        if (store.listByUser) expect(await store.listByUser(userId)).toEqual([]);
      });

      it("touch of a missing key resolves false and creates nothing", async () => {
        const key = randomKey();
        expect(await store.touch(key, clock, later())).toBe(false);
        expect(await store.get(key)).toBeUndefined();
        expect(await options.dumpRaw()).not.toContain(key);
      });

      it("touch moves the deadline and records touchedAt, leaving the rest", async () => {
        const key = randomKey();
        const start = clock;
        const meta = { ...metaAt(start), label: "kept" };
        await store.set(key, { data: { a: 1 }, meta }, start + 1000);
        if (injected) {
          expect(await store.touch(key, start + 500, start + 5000)).toBe(true);
          clock = start + 2000;
          expect(await store.get(key)).toEqual({
            data: { a: 1 },
            meta: { ...meta, touchedAt: start + 500 },
          });
          clock = start + 5000;
          expect(await store.get(key)).toBeUndefined();
        } else {
          expect(await store.touch(key, start + 500, Date.now() + 2 * HOUR_MS)).toBe(true);
          expect(await store.get(key)).toEqual({
            data: { a: 1 },
            meta: { ...meta, touchedAt: start + 500 },
          });
          // A deadline moved into the past by the server's clock ends the entry: the deadline did move.
          expect(await store.touch(key, start + 600, Date.now() - 1000)).toBe(true);
          expect(await store.get(key)).toBeUndefined();
        }
      });

      it("delete removes the entry and resolves true; a missing key resolves false", async () => {
        const key = randomKey();
        await store.set(key, { data: { a: 1 }, meta: metaAt(clock) }, later());
        expect(await store.delete(key)).toBe(true);
        expect(await store.get(key)).toBeUndefined();
        // The second of two removers learns that it lost: the manager's id move relies on this.
        expect(await store.delete(key)).toBe(false);
        expect(await store.delete(randomKey())).toBe(false);
      });

      it("delete of an entry bound to a user resolves true, then false", async () => {
        const key = randomKey();
        await store.set(key, { data: {}, meta: { ...metaAt(clock), userId: "ivy" } }, later());
        expect(await store.delete(key)).toBe(true);
        expect(await store.delete(key)).toBe(false);
        if (store.listByUser) expect(await store.listByUser("ivy")).toEqual([]);
      });

      it(`keeps every key of ${CONCURRENT_WRITERS} concurrent patches to one entry`, async () => {
        const key = randomKey();
        await store.set(key, { data: { base: true }, meta: metaAt(clock) }, later());
        const results = await Promise.all(
          Array.from({ length: CONCURRENT_WRITERS }, (_, i) =>
            store.patch(key, { set: { [`k${i}`]: i }, delete: [] }, later()),
          ),
        );
        expect(results.every((applied) => applied === true)).toBe(true);
        const expected: Record<string, unknown> = { base: true };
        for (let i = 0; i < CONCURRENT_WRITERS; i++) expected[`k${i}`] = i;
        expect((await store.get(key))?.data).toEqual(expected);
      });

      it("concurrent patches, touches, gets, deletes and deleteByUser of one entry are explained by some serial order", async () => {
        for (const seed of seedsToRun(CONCURRENCY_RUNS))
          await checkConcurrentCalls(concurrencyRun(seed));
      });

      it("patch deletes any mix of names at once, hundreds with non-ASCII names included", async () => {
        const key = randomKey();
        const names = ["a", "b", "é", "c", "ключ", "🚀", "d", "x\ufdd0", "end "];
        for (let i = 0; i < 600; i++) names.push(`k${i}`, `ключ${i}`);
        const data: Record<string, unknown> = { kept: 1 };
        for (const name of names) data[name] = name.length;
        await store.set(key, { data, meta: metaAt(clock) }, later());
        // "é" third after two removed names, as MariaDB's JSON_REMOVE got wrong (mysql.ts), then the
        // rest with the two kinds interleaved.
        const remove = names;
        // Removals alone, as a clear() sends them (a set changed what MariaDB got wrong).
        expect(await store.patch(key, { set: {}, delete: remove }, later())).toBe(true);
        expect((await store.get(key))?.data).toEqual({ kept: 1 });
      });

      it("keeps NUL and U+FDD0 in values, data keys, meta and user ids", async (t) => {
        const key = randomKey();
        const odd = "a\u0000b\ufdd0c\ufdd00\\u0000";
        const meta = { ...metaAt(clock), userId: `u${odd}`, label: odd };
        await store.set(key, { data: { [odd]: odd, list: [odd] }, meta }, later());
        await store.patch(
          key,
          { set: { more: odd }, delete: [odd], meta: { userAgent: odd } },
          later(),
        );
        expect(await store.get(key)).toEqual({
          data: { list: [odd], more: odd },
          meta: { ...meta, userAgent: odd },
        });
        if (!store.listByUser) return t.skip("the store has no listByUser");
        expect((await store.listByUser(`u${odd}`)).map((entry) => entry.key)).toEqual([key]);
        expect(await store.listByUser("u")).toEqual([]);
      });

      it("agrees with a model of the contract over random sequences of calls", async () => {
        for (const seed of seedsToRun(MODEL_RUNS)) {
          await checkAgainstModel({
            store,
            clock: options.clock,
            now: injected ? ctx.now : Date.now,
            advance: (ms) => {
              clock += ms;
            },
            randomKey,
            seed,
            steps: MODEL_STEPS,
          });
        }
      });

      it("round-trips a 200 KB session", async () => {
        const key = randomKey();
        const blob = largeText(LARGE_SESSION_CHARS);
        await store.set(key, { data: { blob, after: 1 }, meta: metaAt(clock) }, later());
        const got = await store.get(key);
        expect(got?.data.blob).toBe(blob);
        expect(got?.data.after).toBe(1);
      });

      it("round-trips unicode keys and values and keeps __proto__ as a data key", async () => {
        const key = randomKey();
        // JSON.parse makes "__proto__" an own data property, as a parsed request body would.
        const data = JSON.parse(
          '{"__proto__":{"polluted":true},"emoji 🎉":"👩‍💻✨","键":"値 — ü","ключ":"значение"}',
        );
        await store.set(key, { data, meta: { ...metaAt(clock), label: "手机 📱" } }, later());
        const first = await store.get(key);
        expect(first?.data["emoji 🎉"]).toBe("👩‍💻✨");
        expect(first?.data.键).toBe("値 — ü");
        expect(first?.data.ключ).toBe("значение");
        expect(first?.meta.label).toBe("手机 📱");
        expect(Object.hasOwn(first?.data ?? {}, "__proto__")).toBe(true);
        expect(Object.getPrototypeOf(first?.data)).toBe(Object.prototype);

        const patch = JSON.parse('{"set":{"__proto__":{"again":1},"新":"🚀"},"delete":["ключ"]}');
        expect(await store.patch(key, patch, later())).toBe(true);
        const second = await store.get(key);
        expect(Object.getOwnPropertyDescriptor(second?.data, "__proto__")?.value).toEqual({
          again: 1,
        });
        expect(second?.data.新).toBe("🚀");
        expect(second?.data).not.toHaveProperty("ключ");
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(({} as Record<string, unknown>).again).toBeUndefined();
      });

      it("listByUser returns the live entries of one user with key and deadline", async (t) => {
        if (!store.listByUser) return t.skip("the store has no listByUser");
        const [k1, k2, k3] = [randomKey(), randomKey(), randomKey()];
        const deadline = later();
        await store.set(
          k1,
          { data: { n: 1 }, meta: { ...metaAt(clock), userId: "alice" } },
          deadline,
        );
        await store.set(
          k2,
          { data: { n: 2 }, meta: { ...metaAt(clock), userId: "alice" } },
          deadline,
        );
        await store.set(
          k3,
          { data: { n: 3 }, meta: { ...metaAt(clock), userId: "bob" } },
          deadline,
        );
        const entries = await store.listByUser("alice");
        expect(entries.map((e) => e.key).sort()).toEqual([k1, k2].sort());
        const first = entries.find((e) => e.key === k1);
        expect(first).toEqual({
          key: k1,
          expiresAt: deadline,
          data: { n: 1 },
          meta: { ...metaAt(clock), userId: "alice" },
        });
        expect(await store.listByUser("nobody")).toEqual([]);
      });

      it("the user index follows set, re-set without userId and delete", async (t) => {
        if (!store.listByUser) return t.skip("the store has no listByUser");
        const [k1, k2, k3] = [randomKey(), randomKey(), randomKey()];
        for (const k of [k1, k2, k3])
          await store.set(k, { data: {}, meta: { ...metaAt(clock), userId: "carol" } }, later());
        await store.delete(k1);
        await store.set(k2, { data: {}, meta: metaAt(clock) }, later());
        await store.set(k3, { data: {}, meta: { ...metaAt(clock), userId: "dave" } }, later());
        expect(await store.listByUser("carol")).toEqual([]);
        expect((await store.listByUser("dave")).map((e) => e.key)).toEqual([k3]);
      });

      it("deleteByUser removes a user's entries except the keys given and resolves the count", async (t) => {
        if (!store.deleteByUser) return t.skip("the store has no deleteByUser");
        const keys = [randomKey(), randomKey(), randomKey()];
        const other = randomKey();
        for (const k of keys)
          await store.set(k, { data: {}, meta: { ...metaAt(clock), userId: "erin" } }, later());
        await store.set(other, { data: {}, meta: { ...metaAt(clock), userId: "frank" } }, later());
        expect(await store.deleteByUser("erin", [keys[1] as string])).toBe(2);
        expect(await store.get(keys[0] as string)).toBeUndefined();
        expect(await store.get(keys[1] as string)).toBeDefined();
        expect(await store.get(keys[2] as string)).toBeUndefined();
        expect(await store.get(other)).toBeDefined();
        expect(await store.deleteByUser("erin")).toBe(1);
        expect(await store.deleteByUser("erin")).toBe(0);
        if (store.listByUser) expect(await store.listByUser("erin")).toEqual([]);
      });

      it("deleteByUser also spares an entry whose meta.lineage is among the exceptions", async (t) => {
        if (!store.deleteByUser) return t.skip("the store has no deleteByUser");
        // The manager keeps "this device" by key and by lineage: another request may have moved
        // it to a new key, carrying the lineage, since the request signing the others out loaded it.
        const [moved, other, plain] = [randomKey(), randomKey(), randomKey()];
        const lineage = randomKey();
        const meta = { ...metaAt(clock), userId: "ivy" };
        await store.set(moved, { data: { n: 1 }, meta: { ...meta, lineage } }, later());
        await store.set(other, { data: {}, meta: { ...meta, lineage: randomKey() } }, later());
        await store.set(plain, { data: {}, meta }, later());
        expect(await store.deleteByUser("ivy", [randomKey(), lineage])).toBe(2);
        expect((await store.get(moved))?.data).toEqual({ n: 1 });
        expect(await store.get(other)).toBeUndefined();
        expect(await store.get(plain)).toBeUndefined();
        expect(await store.deleteByUser("ivy")).toBe(1);
      });

      it("deleteByUser counts only the entries that were live, as listByUser lists them", async (t) => {
        if (!store.deleteByUser) return t.skip("the store has no deleteByUser");
        const [alive, kept, expired] = [randomKey(), randomKey(), randomKey()];
        const as = { data: {}, meta: { ...metaAt(clock), userId: "gina" } };
        await store.set(alive, as, later());
        await store.set(kept, as, later());
        await setExpired(expired, as);
        expect(await store.deleteByUser("gina", [kept])).toBe(1);
        expect(await store.get(alive)).toBeUndefined();
        expect(await store.get(kept)).toBeDefined();
        // The expired one is left to sweep: its next request still learns it timed out.
        if (injected && store.expiredMeta)
          expect(await store.expiredMeta(expired)).toEqual(as.meta);
      });

      it("keeps user ids that differ only in trailing spaces apart", async (t) => {
        if (!store.listByUser || !store.deleteByUser) return t.skip("the store has no user index");
        const [mine, theirs] = [randomKey(), randomKey()];
        await store.set(mine, { data: {}, meta: { ...metaAt(clock), userId: "hal" } }, later());
        await store.set(theirs, { data: {}, meta: { ...metaAt(clock), userId: "hal " } }, later());
        expect((await store.listByUser("hal")).map((e) => e.key)).toEqual([mine]);
        expect(await store.deleteByUser("hal")).toBe(1);
        expect(await store.get(theirs)).toBeDefined();
        expect((await store.listByUser("hal ")).map((e) => e.key)).toEqual([theirs]);
      });

      it("stores a string with a lone surrogate (a .slice() through an emoji) rather than failing", async () => {
        const key = randomKey();
        const cut = "🚀🚀".slice(0, 3);
        const text = "literal \\ud800 text"; // the escape's spelling, not a surrogate: kept as it is
        await store.set(key, { data: { cut, text }, meta: metaAt(clock) }, later());
        await store.patch(key, { set: { later: cut, [cut]: 1 }, delete: [] }, later());
        const got = await store.get(key);
        // Kept whole, or as TextEncoder (and so a cookie session) has it: the lone half is U+FFFD.
        const either = [cut, "🚀\ufffd"];
        expect(either).toContain(got?.data.cut);
        expect(either).toContain(got?.data.later);
        expect(got?.data.text).toBe(text);
        await store.patch(key, { set: {}, delete: [cut] }, later());
        expect(Object.keys((await store.get(key))?.data ?? {}).sort()).toEqual([
          "cut",
          "later",
          "text",
        ]);
      });

      it("refuses a value JSON cannot hold (a BigInt) with its TypeError, not as an outage", async () => {
        const key = randomKey();
        await store.set(key, { data: { a: 1 }, meta: metaAt(clock) }, later());
        const bad = { data: { n: 1n }, meta: metaAt(clock) };
        await expect(store.set(key, bad, later())).rejects.toBeInstanceOf(TypeError);
        const patch = { set: { n: 1n }, delete: ["a"] };
        await expect(store.patch(key, patch, later())).rejects.toBeInstanceOf(TypeError);
        expect((await store.get(key))?.data).toEqual({ a: 1 });
      });

      it.runIf(injected)(
        "sweep removes exactly the expired entries and resolves their count",
        async (t) => {
          if (!store.sweep) return t.skip("the store has no sweep");
          const start = clock;
          const dead = [randomKey(), randomKey(), randomKey()];
          const live = [randomKey(), randomKey()];
          for (const [i, k] of dead.entries())
            await store.set(k, { data: { i }, meta: metaAt(start) }, start + 100 + i);
          for (const k of live) await store.set(k, { data: {}, meta: metaAt(start) }, start + 103);
          expect(await store.sweep(start + 102)).toBe(3);
          clock = start + 102;
          for (const k of live) expect(await store.get(k)).toBeDefined();
          // The swept rows are gone from storage, not merely hidden by the read-time check.
          const raw = await options.dumpRaw();
          for (const k of dead) expect(raw).not.toContain(k);
          expect(await store.sweep(start + 102)).toBe(0);
        },
      );

      it.runIf(injected)(
        "expiredMeta gives the meta of an entry held past its deadline, and nothing for a live, deleted or unknown one",
        async (t) => {
          if (!store.expiredMeta) return t.skip("the store has no expiredMeta");
          const key = randomKey();
          const meta = { ...metaAt(clock), userId: "kim", label: "phone" };
          const deadline = clock + 1000;
          await store.set(key, { data: { a: 1 }, meta }, deadline);
          clock = deadline - 1;
          expect(await store.expiredMeta(key)).toBeUndefined(); // live: get still answers
          clock = deadline;
          expect(await store.get(key)).toBeUndefined();
          expect(await store.expiredMeta(key)).toEqual(meta);
          // Only a read: asking twice finds it again, and the manager's delete removes it.
          expect(await store.expiredMeta(key)).toEqual(meta);
          await store.delete(key);
          expect(await store.expiredMeta(key)).toBeUndefined();
          expect(await store.expiredMeta(randomKey())).toBeUndefined();
        },
      );

      it.runIf(injected)(
        "a record written already past its deadline is hidden, and expiredMeta says why it ended",
        async (t) => {
          if (!store.expiredMeta) return t.skip("the store has no expiredMeta");
          // A session that ended during the request that wrote it (a renewal moving it to a new key
          // after its absolute deadline): the next request must learn it expired, not that it is unknown.
          const key = randomKey();
          const meta = { ...metaAt(clock - 10_000), userId: "lee" };
          await store.set(key, { data: { a: 1 }, meta }, clock - 1);
          expect(await store.get(key)).toBeUndefined();
          expect(await store.patch(key, { set: { b: 2 }, delete: [] }, later())).toBe(false);
          expect(await store.expiredMeta(key)).toEqual(meta);
          if (store.listByUser) expect(await store.listByUser("lee")).toEqual([]);
        },
      );

      it.runIf(injected)("expiredMeta sees nothing once sweep removed the entry", async (t) => {
        if (!store.expiredMeta || !store.sweep)
          return t.skip("the store has no expiredMeta or sweep");
        const key = randomKey();
        await setExpired(key, { data: {}, meta: metaAt(clock) });
        expect(await store.sweep(clock)).toBeGreaterThanOrEqual(1);
        expect(await store.expiredMeta(key)).toBeUndefined();
      });

      it.runIf(!injected)("sweep resolves a count and keeps live entries", async (t) => {
        if (!store.sweep) return t.skip("the store has no sweep");
        const live = randomKey();
        await store.set(live, { data: { a: 1 }, meta: metaAt(clock) }, Date.now() + HOUR_MS);
        await setExpired(randomKey(), { data: {}, meta: metaAt(clock) });
        const count = await store.sweep(Date.now());
        expect(Number.isInteger(count) && count >= 0).toBe(true);
        expect((await store.get(live))?.data).toEqual({ a: 1 });
      });

      it("lock: one holder at a time, a waiter gets it on release, and a spent wait resolves null", async (t) => {
        if (!store.lock) return t.skip("the store has no lock");
        const key = randomKey();
        const release = await store.lock(key, 60_000, 0);
        expect(release).toBeTypeOf("function");
        expect(await store.lock(key, 60_000, 0)).toBeNull();
        expect(await store.lock(randomKey(), 60_000, 0)).toBeTypeOf("function");
        const waiting = store.lock(key, 60_000, 5000);
        await release?.();
        const next = await waiting;
        expect(next).toBeTypeOf("function");
        await next?.();
        const again = await store.lock(key, 60_000, 0);
        expect(again).toBeTypeOf("function");
        await again?.();
      });

      it("lock: a lease past its ttl passes on, and its late release frees nothing", async (t) => {
        if (!store.lock) return t.skip("the store has no lock");
        const key = randomKey();
        const stale = await store.lock(key, 50, 0);
        const next = await store.lock(key, 60_000, 5000);
        expect(next).toBeTypeOf("function");
        await stale?.();
        expect(await store.lock(key, 60_000, 0)).toBeNull();
        await next?.();
        const free = await store.lock(key, 60_000, 0);
        expect(free).toBeTypeOf("function");
        await free?.();
      });

      it("move: applies the patch under the new key, follows the user, writes nothing once the old key is gone", async (t) => {
        if (!store.move) return t.skip("the store has no move");
        await checkMoveSemantics({ store, now: ctx.now, randomKey });
      });

      it("move: a patch or delete of the old key started with it lands wholly before or after", async (t) => {
        if (!store.move) return t.skip("the store has no move");
        await checkMoveRaces({ store, now: ctx.now, randomKey });
      });

      it("close resolves and can be called again", async () => {
        await expect(store.close?.() ?? Promise.resolve()).resolves.toBeUndefined();
        await expect(store.close?.() ?? Promise.resolve()).resolves.toBeUndefined();
      });
    });

    describe("through createSessions", () => {
      function manager(target: SessionStore): Sessions {
        return createSessions({ secret: SUITE_SECRET, store: target, now: ctx.now });
      }
      /** A session written once, and the cookie that brings it back. */
      async function seeded(sessions: Sessions, data: Record<string, unknown> = { seeded: 1 }) {
        const session = await sessions.load(new Headers());
        session.update(data);
        const headers = new Headers();
        await sessions.commit(session, headers);
        return { session, cookie: cookieOf(headers), key: await storeKeyOf(session.id) };
      }
      const load = (sessions: Sessions, cookie: string) => sessions.load(new Headers({ cookie }));

      it("random visits read as they do on cookie sessions, and listByUser lists who is signed in", async () => {
        for (const seed of seedsToRun(MODEL_RUNS)) {
          await checkAgainstCookies({
            store,
            clock: options.clock,
            now: ctx.now,
            advance: (ms) => {
              clock += ms;
            },
            secret: SUITE_SECRET,
            seed,
            requests: MODEL_STEPS / 3,
          });
        }
      });

      it("a new visitor who never writes causes no store call", async () => {
        const { counted, calls } = countingStore(store);
        const sessions = manager(counted);
        const session = await sessions.load(new Headers());
        session.get("anything");
        const headers = new Headers();
        await sessions.commit(session, headers);
        expect(calls).toEqual([]);
        expect(headers.getSetCookie()).toEqual([]);
      });

      it("an unchanged session costs exactly one get and no write", async () => {
        const { counted, calls } = countingStore(store);
        const sessions = manager(counted);
        const { cookie } = await seeded(sessions);
        calls.length = 0;
        const session = await load(sessions, cookie);
        expect(session.get("seeded")).toBe(1);
        const headers = new Headers();
        await sessions.commit(session, headers);
        expect(calls).toEqual(["get"]);
        expect(headers.getSetCookie()).toEqual([]);
      });

      it("a value JSON leaves out (a function) deletes its key, as in a cookie session", async () => {
        const sessions = manager(store);
        const { cookie } = await seeded(sessions, { kept: 1, gone: "x" });
        const session = await load(sessions, cookie);
        session.set("gone", () => "not data");
        await sessions.commit(session, new Headers());
        expect((await load(sessions, cookie)).data).toEqual({ kept: 1 });
      });

      it(`${CONCURRENT_WRITERS} concurrent requests of one session each keep their own key`, async () => {
        const sessions = manager(store);
        const { cookie } = await seeded(sessions);
        const loaded = await Promise.all(
          Array.from({ length: CONCURRENT_WRITERS }, () => load(sessions, cookie)),
        );
        for (const [i, session] of loaded.entries()) session.set(`k${i}`, i);
        await Promise.all(loaded.map((session) => sessions.commit(session, new Headers())));
        const final = await load(sessions, cookie);
        for (let i = 0; i < CONCURRENT_WRITERS; i++) expect(final.get(`k${i}`)).toBe(i);
        expect(final.get("seeded")).toBe(1);
      });

      it("concurrent requests of one session mixing set, delete, update, clear, flash, destroy, regenerate and destroyByUser are explained by some serial order", async () => {
        for (const seed of seedsToRun(CONCURRENCY_RUNS))
          await checkConcurrentRequests(concurrencyRun(seed));
      });

      it("with the lock option, concurrent read-modify-write requests lose no update", async (t) => {
        if (!store.lock) return t.skip("the store has no lock");
        const sessions = createSessions({
          secret: SUITE_SECRET,
          store,
          now: ctx.now,
          lock: { wait: "20s" },
        });
        const { cookie } = await seeded(sessions, { n: 0 });
        const requests = 12;
        await Promise.all(
          Array.from({ length: requests }, async () => {
            const session = await load(sessions, cookie);
            const n = session.get("n") as number;
            // A turn of the event loop between read and write, as a real handler has.
            await new Promise((resolve) => setTimeout(resolve, 1));
            session.set("n", n + 1);
            await sessions.commit(session, new Headers());
          }),
        );
        expect((await load(sessions, cookie)).get("n")).toBe(requests);
      });

      it("regenerate moves the record to a new key and the old cookie loads a fresh session", async () => {
        const sessions = manager(store);
        const { cookie: oldCookie, key: oldKey } = await seeded(sessions, { cart: ["apple"] });
        const session = await load(sessions, oldCookie);
        await session.regenerate({ userId: "grace" });
        const headers = new Headers();
        await sessions.commit(session, headers);
        const newKey = await storeKeyOf(session.id);
        expect(newKey).not.toBe(oldKey);
        expect(await store.get(oldKey)).toBeUndefined();
        expect(await store.get(newKey)).toMatchObject({
          data: { cart: ["apple"] },
          meta: { userId: "grace" },
        });
        const replay = await load(sessions, oldCookie);
        expect(replay.isNew).toBe(true);
        expect(replay.data).toEqual({});
        expect((await load(sessions, cookieOf(headers))).get("cart")).toEqual(["apple"]);
      });

      it("a request loaded before a sign-out elsewhere cannot bring the session back by moving it to a new id", async () => {
        const sessions = manager(store);
        const { cookie, key } = await seeded(sessions, { cart: ["apple"] });
        const inFlight = await load(sessions, cookie); // a request of another tab, still running
        const signOut = await load(sessions, cookie);
        signOut.destroy();
        await sessions.commit(signOut, new Headers());
        await inFlight.regenerate(); // a renewal, or a privilege change, commits after the sign-out
        const headers = new Headers();
        await sessions.commit(inFlight, headers);
        expect(await store.get(key)).toBeUndefined();
        expect(await store.get(await storeKeyOf(inFlight.id))).toBeUndefined();
        expect(headers.getSetCookie()).toEqual([]);
      });

      it("a sign-out committed after another request moved the session ends it under its new id", async (t) => {
        if (!store.listByUser) return t.skip("the store has no user index");
        const sessions = manager(store);
        const signIn = await sessions.load(new Headers());
        await signIn.regenerate({ userId: "karl" });
        const signedIn = new Headers();
        await sessions.commit(signIn, signedIn);
        const cookie = cookieOf(signedIn);
        const signOut = await load(sessions, cookie);
        const moving = await load(sessions, cookie); // another tab: a renewal, a privilege change
        await moving.regenerate();
        const moved = new Headers();
        await sessions.commit(moving, moved);
        expect(await sessions.listByUser("karl")).toHaveLength(1);
        signOut.destroy();
        await sessions.commit(signOut, new Headers());
        expect(await sessions.listByUser("karl")).toEqual([]);
        expect((await load(sessions, cookieOf(moved))).isNew).toBe(true);
      });

      it("destroy deletes the record", async () => {
        const sessions = manager(store);
        const { cookie, key } = await seeded(sessions);
        const session = await load(sessions, cookie);
        session.destroy();
        await sessions.commit(session, new Headers());
        expect(await store.get(key)).toBeUndefined();
        expect((await load(sessions, cookie)).isNew).toBe(true);
      });

      it.runIf(injected)(
        "a session past its idle deadline reports expired-idle when the store has expiredMeta",
        async (t) => {
          if (!store.expiredMeta) return t.skip("the store has no expiredMeta");
          const reasons: string[] = [];
          const sessions = createSessions({
            secret: SUITE_SECRET,
            store,
            now: ctx.now,
            idleTimeout: "30m",
            onInvalid: (reason) => reasons.push(reason),
          });
          const { cookie, key } = await seeded(sessions);
          clock += 31 * 60_000;
          const session = await load(sessions, cookie);
          expect(session.isNew).toBe(true);
          expect(session.invalidReason).toBe("expired-idle");
          expect(reasons).toEqual(["expired-idle"]);
          expect(await store.expiredMeta(key)).toBeUndefined(); // deleted, not left for a sweep
        },
      );

      it("an id the store does not know is not revived: the visitor gets a new id", async () => {
        const sessions = manager(store);
        const { session: original, cookie, key } = await seeded(sessions);
        await store.delete(key);
        const session = await load(sessions, cookie);
        expect(session.isNew).toBe(true);
        expect(session.id).not.toBe(original.id);
        session.set("after", 1);
        await sessions.commit(session, new Headers());
        expect(await store.get(key)).toBeUndefined();
        expect((await store.get(await storeKeyOf(session.id)))?.data).toEqual({ after: 1 });
      });

      it("never stores the raw session id, only its SHA-256 base64url hash", async () => {
        const sessions = manager(store);
        const marker = `marker-${randomKey()}`;
        const { session, cookie, key } = await seeded(sessions, { marker });
        const again = await load(sessions, cookie);
        await again.regenerate({ userId: "heidi" });
        again.flash("info", "welcome");
        await sessions.commit(again, new Headers());
        const raw = await options.dumpRaw();
        // The dump must hold the session at all, or the absence check below would prove nothing.
        expect(raw.includes(marker) || raw.includes(await storeKeyOf(again.id))).toBe(true);
        expect(raw).not.toContain(session.id);
        expect(raw).not.toContain(again.id);
        expect(raw).not.toContain(key); // the old key went with regenerate
      });

      it("listByUser and destroyByUser with except act on one user's sessions", async (t) => {
        if (!store.listByUser || !store.deleteByUser) return t.skip("the store has no user index");
        const sessions = manager(store);
        const signIn = async (userId: string) => {
          const session = await sessions.load(new Headers());
          await session.regenerate({ userId });
          session.set("who", userId);
          const headers = new Headers();
          await sessions.commit(session, headers);
          return { session, cookie: cookieOf(headers) };
        };
        const [a1, a2, a3] = [await signIn("ivan"), await signIn("ivan"), await signIn("ivan")];
        await signIn("judy");
        const listed = await sessions.listByUser("ivan", { current: a1.session });
        expect(listed.map((s) => s.handle).sort()).toEqual(
          (await Promise.all([a1, a2, a3].map((a) => storeKeyOf(a.session.id)))).sort(),
        );
        expect(listed.filter((s) => s.current).map((s) => s.handle)).toEqual([
          await storeKeyOf(a1.session.id),
        ]);
        expect(await sessions.destroyByUser("ivan", { except: a1.session })).toBe(2);
        expect((await load(sessions, a1.cookie)).get("who")).toBe("ivan");
        expect((await load(sessions, a2.cookie)).isNew).toBe(true);
        expect((await load(sessions, a3.cookie)).isNew).toBe(true);
        expect(await sessions.listByUser("judy")).toHaveLength(1);
      });
    });

    options.extra?.();
  });
}

function metaAt(at: number): SessionMeta {
  return { createdAt: at, touchedAt: at, renewedAt: at };
}

/** A key of the shape real ones have: 43 base64url characters. */
function randomKey(): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** Varied text, so a store that truncates or mangles a long value cannot pass by luck. */
function largeText(chars: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \"\\'/{}[]é€";
  let text = "";
  for (let i = 0; text.length < chars; i++) text += alphabet[(i * 7919) % alphabet.length];
  return text.slice(0, chars);
}

/** The cookie header a browser would send back, from a response's Set-Cookie lines. */
function cookieOf(headers: Headers): string {
  return headers
    .getSetCookie()
    .filter((line) => !/;\s*max-age=0/i.test(line))
    .map((line) => line.split(";")[0])
    .join("; ");
}

/** Wraps a store so the test sees which methods the manager called, in order. */
function countingStore(store: SessionStore): { counted: SessionStore; calls: string[] } {
  const calls: string[] = [];
  const counted = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return value.apply(target, args);
      };
    },
  });
  return { counted, calls };
}
