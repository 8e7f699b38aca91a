/**
 * `session.invalidReason` of a store session that timed out: "expired-idle" / "expired-absolute"
 * where the store still holds the entry past its deadline (`expiredMeta`: memory, SQLite,
 * PostgreSQL, MySQL), "unknown-session" where it does not (Redis' native expiry, a revoked or
 * destroyed session). Through the manager, by fake clock: the SQL stores read the same clock.
 */
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionsOptions } from "../../src/options.js";
import { memoryStore } from "../../src/stores/memory.js";
import { mysqlStore } from "../../src/stores/mysql.js";
import { postgresStore } from "../../src/stores/postgres.js";
import { redisStore } from "../../src/stores/redis.js";
import { sqliteStore } from "../../src/stores/sqlite.js";
import type { SessionStore } from "../../src/stores/store.js";
import { type FakeClock, fakeClock, HOUR, harness, MINUTE } from "../core/harness.js";
import { scanPrefix } from "../helpers/redis-keys.js";
import { DATABASE_URL, MYSQL_URL, REDIS_URL, serviceAvailable } from "../helpers/services.js";
import { testTables } from "./sql-cases.js";

const [pgUp, mysqlUp, redisUp] = await Promise.all([
  serviceAvailable("PostgreSQL", DATABASE_URL),
  serviceAvailable("MySQL", MYSQL_URL),
  serviceAvailable("Redis", REDIS_URL),
]);

const PG_TABLE = testTables("xpg").table;
const MYSQL_TABLE = testTables("xmysql").table;
const REDIS_PREFIX = `skt:expiry:${process.pid}:`;

/** The store key of a session id, computed apart from the manager. */
async function keyOf(id: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(id)),
  );
  return btoa(String.fromCharCode(...digest))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

interface Target {
  name: string;
  available: boolean;
  /** A store reading `now` for expiry. */
  open(now: () => number): SessionStore;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
}

let pool: pg.Pool | undefined;
let mysqlPool: mysql.Pool | undefined;
const sqlite = new Database(":memory:");

const TARGETS: Target[] = [
  { name: "memory", available: true, open: (now) => memoryStore({ now }) },
  {
    name: "sqlite",
    available: true,
    open: (now) => sqliteStore({ db: sqlite, now }),
    teardown: async () => {
      sqlite.close();
    },
  },
  {
    name: "postgres",
    available: pgUp,
    open: (now) => postgresStore({ pool: pool as pg.Pool, table: PG_TABLE, now }),
    setup: async () => {
      pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    },
    teardown: async () => {
      await pool?.query(`DROP TABLE IF EXISTS ${PG_TABLE}, ${PG_TABLE}_locks`);
      await pool?.end();
    },
  },
  {
    name: "mysql",
    available: mysqlUp,
    open: (now) => mysqlStore({ pool: mysqlPool as mysql.Pool, table: MYSQL_TABLE, now }),
    setup: async () => {
      mysqlPool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
    },
    teardown: async () => {
      await mysqlPool?.query(`DROP TABLE IF EXISTS ${MYSQL_TABLE}, ${MYSQL_TABLE}_locks`);
      await mysqlPool?.end();
    },
  },
];

/** A harness whose store reads the harness's clock, which starts now so server stores agree. */
function make(target: Target, options: Partial<SessionsOptions> = {}) {
  const clock: FakeClock = fakeClock(Date.now());
  const store = target.open(clock.now);
  const h = harness({ store, now: clock.now, ...options });
  return { ...h, clock, store };
}

type Made = ReturnType<typeof make>;

/** Signs `userId` in; resolves the store key of the session it made. */
async function signIn(h: Made, userId: string): Promise<string> {
  const { session } = await h.request(async (s) => {
    await s.regenerate({ userId });
    s.set("n", 1);
  });
  return keyOf(session.id);
}

/** Loads with the jar's cookie, as the browser sends it back. */
async function revisit(h: Made) {
  h.invalid.length = 0;
  h.events.length = 0;
  return h.request(() => {}, { keepJar: true });
}

describe.each(TARGETS)("invalidReason of an expired $name store session", (target) => {
  beforeAll(async () => {
    if (target.available) await target.setup?.();
  });
  afterAll(async () => {
    if (target.available) await target.teardown?.();
  });

  it.runIf(target.available)(
    "reports expired-idle, clears the cookie, deletes the record and names the user in the expired event",
    async () => {
      const h = make(target, { idleTimeout: "30m", absoluteTimeout: "1d" });
      const key = await signIn(h, "alice");
      h.clock.advance(31 * MINUTE);
      const after = await revisit(h);
      expect(after.session.isNew).toBe(true);
      expect(after.session.invalidReason).toBe("expired-idle");
      expect(h.invalid).toEqual(["expired-idle"]);
      expect(h.events).toContainEqual(
        expect.objectContaining({ type: "expired", reason: "idle", userId: "alice" }),
      );
      expect(after.setCookies.find((c) => c.name === "sid")?.maxAge).toBe(0);
      expect(await h.store.expiredMeta?.(key)).toBeUndefined();
      expect(await h.store.get(key)).toBeUndefined();
    },
  );

  it.runIf(target.available)(
    "reports expired-absolute for a session past its absolute deadline while idle time remains",
    async () => {
      const h = make(target, { idleTimeout: "1d", absoluteTimeout: "2d" });
      await signIn(h, "bob");
      h.clock.advance(20 * HOUR);
      expect((await revisit(h)).session.userId).toBe("bob");
      h.clock.advance(20 * HOUR);
      await h.request(); // slides the idle deadline: only the absolute one can end it now
      h.clock.advance(8 * HOUR); // 48 hours since creation, 8 since the last use
      const after = await revisit(h);
      expect(after.session.invalidReason).toBe("expired-absolute");
      expect(h.events).toContainEqual(
        expect.objectContaining({ type: "expired", reason: "absolute", userId: "bob" }),
      );
    },
  );

  it.runIf(target.available)(
    "a destroyed or revoked session still reports unknown-session, past its deadline too, and keeps the cookie",
    async () => {
      const h = make(target, { idleTimeout: "30m" });
      await signIn(h, "carol");
      const cookie = h.jar.header() as string;
      await h.request((s) => s.destroy(), { keepJar: true });
      h.clock.advance(31 * MINUTE);
      const destroyed = await h.request(() => {}, { cookie, keepJar: true });
      expect(destroyed.session.invalidReason).toBe("unknown-session");
      expect(destroyed.lines).toEqual([]);

      await signIn(h, "dave");
      await h.sessions.destroyByUser("dave");
      h.clock.advance(31 * MINUTE);
      expect((await revisit(h)).session.invalidReason).toBe("unknown-session");
    },
  );
});

describe("invalidReason when expiredMeta fails", () => {
  it("falls back to unknown-session rather than a 503: get already answered", async () => {
    const clock = fakeClock();
    const inner = memoryStore({ now: clock.now });
    const store: SessionStore = {
      ...inner,
      name: "flaky",
      expiredMeta: () => Promise.reject(new Error("connection reset")),
    };
    const h = harness({ store, now: clock.now, idleTimeout: "30m" });
    await h.request((s) => s.set("n", 1));
    clock.advance(31 * MINUTE);
    const after = await h.request(() => {}, { keepJar: true });
    expect(after.session.invalidReason).toBe("unknown-session");
    expect(after.lines).toEqual([]); // an unknown id keeps its cookie (see `refuse`)
  });

  it("a record the store cannot read as meta reports unknown-session and is not deleted", async () => {
    const clock = fakeClock();
    const inner = memoryStore({ now: clock.now });
    const deleted: string[] = [];
    const store: SessionStore = {
      ...inner,
      name: "odd",
      expiredMeta: async () => ({ createdAt: "yesterday" }) as never,
      delete: async (key) => {
        deleted.push(key);
        return inner.delete(key);
      },
    };
    const h = harness({ store, now: clock.now, idleTimeout: "30m" });
    await h.request((s) => s.set("n", 1));
    clock.advance(31 * MINUTE);
    expect((await h.request(() => {}, { keepJar: true })).session.invalidReason).toBe(
      "unknown-session",
    );
    expect(deleted).toEqual([]);
  });
});

describe.skipIf(!redisUp)("invalidReason of an expired redis store session", () => {
  let client: Redis;
  beforeAll(async () => {
    client = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    const keys = await scanPrefix([client], REDIS_PREFIX);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  it("reports unknown-session: the key is gone at its deadline, so nothing is left to tell", async () => {
    const clock = fakeClock(Date.now());
    const store = redisStore({ client, prefix: REDIS_PREFIX, now: clock.now });
    const h = harness({ store, now: clock.now, idleTimeout: "30m" });
    expect(store.expiredMeta).toBeUndefined();
    const { session } = await h.request(async (s) => {
      await s.regenerate({ userId: "erin" });
      s.set("n", 1);
    });
    const name = `${REDIS_PREFIX}s:{${await keyOf(session.id)}}`;
    // The server ends the key as its own TTL would at the deadline; no sleep for 30 minutes.
    await client.pexpire(name, 1);
    for (let i = 0; i < 500 && (await client.exists(name)) === 1; i++);
    expect(await client.exists(name)).toBe(0);
    clock.advance(31 * MINUTE);
    const after = await h.request(() => {}, { keepJar: true });
    expect(after.session.invalidReason).toBe("unknown-session");
  });
});
