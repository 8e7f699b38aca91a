/**
 * Store benchmark: load+commit cycles per second through the sessionkit manager for every store
 * (read-only and read+write, 50 cycles in flight), against the express-session stores doing the same
 * work through their own get/set API on the same servers, next to the raw driver ceiling measured in
 * the same run. Also: store calls per cycle (a counting proxy around each store and its client), heap
 * bytes per session of the memory stores (child processes with --expose-gc), and 50 concurrent
 * updates of one session through Express. See bench/README.md.
 *
 * Run: npm run bench:stores [-- --json] [-- --quick]
 * Servers: Redis 127.0.0.1:6379, PostgreSQL postgres://postgres@127.0.0.1:5432/test,
 * MariaDB mysql://root@127.0.0.1:3306/test (`bash scripts/services.sh` starts them).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import connectPgSimple from "connect-pg-simple";
import { RedisStore as ConnectRedisStore } from "connect-redis";
import { sign as cookieSign, unsign as cookieUnsign } from "cookie-signature";
import express from "express";
import expressSession, {
  type SessionData as ExpressData,
  type Store as ExpressStore,
} from "express-session";
import { Redis as IoRedis } from "ioredis";
import createMemoryStore from "memorystore";
import mysql from "mysql2/promise";
import pg from "pg";
import { createClient as createNodeRedis } from "redis";
import { session as sessionkitExpress } from "../dist/adapters/express.js";
import { createSessions, type Sessions } from "../dist/index.js";
import type { Session, SessionData } from "../dist/session.js";
import { memoryStore } from "../dist/stores/memory.js";
import { mysqlStore } from "../dist/stores/mysql.js";
import { postgresStore } from "../dist/stores/postgres.js";
import { redisStore } from "../dist/stores/redis.js";
import { sqliteStore } from "../dist/stores/sqlite.js";
import type { SessionStore } from "../dist/stores/store.js";
import { hasTaskset, nextMessage, startChild } from "./lib/child.js";
import { CpuMonitor, cpuShareLine } from "./lib/cpu.js";
import { interleave } from "./lib/measure.js";
import {
  type Check,
  commandLine,
  formatCheck,
  formatNumber,
  formatRate,
  formatRatio,
  loadLine,
  machineInfo,
  machineLine,
  markdownTable,
  median,
  type Summary,
  summarize,
  writeJson,
} from "./lib/report.js";

const QUICK = process.argv.includes("--quick");
const CONCURRENCY = 50;
const ROUNDS = QUICK ? 3 : 7;
const WINDOW_MS = QUICK ? 150 : 400;
const WARMUP_MS = QUICK ? 100 : 300;
/** Sessions per implementation; cycle k uses session k mod this (50 in flight never share one). */
const SESSIONS = 256;
const HEAP_SESSIONS = 10_000;
const HEAP_REPEATS = QUICK ? 1 : 3;
const UPDATE_WRITERS = 50;
const UPDATE_TRIALS = QUICK ? 2 : 5;
const SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz"; // fixed, never printed
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_URL = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
/** Everything this benchmark writes carries this prefix: Redis keys and table names. */
const PREFIX = "skbench";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// The session: 209 bytes of JSON data, the same in every store and in the heap measurement.

const SESSION_BYTES = 209;

function makeData(): Record<string, unknown> {
  const build = (pad: string) => ({
    user: { id: "u_8f3a2c", name: "Ada Lovelace", email: "ada@example.com", roles: ["admin"] },
    cart: [
      { sku: "A-100", qty: 2 },
      { sku: "B-220", qty: 1 },
    ],
    theme: "dark",
    locale: "en-GB",
    n: 0,
    pad,
  });
  const data = build("x".repeat(SESSION_BYTES - JSON.stringify(build("")).length));
  if (Buffer.byteLength(JSON.stringify(data)) !== SESSION_BYTES) throw new Error("data size");
  return data;
}

const DATA = makeData();

// ---------------------------------------------------------------------------------------------
// Heap child: `--heap-child=<kind>` measures heapUsed per session of one memory store and exits.

type HeapKind = "sessionkit memoryStore" | "express-session MemoryStore" | "memorystore";
const HEAP_KINDS: HeapKind[] = [
  "sessionkit memoryStore",
  "express-session MemoryStore",
  "memorystore",
];

async function heapChild(kind: HeapKind, n: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run the heap child with --expose-gc");
  const settle = () => {
    for (let i = 0; i < 4; i++) gc();
  };
  let insert: (count: number) => Promise<void>;
  let keep: unknown;
  if (kind === "sessionkit memoryStore") {
    const make = () => {
      const store = memoryStore({ maxSessions: n });
      // The store's heap, not the manager's: the token cache is a fixed cost (at most its 1000 tokens,
      // whatever the number of sessions), so it is off here.
      const sessions = createSessions({ secret: SECRET, store, tokenCache: false });
      return {
        store,
        insert: async (count: number) => {
          for (let i = 0; i < count; i++) {
            const session = await sessions.load(new Headers());
            session.update(DATA);
            await sessions.commit(session, new Headers());
          }
        },
      };
    };
    await make().insert(500); // warm up code paths (JIT, lazily built structures) on a throwaway store
    const measured = make();
    keep = measured.store;
    insert = measured.insert;
  } else {
    const Store: new () => ExpressStore =
      kind === "memorystore"
        ? (createMemoryStore(expressSession) as unknown as new () => ExpressStore)
        : expressSession.MemoryStore;
    const make = () => {
      const store = new Store();
      const set = promisify(store.set.bind(store)) as (
        sid: string,
        s: ExpressData,
      ) => Promise<void>;
      return {
        store,
        insert: async (count: number) => {
          for (let i = 0; i < count; i++) {
            // What express-session hands the store: the data plus its Cookie, under a 24-byte uid.
            const sess = Object.assign(
              { cookie: new expressSession.Cookie() },
              structuredClone(DATA),
            );
            await set(randomBytes(24).toString("base64url"), sess as unknown as ExpressData);
          }
        },
      };
    };
    await make().insert(500);
    const measured = make();
    keep = measured.store;
    insert = measured.insert;
  }
  settle();
  const before = process.memoryUsage().heapUsed;
  await insert(n);
  settle();
  const after = process.memoryUsage().heapUsed;
  process.stdout.write(`${JSON.stringify({ kind, n, bytesPerSession: (after - before) / n })}\n`);
  if (!keep) throw new Error("unreachable");
}

function runHeapChild(kind: HeapKind): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "--import", "tsx", SELF, `--heap-child=${kind}`, `--n=${HEAP_SESSIONS}`],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`heap child ${kind} exited with ${code}`));
      resolve(
        (JSON.parse(out.trim().split("\n").pop() as string) as { bytesPerSession: number })
          .bytesPerSession,
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Clients and stores.

interface Clients {
  pgPools: pg.Pool[];
  mysqlPools: mysql.Pool[];
  nodeRedis: { quit(): Promise<unknown> }[];
  ioredis: IoRedis[];
  sqlite: Database.Database[];
  sqliteFile: string;
}

const clients: Clients = {
  pgPools: [],
  mysqlPools: [],
  nodeRedis: [],
  ioredis: [],
  sqlite: [],
  sqliteFile: join(tmpdir(), `${PREFIX}-${process.pid}.sqlite`),
};

function pgPool(): pg.Pool {
  const pool = new pg.Pool({
    connectionString: POSTGRES_URL,
    max: 10,
    connectionTimeoutMillis: 5000,
  });
  pool.on("error", (err) => console.error("postgres pool:", err.message));
  clients.pgPools.push(pool);
  return pool;
}

function mysqlPool(): mysql.Pool {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 10, connectTimeout: 5000 });
  clients.mysqlPools.push(pool);
  return pool;
}

async function nodeRedis() {
  const client = createNodeRedis({ url: REDIS_URL });
  client.on("error", (err) => console.error("redis:", err.message));
  await client.connect();
  clients.nodeRedis.push(client);
  return client;
}

function ioredis(): IoRedis {
  const client = new IoRedis(REDIS_URL, { maxRetriesPerRequest: 1 });
  clients.ioredis.push(client);
  return client;
}

function sqliteDb(): Database.Database {
  const db = new Database(clients.sqliteFile);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  clients.sqlite.push(db);
  return db;
}

const TABLES = {
  sessionkit: `${PREFIX}_sessions`,
  connectPg: `${PREFIX}_cps_session`,
  raw: `${PREFIX}_raw`,
};

async function resetServerState(): Promise<void> {
  const pool = pgPool();
  for (const table of Object.values(TABLES)) await pool.query(`DROP TABLE IF EXISTS "${table}"`);
  await pool.query(`CREATE TABLE "${TABLES.raw}" (key text PRIMARY KEY, value text NOT NULL)`);
  const my = mysqlPool();
  for (const table of Object.values(TABLES)) await my.query(`DROP TABLE IF EXISTS \`${table}\``);
  await my.query(
    `CREATE TABLE \`${TABLES.raw}\` (\`key\` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY, value TEXT NOT NULL)`,
  );
  await deleteRedisKeys();
}

/** Deletes this benchmark's own Redis keys (the prefix), never anything else. */
async function deleteRedisKeys(): Promise<void> {
  const client = await nodeRedis();
  for await (const keys of client.scanIterator({ MATCH: `${PREFIX}:*`, COUNT: 500 })) {
    const list = (Array.isArray(keys) ? keys : [keys]) as string[];
    if (list.length > 0) await client.del(list);
  }
}

/** Drops the tables and Redis keys of this run, then closes every client of this process. */
async function cleanup(): Promise<void> {
  try {
    const pool = clients.pgPools[0];
    if (pool)
      for (const table of Object.values(TABLES))
        await pool.query(`DROP TABLE IF EXISTS "${table}"`);
    const my = clients.mysqlPools[0];
    if (my)
      for (const table of Object.values(TABLES))
        await my.query(`DROP TABLE IF EXISTS \`${table}\``);
    await deleteRedisKeys();
  } finally {
    await closeClients();
  }
}

/** Closes this process's clients and removes its SQLite file; the servers' data stays. */
async function closeClients(): Promise<void> {
  await Promise.allSettled([
    ...clients.pgPools.map((p) => p.end()),
    ...clients.mysqlPools.map((p) => p.end()),
    ...clients.nodeRedis.map((c) => c.quit()),
    ...clients.ioredis.map((c) => c.quit()),
  ]);
  for (const db of clients.sqlite) db.close();
  for (const suffix of ["", "-wal", "-shm"]) rmSync(clients.sqliteFile + suffix, { force: true });
}

// ---------------------------------------------------------------------------------------------
// Cases. A cycle is what one request does with its session: load it, read a key, and (read+write)
// increment a counter, then commit.

type Mode = "read" | "write";
type Side = "sessionkit" | "express-session" | "raw";

/** A case as the parent drives it; its implementation lives in a child process (see implChild). */
interface StoreCase {
  name: string;
  store: string;
  side: Side;
  mode: Mode;
  impl: string;
  /** One cycle, checking that the counter moved as the mode says. */
  verify: () => Promise<void>;
  /** A measuring window of `ms`. */
  run: (ms: number) => Promise<WindowResult>;
}

interface Impl {
  store: string;
  side: Side;
  impl: string;
  read: (k: number) => Promise<void>;
  write: (k: number) => Promise<void>;
  /** Reads session k's counter (for verification). */
  counter: (k: number) => Promise<number>;
}

function expectUser(user: unknown, name: string): void {
  if ((user as { id?: string } | undefined)?.id !== "u_8f3a2c") {
    throw new Error(`${name}: the seeded session did not load`);
  }
}

/** sessionkit through its manager: seeded sessions, then load + get (+ set) + commit. */
async function sessionkitImpl(store: string, impl: string, target: SessionStore): Promise<Impl> {
  const sessions = createSessions({ secret: SECRET, store: target });
  const cookies = await seedSessionkit(sessions);
  const name = `sessionkit ${impl}`;
  // The request's Cookie header read in place, as the node-based adapters hand it to the core (the
  // express-session rows get the cookie string as they do).
  const load = (k: number) => {
    const cookie = cookies[k % SESSIONS] as string;
    return sessions.load({ get: (name) => (name === "cookie" ? cookie : null) });
  };
  return {
    store,
    side: "sessionkit",
    impl,
    read: async (k) => {
      const session = await load(k);
      expectUser(session.get("user"), name);
      await sessions.commit(session, responseHeaders());
    },
    write: async (k) => {
      const session = await load(k);
      expectUser(session.get("user"), name);
      session.set("n", ((session.get("n") as number) ?? 0) + 1);
      await sessions.commit(session, responseHeaders());
    },
    counter: async (k) => (await load(k)).get("n") as number,
  };
}

/** Where a commit writes, as the node-based adapters collect it: plain lists, no Fetch Headers. */
function responseHeaders() {
  const cookies: string[] = [];
  const fields = new Map<string, string>();
  return {
    append: (name: string, value: string) => {
      if (name === "set-cookie") cookies.push(value);
      else fields.set(name, value);
    },
    set: (name: string, value: string) => {
      fields.set(name, value);
    },
  };
}

async function seedSessionkit(sessions: Sessions): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const session = await sessions.load(new Headers());
    session.update(DATA);
    const headers = new Headers();
    await sessions.commit(session, headers);
    const line = headers.getSetCookie()[0];
    if (!line) throw new Error("sessionkit: no cookie was issued");
    cookies.push(line.slice(0, line.indexOf(";")));
  }
  return cookies;
}

/**
 * An express-session store through its own API, as express-session's middleware uses it: unsign the
 * `s:` cookie value (cookie-signature), `get`, read a key; for a write, change the object and `set`
 * it whole. An unchanged request ends with `touch`, as express-session's middleware does with its
 * defaults (`resave: false`, `rolling: false`): a second round trip on connect-redis and
 * connect-pg-simple. That is the work an unchanged request costs there, so it is counted.
 */
async function expressImpl(store: string, impl: string, target: ExpressStore): Promise<Impl> {
  const get = promisify(target.get.bind(target)) as (sid: string) => Promise<ExpressData | null>;
  const set = promisify(target.set.bind(target)) as (sid: string, s: ExpressData) => Promise<void>;
  const touch = target.touch
    ? (promisify(target.touch.bind(target)) as (sid: string, s: ExpressData) => Promise<void>)
    : undefined;
  const cookies: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const sid = randomBytes(24).toString("base64url");
    const sess = Object.assign({ cookie: new expressSession.Cookie() }, structuredClone(DATA));
    await set(sid, sess as unknown as ExpressData);
    cookies.push(`s:${cookieSign(sid, SECRET)}`);
  }
  const name = impl;
  const load = async (k: number) => {
    const sid = cookieUnsign((cookies[k % SESSIONS] as string).slice(2), SECRET);
    if (sid === false) throw new Error(`${name}: cookie signature`);
    const sess = (await get(sid)) as (ExpressData & Record<string, unknown>) | null;
    if (!sess) throw new Error(`${name}: the seeded session did not load`);
    return { sid, sess };
  };
  return {
    store,
    side: "express-session",
    impl,
    read: async (k) => {
      const { sid, sess } = await load(k);
      expectUser(sess.user, name);
      await touch?.(sid, sess);
    },
    write: async (k) => {
      const { sid, sess } = await load(k);
      expectUser(sess.user, name);
      sess.n = ((sess.n as number) ?? 0) + 1;
      await set(sid, sess);
    },
    counter: async (k) => (await load(k)).sess.n as number,
  };
}

/** What a raw row needs from its driver: fetch a JSON string by key, write one back, seed the keys. */
interface RawIo {
  get: (key: string) => Promise<string | undefined>;
  put: (key: string, value: string) => Promise<void>;
  seed: (keys: string[], value: string) => Promise<void>;
}

/** The least work a session read/write needs on this store: fetch a JSON string by key and parse it; write it back. */
async function rawImpl(store: string, impl: string, io: RawIo): Promise<Impl> {
  const keys = Array.from({ length: SESSIONS }, () => randomBytes(32).toString("base64url"));
  await io.seed(keys, JSON.stringify(DATA));
  const load = async (k: number) => {
    const key = keys[k % SESSIONS] as string;
    const text = await io.get(key);
    if (text === undefined) throw new Error(`${impl}: missing row`);
    const data = JSON.parse(text) as Record<string, unknown>;
    expectUser(data.user, impl);
    return { key, data };
  };
  return {
    store,
    side: "raw",
    impl,
    read: async (k) => {
      await load(k);
    },
    write: async (k) => {
      const { key, data } = await load(k);
      data.n = ((data.n as number) ?? 0) + 1;
      await io.put(key, JSON.stringify(data));
    },
    counter: async (k) => (await load(k)).data.n as number,
  };
}

/** One implementation, described without connecting to anything: `make` runs in its own process. */
interface ImplSpec {
  store: string;
  side: Side;
  impl: string;
  make: () => Promise<Impl>;
}

function implSpecs(): ImplSpec[] {
  const specs: ImplSpec[] = [];
  const raw = (store: string, impl: string, io: () => RawIo | Promise<RawIo>) =>
    specs.push({ store, side: "raw", impl, make: async () => rawImpl(store, impl, await io()) });
  const sessionkit = (
    store: string,
    impl: string,
    target: () => SessionStore | Promise<SessionStore>,
  ) =>
    specs.push({
      store,
      side: "sessionkit",
      impl,
      make: async () => sessionkitImpl(store, impl, await target()),
    });
  const express = (
    store: string,
    impl: string,
    target: () => ExpressStore | Promise<ExpressStore>,
  ) =>
    specs.push({
      store,
      side: "express-session",
      impl,
      make: async () => expressImpl(store, impl, await target()),
    });

  // memory
  raw("memory", "raw Map get + JSON.parse", () => {
    const map = new Map<string, string>();
    return {
      get: async (key) => map.get(key),
      put: async (key, value) => {
        map.set(key, value);
      },
      seed: async (keys, value) => {
        for (const key of keys) map.set(key, value);
      },
    };
  });
  sessionkit("memory", "memoryStore", () => memoryStore());
  express("memory", "express-session MemoryStore", () => new expressSession.MemoryStore());
  express("memory", "memorystore", () => {
    const MemoryStore = createMemoryStore(expressSession) as unknown as new (
      o?: object,
    ) => ExpressStore;
    return new MemoryStore({});
  });

  // sqlite
  raw("sqlite", "raw better-sqlite3 SELECT / UPDATE", () => {
    const db = sqliteDb();
    db.exec(
      `CREATE TABLE IF NOT EXISTS "${TABLES.raw}" (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    );
    const select = db.prepare(`SELECT value FROM "${TABLES.raw}" WHERE key = ?`).pluck();
    const update = db.prepare(`UPDATE "${TABLES.raw}" SET value = ? WHERE key = ?`);
    const insert = db.prepare(`INSERT INTO "${TABLES.raw}" (key, value) VALUES (?, ?)`);
    return {
      get: async (key) => select.get(key) as string | undefined,
      put: async (key, value) => {
        update.run(value, key);
      },
      seed: async (keys, value) => {
        for (const key of keys) insert.run(key, value);
      },
    };
  });
  sessionkit("sqlite", "sqliteStore", () =>
    sqliteStore({ db: sqliteDb(), table: TABLES.sessionkit }),
  );

  // postgres
  raw("postgres", "raw pg SELECT / UPDATE by key", () => {
    const pool = pgPool();
    return {
      get: async (key) =>
        (await pool.query(`SELECT value FROM "${TABLES.raw}" WHERE key = $1`, [key])).rows[0]
          ?.value,
      put: async (key, value) => {
        await pool.query(`UPDATE "${TABLES.raw}" SET value = $2 WHERE key = $1`, [key, value]);
      },
      seed: async (keys, value) => {
        for (const key of keys)
          await pool.query(`INSERT INTO "${TABLES.raw}" VALUES ($1, $2)`, [key, value]);
      },
    };
  });
  sessionkit("postgres", "postgresStore", () =>
    postgresStore({ pool: pgPool(), table: TABLES.sessionkit }),
  );
  express("postgres", "connect-pg-simple", () => {
    const PgStore = connectPgSimple(expressSession);
    return new PgStore({
      pool: pgPool(),
      tableName: TABLES.connectPg,
      createTableIfMissing: true,
      pruneSessionInterval: false,
    });
  });

  // mysql
  raw("mysql", "raw mysql2 SELECT / UPDATE by key", () => {
    const pool = mysqlPool();
    return {
      get: async (key) => {
        const [rows] = await pool.query(`SELECT value FROM \`${TABLES.raw}\` WHERE \`key\` = ?`, [
          key,
        ]);
        return (rows as { value: string }[])[0]?.value;
      },
      put: async (key, value) => {
        await pool.query(`UPDATE \`${TABLES.raw}\` SET value = ? WHERE \`key\` = ?`, [value, key]);
      },
      seed: async (keys, value) => {
        for (const key of keys)
          await pool.query(`INSERT INTO \`${TABLES.raw}\` VALUES (?, ?)`, [key, value]);
      },
    };
  });
  sessionkit("mysql", "mysqlStore", () =>
    mysqlStore({ pool: mysqlPool(), table: TABLES.sessionkit }),
  );

  // redis
  raw("redis", "raw node-redis GET / SET EX", async () => {
    const client = await nodeRedis();
    const prefix = `${PREFIX}:raw:`;
    const put = async (key: string, value: string) => {
      await client.set(prefix + key, value, { expiration: { type: "EX", value: 86_400 } });
    };
    return {
      get: async (key) => (await client.get(prefix + key)) ?? undefined,
      put,
      seed: async (keys, value) => {
        for (const key of keys) await put(key, value);
      },
    };
  });
  sessionkit("redis", "redisStore (node-redis)", async () =>
    redisStore({ client: await nodeRedis(), prefix: `${PREFIX}:sk:` }),
  );
  sessionkit("redis", "redisStore (ioredis)", () =>
    redisStore({ client: ioredis(), prefix: `${PREFIX}:io:` }),
  );
  express(
    "redis",
    "connect-redis (node-redis)",
    async () =>
      new ConnectRedisStore({
        client: await nodeRedis(),
        prefix: `${PREFIX}:cr:`,
      }) as unknown as ExpressStore,
  );
  return specs;
}

const MODES: readonly Mode[] = ["read", "write"];

function caseName(spec: { store: string; side: Side; impl: string }, mode: Mode): string {
  return `${spec.store} ${mode}: ${spec.side === "sessionkit" ? "sessionkit " : ""}${spec.impl}`;
}

/** What the parent asks an implementation's process; each request gets one answer with its id. */
type ChildAsk = { type: "verify" | "window"; mode: Mode; ms: number } | { type: "exit" };
type ChildRequest = ChildAsk & { id: number };
type ChildAnswer = { type: "ready" } | { id: number; result?: WindowResult; error?: string };

/**
 * One implementation in a process of its own (`--impl-child=<index into implSpecs()>`): a real app
 * runs one store, so the manager's code is compiled for that store alone, as it would be there, and
 * no implementation's garbage or JIT state lands on another's measurement.
 */
async function implChild(index: number): Promise<void> {
  const spec = implSpecs()[index];
  const send = process.send?.bind(process);
  if (!spec || !send) throw new Error(`--impl-child=${index}: no such implementation, or no IPC`);
  const impl = await spec.make();
  process.on("disconnect", () => void closeClients().finally(() => process.exit(0)));
  process.on("message", (request: ChildRequest) => {
    void answer(request).then(
      (result) => send({ id: request.id, result }),
      (err: unknown) =>
        send({
          id: request.id,
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        }),
    );
  });
  send({ type: "ready" } satisfies ChildAnswer);

  async function answer(request: ChildRequest): Promise<WindowResult | undefined> {
    if (request.type === "exit") {
      await closeClients();
      process.exit(0);
    }
    const cycle = request.mode === "read" ? impl.read : impl.write;
    if (request.type === "window") return window(cycle, request.ms);
    const before = (await impl.counter(0)) ?? 0;
    await cycle(0);
    const after = (await impl.counter(0)) ?? 0;
    if (after !== before + (request.mode === "write" ? 1 : 0)) {
      throw new Error(
        `${caseName(spec as ImplSpec, request.mode)}: counter went ${before} -> ${after}`,
      );
    }
    return undefined;
  }
}

interface ImplProcess {
  pid: number | undefined;
  cases: StoreCase[];
  stop: () => Promise<void>;
}

/** Starts implementation `index` in its own process (on core 0 with taskset) once it has seeded. */
async function startImpl(spec: ImplSpec, index: number): Promise<ImplProcess> {
  const child = startChild(SELF, [`--impl-child=${index}`], 0);
  const pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const ready = nextMessage<ChildAnswer>(child, `${spec.impl}: start`, 120_000);
  child.on("message", (answer: ChildAnswer) => {
    if (!("id" in answer)) return;
    const waiter = pending.get(answer.id);
    pending.delete(answer.id);
    if (answer.error !== undefined) waiter?.reject(new Error(answer.error));
    else waiter?.resolve(answer.result);
  });
  child.on("exit", (code) => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`${spec.impl}: process exited (${code})`));
    pending.clear();
  });
  await ready;
  const ask = (request: ChildAsk) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ ...request, id });
    });
  const cases = MODES.map(
    (mode): StoreCase => ({
      name: caseName(spec, mode),
      store: spec.store,
      side: spec.side,
      mode,
      impl: spec.impl,
      verify: async () => {
        await ask({ type: "verify", mode, ms: 0 });
      },
      run: async (ms) => (await ask({ type: "window", mode, ms })) as WindowResult,
    }),
  );
  return {
    pid: child.pid,
    cases,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      void ask({ type: "exit" }).catch(() => undefined);
      await exited;
    },
  };
}

interface WindowResult {
  /** Cycles per second. */
  rate: number;
  /** This process's CPU time per cycle, µs: the client side of the work (servers excluded). */
  cpuUs: number;
}

/** Runs `cycle` with CONCURRENCY cycles in flight for `ms`. */
async function window(cycle: (k: number) => Promise<void>, ms: number): Promise<WindowResult> {
  let next = 0;
  let done = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const deadline = start + ms;
  const worker = async () => {
    while (performance.now() < deadline) {
      await cycle(next++);
      done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return { rate: done / elapsed, cpuUs: (cpu.user + cpu.system) / done };
}

// ---------------------------------------------------------------------------------------------
// Store calls per cycle: a counting proxy around a store (and around the client it drives).

function counting<T extends object>(target: T, calls: string[], tag = ""): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver);
      if (typeof value !== "function" || property === "constructor") return value;
      if (property === "getConnection") {
        // A transaction's statements go through the pooled connection (mysql2): count those.
        return async (...args: unknown[]) =>
          counting((await value.apply(object, args)) as object, calls, tag);
      }
      return (...args: unknown[]) => {
        calls.push(tag + String(property));
        return value.apply(object, args);
      };
    },
  });
}

/** Calls that are round trips to the server: statements and commands, not pool bookkeeping. */
const ROUND_TRIP = /(?:^|\.)(?:query|execute|sendCommand|call)$/;

interface CallCount {
  store: string;
  impl: string;
  read: { storeCalls: Record<string, number>; driverCalls: number | undefined };
  write: { storeCalls: Record<string, number>; driverCalls: number | undefined };
  /** A write that also moves the session to a new id (`regenerate()`, no switch of user). */
  move: { storeCalls: Record<string, number>; driverCalls: number | undefined };
}

const CALL_CYCLES = 20;

async function countCalls(): Promise<CallCount[]> {
  const specs: {
    store: string;
    impl: string;
    make: (driver: string[]) => Promise<SessionStore>;
  }[] = [
    { store: "memory", impl: "memoryStore", make: async () => memoryStore() },
    {
      store: "sqlite",
      impl: "sqliteStore",
      make: async () => sqliteStore({ db: sqliteDb(), table: `${TABLES.sessionkit}_count` }),
    },
    {
      store: "postgres",
      impl: "postgresStore",
      make: async (driver) =>
        postgresStore({ pool: counting(pgPool(), driver, "pg."), table: TABLES.sessionkit }),
    },
    {
      store: "mysql",
      impl: "mysqlStore",
      make: async (driver) =>
        mysqlStore({ pool: counting(mysqlPool(), driver, "mysql."), table: TABLES.sessionkit }),
    },
    {
      store: "redis",
      impl: "redisStore (node-redis)",
      make: async (driver) =>
        redisStore({ client: countingRedis(await nodeRedis(), driver), prefix: `${PREFIX}:sk:` }),
    },
    {
      store: "redis",
      impl: "redisStore (ioredis)",
      make: async (driver) =>
        redisStore({ client: countingRedis(ioredis(), driver), prefix: `${PREFIX}:io:` }),
    },
  ];
  const out: CallCount[] = [];
  for (const spec of specs) {
    const storeCalls: string[] = [];
    const driverCalls: string[] = [];
    const base = await spec.make(driverCalls);
    const sessions = createSessions({ secret: SECRET, store: counting(base, storeCalls) });
    const cookies = await seedSessionkit(sessions);
    const tally = async (write: boolean, move = false, first = 0) => {
      storeCalls.length = 0;
      driverCalls.length = 0;
      for (let k = first; k < first + CALL_CYCLES; k++) {
        const session = await sessions.load(
          new Headers({ cookie: cookies[k % SESSIONS] as string }),
        );
        expectUser(session.get("user"), spec.impl);
        if (write) session.set("n", ((session.get("n") as number) ?? 0) + 1);
        if (move) await session.regenerate();
        const headers = new Headers();
        await sessions.commit(session, headers);
        if (!write && headers.getSetCookie().length > 0)
          throw new Error(`${spec.impl}: a read sent a cookie`);
        if (move && session.invalidReason !== undefined)
          throw new Error(`${spec.impl}: a move was abandoned (${session.invalidReason})`);
      }
      const byMethod: Record<string, number> = {};
      for (const call of storeCalls) byMethod[call] = (byMethod[call] ?? 0) + 1;
      for (const method of Object.keys(byMethod))
        byMethod[method] = (byMethod[method] as number) / CALL_CYCLES;
      const driver =
        spec.store === "memory" || spec.store === "sqlite"
          ? undefined
          : driverCalls.filter((call) => ROUND_TRIP.test(call)).length / CALL_CYCLES;
      return { storeCalls: byMethod, driverCalls: driver };
    };
    out.push({
      store: spec.store,
      impl: spec.impl,
      read: await tally(false),
      write: await tally(true),
      // Sessions the first two tallies did not use: each moves once, from the id its cookie holds.
      move: await tally(true, true, CALL_CYCLES),
    });
  }
  return out;
}

/** Counts the commands a Redis client sends: `sendCommand` (node-redis) or `call` (ioredis). */
function countingRedis<T extends object>(client: T, calls: string[]): T {
  return new Proxy(client, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver);
      if (typeof value !== "function") return value;
      if (property === "sendCommand" || property === "call") {
        return (...args: unknown[]) => {
          calls.push(String(property));
          return value.apply(object, args);
        };
      }
      return value.bind(object);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 50 concurrent updates of one session through Express.

async function concurrentUpdates(kind: "express-session" | "sessionkit"): Promise<number> {
  const app = express();
  if (kind === "express-session") {
    app.use(
      expressSession({
        secret: SECRET,
        resave: false,
        saveUninitialized: false,
        store: new expressSession.MemoryStore(),
      }),
    );
    app.get("/seed", (req, res) => {
      (req.session as unknown as Record<string, unknown>).seeded = 1;
      res.send("ok");
    });
    app.get("/set/:i", (req, res) => {
      (req.session as unknown as Record<string, unknown>)[`k${req.params.i}`] = Number(
        req.params.i,
      );
      res.send("ok");
    });
    app.get("/keys", (req, res) => {
      res.send(String(Object.keys(req.session).filter((key) => /^k\d+$/.test(key)).length));
    });
  } else {
    const sessions = createSessions({ secret: SECRET, store: memoryStore() });
    app.use(sessionkitExpress(sessions));
    app.get("/seed", (req, res) => {
      (req.session as Session<SessionData>).set("seeded", 1);
      res.send("ok");
    });
    app.get("/set/:i", (req, res) => {
      (req.session as Session<SessionData>).set(`k${req.params.i}`, Number(req.params.i));
      res.send("ok");
    });
    app.get("/keys", (req, res) => {
      res.send(String(Object.keys(req.session.data).filter((key) => /^k\d+$/.test(key)).length));
    });
  }
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: UPDATE_WRITERS });
  const get = (path: string, cookie?: string) =>
    new Promise<{ body: string; setCookie: string[] }>((resolve, reject) => {
      const req = httpRequest(
        { host: "127.0.0.1", port, path, agent, headers: cookie ? { cookie } : {} },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk) => {
            body += chunk;
          });
          res.on("end", () => {
            if (res.statusCode !== 200)
              reject(new Error(`${kind} ${path}: HTTP ${res.statusCode}`));
            else resolve({ body, setCookie: res.headers["set-cookie"] ?? [] });
          });
        },
      );
      req.on("error", reject);
      req.end();
    });
  try {
    const seeded = await get("/seed");
    const cookie = seeded.setCookie.map((line) => line.split(";", 1)[0]).join("; ");
    if (!cookie) throw new Error(`${kind}: /seed sent no cookie`);
    // Open all sockets first, so the 50 writes really run together.
    await Promise.all(Array.from({ length: UPDATE_WRITERS }, () => get("/keys", cookie)));
    await Promise.all(Array.from({ length: UPDATE_WRITERS }, (_, i) => get(`/set/${i}`, cookie)));
    return Number((await get("/keys", cookie)).body);
  } finally {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

// ---------------------------------------------------------------------------------------------

interface Row {
  name: string;
  store: string;
  side: Side;
  mode: Mode;
  impl: string;
  /** Cycles per second at CONCURRENCY in flight. */
  summary: Summary;
  /** This row's median over the express-session peer's (the one the target names). */
  vsPeer: number | undefined;
  peer: string | undefined;
  /** This row's median over the raw driver ceiling's. */
  ofRaw: number | undefined;
  /** Client-side (this process) CPU µs per cycle. */
  cpuUs: Summary;
  samples: number[];
}

/** The express-session store each store's ratio is taken against. */
const PEER_OF: Record<string, string> = {
  memory: "express-session MemoryStore",
  postgres: "connect-pg-simple",
  redis: "connect-redis (node-redis)",
};

async function main(): Promise<void> {
  const heapArg = process.argv.find((arg) => arg.startsWith("--heap-child="));
  if (heapArg) {
    const n = Number(process.argv.find((arg) => arg.startsWith("--n="))?.slice(4) ?? HEAP_SESSIONS);
    await heapChild(heapArg.slice("--heap-child=".length) as HeapKind, n);
    return;
  }
  const implArg = process.argv.find((arg) => arg.startsWith("--impl-child="));
  if (implArg) {
    await implChild(Number(implArg.slice("--impl-child=".length)));
    return;
  }
  const wantJson = process.argv.includes("--json");
  const started = performance.now();
  const machine = machineInfo();
  const loadBefore = loadLine("start");
  const cpu = new CpuMonitor();
  const impls: ImplProcess[] = [];

  try {
    process.stderr.write("preparing tables, keys and seeded sessions\n");
    await resetServerState();
    const filterArg = process.argv.find((arg) => arg.startsWith("--filter="));
    const filter = filterArg ? new RegExp(filterArg.slice("--filter=".length), "i") : undefined;
    const wanted = implSpecs()
      .map((spec, index) => ({ spec, index }))
      .filter(({ spec }) => !filter || MODES.some((mode) => filter.test(caseName(spec, mode))));
    process.stderr.write(
      `starting ${wanted.length} implementations, each in its own process${hasTaskset ? " on core 0" : " (no taskset: not pinned)"}\n`,
    );
    for (const { spec, index } of wanted) {
      const started = await startImpl(spec, index);
      impls.push(started);
      cpu.add(started.pid);
    }
    const cases = MODES.flatMap((mode) =>
      impls.flatMap((impl) => impl.cases.filter((item) => item.mode === mode)),
    ).filter((item) => !filter || filter.test(item.name));
    cpu.begin();
    for (const item of cases) await item.verify();

    process.stderr.write(`warming up ${cases.length} cases\n`);
    for (const item of cases) await item.run(WARMUP_MS);
    process.stderr.write(
      `measuring: ${ROUNDS} interleaved rounds of ${WINDOW_MS} ms per case, ${CONCURRENCY} in flight\n`,
    );
    const results = await interleave(
      cases,
      ROUNDS,
      (item) => item.run(WINDOW_MS),
      (round, rounds) => process.stderr.write(`\rround ${round}/${rounds}`),
    );
    process.stderr.write("\n");
    const throughputCpu = cpu.end();
    await Promise.all(impls.splice(0).map((impl) => impl.stop()));

    process.stderr.write("counting store calls\n");
    const calls = await countCalls();

    process.stderr.write(
      `heap: ${HEAP_SESSIONS} sessions per store, ${HEAP_REPEATS} child process(es) each\n`,
    );
    const heapSamples = new Map<HeapKind, number[]>(HEAP_KINDS.map((kind) => [kind, []]));
    for (let r = 0; r < HEAP_REPEATS; r++) {
      for (const kind of HEAP_KINDS) heapSamples.get(kind)?.push(await runHeapChild(kind));
    }

    process.stderr.write(
      `concurrent updates: ${UPDATE_WRITERS} writers, ${UPDATE_TRIALS} trials each\n`,
    );
    const kept = { "express-session": [] as number[], sessionkit: [] as number[] };
    for (let t = 0; t < UPDATE_TRIALS; t++) {
      kept["express-session"].push(await concurrentUpdates("express-session"));
      kept.sessionkit.push(await concurrentUpdates("sessionkit"));
    }

    // ---- rows and tables
    const rates = (name: string) => (results.get(name) ?? []).map((r) => r.rate);
    const medianOf = (store: string, mode: Mode, impl: string) =>
      median(
        rates(
          cases.find((c) => c.store === store && c.mode === mode && c.impl === impl)?.name ?? "",
        ),
      );
    const cpuOf = (store: string, mode: Mode, impl: string) =>
      median(
        (
          results.get(
            cases.find((c) => c.store === store && c.mode === mode && c.impl === impl)?.name ?? "",
          ) ?? []
        ).map((r) => r.cpuUs),
      );
    const rows: Row[] = cases.map((item) => {
      const samples = rates(item.name);
      const summary = summarize(samples);
      const cpuUs = summarize((results.get(item.name) ?? []).map((r) => r.cpuUs));
      const peer = PEER_OF[item.store];
      const raw = cases.find(
        (c) => c.store === item.store && c.mode === item.mode && c.side === "raw",
      );
      return {
        name: item.name,
        store: item.store,
        side: item.side,
        mode: item.mode,
        impl: item.impl,
        summary,
        peer,
        vsPeer:
          peer && item.side !== "raw"
            ? summary.median / medianOf(item.store, item.mode, peer)
            : undefined,
        ofRaw: raw && item.side !== "raw" ? summary.median / median(rates(raw.name)) : undefined,
        cpuUs,
        samples,
      };
    });
    const order = ["memory", "sqlite", "postgres", "mysql", "redis"];
    rows.sort(
      (a, b) =>
        order.indexOf(a.store) - order.indexOf(b.store) ||
        (a.mode === b.mode ? 0 : a.mode === "read" ? -1 : 1) ||
        ["raw", "sessionkit", "express-session"].indexOf(a.side) -
          ["raw", "sessionkit", "express-session"].indexOf(b.side),
    );
    const throughputTable = markdownTable(
      [
        "store",
        "cycle",
        "implementation",
        "cycles/s (median)",
        "min-max",
        "client CPU µs/cycle",
        "vs express-session peer",
        "of raw ceiling",
      ],
      rows.map((r) => [
        r.store,
        r.mode === "read" ? "read-only" : "read+write",
        r.side === "sessionkit" ? `sessionkit ${r.impl}` : r.impl,
        formatRate(r.summary.median),
        `${formatRate(r.summary.min)}-${formatRate(r.summary.max)}`,
        formatNumber(r.cpuUs.median),
        r.vsPeer === undefined || (r.side === "express-session" && r.impl === r.peer)
          ? "-"
          : formatRatio(r.vsPeer),
        r.ofRaw === undefined ? "(ceiling)" : `${Math.round(r.ofRaw * 100)}%`,
      ]),
      ["left", "left", "left", "right", "right", "right", "right", "right"],
    );

    const fmtCalls = (c: Record<string, number>) =>
      Object.entries(c)
        .map(([method, n]) => `${formatNumber(n)} ${method}`)
        .join(" + ") || "none";
    const writesIn = (c: Record<string, number>) =>
      Object.entries(c)
        .filter(([method]) => method !== "get")
        .reduce((sum, [, n]) => sum + n, 0);
    const callsTable = markdownTable(
      [
        "store",
        "read-only: store calls/cycle",
        "writes",
        "driver commands",
        "read+write: store calls/cycle",
        "driver commands",
        "read+write+regenerate: store calls/cycle",
        "driver commands",
      ],
      calls.map((c) => [
        `sessionkit ${c.impl}`,
        fmtCalls(c.read.storeCalls),
        formatNumber(writesIn(c.read.storeCalls)),
        c.read.driverCalls === undefined ? "(in process)" : formatNumber(c.read.driverCalls),
        fmtCalls(c.write.storeCalls),
        c.write.driverCalls === undefined ? "(in process)" : formatNumber(c.write.driverCalls),
        fmtCalls(c.move.storeCalls),
        c.move.driverCalls === undefined ? "(in process)" : formatNumber(c.move.driverCalls),
      ]),
      ["left", "left", "right", "right", "left", "right", "left", "right"],
    );

    const heap = HEAP_KINDS.map((kind) => ({
      kind,
      summary: summarize(heapSamples.get(kind) ?? []),
    }));
    const heapTable = markdownTable(
      ["store", "heap bytes/session (median)", "min-max", "runs"],
      heap.map((h) => [
        h.kind,
        formatRate(h.summary.median),
        `${formatRate(h.summary.min)}-${formatRate(h.summary.max)}`,
        String(h.summary.samples),
      ]),
      ["left", "right", "right", "right"],
    );

    // ---- checks
    const ratio = (store: string, mode: Mode, impl: string) =>
      rows.find((r) => r.store === store && r.mode === mode && r.impl === impl)?.vsPeer ??
      Number.NaN;
    const checks: Check[] = [];
    for (const [store, impl] of [
      ["redis", "redisStore (node-redis)"],
      ["postgres", "postgresStore"],
    ] as const) {
      for (const mode of ["read", "write"] as const) {
        const value = ratio(store, mode, impl);
        checks.push({
          label: `${store} ${mode === "read" ? "read-only" : "read+write"}: sessionkit ${impl} >= 1.5x ${PEER_OF[store]}`,
          pass: value >= 1.5,
          detail: `${formatRatio(value)} (${formatRate(medianOf(store, mode, impl))} vs ${formatRate(medianOf(store, mode, PEER_OF[store] as string))} cycles/s; client CPU/cycle ${formatRatio(cpuOf(store, mode, PEER_OF[store] as string) / cpuOf(store, mode, impl))}; target >= 1.5x)`,
        });
      }
    }
    const exact = calls.every(
      (c) => c.read.storeCalls.get === 1 && Object.keys(c.read.storeCalls).length === 1,
    );
    checks.push({
      label: "an unchanged session costs exactly one store call (get) and no write, on every store",
      pass: exact,
      detail: calls.map((c) => `${c.impl}: ${fmtCalls(c.read.storeCalls)}`).join("; "),
    });
    const redisRead = calls.filter((c) => c.store !== "memory" && c.store !== "sqlite");
    checks.push({
      label: "... and exactly one driver round trip on the network stores",
      pass: redisRead.every((c) => c.read.driverCalls === 1),
      detail: redisRead
        .map((c) => `${c.impl}: ${formatNumber(c.read.driverCalls ?? Number.NaN)}`)
        .join("; "),
    });
    const skHeap =
      heap.find((h) => h.kind === "sessionkit memoryStore")?.summary.median ?? Number.NaN;
    const esHeap =
      heap.find((h) => h.kind === "express-session MemoryStore")?.summary.median ?? Number.NaN;
    checks.push({
      label: "memory store heap per session below express-session's MemoryStore",
      pass: skHeap < esHeap,
      detail: `${formatRate(skHeap)} vs ${formatRate(esHeap)} bytes/session (${formatRatio(skHeap / esHeap)}; target < 1x)`,
    });
    const esKept = median(kept["express-session"]);
    const skKept = Math.min(...kept.sessionkit);
    checks.push({
      label: `${UPDATE_WRITERS} concurrent updates of one session through Express: sessionkit loses none`,
      pass: skKept === UPDATE_WRITERS,
      detail: `sessionkit kept ${kept.sessionkit.join(", ")} of ${UPDATE_WRITERS}; express-session (MemoryStore) kept ${kept["express-session"].join(", ")} (median loss ${Math.round(((UPDATE_WRITERS - esKept) / UPDATE_WRITERS) * 100)}%)`,
    });

    const seconds = (performance.now() - started) / 1000;
    const loadEnd = loadLine("end");
    const cpuLine = cpuShareLine(
      throughputCpu,
      "includes the Redis, PostgreSQL and MariaDB servers this benchmark drives",
    );
    const lines = [
      "# sessionkit store benchmark",
      "",
      machineLine(machine),
      `Command: ${commandLine()}`,
      loadBefore,
      loadEnd,
      cpuLine,
      `Method: load+commit cycles per second with ${CONCURRENCY} cycles in flight over ${SESSIONS} seeded sessions per implementation (a ${SESSION_BYTES}-byte JSON session), each implementation in a process of its own${hasTaskset ? " on core 0 (taskset; the servers are not pinned)" : " (no taskset: not pinned)"}; ${ROUNDS} interleaved rounds of ${WINDOW_MS} ms per case after ${WARMUP_MS} ms warm-up; median and min-max of the rounds. Pools: pg and mysql2 max 10 connections each, one Redis connection per store. Run took ${seconds.toFixed(1)} s.`,
      "",
      throughputTable,
      "",
      `Store calls per cycle (counting proxy around each sessionkit store; driver commands counted at pg.query, mysql2 query, node-redis sendCommand, ioredis call; ${CALL_CYCLES} cycles):`,
      "",
      callsTable,
      "",
      `Heap per session: ${HEAP_SESSIONS} sessions of the same ${SESSION_BYTES}-byte data, heapUsed delta after gc in a fresh child (node --expose-gc):`,
      "",
      heapTable,
      "",
      `Concurrent updates: ${UPDATE_WRITERS} concurrent requests each set their own key on one session, through Express; keys that survive, per trial: sessionkit/express (memoryStore) ${kept.sessionkit.join(", ")}; express-session (MemoryStore) ${kept["express-session"].join(", ")}.`,
      "",
      ...checks.map(formatCheck),
      "",
      "Notes:",
      "- express-session rows: the store's own get/set API as the middleware drives it (cookie-signature unsign, get; then set of the whole object after a change, or store.touch after none, as the middleware does with resave: false). The middleware's two hashes of the session per request are left out. bench:http measures the whole middleware.",
      "- sessionkit rows: createSessions({ secret, store }) with defaults; a cycle is load (the Cookie header read in place, as the node adapters pass it) + get + (set) + commit into plain lists. The 256 sessions come back round, so after a token's first load the token cache spares the i1 HMAC check and the id hash, as for a returning browser; the store is read every cycle.",
      "- raw rows: the same driver fetching the same JSON string by primary key and parsing it (and writing it back): the least a session store can do per cycle.",
      "- connect-redis 9 speaks node-redis only, so the Redis target compares sessionkit on node-redis; sessionkit on ioredis is shown too.",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);

    if (wantJson) {
      const file = fileURLToPath(new URL("./results/stores.json", import.meta.url));
      await writeJson(file, {
        benchmark: "stores",
        machine,
        command: commandLine(),
        method: {
          concurrency: CONCURRENCY,
          rounds: ROUNDS,
          windowMs: WINDOW_MS,
          warmupMs: WARMUP_MS,
          sessions: SESSIONS,
          sessionBytes: SESSION_BYTES,
          heapSessions: HEAP_SESSIONS,
          unit: "cycles/s",
        },
        rows,
        calls,
        heap: heap.map((h) => ({ ...h, samples: heapSamples.get(h.kind) })),
        concurrentUpdates: { writers: UPDATE_WRITERS, kept },
        checks,
        load: { start: loadBefore, end: loadEnd },
        cpu: throughputCpu,
        seconds,
      });
      process.stderr.write(`wrote ${file}\n`);
    }
  } finally {
    await Promise.allSettled(impls.map((impl) => impl.stop()));
    await cleanup();
  }
}

await main();
