import { randomUUID } from "node:crypto";
import type { QueryResult } from "pg";
import type { SessionStore } from "../store.js";
import { pollLock } from "./poll-lock.js";

// The lease deadlines use the database server's clock, so app servers whose clocks disagree still
// agree on when an abandoned lock is free.
const SERVER_NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

type Exec = (operation: string, text: string, values: unknown[]) => Promise<QueryResult>;

/** DDL for the lock table: UNLOGGED, as a lease is worthless after a crash and needs no WAL. */
export function pgLockTableSql(locks: string): string {
  return `CREATE UNLOGGED TABLE IF NOT EXISTS ${locks} (
  key text PRIMARY KEY,
  token text NOT NULL,
  expires_at bigint NOT NULL
);`;
}

/** Deletes leases whose holder never released them (a crashed request); part of `sweep`. */
export function pgLockSweepSql(locks: string): string {
  return `DELETE FROM ${locks} WHERE expires_at <= ${SERVER_NOW}`;
}

/**
 * The per-session lock on PostgreSQL: a lease row taken with one `INSERT ... ON CONFLICT` that only
 * overwrites an expired lease. Unlike an advisory lock it pins no pool connection while held, so a
 * burst of locked requests cannot starve the pool the same requests need for their reads and writes.
 * A holder that never releases blocks the session for at most `ttlMs`.
 */
export function createPgLock(exec: Exec, locks: string): NonNullable<SessionStore["lock"]> {
  const acquireSql = `INSERT INTO ${locks} (key, token, expires_at) VALUES ($1, $2, ${SERVER_NOW} + $3)
ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
WHERE ${locks}.expires_at <= ${SERVER_NOW}`;
  const releaseSql = `DELETE FROM ${locks} WHERE key = $1 AND token = $2`;

  return (key, ttlMs, waitMs) => {
    const token = randomUUID();
    const ttl = Math.max(1, Math.ceil(ttlMs));
    return pollLock(async () => {
      const result = await exec("lock", acquireSql, [key, token, ttl]);
      if ((result.rowCount ?? 0) === 0) return null;
      // The token makes a late release (after the lease expired and passed on) a no-op.
      return async () => void (await exec("unlock", releaseSql, [key, token]));
    }, waitMs);
  };
}
