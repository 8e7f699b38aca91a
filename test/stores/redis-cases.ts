/**
 * What the Redis store's two test files share: a single server and a Cluster each run the
 * conformance suite once per client library, under a key prefix of their own, plus the tests below
 * that hold on either (key expiry, round trips per call, createSessions). Each file passes how to
 * reach its admin connection and scan its keys; what only one of them has stays in that file.
 */
import { Cluster, type Redis, type RedisCommander } from "ioredis";
import { createClient, createCluster, RESP_TYPES } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INDEX_UNTIL_SCRIPT } from "../../src/stores/internal/redis-scripts.js";
import { type RedisClientLike, redisStore } from "../../src/stores/redis.js";
import type { SessionStore } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";
import { scanPrefix } from "../helpers/redis-keys.js";
import { REDIS_CLUSTER_NODES } from "../helpers/services.js";
import { HOUR_MS, itRoundTripsThroughCreateSessions, MINUTE_MS, metaAt } from "./support.js";

/** An ioredis `Redis` or `Cluster`: the commands the tests send are the same on both. */
export type RedisAdmin = RedisCommander & { disconnect(): void };

/** One client library, connected to the file's server or cluster. */
export interface RedisClientKind {
  name: string;
  connect(): Promise<{ client: RedisClientLike; close(): Promise<void> }>;
}

export interface RedisSuite<A extends RedisAdmin> {
  /** The prefix of every key the file writes: only those keys are ever read back or deleted. */
  filePrefix: string;
  kinds: readonly RedisClientKind[];
  newKey(): string;
  connectAdmin(): Promise<A>;
  /** Where SCAN finds the file's keys: the server, or every master of a cluster. */
  nodes(admin: A): Redis[];
  /** The file's own tests of one client kind, run in its specifics after the shared ones. */
  specifics(target: RedisTarget<A>): void;
}

/** One client kind under its own prefix, as its tests see it. */
export interface RedisTarget<A extends RedisAdmin> {
  kind: string;
  prefix: string;
  client(): RedisClientLike;
  admin(): A;
  /** A store on the kind's client, or on `client` (a counting wrapper of it). */
  store(client?: RedisClientLike): SessionStore;
  sessionKey(key: string): string;
  indexKey(userId: string): string;
  lockKey(key: string): string;
  /** Every key under this kind's prefix. */
  scan(): Promise<string[]>;
}

/**
 * Registers, in the calling describe: the admin connection, and for every client kind the
 * conformance suite with the shared specifics and the file's own.
 */
export function testRedisStores<A extends RedisAdmin>(suite: RedisSuite<A>): void {
  let admin: A;
  const deletePrefix = async (prefix: string) => {
    // One key per command: a multi-key UNLINK would span slots on a cluster.
    await Promise.all(
      (await scanPrefix(suite.nodes(admin), prefix)).map((key) => admin.unlink(key)),
    );
  };
  beforeAll(async () => {
    admin = await suite.connectAdmin();
    await deletePrefix(suite.filePrefix);
  });
  afterAll(async () => {
    if (admin) await deletePrefix(suite.filePrefix);
    admin?.disconnect();
  });

  for (const kind of suite.kinds) {
    const prefix = `${suite.filePrefix}${kind.name.replace(/\W+/g, "-")}:`;
    let handle: Awaited<ReturnType<RedisClientKind["connect"]>>;
    beforeAll(async () => {
      handle = await kind.connect();
    });
    afterAll(async () => {
      await handle?.close();
    });
    const target: RedisTarget<A> = {
      kind: kind.name,
      prefix,
      client: () => handle.client,
      admin: () => admin,
      store: (client = handle.client) => redisStore({ client, prefix }),
      sessionKey: (key) => `${prefix}s:{${key}}`,
      indexKey: (userId) => `${prefix}u:{${userId}}`,
      lockKey: (key) => `${prefix}l:{${key}}`,
      scan: () => scanPrefix(suite.nodes(admin), prefix),
    };

    testStore(kind.name, () => target.store(), {
      clock: "server",
      dumpRaw: async () => dumpKeys(admin, (await target.scan()).sort()),
      reset: () => deletePrefix(prefix),
      extra() {
        describe(`${kind.name} specifics`, () => {
          sharedCases(target, suite.newKey);
          suite.specifics(target);
        });
      },
    });
  }
}

/** Each key with its type and value, one a line. */
async function dumpKeys(admin: RedisAdmin, keys: readonly string[]): Promise<string> {
  const lines: string[] = [];
  for (const key of keys) {
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

/**
 * Wraps a client so a test sees every command the store sends: one command is one round trip.
 * ioredis sends through `call(...args)`, node-redis through `sendCommand(args)` and, on a
 * cluster, `sendCommand(firstKey, isReadonly, args)`.
 */
/**
 * A node-redis client whose bulk and simple strings arrive as Buffers (`withTypeMapping`), as an app
 * that keeps binary values in Redis configures it: every reply the store reads is a Buffer.
 */
export function withBufferReplies<C extends { withTypeMapping(mapping: object): unknown }>(
  client: C,
): ReturnType<C["withTypeMapping"]> {
  return client.withTypeMapping({
    [RESP_TYPES.BLOB_STRING]: Buffer,
    [RESP_TYPES.SIMPLE_STRING]: Buffer,
  }) as ReturnType<C["withTypeMapping"]>;
}

export function countCommands<C extends object>(client: C): { client: C; commands: unknown[][] } {
  const commands: unknown[][] = [];
  const proxy = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      if (property === "call" || property === "sendCommand") {
        return (...args: unknown[]) => {
          commands.push(property === "call" ? args : (args.find(Array.isArray) as unknown[]));
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { client: proxy, commands };
}

/**
 * Wraps a client so that the first command whose arguments start with `first`, `second` is held
 * back until `open()` is called: a test can then run other calls in the gap between two of the
 * store's round trips. `held` resolves once the command is waiting.
 */
export function holdCommand<C extends object>(
  client: C,
  first: string,
  second: string,
): { client: C; held: Promise<void>; open(): void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let reached!: () => void;
  const held = new Promise<void>((resolve) => {
    reached = resolve;
  });
  let holding = true;
  const proxy = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      if (property === "call" || property === "sendCommand") {
        return async (...args: unknown[]) => {
          const command = (property === "call" ? args : args.find(Array.isArray)) as unknown[];
          if (holding && command[0] === first && command[1] === second) {
            holding = false;
            reached();
            await gate;
          }
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { client: proxy, held, open };
}

function sharedCases<A extends RedisAdmin>(target: RedisTarget<A>, newKey: () => string): void {
  const { admin, store, sessionKey, indexKey, lockKey } = target;

  it("gives every key it writes a PX expiry: session, user index and lock, on whichever node", async () => {
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
    const keys = await target.scan();
    expect(keys.sort()).toEqual(
      [sessionKey(k1), sessionKey(k2), indexKey("ttl-a"), indexKey("ttl-b"), lockKey(k2)].sort(),
    );
    for (const name of keys) expect(await admin().pttl(name)).toBeGreaterThan(0);
    await release?.();
  });

  it("get, patch and touch each take one round trip once the scripts are cached", async () => {
    const counted = countCommands(target.client());
    const s = store(counted.client);
    const key = newKey();
    await s.set(
      key,
      { data: { a: 1 }, meta: { ...metaAt(Date.now()), userId: "rt" } },
      Date.now() + HOUR_MS,
    );
    // Warm-up: the first EVALSHA on a fresh server (on a cluster, on each node: every node has
    // its own script cache) costs a NOSCRIPT and an EVAL.
    await s.patch(key, { set: { warm: 1 }, delete: [] }, Date.now() + HOUR_MS);
    await s.touch(key, Date.now(), Date.now() + HOUR_MS);
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

  it("delete takes the session out of its user's index at once", async () => {
    const s = store();
    const [gone, kept] = [newKey(), newKey()];
    const userId = "deleted-from-index";
    for (const key of [gone, kept]) {
      await s.set(key, { data: {}, meta: { ...metaAt(Date.now()), userId } }, Date.now() + HOUR_MS);
    }
    await s.delete(gone);
    expect(await admin().zrange(indexKey(userId), "0", "-1")).toEqual([kept]);
  });

  it("a touch that extends the old user's index does not vouch for the index of the user the session moved to", async () => {
    // The touch reads the session's user (a), extends a's index, then records that horizon in the
    // session; a sign-in as b lands in between. The horizon must not be recorded for b's session,
    // or b's index would expire while the session still slides on, unlisted.
    const key = newKey();
    const start = Date.now();
    await store().set(
      key,
      { data: {}, meta: { ...metaAt(start), userId: "moved-a" } },
      start + 10 * MINUTE_MS,
    );
    const held = holdCommand(target.client(), "EVALSHA", INDEX_UNTIL_SCRIPT.sha);
    const touching = store(held.client).touch(key, start, start + 10 * HOUR_MS);
    await held.held;
    expect(
      await store().patch(
        key,
        { set: {}, delete: [], meta: { userId: "moved-b" } },
        start + 10 * MINUTE_MS,
      ),
    ).toBe(true);
    held.open();
    expect(await touching).toBe(true);
    expect(await store().touch(key, start, start + 5 * HOUR_MS)).toBe(true);
    expect(await admin().pttl(indexKey("moved-b"))).toBeGreaterThan(4 * HOUR_MS);
    expect((await store().listByUser?.("moved-b"))?.map((e) => e.key)).toEqual([key]);
  });

  it("sweep with a clock ahead of the server's leaves a session the server still has in its user's index", async () => {
    // A cron host whose clock runs a minute ahead sweeps while the session, about to expire, is
    // still being used through hosts with the right time: it slides, and must stay listed.
    const s = store();
    const key = newKey();
    const userId = "swept-ahead";
    const start = Date.now();
    await s.set(key, { data: {}, meta: { ...metaAt(start), userId } }, start + 5000);
    await s.sweep?.(start + MINUTE_MS);
    expect(await s.touch(key, start, start + 8000)).toBe(true);
    expect((await s.listByUser?.(userId))?.map((e) => e.key)).toEqual([key]);
    expect(await s.deleteByUser?.(userId)).toBe(1);
    expect(await s.get(key)).toBeUndefined();
  });

  it("listByUser on a clock ahead of the server's hides a session but leaves it in its user's index", async () => {
    const key = newKey();
    const userId = "listed-ahead";
    const start = Date.now();
    await store().set(key, { data: {}, meta: { ...metaAt(start), userId } }, start + 5000);
    const ahead = redisStore({
      client: target.client(),
      prefix: target.prefix,
      now: () => Date.now() + MINUTE_MS,
    });
    expect(await ahead.listByUser?.(userId)).toEqual([]);
    expect(await store().touch(key, start, start + 8000)).toBe(true);
    expect((await store().listByUser?.(userId))?.map((e) => e.key)).toEqual([key]);
  });

  it("leaves out a value JSON leaves out (a function), rather than losing the session or failing as an outage", async () => {
    const s = store();
    const key = newKey();
    const dropped = { fn: () => 1, symbol: Symbol("s"), hidden: { toJSON: () => undefined } };
    await s.set(
      key,
      { data: { a: 1, ...dropped }, meta: metaAt(Date.now()) },
      Date.now() + HOUR_MS,
    );
    expect((await s.get(key))?.data).toEqual({ a: 1 });
    await s.patch(key, { set: { b: 2 }, delete: [] }, Date.now() + HOUR_MS);
    expect(
      await s.patch(
        key,
        { set: { a: 3, b: dropped.fn, ...dropped }, delete: [] },
        Date.now() + HOUR_MS,
      ),
    ).toBe(true);
    // As JSON.stringify of the patched record has it: a key whose value JSON drops is gone.
    expect((await s.get(key))?.data).toEqual({ a: 3 });
  });

  itRoundTripsThroughCreateSessions(store);
}

async function nodeRedisCluster() {
  const client = createCluster({
    rootNodes: REDIS_CLUSTER_NODES.map(({ host, port }) => ({ url: `redis://${host}:${port}` })),
  });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** node-redis on the server at `url`, its replies Buffers (`withBufferReplies`). */
export function nodeRedisBufferKind(url: string): RedisClientKind {
  return {
    name: "node-redis Buffer replies",
    async connect() {
      const client = createClient({ url });
      client.on("error", () => {});
      await client.connect();
      return { client: withBufferReplies(client), close: async () => void client.destroy() };
    },
  };
}

/** The cluster clients every store test on the 3-node cluster runs with. */
export const CLUSTER_KINDS: RedisClientKind[] = [
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
      const client = await nodeRedisCluster();
      return { client, close: async () => void client.destroy() };
    },
  },
  {
    name: "node-redis cluster Buffer replies",
    async connect() {
      const client = await nodeRedisCluster();
      return { client: withBufferReplies(client), close: async () => void client.destroy() };
    },
  },
];
