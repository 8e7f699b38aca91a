/**
 * The Redis store's `move`. On a single server one script that reads the old session hash, applies
 * the patch, writes the new one and moves the user index entry; on a cluster client, whose keys span
 * slots, a fence on the old hash, then `set` and `delete`. Each with ioredis and node-redis (and
 * node-redis with Buffer replies).
 */
import { Cluster, Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DELETE_SCRIPT,
  FENCE_SCRIPT,
  INDEX_ADD_SCRIPT,
  SET_SCRIPT,
} from "../../src/stores/internal/redis-scripts.js";
import { redisStore } from "../../src/stores/redis.js";
import type { SessionMeta, SessionStore, StoredSession } from "../../src/stores/store.js";
import { scanPrefix } from "../helpers/redis-keys.js";
import { REDIS_CLUSTER_NODES, REDIS_URL, serviceAvailable } from "../helpers/services.js";
import {
  CLUSTER_KINDS,
  countCommands,
  holdCommand,
  nodeRedisBufferKind,
  type RedisClientKind,
} from "./redis-cases.js";
import { HOUR_MS, keyMaker, metaAt } from "./support.js";

const single = await serviceAvailable("Redis", REDIS_URL);
const seed = REDIS_CLUSTER_NODES[0] ?? { host: "127.0.0.1", port: 7000 };
const cluster = await serviceAvailable("Redis Cluster", `redis://${seed.host}:${seed.port}`);

// The servers are shared with other test files: only keys under this prefix are written or deleted.
const FILE_PREFIX = `skt:redis-move:${process.pid}:`;
const RACE_ROUNDS = 200;
/** PTTL against expiresAt - now: the test's clock and the server's, and a round trip between. */
const TTL_SLACK_MS = 2000;

const newKey = keyMaker("movetestkey");

const KINDS: RedisClientKind[] = [
  {
    name: "ioredis",
    async connect() {
      const client = new Redis(REDIS_URL);
      return { client, close: async () => client.disconnect() };
    },
  },
  {
    name: "node-redis",
    async connect() {
      const client = createClient({ url: REDIS_URL });
      client.on("error", () => {});
      await client.connect();
      return { client, close: async () => void client.destroy() };
    },
  },
  nodeRedisBufferKind(REDIS_URL),
];

/** A session of `meta` and `data` written at `key`, an hour out. */
async function seedSession(
  store: SessionStore,
  key: string,
  data: Record<string, unknown>,
  meta: Record<string, unknown> = {},
): Promise<StoredSession> {
  const session = { data, meta: { ...metaAt(Date.now()), ...meta } as SessionMeta };
  await store.set(key, session, Date.now() + HOUR_MS);
  return session;
}

const later = () => Date.now() + 2 * HOUR_MS;
/** Resolves after `n` turns of the event loop (0: at once). */
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A move's patch as a renewal makes it: nothing but the meta the manager records. */
const renewal = (meta: Record<string, unknown> = {}) => ({
  set: {},
  delete: [],
  meta: { renewedAt: Date.now(), ...meta },
});

for (const kind of KINDS) {
  describe.skipIf(!single)(`redisStore move (${kind.name})`, () => {
    const prefix = `${FILE_PREFIX}${kind.name.replace(/\W+/g, "-")}:`;
    let admin: Redis;
    // Two connections: the race's move and patch really reach the server apart.
    let first: Awaited<ReturnType<RedisClientKind["connect"]>>;
    let second: Awaited<ReturnType<RedisClientKind["connect"]>>;
    let store: SessionStore;
    let other: SessionStore;
    const hashKey = (key: string) => `${prefix}s:{${key}}`;
    const indexKey = (userId: string) => `${prefix}u:{${userId}}`;
    const cleanUp = async () => {
      const keys = await scanPrefix([admin], prefix);
      if (keys.length > 0) await admin.unlink(...keys);
    };

    beforeAll(async () => {
      admin = new Redis(REDIS_URL);
      first = await kind.connect();
      second = await kind.connect();
      store = redisStore({ client: first.client, prefix });
      other = redisStore({ client: second.client, prefix });
      await cleanUp();
    });
    afterAll(async () => {
      if (admin) await cleanUp();
      admin?.disconnect();
      await first?.close();
      await second?.close();
    });

    it("carries the data and meta changes to the new key, a null meta field removed, and drops the old", async () => {
      const [a, b] = [newKey(), newKey()];
      const seeded = await seedSession(
        store,
        a,
        { keep: 1, drop: 2, over: "x" },
        { label: "laptop", ip: "192.0.2.1" },
      );
      const renewedAt = Date.now() + 1;
      const moved = await store.move?.(
        a,
        b,
        {
          set: { over: "y", add: [1, { n: null }] },
          delete: ["drop"],
          meta: { renewedAt, label: null, userAgent: "UA" },
        },
        later(),
      );
      const { label: _removed, ...kept } = seeded.meta;
      const expected = {
        data: { keep: 1, over: "y", add: [1, { n: null }] },
        meta: { ...kept, renewedAt, userAgent: "UA" },
      };
      expect(moved).toEqual(expected);
      expect(await store.get(b)).toEqual(expected);
      expect(await store.get(a)).toBeUndefined();
      expect(await admin.exists(hashKey(a))).toBe(0);
    });

    it("resolves undefined and writes nothing when the old key holds no session", async () => {
      const [a, b] = [newKey(), newKey()];
      expect(await store.move?.(a, b, renewal({ userId: "nobody" }), later())).toBeUndefined();
      expect(await admin.exists(hashKey(a), hashKey(b), indexKey("nobody"))).toBe(0);
    });

    it("resolves undefined for an entry past its deadline by the store's clock, leaving it", async () => {
      const [a, b] = [newKey(), newKey()];
      await seedSession(store, a, { k: 1 });
      const ahead = redisStore({ client: first.client, prefix, now: () => Date.now() + HOUR_MS });
      expect(await ahead.move?.(a, b, renewal(), later())).toBeUndefined();
      expect(await admin.exists(hashKey(b))).toBe(0);
      expect((await store.get(a))?.data).toEqual({ k: 1 });
    });

    it("replaces whatever the new key held", async () => {
      const [a, b] = [newKey(), newKey()];
      await seedSession(store, a, { mine: 1 });
      await seedSession(store, b, { theirs: 1 }, { label: "old" });
      const moved = await store.move?.(a, b, renewal(), later());
      expect(moved?.data).toEqual({ mine: 1 });
      expect((await store.get(b))?.meta.label).toBeUndefined();
    });

    it("sets the new key's native TTL to expiresAt", async () => {
      const [a, b] = [newKey(), newKey()];
      await seedSession(store, a, {});
      const expiresAt = Date.now() + 3 * HOUR_MS;
      await store.move?.(a, b, renewal(), expiresAt);
      const pttl = await admin.pttl(hashKey(b));
      expect(Math.abs(pttl - (expiresAt - Date.now()))).toBeLessThan(TTL_SLACK_MS);
      expect(Number(await admin.hget(hashKey(b), "e"))).toBe(expiresAt);
    });

    it("a deadline already past on the server's clock ends the session: undefined, both keys gone", async () => {
      const [a, b] = [newKey(), newKey()];
      await seedSession(store, a, {}, { userId: "past" });
      expect(await store.move?.(a, b, renewal(), Date.now() - 1000)).toBeUndefined();
      expect(await admin.exists(hashKey(a), hashKey(b))).toBe(0);
      expect(await store.listByUser?.("past")).toEqual([]);
    });

    it("keeps a data key __proto__, unicode keys and meta field names with a colon", async () => {
      const [a, b] = [newKey(), newKey()];
      const flash = "flash:0mjabc12300x1a2b3c";
      const read = "flash:0mjabc12300x1a2b3b";
      const added = "flash:0mjabc12300x1a2b3d";
      // JSON.parse makes "__proto__" an own key, as a request's data would hold it.
      const data = JSON.parse('{"__proto__": {"polluted": true}, "ключ🔑": "värde ✓"}');
      await seedSession(store, a, data, { [flash]: ["info", "kept"], [read]: ["info", "read"] });
      const set = JSON.parse('{"__proto__": {"polluted": "again"}, "名前": "新"}');
      const moved = await store.move?.(
        a,
        b,
        { set, delete: [], meta: { [added]: ["warn", "ñ 🙂"], [read]: null } },
        later(),
      );
      for (const record of [moved, await store.get(b)]) {
        expect(Object.getPrototypeOf(record?.data)).toBe(Object.prototype);
        expect(Object.hasOwn(record?.data ?? {}, "__proto__")).toBe(true);
        expect(Object.entries(record?.data ?? {})).toEqual([
          ["__proto__", { polluted: "again" }],
          ["ключ🔑", "värde ✓"],
          ["名前", "新"],
        ]);
        const meta = record?.meta as unknown as Record<string, unknown>;
        expect(meta[flash]).toEqual(["info", "kept"]);
        expect(meta[added]).toEqual(["warn", "ñ 🙂"]);
        expect(meta).not.toHaveProperty([read]);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    describe("the user index follows the session", () => {
      it("same user, named by the patch: listed under the new key only, signed out there", async () => {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, {}, { userId: "ada" });
        await store.move?.(a, b, renewal({ userId: "ada" }), later());
        expect((await store.listByUser?.("ada"))?.map((e) => e.key)).toEqual([b]);
        // ZREM of the old key inside the script: no stale member left for reads to prune.
        expect(await admin.zrange(indexKey("ada"), "0", "-1")).toEqual([b]);
        expect(Number(await admin.hget(hashKey(b), "i"))).toBeGreaterThanOrEqual(
          Number(await admin.hget(hashKey(b), "e")),
        );
        expect(await store.deleteByUser?.("ada")).toBe(1);
        expect(await store.get(b)).toBeUndefined();
      });

      it("same user, left unnamed by the patch: the script learns the owner and runs again", async () => {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, { k: 1 }, { userId: "bea" });
        const moved = await store.move?.(a, b, renewal(), later());
        expect(moved?.meta.userId).toBe("bea");
        expect(await admin.zrange(indexKey("bea"), "0", "-1")).toEqual([b]);
        expect(await store.deleteByUser?.("bea")).toBe(1);
      });

      it("to another user: gone from the old user's index, in the new one's", async () => {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, {}, { userId: "cid" });
        await store.move?.(a, b, renewal({ userId: "dan" }), later());
        expect(await store.listByUser?.("cid")).toEqual([]);
        expect(await admin.zrange(indexKey("cid"), "0", "-1")).toEqual([]);
        expect((await store.listByUser?.("dan"))?.map((e) => e.key)).toEqual([b]);
        expect(await store.deleteByUser?.("cid")).toBe(0);
        expect(await store.deleteByUser?.("dan")).toBe(1);
        expect(await store.get(b)).toBeUndefined();
      });

      it("unbound (userId null): out of the index, no horizon field left", async () => {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, {}, { userId: "eve" });
        const moved = await store.move?.(a, b, renewal({ userId: null }), later());
        expect(moved?.meta).not.toHaveProperty("userId");
        expect(await admin.zrange(indexKey("eve"), "0", "-1")).toEqual([]);
        expect(await admin.hexists(hashKey(b), "i")).toBe(0);
        expect(await store.deleteByUser?.("eve")).toBe(0);
        expect(await store.get(b)).toBeDefined();
      });

      it("bound by the move (a sign-in's regenerate): indexed under the new key", async () => {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, { cart: 2 });
        await store.move?.(a, b, renewal({ userId: "fay" }), later());
        expect((await store.listByUser?.("fay"))?.map((e) => [e.key, e.data])).toEqual([
          [b, { cart: 2 }],
        ]);
        expect(await store.deleteByUser?.("fay")).toBe(1);
      });
    });

    it("round trips: one when the patch names the owner, two when it leaves a bound session's unnamed", async () => {
      const counted = countCommands(first.client);
      const counting = redisStore({ client: counted.client, prefix });
      const trips = async (seedMeta: Record<string, unknown>, meta: Record<string, unknown>) => {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, {}, seedMeta);
        counted.commands.length = 0;
        expect(await counting.move?.(a, b, renewal(meta), later())).toBeDefined();
        // A NOSCRIPT and its EVAL would be two: the script is cached by the tests before this one.
        return counted.commands.length;
      };
      expect(await trips({ userId: "gus" }, { userId: "gus" })).toBe(1);
      expect(await trips({}, { userId: "gus" })).toBe(1);
      expect(await trips({}, {})).toBe(1);
      expect(await trips({}, { userId: null })).toBe(1);
      expect(await trips({ userId: "gus" }, {})).toBe(2);
      expect(await trips({ userId: "gus" }, { userId: "hal" })).toBe(2);
    });

    it(`a patch of the old key racing the move lands before it (carried) or answers false, ${RACE_ROUNDS} rounds`, async () => {
      const outcomes = { carried: 0, refused: 0 };
      let bound = 0;
      for (let i = 0; i < RACE_ROUNDS; i++) {
        const [a, b] = [newKey(), newKey()];
        // Half the sessions belong to a user the move's patch leaves unnamed: the two-run path.
        const userId = Math.floor(i / 4) % 2 === 1 ? "racer" : undefined;
        if (userId) bound++;
        await seedSession(store, a, { base: i }, userId ? { userId } : {});
        // Started together, or one a turn of the event loop after the other: else each kind of
        // round would land in one order every time.
        const lag = i % 4;
        const [moved, patched] = await Promise.all([
          turns(lag === 3 ? 1 : 0).then(() => store.move?.(a, b, renewal(), later())),
          turns(lag === 1 ? 1 : 0).then(() =>
            other.patch(a, { set: { k: i }, delete: [] }, later()),
          ),
        ]);
        const atB = await store.get(b);
        expect(moved).toBeDefined();
        expect(atB?.data.base).toBe(i);
        if (patched) {
          outcomes.carried++;
          expect(atB?.data.k).toBe(i);
          expect(moved?.data.k).toBe(i);
        } else {
          outcomes.refused++;
          expect(atB?.data).not.toHaveProperty("k");
        }
        expect(await admin.exists(hashKey(a))).toBe(0);
      }
      // Both orders happened, or the rounds did not race.
      expect(outcomes.carried).toBeGreaterThan(0);
      expect(outcomes.refused).toBeGreaterThan(0);
      // Not ZCARD: a patch that extends its user's index horizon adds its key again after its
      // script, so one the move overtook leaves a stale member there, which reads filter out.
      expect(await store.listByUser?.("racer")).toHaveLength(bound);
    });
  });
}

/** The fence's deadline (epoch ms, the server's clock) as FENCE_SCRIPT writes it. */
const fenceDeadline = (value: string | null) => Number(value?.split(" ")[0]);

for (const kind of CLUSTER_KINDS) {
  describe.skipIf(!cluster)(`redisStore move on a Redis Cluster (${kind.name}): fenced`, () => {
    const prefix = `${FILE_PREFIX}${kind.name.replace(/\W+/g, "-")}:`;
    let admin: Cluster;
    let first: Awaited<ReturnType<RedisClientKind["connect"]>>;
    let second: Awaited<ReturnType<RedisClientKind["connect"]>>;
    let store: SessionStore;
    let other: SessionStore;
    const hashKey = (key: string) => `${prefix}s:{${key}}`;
    const indexKey = (userId: string) => `${prefix}u:{${userId}}`;
    const cleanUp = async () => {
      // One key per command: a multi-key UNLINK would span slots.
      const keys = await scanPrefix(admin.nodes("master"), prefix);
      await Promise.all(keys.map((key) => admin.unlink(key)));
    };
    /** Starts a move on a client that stops before `script` (a mover paused or crashed there). */
    const pausedMove = (script: { sha: string }, from: string, to: string, meta = {}) => {
      const held = holdCommand(first.client, "EVALSHA", script.sha);
      // No commandTimeout: a held command never times out, and the fence span stays 30 s.
      const paused = redisStore({ client: held.client, prefix, commandTimeout: false });
      const moving = paused.move?.(from, to, renewal(meta), later());
      return { ...held, moving };
    };

    beforeAll(async () => {
      admin = new Cluster(REDIS_CLUSTER_NODES, { lazyConnect: true });
      await admin.connect();
      first = await kind.connect();
      second = await kind.connect();
      store = redisStore({ client: first.client, prefix });
      other = redisStore({ client: second.client, prefix });
      await cleanUp();
    });
    afterAll(async () => {
      if (admin) await cleanUp();
      admin?.disconnect();
      await first?.close();
      await second?.close();
    });

    it("carries the changes to the new key, drops the old, and leaves no fence behind", async () => {
      const [a, b] = [newKey(), newKey()];
      const seeded = await seedSession(store, a, { keep: 1, drop: 2 }, { label: "laptop" });
      const renewedAt = Date.now() + 1;
      const moved = await store.move?.(
        a,
        b,
        { set: { add: [1] }, delete: ["drop"], meta: { renewedAt, label: null } },
        later(),
      );
      const { label: _removed, ...kept } = seeded.meta;
      const expected = { data: { keep: 1, add: [1] }, meta: { ...kept, renewedAt } };
      expect(moved).toEqual(expected);
      expect(await store.get(b)).toEqual(expected);
      expect(await admin.exists(hashKey(a))).toBe(0);
      expect(await admin.hexists(hashKey(b), "f")).toBe(0);
    });

    it("resolves undefined and writes nothing for a missing or expired old key", async () => {
      const [a, b] = [newKey(), newKey()];
      expect(await store.move?.(a, b, renewal({ userId: "nobody" }), later())).toBeUndefined();
      expect(await admin.exists(hashKey(a))).toBe(0);
      expect(await admin.exists(hashKey(b))).toBe(0);
      expect(await admin.exists(indexKey("nobody"))).toBe(0);
      await seedSession(store, a, { k: 1 });
      const ahead = redisStore({ client: first.client, prefix, now: () => Date.now() + HOUR_MS });
      expect(await ahead.move?.(a, b, renewal(), later())).toBeUndefined();
      expect(await admin.exists(hashKey(b))).toBe(0);
      // Not live by the mover's clock: not fenced either, so writes go on.
      expect(await admin.hexists(hashKey(a), "f")).toBe(0);
      expect(await store.patch(a, { set: { k: 2 }, delete: [] }, later())).toBe(true);
    });

    it("moves the user index entry: same user, another user, none", async () => {
      const [a, b, c, d] = [newKey(), newKey(), newKey(), newKey()];
      await seedSession(store, a, {}, { userId: "ann" });
      await store.move?.(a, b, renewal(), later());
      expect(await admin.zrange(indexKey("ann"), "0", "-1")).toEqual([b]);
      await store.move?.(b, c, renewal({ userId: "bob" }), later());
      expect(await admin.zrange(indexKey("ann"), "0", "-1")).toEqual([]);
      expect((await store.listByUser?.("bob"))?.map((e) => e.key)).toEqual([c]);
      await store.move?.(c, d, renewal({ userId: null }), later());
      expect(await admin.zrange(indexKey("bob"), "0", "-1")).toEqual([]);
      expect(await admin.hexists(hashKey(d), "i")).toBe(0);
      expect((await store.get(d))?.meta).not.toHaveProperty("userId");
    });

    it("round trips: the fence, set and delete; two more with a user", async () => {
      const counted = countCommands(first.client);
      const counting = redisStore({ client: counted.client, prefix });
      const trips = async (meta: Record<string, unknown>) => {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, {}, meta);
        counted.commands.length = 0;
        expect(await counting.move?.(a, b, renewal(), later())).toBeDefined();
        return counted.commands.length;
      };
      // Cached on every master, so that no NOSCRIPT and EVAL count as a trip.
      for (const node of admin.nodes("master")) {
        for (const script of [FENCE_SCRIPT, SET_SCRIPT, DELETE_SCRIPT, INDEX_ADD_SCRIPT]) {
          await node.script("LOAD", script.source);
        }
      }
      expect(await trips({})).toBe(3);
      expect(await trips({ userId: "cal" })).toBe(5);
    });

    it("while the move runs, the old key answers reads; writes and a second move wait for its end, and find nothing", async () => {
      const [a, b, c] = [newKey(), newKey(), newKey()];
      const seeded = await seedSession(store, a, { k: 1 }, { userId: "dot" });
      const paused = pausedMove(DELETE_SCRIPT, a, b);
      await paused.held;
      let answered = 0;
      const waiting = Promise.all(
        [
          other.patch(a, { set: { k: 2 }, delete: [] }, later()),
          other.touch(a, Date.now(), later()),
          other.move?.(a, c, renewal(), later()),
        ].map((call) => call?.finally(() => answered++)),
      );
      // The fence is neither data nor meta.
      expect(await other.get(a)).toEqual(seeded);
      // Listed under both keys until the old one goes, the old one as it was.
      const listed = (await other.listByUser?.("dot")) ?? [];
      expect(listed.map((e) => e.key).sort()).toEqual([a, b].sort());
      expect(listed.find((e) => e.key === a)).toEqual({
        key: a,
        expiresAt: expect.any(Number),
        ...seeded,
      });
      await sleep(50);
      expect(answered).toBe(0);
      paused.open();
      expect((await paused.moving)?.data).toEqual({ k: 1 });
      expect(await waiting).toEqual([false, false, undefined]);
      expect((await store.get(b))?.data).toEqual({ k: 1 });
      expect(await admin.exists(hashKey(a))).toBe(0);
      expect(await admin.exists(hashKey(c))).toBe(0);
      expect((await store.listByUser?.("dot"))?.map((e) => e.key)).toEqual([b]);
    });

    it("a sign-out everywhere between the new key's write and the old key's delete ends both, counted once", async () => {
      const [a, b] = [newKey(), newKey()];
      await seedSession(store, a, {}, { userId: "eli" });
      const paused = pausedMove(DELETE_SCRIPT, a, b);
      await paused.held;
      expect(await admin.zrange(indexKey("eli"), "0", "-1")).toHaveLength(2);
      expect(await other.deleteByUser?.("eli")).toBe(1);
      paused.open();
      expect(await paused.moving).toBeUndefined();
      expect(await admin.exists(hashKey(a))).toBe(0);
      expect(await admin.exists(hashKey(b))).toBe(0);
      expect(await store.listByUser?.("eli")).toEqual([]);
    });

    it("a delete of the old key before the mover's: the move resolves undefined and the new key goes", async () => {
      const [a, b] = [newKey(), newKey()];
      await seedSession(store, a, {}, { userId: "fan" });
      const paused = pausedMove(DELETE_SCRIPT, a, b);
      await paused.held;
      expect(await other.delete(a)).toBe(true);
      paused.open();
      expect(await paused.moving).toBeUndefined();
      expect(await admin.exists(hashKey(b))).toBe(0);
      expect(await admin.zrange(indexKey("fan"), "0", "-1")).toEqual([]);
    });

    it("a mover that crashed after the fence: writes wait 2 s and are refused until the fence lapses", async () => {
      const [a, b, c] = [newKey(), newKey(), newKey()];
      await seedSession(store, a, { k: 1 });
      const crashed = pausedMove(SET_SCRIPT, a, b);
      await crashed.held; // never opened: this mover stops for good after its fence
      const fence = await admin.hget(hashKey(a), "f");
      expect(fence?.split(" ")[1]).toBe(b);
      const span = fenceDeadline(fence) - Date.now();
      expect(span).toBeGreaterThan(30_000 - TTL_SLACK_MS);
      expect(span).toBeLessThanOrEqual(30_000 + TTL_SLACK_MS);
      const asked = Date.now();
      expect(await other.patch(a, { set: { k: 2 }, delete: [] }, later())).toBe(false);
      expect(Date.now() - asked).toBeGreaterThanOrEqual(2000);
      expect((await other.get(a))?.data).toEqual({ k: 1 });
      // The span as it lapses on the server's clock: the deadline moved into the past.
      await admin.hset(hashKey(a), "f", `${Date.now() - 1} ${b}`);
      expect(await other.patch(a, { set: { k: 2 }, delete: [] }, later())).toBe(true);
      expect(await other.touch(a, Date.now(), later())).toBe(true);
      const moved = await other.move?.(a, c, renewal(), later());
      expect(moved?.data).toEqual({ k: 2 });
      expect(await admin.exists(hashKey(a))).toBe(0);
      expect(await admin.exists(hashKey(b))).toBe(0);
    });

    it("the fence outlasts five command timeouts when they are longer than 30 s", async () => {
      const [a, b] = [newKey(), newKey()];
      await seedSession(store, a, {});
      const held = holdCommand(first.client, "EVALSHA", SET_SCRIPT.sha);
      const slow = redisStore({ client: held.client, prefix, commandTimeout: 10_000 });
      // Its held command times out in 10 s, long after this test: nobody is left to hear it.
      slow.move?.(a, b, renewal(), later()).catch(() => {});
      await held.held;
      const span = fenceDeadline(await admin.hget(hashKey(a), "f")) - Date.now();
      expect(span).toBeGreaterThan(50_000 - TTL_SLACK_MS);
      expect(span).toBeLessThanOrEqual(50_000 + TTL_SLACK_MS);
    });

    it(`a patch of the old key racing the move is carried or answers false, ${RACE_ROUNDS} rounds`, async () => {
      const outcomes = { carried: 0, refused: 0 };
      for (let i = 0; i < RACE_ROUNDS; i++) {
        const [a, b] = [newKey(), newKey()];
        const userId = Math.floor(i / 4) % 2 === 1 ? "racer" : undefined;
        await seedSession(store, a, { base: i }, userId ? { userId } : {});
        const lag = i % 4;
        // Every other four rounds a touch, which PATCH_SCRIPT runs as well: its mark is touchedAt.
        const touchedAt = i % 8 >= 4 ? Date.now() + HOUR_MS + i : undefined;
        const [moved, patched] = await Promise.all([
          turns(lag === 3 ? 1 : 0).then(() => store.move?.(a, b, renewal(), later())),
          turns(lag === 1 ? 1 : 0).then(() =>
            touchedAt === undefined
              ? other.patch(a, { set: { k: i }, delete: [] }, later())
              : other.touch(a, touchedAt, later()),
          ),
        ]);
        const atB = await store.get(b);
        const context = `round ${i}: ${touchedAt === undefined ? "patch" : "touch"} ${patched}`;
        expect(moved, context).toBeDefined();
        expect(atB?.data.base, context).toBe(i);
        const carried = (record?: StoredSession) =>
          touchedAt === undefined ? record?.data.k === i : record?.meta.touchedAt === touchedAt;
        if (patched) outcomes.carried++;
        else outcomes.refused++;
        expect(carried(atB), context).toBe(patched);
        expect(carried(moved), context).toBe(patched);
        expect(await admin.exists(hashKey(a))).toBe(0);
      }
      expect(outcomes.carried).toBeGreaterThan(0);
      expect(outcomes.refused).toBeGreaterThan(0);
    });

    it(`a delete of the old key racing the move: one of them finds it, ${RACE_ROUNDS} rounds`, async () => {
      const outcomes = { moved: 0, deleted: 0 };
      for (let i = 0; i < RACE_ROUNDS; i++) {
        const [a, b] = [newKey(), newKey()];
        await seedSession(store, a, { base: i }, { userId: "deleter" });
        // The move takes three to five round trips: a delete started with it lands inside, and
        // one started up to a few ms later lands after it as well.
        const [moved, deleted] = await Promise.all([
          store.move?.(a, b, renewal(), later()),
          sleep(i % 4).then(() => other.delete(a)),
        ]);
        if (moved) {
          outcomes.moved++;
          expect(deleted).toBe(false);
          expect((await store.get(b))?.data).toEqual({ base: i });
          await store.delete(b);
        } else {
          outcomes.deleted++;
          expect(deleted).toBe(true);
          expect(await admin.exists(hashKey(b))).toBe(0);
        }
        expect(await admin.exists(hashKey(a))).toBe(0);
      }
      expect(outcomes.moved).toBeGreaterThan(0);
      expect(outcomes.deleted).toBeGreaterThan(0);
      expect(await admin.zrange(indexKey("deleter"), "0", "-1")).toEqual([]);
    });

    it(`a sign-out everywhere racing the move ends the session once, ${RACE_ROUNDS} rounds`, async () => {
      for (let i = 0; i < RACE_ROUNDS; i++) {
        const [a, b] = [newKey(), newKey()];
        const userId = `everywhere-${i}`;
        await seedSession(store, a, { base: i }, { userId });
        const lag = i % 4;
        const [, count] = await Promise.all([
          turns(lag === 3 ? 1 : 0).then(() => store.move?.(a, b, renewal(), later())),
          turns(lag === 1 ? 1 : 0).then(() => other.deleteByUser?.(userId)),
        ]);
        expect(count, `round ${i}`).toBe(1);
        expect(await admin.exists(hashKey(a)), `round ${i}`).toBe(0);
        expect(await admin.exists(hashKey(b)), `round ${i}`).toBe(0);
        expect(await store.listByUser?.(userId), `round ${i}`).toEqual([]);
      }
    });

    it(`two moves of one key at once: exactly one wins, ${RACE_ROUNDS} rounds`, async () => {
      const wins = { first: 0, second: 0 };
      for (let i = 0; i < RACE_ROUNDS; i++) {
        const [a, b, c] = [newKey(), newKey(), newKey()];
        await seedSession(store, a, { base: i }, { userId: "twice" });
        const lag = i % 4;
        const [one, two] = await Promise.all([
          turns(lag === 3 ? 1 : 0).then(() => store.move?.(a, b, renewal(), later())),
          turns(lag === 1 ? 1 : 0).then(() => other.move?.(a, c, renewal(), later())),
        ]);
        expect([one, two].filter(Boolean), `round ${i}`).toHaveLength(1);
        const [won, lost] = one ? [b, c] : [c, b];
        if (one) wins.first++;
        else wins.second++;
        expect((await store.get(won))?.data).toEqual({ base: i });
        expect(await admin.exists(hashKey(lost))).toBe(0);
        expect(await admin.exists(hashKey(a))).toBe(0);
        await store.delete(won);
      }
      expect(wins.first).toBeGreaterThan(0);
      expect(wins.second).toBeGreaterThan(0);
      expect(await admin.zrange(indexKey("twice"), "0", "-1")).toEqual([]);
    });
  });
}
