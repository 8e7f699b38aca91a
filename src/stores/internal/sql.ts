/**
 * What the PostgreSQL and MySQL stores share: wrapping a driver failure into `StoreUnavailableError`
 * without leaking values, reading a row back into a session, and creating the table once. SQLite
 * reads its meta column with `toMeta` too.
 */
import { StoreUnavailableError } from "../../errors.js";
import { isPlainObject } from "../../internal/record.js";
import type { SessionMeta, SessionPatch, StoredSession, StoredSessionEntry } from "../store.js";

/** A session row as both drivers return it; `key` and `expires_at` only where selected. */
export interface SqlRow {
  key?: unknown;
  data: unknown;
  meta: unknown;
  expires_at?: unknown;
}

const TIME_FIELDS = ["createdAt", "touchedAt", "renewedAt"] as const;

/**
 * Runs one driver call; any failure becomes `StoreUnavailableError` naming only the store, the
 * operation and what `codeOf` says of the driver's error (a code, never data). The driver's message
 * can quote values (a key in a constraint detail): it stays in `cause`. `scrub` may clean the
 * driver's error before it becomes the cause.
 */
export async function runQuery<R>(
  store: string,
  operation: string,
  call: () => Promise<R>,
  codeOf: (err: unknown) => string | undefined,
  scrub?: (err: unknown) => void,
): Promise<R> {
  try {
    return await call();
  } catch (err) {
    scrub?.(err);
    const code = codeOf(err);
    const suffix = code ? ` (${code})` : "";
    throw new StoreUnavailableError(
      `the ${store} store failed during ${operation}${suffix}; check that the database is reachable (the driver's error is the cause)`,
      { cause: err },
    );
  }
}

/**
 * Returns `migrate` run at most once at a time and, once it succeeded, never again; a failed attempt
 * is retried by the next call. `enabled: false` (the `createTable` option) makes it a no-op.
 */
export function migrateOnce(migrate: () => Promise<void>, enabled: boolean): () => Promise<void> {
  let ready: Promise<void> | undefined;
  return () => {
    if (!enabled) return Promise.resolve();
    ready ??= migrate().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };
}

/**
 * A row as a session. JSON columns may arrive parsed (pg's jsonb, MySQL 8) or as text (MariaDB,
 * overridden type parsers): both are accepted. A row that is not a well-formed record reads as
 * "not found", as the store contract asks.
 */
export function toSession(row: SqlRow): StoredSession | undefined {
  const data = parseJson(row.data);
  const meta = toMeta(row.meta);
  if (!isPlainObject(data) || !meta) return undefined;
  return { data, meta };
}

/** A meta column, parsed or as text, as meta; `undefined` when it is not a record's meta. */
export function toMeta(column: unknown): SessionMeta | undefined {
  const meta = parseJson(column);
  if (!isPlainObject(meta)) return undefined;
  for (const field of TIME_FIELDS) if (typeof meta[field] !== "number") return undefined;
  return meta as unknown as SessionMeta;
}

/** Rows of `SELECT key, data, meta, expires_at` as entries; unreadable rows are left out. */
export function toEntries(rows: readonly SqlRow[]): StoredSessionEntry[] {
  const entries: StoredSessionEntry[] = [];
  for (const row of rows) {
    const session = toSession(row);
    if (session && typeof row.key === "string") {
      entries.push({ key: row.key, expiresAt: Number(row.expires_at), ...session });
    }
  }
  return entries;
}

// JSON.stringify escapes a lone surrogate as \udXXX (pairs it writes as they are), behind an even run of
// backslashes; an odd run means the text "\\ud800" was escaped, not a surrogate.
const LONE_SURROGATE = /(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g;

/**
 * `JSON.stringify` for a UTF-8 database. A lone surrogate (a `.slice()` through an emoji) is valid
 * JSON text that jsonb and MariaDB's JSON checks refuse, which failed the whole write as an outage;
 * it becomes U+FFFD, as TextEncoder (and so cookie mode) makes it.
 */
export function toJsonText(value: unknown): string {
  // Typed string, but undefined for undefined or a function: passed on as it was.
  const text: string | undefined = JSON.stringify(value);
  return text?.includes("\\ud") ? text.replace(LONE_SURROGATE, "$1\ufffd") : (text as string);
}

/** A patch's meta changes split into fields to set and fields to remove (those given as `null`). */
export function splitMeta(meta: SessionPatch["meta"]): {
  set: Record<string, unknown>;
  remove: string[];
} {
  const set: Record<string, unknown> = {};
  const remove: string[] = [];
  for (const [field, value] of Object.entries(meta ?? {})) {
    if (value === null) remove.push(field);
    else if (value !== undefined) set[field] = value;
  }
  return { set, remove };
}

function parseJson(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
