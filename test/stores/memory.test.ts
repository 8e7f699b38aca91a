import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { createExpiryHeap } from "../../src/stores/internal/expiry-heap.js";
import { type MemoryStore, memoryStore } from "../../src/stores/memory.js";
import type { StoredSession } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";

const T0 = 1_700_000_000_000;
const HOUR_MS = 3_600_000;
const session = (data: Record<string, unknown> = {}, userId?: string): StoredSession => ({
  data,
  meta: { createdAt: T0, touchedAt: T0, renewedAt: T0, ...(userId ? { userId } : {}) },
});

let current: MemoryStore;
testStore("memory", (ctx) => (current = memoryStore({ now: ctx.now })), {
  clock: "injected",
  dumpRaw: async () => JSON.stringify([...current.rawEntries()]),
  extra() {
    it("evicts the least recently used session past maxSessions", async () => {
      const store = memoryStore({ maxSessions: 3, now: () => T0 });
      for (const key of ["a", "b", "c"]) await store.set(key, session({ key }), T0 + HOUR_MS);
      await store.get("a"); // a is now the most recently used; b the least
      await store.set("d", session(), T0 + HOUR_MS);
      expect([...store.rawEntries()].map(([key]) => key)).toEqual(["c", "a", "d"]);
      await store.patch("c", { set: { x: 1 }, delete: [] }, T0 + HOUR_MS);
      await store.set("e", session(), T0 + HOUR_MS);
      expect([...store.rawEntries()].map(([key]) => key)).toEqual(["d", "c", "e"]);
      expect(await store.get("a")).toBeUndefined();
      expect(store.size).toBe(3);
    });

    it("keeps least-recently-used order through any mix of writes, reads, deletes and evictions", async () => {
      const op = fc.oneof(
        fc.record({ kind: fc.constant("set" as const), key: fc.integer({ min: 0, max: 11 }) }),
        fc.record({ kind: fc.constant("get" as const), key: fc.integer({ min: 0, max: 11 }) }),
        fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 11 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 80 }), async (ops) => {
          const store = memoryStore({ maxSessions: 4, now: () => T0 });
          const model: string[] = []; // least recently used first
          for (const { kind, key } of ops) {
            const name = `k${key}`;
            const at = model.indexOf(name);
            if (kind === "set") {
              await store.set(name, session(), T0 + HOUR_MS);
              if (at >= 0) model.splice(at, 1);
              model.push(name);
              if (model.length > 4) model.shift();
            } else if (kind === "get") {
              expect((await store.get(name)) !== undefined).toBe(at >= 0);
              if (at >= 0) model.push(...model.splice(at, 1));
            } else {
              await store.delete(name);
              if (at >= 0) model.splice(at, 1);
            }
            expect([...store.rawEntries()].map(([k]) => k)).toEqual(model);
          }
        }),
        { numRuns: 300 },
      );
    });

    it("evicts an expired session before the least recently used live one", async () => {
      let now = T0;
      const store = memoryStore({ maxSessions: 2, now: () => now });
      await store.set("live", session({}, "u"), T0 + HOUR_MS);
      await store.set("short", session({}, "u"), T0 + 100);
      now = T0 + 100;
      await store.set("new", session(), T0 + HOUR_MS);
      expect([...store.rawEntries()].map(([key]) => key)).toEqual(["live", "new"]);
      expect((await store.listByUser("u")).map((e) => e.key)).toEqual(["live"]);
    });

    it("an evicted session leaves the user index", async () => {
      const store = memoryStore({ maxSessions: 1, now: () => T0 });
      await store.set("a", session({}, "u"), T0 + HOUR_MS);
      await store.set("b", session(), T0 + HOUR_MS);
      expect(await store.listByUser("u")).toEqual([]);
      expect(await store.deleteByUser("u")).toBe(0);
    });

    it("a value JSON cannot hold rejects the write and leaves nothing behind", async () => {
      const store = memoryStore({ now: () => T0 });
      await expect(store.set("a", session({ n: 1n }), T0 + HOUR_MS)).rejects.toThrow(TypeError);
      expect(store.size).toBe(0);
      expect(await store.get("a")).toBeUndefined();
    });

    it("get returns a copy: changing it does not change the stored session", async () => {
      const store = memoryStore({ now: () => T0 });
      await store.set("a", session({ list: [1] }), T0 + HOUR_MS);
      const got = (await store.get("a")) as StoredSession;
      (got.data.list as number[]).push(2);
      got.meta.userId = "mallory";
      expect(await store.get("a")).toEqual(session({ list: [1] }));
    });

    it("sweep agrees with a model after any mix of writes, touches and deletes", async () => {
      const op = fc.record({
        kind: fc.constantFrom("set", "patch", "touch", "delete"),
        key: fc.integer({ min: 0, max: 7 }),
        deadline: fc.integer({ min: 1, max: 50 }),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.array(op, { maxLength: 60 }),
          fc.integer({ min: 0, max: 51 }),
          async (ops, sweepAt) => {
            const store = memoryStore({ now: () => T0 });
            const model = new Map<string, number>();
            for (const { kind, key, deadline } of ops) {
              const k = `k${key}`;
              const at = T0 + deadline;
              if (kind === "set") model.set(k, at);
              else if (kind === "delete") model.delete(k);
              else if (model.has(k)) model.set(k, at);
              if (kind === "set") await store.set(k, session(), at);
              else if (kind === "patch")
                await store.patch(k, { set: { v: deadline }, delete: [] }, at);
              else if (kind === "touch") await store.touch(k, T0, at);
              else await store.delete(k);
            }
            const expired = [...model].filter(([, at]) => at <= T0 + sweepAt).map(([k]) => k);
            expect(await store.sweep(T0 + sweepAt)).toBe(expired.length);
            const left = [...model.keys()].filter((k) => !expired.includes(k)).sort();
            expect([...store.rawEntries()].map(([k]) => k).sort()).toEqual(left);
          },
        ),
      );
    });

    it("sweep compares O(log n) deadlines per expired entry, not one per stored entry", () => {
      const comparisonsToSweep = (stored: number, expired: number) => {
        let comparisons = 0;
        const heap = createExpiryHeap<{ at: number; slot: number }>((a, b) => {
          comparisons++;
          return a.at < b.at;
        });
        // Deadlines in a scrambled order, so the heap is not trivially sorted by insertion.
        for (let i = 0; i < stored; i++) heap.push({ at: (i * 7919) % stored, slot: -1 });
        comparisons = 0;
        for (let top = heap.peek(); top && top.at < expired; top = heap.peek()) heap.remove(top);
        expect(heap.size).toBe(stored - expired);
        return comparisons;
      };
      const small = comparisonsToSweep(1 << 10, 10);
      const large = comparisonsToSweep(1 << 16, 10);
      // Ten removals, each sifting down at most log2(n) levels with two comparisons per level.
      expect(large).toBeLessThanOrEqual(10 * 2 * 16);
      // 64 times the entries costs a few more levels, nowhere near 64 times the work.
      expect(large / small).toBeLessThan(2);
      expect(comparisonsToSweep(1 << 16, 0)).toBe(0);
    });
  },
});

describe("memoryStore timers and locks", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("starts no timer unless sweepInterval asks for one", async () => {
    vi.useFakeTimers();
    const store = memoryStore();
    await store.set("a", session(), Date.now() + HOUR_MS);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("sweepInterval sweeps on a timer that close() stops", async () => {
    vi.useFakeTimers({ now: T0 });
    const store = memoryStore({ sweepInterval: 1000 });
    await store.set("short", session(), T0 + 500);
    await store.set("long", session(), T0 + HOUR_MS);
    expect(store.size).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect([...store.rawEntries()].map(([key]) => key)).toEqual(["long"]);
    await store.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("lock grants at once when free and hands over first come, first served", async () => {
    vi.useFakeTimers();
    const store = memoryStore();
    const first = await store.lock("s", 30_000, 5000);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) =>
      store.lock("s", 30_000, 5000).then((release) => {
        order.push(n);
        return release;
      }),
    );
    expect(await store.lock("other", 30_000, 0)).toBeTypeOf("function");
    await first?.();
    const second = await waiting[0];
    await second?.();
    const third = await waiting[1];
    await third?.();
    await (await waiting[2])?.();
    expect(order).toEqual([1, 2, 3]);
  });

  it("lock resolves null when the wait runs out, and a timed-out waiter is never granted", async () => {
    vi.useFakeTimers();
    const store = memoryStore();
    const holder = await store.lock("s", 30_000, 0);
    expect(await store.lock("s", 30_000, 0)).toBeNull();
    const late = store.lock("s", 30_000, 100);
    await vi.advanceTimersByTimeAsync(100);
    expect(await late).toBeNull();
    await holder?.();
    // The lock is free again: nobody kept it on the timed-out waiter's behalf.
    expect(await store.lock("s", 30_000, 0)).toBeTypeOf("function");
  });

  it("lock ttl frees a holder that never releases, and its late release frees nothing", async () => {
    vi.useFakeTimers();
    const store = memoryStore();
    const stuck = await store.lock("s", 1000, 0);
    const next = store.lock("s", 1000, 5000);
    await vi.advanceTimersByTimeAsync(1000);
    const nextRelease = await next;
    expect(nextRelease).toBeTypeOf("function");
    await stuck?.(); // must not release the lock the next holder owns now
    expect(await store.lock("s", 1000, 0)).toBeNull();
    await nextRelease?.();
    expect(await store.lock("s", 1000, 0)).toBeTypeOf("function");
  });

  it("close gives pending waiters null and leaves no timer behind", async () => {
    vi.useFakeTimers();
    const store = memoryStore();
    await store.lock("s", 30_000, 0);
    const waiter = store.lock("s", 30_000, 5000);
    await store.close();
    expect(await waiter).toBeNull();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects options it cannot honour with a ConfigError", () => {
    expect(() => memoryStore({ maxSessions: 0 })).toThrow(ConfigError);
    expect(() => memoryStore({ maxSessions: 1.5 })).toThrow(/^sessionkit: /);
    expect(() => memoryStore({ sweepInterval: -1 })).toThrow(ConfigError);
  });
});
