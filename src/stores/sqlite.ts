import { ConfigError, isSessionError, StoreUnavailableError } from "../errors.js";
import { rejectUnknown } from "../internal/unknown-options.js";
import { pollLock, type Release } from "./internal/poll-lock.js";
import { toMeta } from "./internal/sql.js";
import {
  applyPatch,
  type SessionMeta,
  type SessionPatch,
  type SessionStore,
  type StoredSession,
  type StoredSessionEntry,
} from "./store.js";

/**
 * The part of a synchronous SQLite driver this store uses. Both better-sqlite3's `Database` and
 * `node:sqlite`'s `DatabaseSync` (Node 22.5+) fit it, so neither is imported at runtime.
 */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
}

/** A prepared statement, as both drivers shape it. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** Options of `sqliteStore`. */
export interface SqliteStoreOptions {
  /**
   * An open better-sqlite3 `Database` or `node:sqlite` `DatabaseSync`, not readonly (a closed or
   * readonly one is a `ConfigError`). The store never closes it.
   */
  db: SqliteDatabase;
  /** Table name: letters, digits and `_`. Default "sessionkit_sessions". Created on first use. */
  table?: string;
  /** The clock, epoch ms, for expiry on read. Default `Date.now`. */
  now?: () => number;
}

/** The SQLite store, with `migrate()` for deploy scripts and the CLI. */
export interface SqliteStore extends SessionStore {
  /**
   * Creates the table, its indexes and the `<table>_locks` lease table if they are missing.
   * Idempotent; every operation runs it once.
   */
  migrate(): Promise<void>;
  /** Always present on this store (optional in `SessionStore`), so callers need no guard. */
  listByUser(userId: string): Promise<StoredSessionEntry[]>;
  deleteByUser(userId: string, except?: readonly string[]): Promise<number>;
  /** Deletes expired sessions (counted) and abandoned lock leases. */
  sweep(now: number): Promise<number>;
  expiredMeta(key: string): Promise<SessionMeta | undefined>;
  /** One write transaction (see `SessionStore.move`). */
  move: NonNullable<SessionStore["move"]>;
  /** The `lock` option's per-session lock: a lease row, shared by every process on the file. */
  lock(key: string, ttlMs: number, waitMs: number): Promise<Release | null>;
  close(): Promise<void>;
}

// Date.now is looked up per call, so fake timers installed after import still govern the default clock.
const DEFAULTS = Object.freeze({ table: "sessionkit_sessions", now: () => Date.now() });
// The name is spliced into SQL (identifiers cannot be bound), so only a plain identifier passes.
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

interface Row {
  key?: string;
  data: string;
  meta: string;
  expires_at?: number | bigint;
}

/**
 * Sessions in a SQLite table, through the database you open. Patches run in one `BEGIN IMMEDIATE`
 * transaction, so concurrent requests (and processes sharing the file) that change different keys
 * all survive. Turn on WAL for a file database, so readers never wait for the writer:
 * `db.pragma("journal_mode = WAL")` (better-sqlite3) or `db.exec("PRAGMA journal_mode = WAL")`.
 * Expired rows are hidden on read (`expiredMeta` still sees them, so a timed-out session is reported
 * as expired); call `sweep(Date.now())` now and then to delete them.
 *
 * @example
 * ```ts
 * import Database from "better-sqlite3";
 * import { createSessions } from "sessionkit";
 * import { sqliteStore } from "sessionkit/stores/sqlite";
 * const db = new Database("sessions.db");
 * db.pragma("journal_mode = WAL");
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET!, store: sqliteStore({ db }) });
 * ```
 */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  if (options !== null && typeof options === "object") {
    rejectUnknown(options, ["db", "table", "now"], "sqliteStore option");
  }
  const { db, table, now } = { ...DEFAULTS, ...options };
  if (typeof db?.prepare !== "function" || typeof db?.exec !== "function") {
    throw new ConfigError(
      `sqliteStore needs { db }: an open better-sqlite3 Database or node:sqlite DatabaseSync`,
    );
  }
  // A write on either would fail every request as an outage: said now instead.
  // better-sqlite3 has `open` and `readonly`; node:sqlite (22.15+) has `isOpen`.
  const flags = db as { open?: unknown; isOpen?: unknown; readonly?: unknown };
  if (flags.open === false || flags.isOpen === false) {
    throw new ConfigError("sqliteStore: the database is closed; pass an open one");
  }
  if (flags.readonly === true) {
    throw new ConfigError(
      "sqliteStore: the database was opened readonly, and the store writes; open it without { readonly: true }",
    );
  }
  if (typeof table !== "string" || !TABLE_NAME.test(table)) {
    throw new ConfigError(
      `sqliteStore "table" must be letters, digits and "_", starting with a letter or "_", with no "schema." prefix (the table is made in the database you pass)`,
    );
  }
  if (typeof now !== "function") throw new ConfigError(`sqliteStore "now" must be a function`);
  const t = `"${table}"`;
  // The \`lock\` option's leases, beside the sessions.
  const locks = `"${table}_locks"`;
  let statements: ReturnType<typeof prepareAll> | undefined;

  function migrateNow(): void {
    db.exec(`CREATE TABLE IF NOT EXISTS ${t} (
      key TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL,
      user_id TEXT, expires_at INTEGER NOT NULL)`);
    // Partial: most sessions have no user, and "user_id = ?" implies NOT NULL, so the index still serves it.
    db.exec(
      `CREATE INDEX IF NOT EXISTS "${table}_user_id" ON ${t} (user_id) WHERE user_id IS NOT NULL`,
    );
    db.exec(`CREATE INDEX IF NOT EXISTS "${table}_expires_at" ON ${t} (expires_at)`);
    db.exec(`CREATE TABLE IF NOT EXISTS ${locks} (
      key TEXT PRIMARY KEY NOT NULL, token TEXT NOT NULL, expires_at INTEGER NOT NULL)`);
  }

  function prepareAll() {
    return {
      get: db.prepare(`SELECT data, meta FROM ${t} WHERE key = ? AND expires_at > ?`),
      expired: db.prepare(`SELECT meta FROM ${t} WHERE key = ? AND expires_at <= ?`),
      upsert: db.prepare(
        `INSERT INTO ${t} (key, data, meta, user_id, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET data = excluded.data, meta = excluded.meta,
         user_id = excluded.user_id, expires_at = excluded.expires_at`,
      ),
      update: db.prepare(
        `UPDATE ${t} SET data = ?, meta = ?, user_id = ?, expires_at = ? WHERE key = ?`,
      ),
      touch: db.prepare(
        `UPDATE ${t} SET meta = json_set(meta, '$.touchedAt', json(?)), expires_at = ?
         WHERE key = ? AND expires_at > ? AND json_valid(meta)`,
      ),
      delete: db.prepare(`DELETE FROM ${t} WHERE key = ?`),
      list: db.prepare(
        `SELECT key, data, meta, expires_at FROM ${t} WHERE user_id = ? AND expires_at > ?`,
      ),
      // A row spared by key or by lineage (see SessionStore.deleteByUser); meta that is not JSON has none.
      deleteByUser: db.prepare(
        `WITH kept AS (SELECT value FROM json_each(?))
         DELETE FROM ${t} WHERE user_id = ? AND expires_at > ? AND key NOT IN kept
           AND coalesce(CASE WHEN json_valid(meta) THEN json_extract(meta, '$.lineage') END, '')
             NOT IN kept`,
      ),
      sweep: db.prepare(`DELETE FROM ${t} WHERE expires_at <= ?`),
      // Takes a free or expired lease; \`changes\` is 0 while another holder's lease runs.
      lock: db.prepare(
        `INSERT INTO ${locks} (key, token, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
         WHERE ${locks}.expires_at <= ?`,
      ),
      unlock: db.prepare(`DELETE FROM ${locks} WHERE key = ? AND token = ?`),
      sweepLocks: db.prepare(`DELETE FROM ${locks} WHERE expires_at <= ?`),
      patch: immediate(db, patchRow),
      move: immediate(db, moveRow),
    };
  }

  /** Runs a driver call; any failure becomes StoreUnavailableError, and a failed migration is retried next time. */
  async function run<R>(
    operation: string,
    call: (s: ReturnType<typeof prepareAll>) => R,
  ): Promise<R> {
    try {
      if (!statements) {
        migrateNow();
        statements = prepareAll();
      }
      return call(statements);
    } catch (err) {
      if (isSessionError(err)) throw err;
      throw new StoreUnavailableError(
        `the sqlite store failed during ${operation}; is the database open?`,
        {
          cause: err,
        },
      );
    }
  }

  /** The live row of `key` with `patch` applied, read inside the caller's write transaction. */
  function patchedRow(key: string, patch: SessionPatch): StoredSession | undefined {
    const s = statements as ReturnType<typeof prepareAll>;
    const current = parse(s.get.get(key, now()) as Row | undefined);
    return current && applyPatch(current, patch);
  }

  function patchRow(key: string, patch: SessionPatch, expiresAt: number): boolean {
    const s = statements as ReturnType<typeof prepareAll>;
    const next = patchedRow(key, patch);
    if (!next) return false;
    s.update.run(
      JSON.stringify(next.data),
      JSON.stringify(next.meta),
      next.meta.userId ?? null,
      expiresAt,
      key,
    );
    return true;
  }

  /** One write transaction, so another process on the file sees the session at one key or the other. */
  function moveRow(
    fromKey: string,
    toKey: string,
    patch: SessionPatch,
    expiresAt: number,
  ): StoredSession | undefined {
    const s = statements as ReturnType<typeof prepareAll>;
    const next = patchedRow(fromKey, patch);
    if (!next) return undefined;
    const data = JSON.stringify(next.data);
    const meta = JSON.stringify(next.meta);
    // Deleting first keeps the record should the keys ever be equal, as the other stores do.
    s.delete.run(fromKey);
    s.upsert.run(toKey, data, meta, next.meta.userId ?? null, expiresAt);
    return parse({ data, meta });
  }

  /**
   * A lease row per locked session, in the same database, so processes sharing the file exclude each
   * other too. Leases run on \`Date.now\`, not the \`now\` option: a lease is a span of real time, and an
   * injected clock may stand still.
   */
  function lock(key: string, ttlMs: number, waitMs: number): Promise<Release | null> {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    return pollLock(
      () =>
        run("lock", (s) => {
          const token = crypto.randomUUID();
          const at = Date.now();
          if (Number(s.lock.run(key, token, at + ttl, at).changes) === 0) return null;
          // The token makes a late release (after the lease expired and passed on) a no-op.
          return () =>
            run("unlock", (u) => {
              u.unlock.run(key, token);
            });
        }),
      waitMs,
    );
  }

  return {
    name: "sqlite",
    migrate: () => run("migrate", () => undefined),
    get: (key) => run("get", (s) => parse(s.get.get(key, now()) as Row | undefined)),
    set: async (key, session, expiresAt) => {
      // Serialised outside `run`: a value JSON cannot hold (a BigInt) is the caller's TypeError, not an outage.
      const data = JSON.stringify(session.data);
      const meta = JSON.stringify(session.meta);
      await run("set", (s) => {
        s.upsert.run(key, data, meta, session.meta.userId ?? null, expiresAt);
      });
    },
    patch: async (key, patch, expiresAt) => {
      // The same check for a patch: its values are the only new ones in the record it writes.
      JSON.stringify(patch);
      return run("patch", (s) => s.patch(key, patch, expiresAt));
    },
    move: async (fromKey, toKey, patch, expiresAt) => {
      JSON.stringify(patch);
      return run("move", (s) => s.move(fromKey, toKey, patch, expiresAt));
    },
    touch: (key, touchedAt, expiresAt) =>
      run(
        "touch",
        (s) => Number(s.touch.run(JSON.stringify(touchedAt), expiresAt, key, now()).changes) > 0,
      ),
    delete: (key) => run("delete", (s) => Number(s.delete.run(key).changes) > 0),
    listByUser: (userId) =>
      run("listByUser", (s) =>
        (s.list.all(userId, now()) as Row[]).flatMap((row): StoredSessionEntry[] => {
          const session = parse(row);
          return session
            ? [{ key: String(row.key), expiresAt: Number(row.expires_at), ...session }]
            : [];
        }),
      ),
    deleteByUser: (userId, except = []) =>
      run("deleteByUser", (s) =>
        Number(s.deleteByUser.run(JSON.stringify(except), userId, now()).changes),
      ),
    sweep: (at) =>
      run("sweep", (s) => {
        s.sweepLocks.run(Date.now());
        return Number(s.sweep.run(at).changes);
      }),
    expiredMeta: (key) =>
      run("expiredMeta", (s) => toMeta((s.expired.get(key, now()) as Row | undefined)?.meta)),
    lock,
    // Nothing to stop: no timers, and the database belongs to the caller.
    close: async () => {},
  };
}

/** A row as a session; unreadable JSON is "not found", as the store contract says. */
function parse(row: Row | undefined): StoredSession | undefined {
  if (!row) return undefined;
  try {
    return { data: JSON.parse(row.data), meta: JSON.parse(row.meta) };
  } catch {
    return undefined;
  }
}

type Transactional<A extends unknown[], R> = (...args: A) => R;

/**
 * Wraps `fn` in a write transaction taken up front (BEGIN IMMEDIATE): a deferred one that reads
 * first could fail to upgrade under a concurrent writer. better-sqlite3's `transaction()` also nests
 * as a savepoint inside a caller's transaction; node:sqlite has none, so it is spelled out.
 */
function immediate<A extends unknown[], R>(
  db: SqliteDatabase,
  fn: (...args: A) => R,
): Transactional<A, R> {
  const native = (db as { transaction?: (f: typeof fn) => { immediate: Transactional<A, R> } })
    .transaction;
  if (typeof native === "function") return native.call(db, fn).immediate;
  return (...args: A) => {
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn(...args);
      db.exec("COMMIT");
      return result;
    } catch (err) {
      try {
        db.exec("ROLLBACK");
      } catch {
        // The first failure says more than a ROLLBACK that fails for the same reason: keep it.
      }
      throw err;
    }
  };
}
