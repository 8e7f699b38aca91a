import { Cluster } from "ioredis";
import { createCluster } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessions } from "../../src/manager.js";
import { type RedisClientLike, redisStore } from "../../src/stores/redis.js";
import type { SessionMeta } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";
import { REDIS_CLUSTER_NODES, serviceAvailable } from "../helpers/services.js";

const seed = REDIS_CLUSTER_NODES[0] ?? { host: "127.0.0.1", port: 7000 };
const available = await serviceAvailable("Redis Cluster", `redis://${seed.host}:${seed.port}`);

// The cluster is shared with other test files: this file reads and deletes only its own prefix.
const FILE_PREFIX = `skt:redis-cluster:${process.pid}:`;
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
/** Enough sessions of one user that they land on more than one node of a 3-node cluster. */
const SPREAD_SESSIONS = 12;

const metaAt = (at: number): SessionMeta => ({ createdAt: at, touchedAt: at, renewedAt: at });
let keySeq = 0;
/** Distinct keys of the real shape (43 base64url characters), readable in a failing test. */
const newKey = () => `clustertestkey${String(++keySeq).padStart(4, "0")}`.padEnd(43, "A");

/** Every key of `prefix` on every master: SCAN is per node on a cluster. */
async function scanPrefix(admin: Cluster, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of admin.nodes("master")) {
    let cursor = "0";
    do {
      const [next, batch] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
  }
  return keys;
}

async function dumpPrefix(admin: Cluster, prefix: string): Promise<string> {
  const lines: string[] = [];
  for (const key of (await scanPrefix(admin, prefix)).sort()) {
    const type = await admin.type(key);
    const value =
      type === "hash"
        ? await admin.hgetall(key)
        : type === "zset"
          ? await admin.zrange(key, "0", "-1", "WITHSCORES")
          : await admin.get(key);
    lines.push(`${key} ${type} ${JSON.stringify(value)}`);
  }
  return lines.join("\n");
}

async function deletePrefix(admin: Cluster, prefix: string): Promise<void> {
  // One key per command: a multi-key UNLINK would span slots.
  await Promise.all((await scanPrefix(admin, prefix)).map((key) => admin.unlink(key)));
}

/** Wraps a client so a test sees every command the store sends: one command is one round trip. */
function countCommands<C extends object>(client: C): { client: C; commands: unknown[][] } {
  const commands: unknown[][] = [];
  const proxy = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      if (property === "call") {
        return (...args: unknown[]) => {
          commands.push(args);
          return value.apply(target, args);
        };
      }
      if (property === "sendCommand") {
        // node-redis cluster: sendCommand(firstKey, isReadonly, args)
        return (...args: unknown[]) => {
          commands.push(args.find(Array.isArray) as unknown[]);
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { client: proxy, commands };
}

interface ClusterKind {
  name: string;
  connect(): Promise<{ client: RedisClientLike; close(): Promise<void> }>;
}

const KINDS: ClusterKind[] = [
  {
    name: "ioredis Cluster",
    async connect() {
      const client = new Cluster(REDIS_CLUSTER_NODES, { lazyConnect: true });
      client.on("error", () => {});
      await client.connect();
      return { client, close: async () => void client.disconnect() };
    },
  },
  {
    name: "node-redis cluster",
    async connect() {
      const client = createCluster({
        rootNodes: REDIS_CLUSTER_NODES.map(({ host, port }) => ({
          url: `redis://${host}:${port}`,
        })),
      });
      client.on("error", () => {});
      await client.connect();
      return { client, close: async () => void client.destroy() };
    },
  },
];

describe.skipIf(!available)("redisStore on a Redis Cluster", () => {
  let admin: Cluster;
  beforeAll(async () => {
    admin = new Cluster(REDIS_CLUSTER_NODES, { lazyConnect: true });
    await admin.connect();
    await deletePrefix(admin, FILE_PREFIX);
  });
  afterAll(async () => {
    await deletePrefix(admin, FILE_PREFIX);
    admin?.disconnect();
  });

  for (const kind of KINDS) {
    const prefix = `${FILE_PREFIX}${kind.name.replace(/\W+/g, "-")}:`;
    let handle: Awaited<ReturnType<ClusterKind["connect"]>>;
    beforeAll(async () => {
      handle = await kind.connect();
    });
    afterAll(async () => {
      await handle?.close();
    });

    testStore(kind.name, () => redisStore({ client: handle.client, prefix }), {
      clock: "server",
      dumpRaw: () => dumpPrefix(admin, prefix),
      reset: () => deletePrefix(admin, prefix),
      extra: () =>
        specifics(
          kind,
          prefix,
          () => handle.client,
          () => admin,
        ),
    });
  }
});

function specifics(
  kind: ClusterKind,
  prefix: string,
  client: () => RedisClientLike,
  admin: () => Cluster,
): void {
  describe(`${kind.name} specifics`, () => {
    const store = (c: RedisClientLike = client()) => redisStore({ client: c, prefix });
    const sessionKey = (key: string) => `${prefix}s:{${key}}`;
    const indexKey = (userId: string) => `${prefix}u:{${userId}}`;
    const lockKey = (key: string) => `${prefix}l:{${key}}`;
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

    it("gives every key it writes a PX expiry, on whichever node it lives", async () => {
      const s = store();
      const [k1, k2] = [newKey(), newKey()];
      await s.set(
        k1,
        { data: {}, meta: { ...metaAt(Date.now()), userId: "ttl-a" } },
        Date.now() + HOUR_MS,
      );
      await s.set(k2, { data: {}, meta: metaAt(Date.now()) }, Date.now() + HOUR_MS);
      await s.patch(
        k2,
        { set: { a: 1 }, delete: [], meta: { userId: "ttl-b" } },
        Date.now() + HOUR_MS,
      );
      await s.touch(k1, Date.now(), Date.now() + 3 * HOUR_MS);
      const release = await s.lock?.(k2, MINUTE_MS, 0);
      const keys = await scanPrefix(admin(), prefix);
      expect(keys.sort()).toEqual(
        [sessionKey(k1), sessionKey(k2), indexKey("ttl-a"), indexKey("ttl-b"), lockKey(k2)].sort(),
      );
      for (const name of keys) expect(await admin().pttl(name)).toBeGreaterThan(0);
      await release?.();
    });

    it("get, patch and touch each take one round trip once the scripts are cached", async () => {
      const counted = countCommands(client());
      const s = store(counted.client);
      const key = newKey();
      await s.set(key, { data: { a: 1 }, meta: metaAt(Date.now()) }, Date.now() + HOUR_MS);
      // Warm-up: each node has its own script cache, so the first EVALSHA may cost a NOSCRIPT.
      await s.patch(key, { set: { warm: 1 }, delete: [] }, Date.now() + HOUR_MS);
      counted.commands.length = 0;

      expect((await s.get(key))?.data).toEqual({ a: 1, warm: 1 });
      expect(counted.commands.map((c) => c[0])).toEqual(["HGETALL"]);
      counted.commands.length = 0;
      expect(await s.patch(key, { set: { b: 2 }, delete: ["a"] }, Date.now() + HOUR_MS)).toBe(true);
      expect(counted.commands.map((c) => c[0])).toEqual(["EVALSHA"]);
      counted.commands.length = 0;
      expect(await s.touch(key, Date.now(), Date.now() + HOUR_MS)).toBe(true);
      expect(counted.commands.map((c) => c[0])).toEqual(["EVALSHA"]);
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
      expect(
        new Set(await Promise.all(users.map((u) => nodeOf(indexKey(u))))).size,
      ).toBeGreaterThan(1);
      expect(await s.sweep?.(Date.now())).toBe(users.length);
      for (const userId of users) expect(await admin().exists(indexKey(userId))).toBe(0);
      expect((await s.listByUser?.("sweep-live"))?.map((e) => e.key)).toEqual([live]);
    });

    it("round-trips a session through createSessions: load, set, commit, load", async () => {
      const sessions = createSessions({ secret: "x".repeat(32), store: store() });
      const first = await sessions.load(new Headers());
      first.set("count", 1);
      const headers = new Headers();
      await sessions.commit(first, headers);
      const cookie = headers.getSetCookie()[0]?.split(";")[0] ?? "";
      expect(cookie).toMatch(/=/);
      const second = await sessions.load(new Headers({ cookie }));
      expect(second.isNew).toBe(false);
      expect(second.get("count")).toBe(1);
      second.set("count", 2);
      await sessions.commit(second, new Headers());
      expect((await sessions.load(new Headers({ cookie }))).get("count")).toBe(2);
    });
  });
}
