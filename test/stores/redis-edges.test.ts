/**
 * The Redis store's user index at its edges, on a single server and on the cluster, with each client
 * library: user ids that UTF-8 cannot hold as they are (a lone surrogate), and the millisecond of a
 * session's deadline.
 */
import { Cluster, Redis } from "ioredis";
import { createClient, createCluster } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisClientLike, redisStore } from "../../src/stores/redis.js";
import type { SessionStore } from "../../src/stores/store.js";
import { scanPrefix } from "../helpers/redis-keys.js";
import { REDIS_CLUSTER_NODES, REDIS_URL, serviceAvailable } from "../helpers/services.js";
import { withBufferReplies } from "./redis-cases.js";
import { HOUR_MS, keyMaker, MINUTE_MS, metaAt } from "./support.js";

const seed = REDIS_CLUSTER_NODES[0] ?? { host: "127.0.0.1", port: 7000 };
const single = await serviceAvailable("Redis", REDIS_URL);
const cluster = await serviceAvailable("Redis Cluster", `redis://${seed.host}:${seed.port}`);

// Shared servers: only keys under this file's prefix are ever written, read back or deleted.
const FILE_PREFIX = `skt:redis-edges:${process.pid}:`;
const newKey = keyMaker("edgetestkey");

/** A user id with a lone surrogate, as a `.slice()` through an emoji leaves it. */
const cut = (name: string) => `${name}\ud800`;
/** The user id UTF-8 holds `cut(name)` as: the lone surrogate becomes U+FFFD on the wire. */
const replaced = (name: string) => `${name}\ufffd`;

interface Target {
  name: string;
  available: boolean;
  connect(): Promise<{ client: RedisClientLike; close(): void }>;
  admin(): Promise<Redis | Cluster>;
  nodes(admin: Redis | Cluster): Redis[];
}

const TARGETS: Target[] = [
  {
    name: "ioredis",
    available: single,
    async connect() {
      const client = new Redis(REDIS_URL);
      return { client, close: () => client.disconnect() };
    },
    admin: async () => new Redis(REDIS_URL),
    nodes: (admin) => [admin as Redis],
  },
  {
    name: "node-redis",
    available: single,
    async connect() {
      const client = createClient({ url: REDIS_URL });
      client.on("error", () => {});
      await client.connect();
      return { client, close: () => void client.destroy() };
    },
    admin: async () => new Redis(REDIS_URL),
    nodes: (admin) => [admin as Redis],
  },
  {
    name: "node-redis Buffer replies",
    available: single,
    async connect() {
      const client = createClient({ url: REDIS_URL });
      client.on("error", () => {});
      await client.connect();
      return { client: withBufferReplies(client), close: () => void client.destroy() };
    },
    admin: async () => new Redis(REDIS_URL),
    nodes: (admin) => [admin as Redis],
  },
  {
    name: "ioredis Cluster",
    available: cluster,
    async connect() {
      const client = new Cluster(REDIS_CLUSTER_NODES);
      client.on("error", () => {});
      return { client, close: () => client.disconnect() };
    },
    async admin() {
      // Connected before the first SCAN: a cluster client knows no master until then.
      const admin = new Cluster(REDIS_CLUSTER_NODES, { lazyConnect: true });
      await admin.connect();
      return admin;
    },
    nodes: (admin) => (admin as Cluster).nodes("master"),
  },
  {
    name: "node-redis cluster",
    available: cluster,
    async connect() {
      const client = createCluster({
        rootNodes: REDIS_CLUSTER_NODES.map(({ host, port }) => ({
          url: `redis://${host}:${port}`,
        })),
      });
      client.on("error", () => {});
      await client.connect();
      return { client, close: () => void client.destroy() };
    },
    async admin() {
      const admin = new Cluster(REDIS_CLUSTER_NODES, { lazyConnect: true });
      await admin.connect();
      return admin;
    },
    nodes: (admin) => (admin as Cluster).nodes("master"),
  },
];

for (const target of TARGETS) {
  describe.skipIf(!target.available)(`redisStore edges (${target.name})`, () => {
    const prefix = `${FILE_PREFIX}${target.name.replace(/\W+/g, "-")}:`;
    let admin: Redis | Cluster;
    let handle: Awaited<ReturnType<Target["connect"]>>;
    const store = (options: { now?: () => number } = {}): SessionStore =>
      redisStore({ client: handle.client, prefix, ...options });
    const indexKey = (userId: string) => `${prefix}u:{${userId}}`;
    const cleanUp = async () => {
      const keys = await scanPrefix(target.nodes(admin), prefix);
      await Promise.all(keys.map((key) => admin.unlink(key)));
    };

    beforeAll(async () => {
      admin = await target.admin();
      handle = await target.connect();
      await cleanUp();
    });
    afterAll(async () => {
      if (admin) await cleanUp();
      admin?.disconnect();
      handle?.close();
    });

    it("sweep keeps a sliding session of a user id with a lone surrogate in its index", async () => {
      const s = store();
      const key = newKey();
      const userId = cut("swept");
      const start = Date.now();
      await s.set(key, { data: {}, meta: { ...metaAt(start), userId } }, start + 10 * MINUTE_MS);
      // Slides within the index's horizon: its score stays at the first deadline, which the sweep
      // below is past.
      expect(await s.touch(key, start, start + 15 * MINUTE_MS)).toBe(true);
      await s.sweep?.(start + 12 * MINUTE_MS);
      // The admin client names the index as it is sent (a raw lone surrogate would bounce off the
      // cluster with MOVED: the drivers compute its slot from other bytes).
      expect(await admin.zrange(indexKey(replaced("swept")), "0", "-1")).toEqual([key]);
      expect((await s.listByUser?.(userId))?.map((e) => e.key)).toEqual([key]);
      expect((await s.get(key))?.meta.userId).toBe(userId);
      expect(await s.deleteByUser?.(userId)).toBe(1);
      expect(await s.get(key)).toBeUndefined();
    });

    it("get, listByUser and sweep agree at the deadline's millisecond: live before it, hidden at it, indexed until the server drops it", async () => {
      const key = newKey();
      const userId = "at-the-deadline";
      const deadline = Date.now() + HOUR_MS;
      const meta = { ...metaAt(Date.now()), userId };
      await store().set(key, { data: {}, meta }, deadline);
      const before = store({ now: () => deadline - 1 });
      const at = store({ now: () => deadline });
      expect(await before.get(key)).toBeDefined();
      expect((await before.listByUser?.(userId))?.map((e) => e.key)).toEqual([key]);
      expect(await at.get(key)).toBeUndefined();
      expect(await at.listByUser?.(userId)).toEqual([]);
      // The server holds the hash through its PEXPIREAT millisecond: nothing is pruned yet.
      await at.sweep?.(deadline);
      expect(await admin.zrange(indexKey(userId), "0", "-1")).toEqual([key]);
      expect(await at.deleteByUser?.(userId)).toBe(1);
      expect(await admin.exists(`${prefix}s:{${key}}`)).toBe(0);
    });

    /**
     * Two sessions, of `cut(name)` and of `replaced(name)`, in the one index both ids name, each
     * scored behind its deadline as a session that slid within its index's horizon leaves it.
     */
    async function sharedIndex(s: SessionStore, name: string) {
      const [mine, theirs] = [newKey(), newKey()];
      const start = Date.now();
      for (const [key, userId] of [
        [mine, cut(name)],
        [theirs, replaced(name)],
      ] as const) {
        await s.set(key, { data: {}, meta: { ...metaAt(start), userId } }, start + HOUR_MS);
      }
      const index = indexKey(replaced(name));
      expect(await admin.zcard(index)).toBe(2);
      await admin.zadd(index, start - 1000, mine, start - 1000, theirs);
      return { mine, theirs, index };
    }

    it("listByUser of a user id lists, and never unlists, the sessions of another that UTF-8 holds as the same text", async () => {
      const s = store();
      const { mine, theirs, index } = await sharedIndex(s, "listed");
      const both = [mine, theirs].sort();
      expect((await s.listByUser?.(cut("listed")))?.map((e) => e.key).sort()).toEqual(both);
      expect((await admin.zrange(index, "0", "-1")).sort()).toEqual(both);
      expect((await s.listByUser?.(replaced("listed")))?.map((e) => e.key).sort()).toEqual(both);
    });

    it("deleteByUser of a user id signs out the sessions of another that UTF-8 holds as the same text", async () => {
      const s = store();
      const { mine, theirs, index } = await sharedIndex(s, "deleted");
      expect(await s.deleteByUser?.(replaced("deleted"), [theirs])).toBe(1);
      expect(await s.get(mine)).toBeUndefined();
      expect(await admin.zrange(index, "0", "-1")).toEqual([theirs]);
      expect(await s.deleteByUser?.(cut("deleted"))).toBe(1);
      expect(await s.get(theirs)).toBeUndefined();
    });
  });
}
