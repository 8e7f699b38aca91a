import { Cluster } from "ioredis";
import { describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/errors.js";
import { redisStore } from "../../src/stores/redis.js";
import { freePort } from "../helpers/redis-server.js";
import { REDIS_CLUSTER_NODES, serviceAvailable } from "../helpers/services.js";
import { CLUSTER_KINDS, type RedisTarget, testRedisStores } from "./redis-cases.js";
import { HOUR_MS, keyMaker, MINUTE_MS, metaAt } from "./support.js";

const seed = REDIS_CLUSTER_NODES[0] ?? { host: "127.0.0.1", port: 7000 };
const available = await serviceAvailable("Redis Cluster", `redis://${seed.host}:${seed.port}`);

// The cluster is shared with other test files: this file reads and deletes only its own prefix.
const FILE_PREFIX = `skt:redis-cluster:${process.pid}:`;
/** Enough sessions of one user that they land on more than one node of a 3-node cluster. */
const SPREAD_SESSIONS = 12;

const newKey = keyMaker("clustertestkey");

describe("redisStore on a Redis Cluster it cannot reach", () => {
  it("sweep rejects with StoreUnavailableError rather than resolving 0 when no master is known", async () => {
    // ioredis empties its node list when no node of the cluster answers.
    const port = await freePort();
    const client = new Cluster([{ host: "127.0.0.1", port }], {
      lazyConnect: true,
      clusterRetryStrategy: () => null,
      enableOfflineQueue: false,
    });
    client.on("error", () => {});
    await client.connect().catch(() => {});
    try {
      const store = redisStore({ client, prefix: "unreachable:", commandTimeout: 500 });
      await expect(store.sweep?.(Date.now())).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      client.disconnect();
    }
  });
});

describe.skipIf(!available)("redisStore on a Redis Cluster", () => {
  testRedisStores({
    filePrefix: FILE_PREFIX,
    kinds: CLUSTER_KINDS,
    newKey,
    async connectAdmin() {
      const admin = new Cluster(REDIS_CLUSTER_NODES, { lazyConnect: true });
      await admin.connect();
      return admin;
    },
    nodes: (admin) => admin.nodes("master"),
    specifics,
  });
});

/** The cluster's own tests of one client kind, run after the shared ones in its specifics. */
function specifics({ admin, store, sessionKey, indexKey, lockKey }: RedisTarget<Cluster>): void {
  const slotOf = async (name: string) => Number(await admin().call("CLUSTER", "KEYSLOT", name));
  /** The master that serves a key, from the client's slot table. */
  const nodeOf = async (name: string) => admin().slots[await slotOf(name)]?.[0];

  it("keeps all keys of one session in one slot, and a user's index in the slot of the user id", async () => {
    const key = newKey();
    const userId = "slotted-user";
    await store().set(
      key,
      { data: { a: 1 }, meta: { ...metaAt(Date.now()), userId } },
      Date.now() + HOUR_MS,
    );
    const release = await store().lock?.(key, MINUTE_MS, 0);
    expect(await slotOf(sessionKey(key))).toBe(await slotOf(key));
    expect(await slotOf(lockKey(key))).toBe(await slotOf(key));
    expect(await slotOf(indexKey(userId))).toBe(await slotOf(userId));
    expect(await admin().exists(sessionKey(key), lockKey(key))).toBe(2);
    expect(await admin().exists(indexKey(userId))).toBe(1);
    await release?.();
  });

  it("lists and deletes one user's sessions spread over several nodes", async () => {
    const s = store();
    const userId = "spread-user";
    const keys = Array.from({ length: SPREAD_SESSIONS }, () => newKey());
    for (const [i, key] of keys.entries()) {
      await s.set(
        key,
        { data: { i }, meta: { ...metaAt(Date.now()), userId } },
        Date.now() + HOUR_MS,
      );
    }
    const other = newKey();
    await s.set(
      other,
      { data: {}, meta: { ...metaAt(Date.now()), userId: "someone-else" } },
      Date.now() + HOUR_MS,
    );
    const nodes = new Set(await Promise.all(keys.map((key) => nodeOf(sessionKey(key)))));
    // Otherwise this test would not prove anything about crossing slots.
    expect(nodes.size).toBeGreaterThan(1);

    const listed = await s.listByUser?.(userId);
    expect(listed?.map((e) => e.key).sort()).toEqual([...keys].sort());
    expect(listed?.find((e) => e.key === keys[3])?.data).toEqual({ i: 3 });

    const kept = keys[0] as string;
    expect(await s.deleteByUser?.(userId, [kept])).toBe(SPREAD_SESSIONS - 1);
    for (const key of keys) {
      expect(await s.get(key)).toEqual(key === kept ? expect.anything() : undefined);
    }
    expect(await s.get(other)).toBeDefined();
    expect((await s.listByUser?.(userId))?.map((e) => e.key)).toEqual([kept]);
  });

  it("sweep scans every node and prunes index entries whose session is gone", async () => {
    const s = store();
    const live = newKey();
    await s.set(
      live,
      { data: {}, meta: { ...metaAt(Date.now()), userId: "sweep-live" } },
      Date.now() + HOUR_MS,
    );
    // Stale entries, as a crash between the index write and the session write leaves them,
    // under users whose indexes sit on different nodes.
    const users = Array.from({ length: 6 }, (_, i) => `sweep-ghost-${i}`);
    for (const userId of users) {
      await admin().zadd(indexKey(userId), Date.now() - 1000, newKey());
      await admin().pexpire(indexKey(userId), HOUR_MS);
    }
    expect(new Set(await Promise.all(users.map((u) => nodeOf(indexKey(u))))).size).toBeGreaterThan(
      1,
    );
    expect(await s.sweep?.(Date.now())).toBe(users.length);
    for (const userId of users) expect(await admin().exists(indexKey(userId))).toBe(0);
    expect((await s.listByUser?.("sweep-live"))?.map((e) => e.key)).toEqual([live]);
  });
}
