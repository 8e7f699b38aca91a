import { Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, isSessionError, StoreUnavailableError } from "../../src/errors.js";
import { type RedisClientLike, redisStore } from "../../src/stores/redis.js";
import type { SessionStore } from "../../src/stores/store.js";
import { PrivateRedis } from "../helpers/redis-server.js";
import { REDIS_URL, serviceAvailable } from "../helpers/services.js";
import {
  countCommands,
  nodeRedisBufferKind,
  type RedisTarget,
  testRedisStores,
} from "./redis-cases.js";
import { HOUR_MS, keyMaker, MINUTE_MS, metaAt } from "./support.js";

const available = await serviceAvailable("Redis", REDIS_URL);

// The shared server is used by other test files at the same time: every key this file writes starts
// with its own prefix, and only those keys are ever read back or deleted (never FLUSHDB).
const FILE_PREFIX = `skt:redis:${process.pid}:`;
const OUTAGE_TIMEOUT_MS = 500;
/** Generous: the store must give up within its commandTimeout, not within the driver's retries. */
const OUTAGE_BOUND_MS = 5000;

const newKey = keyMaker("redistestkey");

/** How the client behaves during an outage: the driver's defaults, or the options the docs recommend. */
type OutageMode = "defaults" | "recommended";

interface ClientKind {
  name: string;
  /** A connected client of this kind; `outage` sets a quick reconnect and, if asked, bounded queues. */
  connect(
    url: string,
    outage?: OutageMode,
  ): Promise<{ client: RedisClientLike; close(): Promise<void> }>;
}

const KINDS: ClientKind[] = [
  {
    name: "ioredis",
    async connect(url, outage) {
      const client = new Redis(url, {
        lazyConnect: true,
        ...(outage && { retryStrategy: () => 50 }),
        ...(outage === "recommended" && { maxRetriesPerRequest: 1, enableOfflineQueue: false }),
      });
      client.on("error", () => {
        // Connection errors during the outage test; the assertions are on the store's results.
      });
      await client.connect();
      return { client, close: async () => void client.disconnect() };
    },
  },
  {
    name: "node-redis",
    async connect(url, outage) {
      const client = createClient({
        url,
        ...(outage && { socket: { reconnectStrategy: () => 50 } }),
        ...(outage === "recommended" && { disableOfflineQueue: true }),
      });
      // node-redis throws an unhandled "error" event otherwise; the store's docs tell users the same.
      client.on("error", () => {});
      await client.connect();
      return { client, close: async () => void client.destroy() };
    },
  },
];

describe.skipIf(!available)("redisStore", () => {
  describe("options", () => {
    it("refuses a prefix with a hash-tag brace, a bad commandTimeout and an unknown client", async () => {
      const client = new Redis(REDIS_URL, { lazyConnect: true });
      try {
        for (const bad of [
          () => redisStore({ client, prefix: "a{b}:" }),
          () => redisStore({ client, commandTimeout: 0 }),
          () => redisStore({ client: {} as never }),
        ]) {
          expect(bad).toThrow(ConfigError);
          expect(bad).toThrow(/^sessionkit: redisStore: /);
        }
      } finally {
        client.disconnect();
      }
    });

    it("refuses an ioredis client with its own keyPrefix, which would hide keys from sweep", () => {
      const client = new Redis(REDIS_URL, { lazyConnect: true, keyPrefix: "app:" });
      try {
        expect(() => redisStore({ client })).toThrow(/keyPrefix/);
      } finally {
        client.disconnect();
      }
    });
  });

  testRedisStores({
    filePrefix: FILE_PREFIX,
    kinds: [
      ...KINDS.map((kind) => ({ name: kind.name, connect: () => kind.connect(REDIS_URL) })),
      nodeRedisBufferKind(REDIS_URL),
    ],
    newKey,
    connectAdmin: async () => new Redis(REDIS_URL),
    nodes: (admin) => [admin],
    specifics,
  });

  describe("outage and recovery on a private redis-server", () => {
    let server: PrivateRedis;
    beforeAll(async () => {
      // Not durable: the outage test asks only that the store recovers, not that data survives.
      server = await PrivateRedis.start(false);
    });
    afterAll(async () => {
      await server?.stop();
    });

    for (const kind of KINDS) {
      for (const mode of ["defaults", "recommended"] as const) {
        it(`${kind.name} (driver ${mode}): rejects with StoreUnavailableError while the server is down, then works again by itself`, async () => {
          if (!server.running) await server.restart();
          const { client, close } = await kind.connect(server.url, mode);
          const store = redisStore({
            client,
            prefix: "outage:",
            commandTimeout: OUTAGE_TIMEOUT_MS,
          });
          try {
            const key = newKey();
            await store.set(
              key,
              { data: { before: 1 }, meta: metaAt(Date.now()) },
              Date.now() + HOUR_MS,
            );
            expect((await store.get(key))?.data).toEqual({ before: 1 });

            await server.kill();
            const refused = newKey();
            for (const call of [
              () => store.get(key),
              () => store.patch(key, { set: { during: 1 }, delete: [] }, Date.now() + HOUR_MS),
              () =>
                store.set(refused, { data: {}, meta: metaAt(Date.now()) }, Date.now() + HOUR_MS),
            ]) {
              const started = Date.now();
              const err = await call().then(
                () => undefined,
                (e: unknown) => e,
              );
              expect(Date.now() - started).toBeLessThan(OUTAGE_BOUND_MS);
              expect(err).toBeInstanceOf(StoreUnavailableError);
              expect(isSessionError(err, "ERR_STORE_UNAVAILABLE")).toBe(true);
              expect((err as Error).cause).toBeInstanceOf(Error);
              expect((err as Error).message).toMatch(/^sessionkit: /);
              expect((err as Error).message).not.toContain(key);
            }

            await server.restart();
            // The server keeps nothing on disk, so nothing acknowledged before the outage survives
            // it; what must hold is that the same store instance writes and reads again by itself.
            const after = newKey();
            await retryUntilResolves(() =>
              store.set(
                after,
                { data: { after: 1 }, meta: metaAt(Date.now()) },
                Date.now() + HOUR_MS,
              ),
            );
            expect((await store.get(after))?.data).toEqual({ after: 1 });
            expect(
              await store.patch(
                after,
                { set: { patched: true }, delete: [] },
                Date.now() + HOUR_MS,
              ),
            ).toBe(true);
            expect((await store.get(after))?.data).toEqual({ after: 1, patched: true });
            if (mode === "recommended") {
              // With bounded queues a write that was refused is not replayed once the server is back.
              expect(await store.get(refused)).toBeUndefined();
            }
          } finally {
            await close();
          }
        });
      }
    }
  });
});

/** The single-server tests of one client kind, run after the shared ones in its specifics. */
function specifics({
  client,
  admin,
  store,
  sessionKey,
  indexKey,
  lockKey,
}: RedisTarget<Redis>): void {
  it("lays a session out as one hash with a data and a meta field per key", async () => {
    const key = newKey();
    const expiresAt = Date.now() + HOUR_MS;
    await store().set(
      key,
      { data: { a: 1, b: "x" }, meta: { ...metaAt(1000), userId: "layout" } },
      expiresAt,
    );
    const hash = await admin().hgetall(sessionKey(key));
    expect(hash).toMatchObject({
      "d:a": "1",
      "d:b": '"x"',
      "m:createdAt": "1000",
      "m:userId": '"layout"',
    });
    expect(hash.e).toBe(String(expiresAt));
    expect(await admin().zscore(indexKey("layout"), key)).toBe(String(expiresAt));
  });

  it("patch and touch move the session's PEXPIREAT to exactly expiresAt", async () => {
    const s = store();
    const key = newKey();
    const first = Date.now() + HOUR_MS;
    await s.set(key, { data: {}, meta: metaAt(Date.now()) }, first);
    expect(await admin().call("PEXPIRETIME", sessionKey(key))).toBe(first);
    await s.patch(key, { set: { a: 1 }, delete: [] }, first + 1234);
    expect(await admin().call("PEXPIRETIME", sessionKey(key))).toBe(first + 1234);
    await s.touch(key, Date.now(), first + 5678);
    expect(await admin().call("PEXPIRETIME", sessionKey(key))).toBe(first + 5678);
  });

  it("extends a user index that a sliding session would outlive, then goes back to one round trip", async () => {
    const counted = countCommands(client());
    const s = store(counted.client);
    const key = newKey();
    const userId = "sliding";
    await s.set(
      key,
      { data: {}, meta: { ...metaAt(Date.now()), userId } },
      Date.now() + 10 * MINUTE_MS,
    );
    // The index is kept for as long again as its session has left: about 20 minutes here.
    expect(await admin().pttl(indexKey(userId))).toBeLessThanOrEqual(20 * MINUTE_MS);
    await s.touch(key, Date.now(), Date.now() + HOUR_MS); // may need the NOSCRIPT warm-up too
    expect(await admin().pttl(indexKey(userId))).toBeGreaterThan(HOUR_MS);
    counted.commands.length = 0;
    await s.touch(key, Date.now(), Date.now() + 5 * HOUR_MS);
    expect(counted.commands.map((c) => c[0])).toEqual(["EVALSHA", "EVALSHA", "EVALSHA"]);
    expect(await admin().pttl(indexKey(userId))).toBeGreaterThan(5 * HOUR_MS);
    counted.commands.length = 0;
    await s.touch(key, Date.now(), Date.now() + 5 * HOUR_MS + 1000);
    expect(counted.commands).toHaveLength(1);
    expect((await s.listByUser?.(userId))?.map((e) => e.key)).toEqual([key]);
  });

  it("sweep keeps a live session whose index score fell behind, and prunes a stale index entry", async () => {
    const s = store();
    const userId = "swept";
    const live = newKey();
    const start = Date.now();
    await s.set(live, { data: {}, meta: { ...metaAt(start), userId } }, start + 10 * MINUTE_MS);
    // Slides within the index's horizon: the score stays at the first deadline.
    await s.touch(live, start, start + 15 * MINUTE_MS);
    expect(Number(await admin().zscore(indexKey(userId), live))).toBe(start + 10 * MINUTE_MS);
    // What a crash between the index write and the session write leaves behind.
    const ghost = newKey();
    await admin().zadd(indexKey(userId), start - 1000, ghost);

    expect(await s.sweep?.(start + 12 * MINUTE_MS)).toBe(1);
    const members = await admin().zrange(indexKey(userId), "0", "-1", "WITHSCORES");
    expect(members).toEqual([live, String(start + 15 * MINUTE_MS)]);
    expect(await s.deleteByUser?.(userId)).toBe(1);
    expect(await s.get(live)).toBeUndefined();
  });

  it("lists and deletes by user without the index entries of a user who logged out", async () => {
    const s = store();
    const userId = "left";
    const key = newKey();
    await s.set(key, { data: {}, meta: { ...metaAt(Date.now()), userId } }, Date.now() + HOUR_MS);
    expect(
      await s.patch(key, { set: {}, delete: [], meta: { userId: null } }, Date.now() + HOUR_MS),
    ).toBe(true);
    expect(await s.listByUser?.(userId)).toEqual([]);
    expect(await s.deleteByUser?.(userId)).toBe(0);
    expect((await s.get(key))?.meta).not.toHaveProperty("userId");
  });

  it("reads a hash it cannot parse as not found", async () => {
    const key = newKey();
    await admin().hset(sessionKey(key), {
      e: String(Date.now() + HOUR_MS),
      "d:a": "{not json",
      "m:createdAt": "1",
    });
    await admin().pexpire(sessionKey(key), HOUR_MS);
    expect(await store().get(key)).toBeUndefined();
  });

  it("turns a server error into StoreUnavailableError with the cause and no key in the message", async () => {
    const key = newKey();
    await admin().set(sessionKey(key), "a string, not a hash", "PX", HOUR_MS);
    const err = await store()
      .get(key)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(String((err as Error).cause)).toMatch(/WRONGTYPE/);
    expect((err as Error).message).toMatch(/^sessionkit: /);
    expect((err as Error).message).not.toContain(key);
  });

  it("lock: one holder at a time, waits, times out with null, and release frees it", async () => {
    const s = store() as Required<SessionStore>;
    const key = newKey();
    const release = await s.lock(key, MINUTE_MS, 0);
    expect(release).toBeTypeOf("function");
    const started = Date.now();
    expect(await s.lock(key, MINUTE_MS, 50)).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    const waiting = s.lock(key, MINUTE_MS, 2000);
    await release?.();
    const second = await waiting;
    expect(second).toBeTypeOf("function");
    await second?.();
    expect(await admin().exists(lockKey(key))).toBe(0);
  });

  it("lock: a holder whose lock expired does not release the next holder's lock", async () => {
    const s = store() as Required<SessionStore>;
    const key = newKey();
    const first = await s.lock(key, 30, 0);
    const second = await s.lock(key, MINUTE_MS, 1000);
    expect(second).toBeTypeOf("function");
    await first?.();
    expect(await admin().exists(lockKey(key))).toBe(1);
    await second?.();
    expect(await admin().exists(lockKey(key))).toBe(0);
  });

  it("close does not close the client it was given", async () => {
    const s = store();
    await s.close?.();
    const key = newKey();
    await s.set(key, { data: { still: "open" }, meta: metaAt(Date.now()) }, Date.now() + HOUR_MS);
    expect((await s.get(key))?.data).toEqual({ still: "open" });
  });
}

/** Retries an operation while the client reconnects; fails the test if it never succeeds. */
async function retryUntilResolves(
  operation: () => Promise<unknown>,
  attempts = 100,
): Promise<void> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      await operation();
      return;
    } catch (err) {
      last = err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`still failing after ${attempts} attempts`, { cause: last });
}
