/**
 * The PostgreSQL store: one row per session, data and meta as `jsonb`, the deadline as epoch ms.
 * A patch is one `UPDATE` merging `jsonb` values, so concurrent requests never lose each other's keys.
 */
import { createHash } from "node:crypto";
import type { Client, Pool, PoolClient, QueryConfig, QueryResult } from "pg";
import { ConfigError } from "../errors.js";
import { rejectUnknown } from "../internal/unknown-options.js";
import { createPgLock, pgLockSweepSql, pgLockTableSql } from "./internal/pg-lock.js";
import { fromPgJson, toPgJson, toPgText } from "./internal/pg-nul.js";
import {
  migrateOnce,
  runQuery,
  type SqlRow,
  splitMeta,
  toEntries,
  toJsonText,
  toMeta,
  toSession,
} from "./internal/sql.js";
import type {
  SessionMeta,
  SessionPatch,
  SessionStore,
  StoredSession,
  StoredSessionEntry,
} from "./store.js";

/** Options of `postgresStore`. */
export interface PostgresStoreOptions {
  /**
   * Required. A `pg` `Pool` (recommended) or a connected `Client`; the store never ends it. A
   * `Client` not connected (its queries would wait forever) or already ended is a `ConfigError`.
   * Attach `pool.on("error", ...)` yourself: `pg` emits `error` on the pool when the server drops an
   * idle connection (restart, failover, `pg_terminate_backend`), and Node ends the process on an
   * `error` event nobody listens to. The store does not listen for you, so the report reaches your logs.
   * Set `connectionTimeoutMillis` on the pool: without it a call waits forever for an unreachable server.
   */
  pool: Pool | Client | PoolClient;
  /**
   * Table name, optionally schema-qualified (`"auth.sessions"`); letters, digits and `_` only.
   * Default `"sessionkit_sessions"`.
   */
  table?: string;
  /**
   * Create the table and its indexes on first use (idempotent, safe from many processes at once).
   * Default true. Set false when the application's role may not run DDL, and call `migrate()` from a
   * deploy step (or `sessionkit` CLI) with a role that may.
   */
  createTable?: boolean;
  /** The clock deciding what has expired, epoch ms. Default `Date.now`; inject one in tests. */
  now?: () => number;
  /**
   * Send the per-request statements (get, set, patch, move, touch, delete, expiredMeta) as named
   * prepared statements, so each connection parses and plans each of them once instead of on every
   * call. Default true.
   * Set false behind a pooler that does not keep prepared statements across transactions (PgBouncer
   * in transaction mode before 1.21, or without `max_prepared_statements`). Only applies to a `pg`
   * Pool or Client: anything else with a `query(text, values)` method always gets plain text.
   */
  prepare?: boolean;
}

/** The PostgreSQL store, with `migrate()` for deploy scripts and the CLI. */
export interface PostgresStore extends SessionStore {
  /** Always present on this store (optional in `SessionStore`), so callers need no guard. */
  move: NonNullable<SessionStore["move"]>;
  listByUser(userId: string): Promise<StoredSessionEntry[]>;
  deleteByUser(userId: string, except?: readonly string[]): Promise<number>;
  sweep(now: number): Promise<number>;
  expiredMeta(key: string): Promise<SessionMeta | undefined>;
  lock(key: string, ttlMs: number, waitMs: number): Promise<(() => Promise<void>) | null>;
  close(): Promise<void>;
  /** Creates the table and indexes if missing; idempotent and safe to run concurrently. */
  migrate(): Promise<void>;
}

const DEFAULTS = Object.freeze({
  table: "sessionkit_sessions",
  createTable: true,
  now: Date.now,
  prepare: true,
});

// One or two plain identifiers: quoting them is then enough to make them safe in SQL text, and an
// index name derived from them stays under PostgreSQL's 63-byte limit.
const TABLE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,49}$/;
// Any constant works as long as every sessionkit process uses the same one for the same table.
const MIGRATION_LOCK_PREFIX = "sessionkit:migrate:";
// Error codes are safe to show (never data); anything else from the driver stays in `cause`.
const SAFE_CODE = /^[A-Z0-9_]{1,32}$/;

/** The driver's error code (SQLSTATE or a socket error's name), if it is one. */
function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && SAFE_CODE.test(code) ? code : undefined;
}

/**
 * A pg `Client` (not a Pool) queues every query until it is connected: one never connected would
 * hang each request without an error. pg has no public flag, so its long-stable internal ones are
 * read, and anything without them (a Pool, a wrapper) passes.
 */
function checkPgClient(pool: unknown): void {
  const client = pool as { _connected?: unknown; _connecting?: unknown; _ending?: unknown };
  if (typeof client._connected !== "boolean" || typeof client._connecting !== "boolean") return;
  if (client._ending === true) {
    throw new ConfigError(
      "postgresStore: the pg Client has been ended (client.end()); pass a pg.Pool, or a connected Client",
    );
  }
  if (!client._connected && !client._connecting) {
    throw new ConfigError(
      "postgresStore: the pg Client is not connected, and its queries would wait forever; call await client.connect() before creating the store, or pass a pg.Pool (recommended: it connects by itself)",
    );
  }
}

type Row = SqlRow & { key?: string; expires_at?: string | number };
type Query = (text: string | QueryConfig, values?: unknown[]) => Promise<QueryResult<Row>>;

/** A row selected with `data::text` and `meta::text`, its JSON as `toPgJson` had it. */
function fromPgRow(row: Row): Row {
  if (typeof row.data === "string") row.data = fromPgJson(row.data);
  if (typeof row.meta === "string") row.meta = fromPgJson(row.meta);
  return row;
}

/** A statement as `exec` takes it: plain text, or text with the name it is prepared under. */
type Statement = string | { readonly name: string; readonly text: string };

/**
 * Creates a session store on PostgreSQL (9.5 or later) through a `pg` pool you own.
 *
 * The table (`key text primary key, data jsonb, meta jsonb, user_id text, expires_at bigint`) is
 * created on first use, with an UNLOGGED `<table>_locks` table for the `lock` option's leases. Expiry is decided by the `now` option, not the server clock, so application
 * and store agree on what has expired. Expired rows are invisible at once (`expiredMeta` still sees
 * them, so a timed-out session is reported as expired) and removed by `sweep(now)`,
 * which you schedule (no timer runs here). Strings with a NUL character, which `jsonb` refuses, are
 * stored escaped (see internal/pg-nul.ts) and read back as they were.
 *
 * @example
 * ```ts
 * import pg from "pg";
 * import { createSessions } from "sessionkit";
 * import { postgresStore } from "sessionkit/stores/postgres";
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 5000 });
 * pool.on("error", (err) => console.error("idle postgres client failed", err));
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET!, store: postgresStore({ pool }) });
 * setInterval(() => sessions.store?.sweep?.(Date.now()).catch(console.error), 3_600_000).unref();
 * ```
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  if (!options || typeof options.pool?.query !== "function") {
    const promise = typeof (options?.pool as { then?: unknown } | undefined)?.then === "function";
    throw new ConfigError(
      `postgresStore needs { pool }: a pg Pool or Client${promise ? "; it got a Promise: await it, or pass the Pool itself" : ""}`,
    );
  }
  checkPgClient(options.pool);
  rejectUnknown(
    options,
    ["pool", "table", "createTable", "now", "prepare"],
    "postgresStore option",
  );
  // `??` rather than a spread, so an option passed as `undefined` still gets its default.
  const pool = options.pool;
  const table = options.table ?? DEFAULTS.table;
  const createTable = options.createTable ?? DEFAULTS.createTable;
  const clock = options.now ?? DEFAULTS.now;
  if (typeof clock !== "function") throw new ConfigError('postgresStore "now" must be a function');
  // expires_at is a bigint, which refuses "….5": a clock with fractional milliseconds
  // (performance.timeOrigin + performance.now()) failed every call as an outage. Whole milliseconds,
  // deadlines rounded up, so rounding never ends a session early.
  const now = () => Math.floor(clock());
  // Named statements need pg's config-object form of `query`, which pg's Pool and Client (both have
  // `connect`) accept; a bare `{ query }` wrapper may only take `(text, values)`.
  const prepare =
    (options.prepare ?? DEFAULTS.prepare) &&
    typeof (options.pool as { connect?: unknown }).connect === "function";
  if (typeof table !== "string" || !TABLE_NAME.test(table)) {
    throw new ConfigError(
      'postgresStore "table" must be a name of letters, digits and "_" (up to 50), optionally "schema.table"',
    );
  }
  const parts = table.split(".");
  const bare = parts[parts.length - 1] as string;
  const t = parts.map((part) => `"${part}"`).join(".");
  // The lock table sits beside the session table: same schema, name + "_locks".
  const locks = [...parts.slice(0, -1), `${bare}_locks`].map((part) => `"${part}"`).join(".");
  const query = pool.query.bind(pool) as unknown as Query;

  // Two processes starting together would race on CREATE TABLE IF NOT EXISTS (it can fail with a
  // unique violation in pg_type); the advisory lock serialises them. A multi-statement simple query
  // runs as one transaction, so the transaction-scoped lock covers all the statements.
  const migrationSql = `SELECT pg_advisory_xact_lock(hashtext('${MIGRATION_LOCK_PREFIX}${table}'));
CREATE TABLE IF NOT EXISTS ${t} (
  key text PRIMARY KEY,
  data jsonb NOT NULL,
  meta jsonb NOT NULL,
  user_id text NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS "${bare}_user_id_idx" ON ${t} (user_id);
CREATE INDEX IF NOT EXISTS "${bare}_expires_at_idx" ON ${t} (expires_at);
${pgLockTableSql(locks)}`;

  async function migrate(): Promise<void> {
    await run("migrate", () => query(migrationSql));
  }

  /** Creates the table once per store; concurrent first calls share one attempt, a failed one is retried. */
  const ensureTable = migrateOnce(migrate, createTable);

  async function exec(
    operation: string,
    statement: Statement,
    values: unknown[],
  ): Promise<QueryResult<Row>> {
    await ensureTable();
    return run(operation, () =>
      typeof statement === "string"
        ? query(statement, values)
        : query({ name: statement.name, text: statement.text, values }),
    );
  }

  /** A per-request statement: named (prepared once per connection) unless `prepare` is off. */
  function named(text: string): Statement {
    if (!prepare) return text;
    // The name follows from the text: the same text always gets the same name, so stores on
    // different tables (or shapes of a patch) sharing one pool never claim one name twice.
    return {
      name: `sessionkit_${createHash("sha256").update(text).digest("hex").slice(0, 32)}`,
      text,
    };
  }

  // data and meta as text, not parsed by pg: what toPgJson wrote is turned back before JSON.parse.
  const getSql = named(
    `SELECT data::text AS data, meta::text AS meta FROM ${t} WHERE key = $1 AND expires_at > $2`,
  );
  const expiredSql = named(
    `SELECT meta::text AS meta FROM ${t} WHERE key = $1 AND expires_at <= $2`,
  );
  const setSql =
    named(`INSERT INTO ${t} (key, data, meta, user_id, expires_at) VALUES ($1, $2::jsonb, $3::jsonb, $4, $5)
ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, meta = EXCLUDED.meta,
  user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at`);
  const touchSql =
    named(`UPDATE ${t} SET meta = meta || jsonb_build_object('touchedAt', $2::bigint), expires_at = $3
WHERE key = $1 AND expires_at > $4`);
  const deleteSql = named(`DELETE FROM ${t} WHERE key = $1`);
  /** Patch and move statements by shape (see `patchText`, `moveText`), built on first use. */
  const patchSql = new Map<number, Statement>();
  const moveSql = new Map<number, Statement>();

  /** The statement of one shape from `cache`, named on first use. */
  function byShape(cache: Map<number, Statement>, shape: number, text: () => string): Statement {
    let statement = cache.get(shape);
    if (statement === undefined) {
      statement = named(text());
      cache.set(shape, statement);
    }
    return statement;
  }

  async function get(key: string): Promise<StoredSession | undefined> {
    const result = await exec("get", getSql, [key, now()]);
    const row = result.rows[0];
    return row ? toSession(fromPgRow(row)) : undefined;
  }

  async function expiredMeta(key: string): Promise<SessionMeta | undefined> {
    const result = await exec("expiredMeta", expiredSql, [key, now()]);
    const meta = result.rows[0]?.meta;
    return typeof meta === "string" ? toMeta(fromPgJson(meta)) : undefined;
  }

  async function set(key: string, session: StoredSession, expiresAt: number): Promise<void> {
    await exec("set", setSql, [
      key,
      toPgJson(toJsonText(session.data)),
      toPgJson(toJsonText(session.meta)),
      session.meta.userId === undefined ? null : toPgText(session.meta.userId),
      Math.ceil(expiresAt),
    ]);
  }

  async function patch(key: string, changes: SessionPatch, expiresAt: number): Promise<boolean> {
    const { shape, values } = patchValues(changes);
    const statement = byShape(patchSql, shape, () => patchText(t, shape));
    const result = await exec("patch", statement, [key, Math.ceil(expiresAt), now(), ...values]);
    return (result.rowCount ?? 0) > 0;
  }

  async function move(
    fromKey: string,
    toKey: string,
    changes: SessionPatch,
    expiresAt: number,
  ): Promise<StoredSession | undefined> {
    const { shape, values } = patchValues(changes);
    const statement = byShape(moveSql, shape, () => moveText(t, shape));
    const result = await exec("move", statement, [
      fromKey,
      Math.ceil(expiresAt),
      now(),
      toKey,
      ...values,
    ]);
    const row = result.rows[0];
    return row ? toSession(fromPgRow(row)) : undefined;
  }

  async function touch(key: string, touchedAt: number, expiresAt: number): Promise<boolean> {
    const result = await exec("touch", touchSql, [
      key,
      Math.floor(touchedAt),
      Math.ceil(expiresAt),
      now(),
    ]);
    return (result.rowCount ?? 0) > 0;
  }

  async function remove(key: string): Promise<boolean> {
    const result = await exec("delete", deleteSql, [key]);
    return (result.rowCount ?? 0) > 0;
  }

  async function listByUser(userId: string): Promise<StoredSessionEntry[]> {
    const result = await exec(
      "listByUser",
      `SELECT key, data::text AS data, meta::text AS meta, expires_at FROM ${t} WHERE user_id = $1 AND expires_at > $2`,
      [toPgText(userId), now()],
    );
    return toEntries(result.rows.map(fromPgRow));
  }

  // Expired rows are left to sweep: counting them would report devices that were already gone.
  // The rows listed and those deleted share one snapshot: fewer deleted means a listed row changed
  // or went meanwhile, perhaps moved to a new key (see `deleteByUser`). A row is spared by its key
  // or by its lineage (see SessionStore.deleteByUser).
  const deleteByUserSql = `WITH listed AS (
  SELECT key FROM ${t} WHERE user_id = $1 AND expires_at > $2 AND NOT (key = ANY($3::text[]))
    AND NOT (coalesce(meta->>'lineage', '') = ANY($3::text[]))
), gone AS (
  DELETE FROM ${t} WHERE key IN (SELECT key FROM listed) AND user_id = $1 AND expires_at > $2
  RETURNING 1
)
SELECT (SELECT count(*) FROM listed) AS listed, (SELECT count(*) FROM gone) AS gone`;

  async function deleteByUser(userId: string, except: readonly string[] = []): Promise<number> {
    // One DELETE sees the rows of its snapshot: a renewal or regenerate that committed its new row
    // after that, then deleted the old one before the DELETE got to it (held up by a lock on
    // another of the user's rows), survived "sign out everywhere". The move writes the new row
    // before it deletes the old, so a pass that found a listed row gone runs again, and the next
    // snapshot holds the new row. A few passes at most, against endless churn.
    let count = 0;
    for (let pass = 0; pass < DELETE_PASSES; pass++) {
      const result = await exec("deleteByUser", deleteByUserSql, [
        toPgText(userId),
        now(),
        [...except],
      ]);
      const row = result.rows[0] as { listed?: unknown; gone?: unknown } | undefined;
      const gone = Number(row?.gone ?? 0);
      count += gone;
      if (gone === Number(row?.listed ?? 0)) break;
    }
    return count;
  }

  async function sweep(at: number): Promise<number> {
    const result = await exec("sweep", `DELETE FROM ${t} WHERE expires_at <= $1`, [Math.floor(at)]);
    // Leases left by crashed requests: harmless (an expired lease is overwritten), but they pile up.
    // A table made by hand for createTable: false may have no lease table: its sessions still went.
    await exec("sweep", pgLockSweepSql(locks), []).catch((err: unknown) => {
      if ((err as { cause?: { code?: unknown } }).cause?.code !== "42P01") throw err;
    });
    return result.rowCount ?? 0;
  }

  async function close(): Promise<void> {
    // Nothing to stop: no timers, and the pool belongs to the caller.
  }

  return {
    name: "postgres",
    lock: createPgLock(exec, locks),
    get,
    set,
    patch,
    move,
    touch,
    delete: remove,
    listByUser,
    deleteByUser,
    sweep,
    expiredMeta,
    close,
    migrate,
  };
}

// What a patch changes, as bits: each shape gets its own statement, with only the work it needs.
const DATA_SET = 1;
const DATA_DELETE = 2;
const META_SET = 4;
const META_REMOVE = 8;
/** The patch sets or removes `meta.userId`, so the `user_id` column follows it. */
const USER = 16;
/** Statements one `deleteByUser` runs at most, each after a listed row went meanwhile. */
const DELETE_PASSES = 4;

/** A patch as its shape and the values of that shape's parameters, in bit order (see `patchMerge`). */
function patchValues(changes: SessionPatch): { shape: number; values: unknown[] } {
  const meta = splitMeta(changes.meta);
  const dataSet = toPgJson(toJsonText(changes.set));
  const metaSet = toPgJson(toJsonText(meta.set));
  const shape =
    (dataSet === "{}" ? 0 : DATA_SET) |
    (changes.delete.length === 0 ? 0 : DATA_DELETE) |
    (metaSet === "{}" ? 0 : META_SET) |
    (meta.remove.length === 0 ? 0 : META_REMOVE) |
    ("userId" in meta.set || meta.remove.includes("userId") ? USER : 0);
  const values: unknown[] = [];
  if (shape & DATA_SET) values.push(dataSet);
  if (shape & DATA_DELETE) values.push(changes.delete.map(toPgText));
  if (shape & META_SET) values.push(metaSet);
  if (shape & META_REMOVE) values.push(meta.remove);
  return { shape, values };
}

/**
 * The merged data and meta of one patch shape over the `data` and `meta` of `source` (a row, or
 * nothing for the table's own columns), each `undefined` when the shape leaves it alone, and the
 * `user_id` the merged meta gives. `||` replaces top-level keys whole (no deep merge) and keeps JSON
 * nulls; `-` then deletes. The shape's values are numbered from `$<first>`.
 */
function patchMerge(
  shape: number,
  source: string,
  first: number,
): { data: string | undefined; meta: string | undefined; userId: string } {
  let n = first - 1;
  const merge = (column: string, setBit: number, deleteBit: number): string | undefined => {
    let expr = column;
    if (shape & setBit) expr = `${expr} || $${++n}::jsonb`;
    if (shape & deleteBit) expr = `(${expr}) - $${++n}::text[]`;
    return expr === column ? undefined : expr;
  };
  const prefix = source === "" ? "" : `${source}.`;
  const data = merge(`${prefix}data`, DATA_SET, DATA_DELETE);
  const meta = merge(`${prefix}meta`, META_SET, META_REMOVE);
  return { data, meta, userId: `(${meta ?? `${prefix}meta`}) ->> 'userId'` };
}

/**
 * The UPDATE of one patch shape. Every right-hand side reads the row as it was, so `user_id`
 * follows the merged meta. A patch that leaves `userId` alone leaves `user_id` alone: it already
 * matches. Parameters: $1 key, $2 expiresAt, $3 now, then the shape's values.
 */
function patchText(table: string, shape: number): string {
  const { data, meta, userId } = patchMerge(shape, "", 4);
  const sets: string[] = [];
  if (data) sets.push(`data = ${data}`);
  if (meta) sets.push(`meta = ${meta}`);
  if (meta && shape & USER) sets.push(`user_id = ${userId}`);
  sets.push("expires_at = $2");
  return `UPDATE ${table} SET ${sets.join(", ")} WHERE key = $1 AND expires_at > $3`;
}

/**
 * The move of one patch shape, as one statement and so one transaction: the DELETE takes the old
 * row's lock, and under READ COMMITTED a DELETE held up by a patch of that row re-reads the row
 * the patch committed (and RETURNING hands on that version), while a patch held up by the DELETE
 * then finds no row and answers false. Nobody sees the old row gone without the new one written,
 * which `deleteByUser`'s re-pass relies on. `user_id` is always taken from the merged meta, as
 * `set` does for a fresh row. The SELECT list does not take its types from the INSERT's columns,
 * hence the casts. Parameters: $1 fromKey, $2 expiresAt, $3 now, $4 toKey, then the shape's values.
 */
function moveText(table: string, shape: number): string {
  const { data, meta, userId } = patchMerge(shape, "old", 5);
  return `WITH old AS (
  DELETE FROM ${table} WHERE key = $1 AND expires_at > $3 RETURNING data, meta
)
INSERT INTO ${table} (key, data, meta, user_id, expires_at)
SELECT $4::text, ${data ?? "old.data"}, ${meta ?? "old.meta"}, ${userId}, $2::bigint FROM old
ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, meta = EXCLUDED.meta,
  user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at
RETURNING data::text AS data, meta::text AS meta`;
}

/** Runs one driver call; any failure becomes `StoreUnavailableError` naming only the operation. */
function run<R>(operation: string, call: () => Promise<R>): Promise<R> {
  return runQuery("postgres", operation, call, errorCode);
}
