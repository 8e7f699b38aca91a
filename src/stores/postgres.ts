/**
 * The PostgreSQL store: one row per session, data and meta as `jsonb`, the deadline as epoch ms.
 * A patch is one `UPDATE` merging `jsonb` values, so concurrent requests never lose each other's keys.
 */
import type { Client, Pool, PoolClient, QueryResult } from "pg";
import { ConfigError } from "../errors.js";
import { createPgLock, pgLockSweepSql, pgLockTableSql } from "./internal/pg-lock.js";
import {
  migrateOnce,
  runQuery,
  type SqlRow,
  splitMeta,
  toEntries,
  toSession,
} from "./internal/sql.js";
import type { SessionPatch, SessionStore, StoredSession, StoredSessionEntry } from "./store.js";

/** Options of `postgresStore`. */
export interface PostgresStoreOptions {
  /**
   * Required. A `pg` `Pool` (recommended) or a connected `Client`; the store never ends it.
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
}

/** The PostgreSQL store, with `migrate()` for deploy scripts and the CLI. */
export interface PostgresStore extends SessionStore {
  /** Always present on this store (optional in `SessionStore`), so callers need no guard. */
  listByUser(userId: string): Promise<StoredSessionEntry[]>;
  deleteByUser(userId: string, exceptKeys?: readonly string[]): Promise<number>;
  sweep(now: number): Promise<number>;
  lock(key: string, ttlMs: number, waitMs: number): Promise<(() => Promise<void>) | null>;
  close(): Promise<void>;
  /** Creates the table and indexes if missing; idempotent and safe to run concurrently. */
  migrate(): Promise<void>;
}

const DEFAULTS = Object.freeze({ table: "sessionkit_sessions", createTable: true, now: Date.now });

// One or two plain identifiers: quoting them is then enough to make them safe in SQL text, and an
// index name derived from them stays under PostgreSQL's 63-byte limit.
const TABLE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,49}$/;
// Any constant works as long as every sessionkit process uses the same one for the same table.
const MIGRATION_LOCK_PREFIX = "sessionkit:migrate:";
// Error codes are safe to show (never data); anything else from the driver stays in `cause`.
const SAFE_CODE = /^[A-Z0-9_]{1,32}$/;

type Row = SqlRow & { key?: string; expires_at?: string | number };
type Query = (text: string, values?: unknown[]) => Promise<QueryResult<Row>>;

/**
 * Creates a session store on PostgreSQL (9.5 or later) through a `pg` pool you own.
 *
 * The table (`key text primary key, data jsonb, meta jsonb, user_id text, expires_at bigint`) is
 * created on first use, with an UNLOGGED `<table>_locks` table for the `lock` option's leases. Expiry is decided by the `now` option, not the server clock, so application
 * and store agree on what has expired. Expired rows are invisible at once and removed by `sweep(now)`,
 * which you schedule (no timer runs here). Strings with a NUL character cannot be stored: `jsonb`
 * refuses `\u0000`.
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
 * setInterval(() => sessions.store?.sweep?.(Date.now()), 3_600_000).unref();
 * ```
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  if (!options || typeof options.pool?.query !== "function") {
    throw new ConfigError("postgresStore needs { pool }: a pg Pool or Client");
  }
  // `??` rather than a spread, so an option passed as `undefined` still gets its default.
  const pool = options.pool;
  const table = options.table ?? DEFAULTS.table;
  const createTable = options.createTable ?? DEFAULTS.createTable;
  const now = options.now ?? DEFAULTS.now;
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
    text: string,
    values: unknown[],
  ): Promise<QueryResult<Row>> {
    await ensureTable();
    return run(operation, () => query(text, values));
  }

  async function get(key: string): Promise<StoredSession | undefined> {
    const result = await exec(
      "get",
      `SELECT data, meta FROM ${t} WHERE key = $1 AND expires_at > $2`,
      [key, now()],
    );
    const row = result.rows[0];
    return row ? toSession(row) : undefined;
  }

  async function set(key: string, session: StoredSession, expiresAt: number): Promise<void> {
    await exec(
      "set",
      `INSERT INTO ${t} (key, data, meta, user_id, expires_at) VALUES ($1, $2::jsonb, $3::jsonb, $4, $5)
ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, meta = EXCLUDED.meta,
  user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at`,
      [
        key,
        JSON.stringify(session.data),
        JSON.stringify(session.meta),
        session.meta.userId ?? null,
        expiresAt,
      ],
    );
  }

  async function patch(key: string, changes: SessionPatch, expiresAt: number): Promise<boolean> {
    const meta = splitMeta(changes.meta);
    // `||` replaces top-level keys whole (no deep merge) and keeps JSON nulls; `-` then deletes.
    // Every right-hand side reads the row as it was, so user_id follows the merged meta.
    const result = await exec(
      "patch",
      `UPDATE ${t} SET
  data = (data || $2::jsonb) - $3::text[],
  meta = (meta || $4::jsonb) - $5::text[],
  user_id = ((meta || $4::jsonb) - $5::text[]) ->> 'userId',
  expires_at = $6
WHERE key = $1 AND expires_at > $7`,
      [
        key,
        JSON.stringify(changes.set),
        changes.delete,
        JSON.stringify(meta.set),
        meta.remove,
        expiresAt,
        now(),
      ],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async function touch(key: string, touchedAt: number, expiresAt: number): Promise<boolean> {
    const result = await exec(
      "touch",
      `UPDATE ${t} SET meta = meta || jsonb_build_object('touchedAt', $2::bigint), expires_at = $3
WHERE key = $1 AND expires_at > $4`,
      [key, touchedAt, expiresAt, now()],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async function remove(key: string): Promise<void> {
    await exec("delete", `DELETE FROM ${t} WHERE key = $1`, [key]);
  }

  async function listByUser(userId: string): Promise<StoredSessionEntry[]> {
    const result = await exec(
      "listByUser",
      `SELECT key, data, meta, expires_at FROM ${t} WHERE user_id = $1 AND expires_at > $2`,
      [userId, now()],
    );
    return toEntries(result.rows);
  }

  async function deleteByUser(userId: string, exceptKeys: readonly string[] = []): Promise<number> {
    const result = await exec(
      "deleteByUser",
      `DELETE FROM ${t} WHERE user_id = $1 AND NOT (key = ANY($2::text[]))`,
      [userId, [...exceptKeys]],
    );
    return result.rowCount ?? 0;
  }

  async function sweep(at: number): Promise<number> {
    const result = await exec("sweep", `DELETE FROM ${t} WHERE expires_at <= $1`, [at]);
    // Leases left by crashed requests: harmless (an expired lease is overwritten), but they pile up.
    await exec("sweep", pgLockSweepSql(locks), []);
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
    touch,
    delete: remove,
    listByUser,
    deleteByUser,
    sweep,
    close,
    migrate,
  };
}

/** Runs one driver call; any failure becomes `StoreUnavailableError` naming only the operation. */
function run<R>(operation: string, call: () => Promise<R>): Promise<R> {
  return runQuery("postgres", operation, call, SAFE_CODE);
}
