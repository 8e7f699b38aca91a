import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, isSessionError, StoreUnavailableError } from "../../src/errors.js";
import { createSessions } from "../../src/manager.js";
import { type RedisClientLike, redisStore } from "../../src/stores/redis.js";
import type { SessionMeta, SessionStore } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";
import { REDIS_URL, serviceAvailable } from "../helpers/services.js";

const available = await serviceAvailable("Redis", REDIS_URL);

// The shared server is used by other test files at the same time: every key this file writes starts
// with its own prefix, and only those keys are ever read back or deleted (never FLUSHDB).
const FILE_PREFIX = `skt:redis:${process.pid}:`;
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const OUTAGE_TIMEOUT_MS = 500;
/** Generous: the store must give up within its commandTimeout, not within the driver's retries. */
const OUTAGE_BOUND_MS = 5000;

const metaAt = (at: number): SessionMeta => ({ createdAt: at, touchedAt: at, renewedAt: at });
let keySeq = 0;
/** Distinct keys of the real shape (43 base64url characters), readable in a failing test. */
const newKey = () => `redistestkey${String(++keySeq).padStart(4, "0")}`.padEnd(43, "A");

/** Every key of `prefix` on the server, with its type, value and remaining lifetime, as text. */
async function dumpPrefix(admin: Redis, prefix: string): Promise<string> {
  const lines: string[] = [];
  for (const key of await scanPrefix(admin, prefix)) {
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

async function scanPrefix(admin: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

async function deletePrefix(admin: Redis, prefix: string): Promise<void> {
  const keys = await scanPrefix(admin, prefix);
  if (keys.length > 0) await admin.unlink(...keys);
}

/** Wraps a client so a test sees every command the store sends: one command is one round trip. */
function countCommands<C extends object>(client: C): { client: C; commands: string[][] } {
  const commands: string[][] = [];
  const proxy = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (property === "call" && typeof value === "function") {
        return (...args: string[]) => {
          commands.push(args);
          return value.apply(target, args);
        };
      }
      if (property === "sendCommand" && typeof value === "function") {
        return (args: string[]) => {
          commands.push(args);
          return value.call(target, args);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { client: proxy, commands };
}

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
  let admin: Redis;
  beforeAll(async () => {
    admin = new Redis(REDIS_URL);
    await deletePrefix(admin, FILE_PREFIX);
  });
  afterAll(async () => {
    await deletePrefix(admin, FILE_PREFIX);
    admin?.disconnect();
  });

  describe("options", () => {
    it("refuses a prefix with a hash-tag brace, an unknown option and an unknown client", async () => {
      const client = new Redis(REDIS_URL, { lazyConnect: true });
      try {
        for (const bad of [
          () => redisStore({ client, prefix: "a{b}:" }),
          () => redisStore({ client, commandTimeout: 0 }),
          () => redisStore({ client, ttl: 5 } as never),
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

  for (const kind of KINDS) {
    const prefix = `${FILE_PREFIX}${kind.name}:`;
    let handle: Awaited<ReturnType<ClientKind["connect"]>>;
    beforeAll(async () => {
      handle = await kind.connect(REDIS_URL);
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

  describe("outage and recovery on a private redis-server", () => {
    let server: PrivateServer;
    beforeAll(async () => {
      server = await PrivateServer.start();
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

/** The store-specific tests, run inside the conformance describe of each client kind. */
function specifics(
  kind: ClientKind,
  prefix: string,
  client: () => RedisClientLike,
  admin: () => Redis,
): void {
  describe(`${kind.name} specifics`, () => {
    const store = (c: RedisClientLike = client()) => redisStore({ client: c, prefix });
    const sessionKey = (key: string) => `${prefix}s:{${key}}`;
    const indexKey = (userId: string) => `${prefix}u:{${userId}}`;

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

    it("gives every key it writes a PX expiry: session, user index and lock", async () => {
      const s = store();
      const [k1, k2] = [newKey(), newKey()];
      await s.set(
        k1,
        { data: {}, meta: { ...metaAt(Date.now()), userId: "ttl-user" } },
        Date.now() + HOUR_MS,
      );
      await s.set(k2, { data: {}, meta: metaAt(Date.now()) }, Date.now() + HOUR_MS);
      await s.patch(
        k2,
        { set: { a: 1 }, delete: [], meta: { userId: "ttl-user-2" } },
        Date.now() + HOUR_MS,
      );
      await s.touch(k1, Date.now(), Date.now() + 2 * HOUR_MS);
      const release = await s.lock?.(k1, MINUTE_MS, 0);
      const keys = await scanPrefix(admin(), prefix);
      expect(keys.sort()).toEqual(
        [
          sessionKey(k1),
          sessionKey(k2),
          indexKey("ttl-user"),
          indexKey("ttl-user-2"),
          `${prefix}l:{${k1}}`,
        ].sort(),
      );
      for (const name of keys) expect(await admin().pttl(name)).toBeGreaterThan(0);
      await release?.();
    });

    it("get, patch and touch each take one round trip once the scripts are cached", async () => {
      const counted = countCommands(client());
      const s = store(counted.client);
      const key = newKey();
      await s.set(
        key,
        { data: { a: 1 }, meta: { ...metaAt(Date.now()), userId: "rt" } },
        Date.now() + HOUR_MS,
      );
      // Warm-up: the first EVALSHA on a fresh server costs a NOSCRIPT and an EVAL.
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
      expect(await admin().exists(`${prefix}l:{${key}}`)).toBe(0);
    });

    it("lock: a holder whose lock expired does not release the next holder's lock", async () => {
      const s = store() as Required<SessionStore>;
      const key = newKey();
      const first = await s.lock(key, 30, 0);
      const second = await s.lock(key, MINUTE_MS, 1000);
      expect(second).toBeTypeOf("function");
      await first?.();
      expect(await admin().exists(`${prefix}l:{${key}}`)).toBe(1);
      await second?.();
      expect(await admin().exists(`${prefix}l:{${key}}`)).toBe(0);
    });

    it("close does not close the client it was given", async () => {
      const s = store();
      await s.close?.();
      const key = newKey();
      await s.set(key, { data: { still: "open" }, meta: metaAt(Date.now()) }, Date.now() + HOUR_MS);
      expect((await s.get(key))?.data).toEqual({ still: "open" });
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

/** A redis-server of this test's own on 127.0.0.1, so killing it disturbs no other test. */
class PrivateServer {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  get running(): boolean {
    return this.child !== undefined;
  }

  static async start(): Promise<PrivateServer> {
    const server = new PrivateServer(await freePort());
    await server.restart();
    return server;
  }

  async restart(): Promise<void> {
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (await answersPing(this.port)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("the private redis-server did not start");
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  stop(): Promise<void> {
    return this.kill();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (chunk) => done(chunk.toString().startsWith("+PONG")));
  });
}
