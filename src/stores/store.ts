/**
 * The store seam. Stores only move bytes: the manager owns every policy (deadlines, ids, hashing,
 * clocks), and a store never sees a raw session id. `key` is base64url(SHA-256(id)), 43 characters.
 *
 * Edge cases, settled here once for every store:
 * - A missing, expired (`expiresAt <= now` by the store's clock) or unreadable entry is "not found":
 *   `get` resolves `undefined`, `patch` and `touch` resolve `false`. They are not errors. "Not
 *   found" is final: ids are never reused, so the manager remembers it (its token cache) and asks
 *   no more for that id. A store must read its own writes (no reads from a lagging replica).
 * - A failure of the system behind the store (connection refused, timeout, server error) rejects with
 *   `StoreUnavailableError`, with the driver's error as `cause`. Nothing partial is acknowledged.
 * - `patch` is atomic per key: concurrent patches that touch different data keys all survive.
 * - Stores start no timers unless asked to; `close()` stops whatever they started and does not close
 *   the client the user passed in.
 */
export interface SessionStore {
  /** A short name for error messages and logs, e.g. "redis". */
  readonly name: string;
  get(key: string): Promise<StoredSession | undefined>;
  /** Writes the whole record, replacing any previous one. */
  set(key: string, session: StoredSession, expiresAt: number): Promise<void>;
  /**
   * Applies data changes (set and delete of top-level keys) and meta changes (shallow merge)
   * atomically, and moves the deadline. Resolves `false` when the entry does not exist: a destroyed
   * or expired session is never revived by a late write.
   */
  patch(key: string, patch: SessionPatch, expiresAt: number): Promise<boolean>;
  /**
   * Moves a live entry to a new key in one atomic step: reads `fromKey`, applies `patch` to it (as
   * `patch` would), writes the result under `toKey` with `expiresAt`, removes `fromKey`, and moves
   * the entry in the user index (`meta.userId` after the patch). No other call on either key lands
   * inside the step, so a `patch` of `fromKey` either comes before (and is carried to `toKey`) or
   * answers `false`. Resolves the record written, or `undefined`, writing nothing, when `fromKey`
   * holds no live entry: a session signed out since the request loaded it is not brought back.
   * `toKey` is a fresh id's hash; an entry there is replaced.
   *
   * Optional. Without it the manager moves a session (`regenerate`, a `renewInterval` renewal) in
   * three calls, `get`, `set` and `delete`, and a write to the old key landing between the first and
   * the last is lost though its `patch` answered `true`.
   *
   * @example
   * ```ts
   * async function moved(store: SessionStore, from: string, to: string, now: number): Promise<boolean> {
   *   const patch = { set: {}, delete: [], meta: { renewedAt: now } };
   *   // undefined: signed out meanwhile, and nothing was written
   *   return (await store.move?.(from, to, patch, now + 3_600_000)) !== undefined;
   * }
   * ```
   */
  move?(
    fromKey: string,
    toKey: string,
    patch: SessionPatch,
    expiresAt: number,
  ): Promise<StoredSession | undefined>;
  /** Moves the deadline and records `touchedAt` in meta; `false` when the entry does not exist. */
  touch(key: string, touchedAt: number, expiresAt: number): Promise<boolean>;
  /**
   * Removes the entry. Resolves `true` when an entry was removed and `false` when there was none, so
   * that a caller racing another remover (a session moving to a new id while it is revoked) can tell
   * that it lost; an entry past its deadline but not yet swept may count either way. `void`, from a
   * store written before this was asked, means "unknown" and is taken as the old behaviour.
   * Answer from the delete itself (a row count, a script's reply), never with an extra round trip.
   *
   * @example
   * ```ts
   * async function removedFirst(store: SessionStore, key: string): Promise<boolean> {
   *   return (await store.delete(key)) === false; // someone else removed it first
   * }
   * ```
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: `undefined` would refuse stores typed `Promise<void>`, which this union keeps valid
  delete(key: string): Promise<boolean | void>;
  /** Entries of one user (by `meta.userId`), for a "your devices" page. */
  listByUser?(userId: string): Promise<StoredSessionEntry[]>;
  /**
   * Deletes every live entry of one user but those `except` names, by key or by `meta.lineage`;
   * resolves how many went. The manager names the session to keep both ways ("sign out my other
   * devices"): another request may move that session to a new key meanwhile, and the move carries
   * its lineage. Keys and lineages are hashes of different inputs, so one never matches the other.
   */
  deleteByUser?(userId: string, except?: readonly string[]): Promise<number>;
  /** Removes entries whose deadline is at or before `now`; resolves how many went. */
  sweep?(now: number): Promise<number>;
  /**
   * The meta of an entry the store still holds past its deadline (`expiresAt <= now` by the store's
   * clock, not yet swept), or `undefined` when it holds none, holds a live one, or cannot read it.
   * Only reads: the manager decides and deletes.
   *
   * Why it exists: `get` hides an expired entry, so without this the manager cannot tell a session
   * that timed out from one signed out elsewhere, and `session.invalidReason` says
   * "unknown-session" for both. With it, the manager asks only after `get` found nothing for a
   * token whose MAC verified (an invented id never reaches the store twice), and reports
   * "expired-idle" or "expired-absolute" when the meta says so. A store whose entries vanish at
   * their deadline (Redis' native expiry) has nothing to answer with and leaves it out. A rejection
   * is not an outage here: `get` already answered, so the manager falls back to "unknown-session".
   *
   * @example
   * ```ts
   * async function timedOut(store: SessionStore, key: string): Promise<boolean> {
   *   return (await store.expiredMeta?.(key)) !== undefined;
   * }
   * ```
   */
  expiredMeta?(key: string): Promise<SessionMeta | undefined>;
  /** Takes a per-session lock; resolves a release function, or `null` when `waitMs` ran out. */
  lock?(key: string, ttlMs: number, waitMs: number): Promise<(() => Promise<void>) | null>;
  close?(): Promise<void>;
}

/** What a store keeps for one session: the user's data and, beside it, sessionkit's metadata. */
export interface StoredSession {
  data: Record<string, unknown>;
  meta: SessionMeta;
}

/** One entry of `listByUser`. */
export interface StoredSessionEntry extends StoredSession {
  key: string;
  expiresAt: number;
}

/** The meta field of one flash message: `flash:` and an id (see `SessionMeta`). */
export type FlashField = `flash:${string}`;

/** Metadata kept beside the data, never inside it, so it cannot collide with user keys. */
export interface SessionMeta {
  /** Epoch ms of creation; the absolute deadline counts from here and survives `regenerate`. */
  createdAt: number;
  /** Epoch ms of the last idle-deadline extension (the "last seen" of a devices page, +- touchInterval). */
  touchedAt: number;
  /** Epoch ms of the last id rotation, for `renewInterval`. */
  renewedAt: number;
  userId?: string;
  /**
   * Flash messages, one field each: `flash:<id>` = `[level, message]`, ids sorting in the order
   * the messages were added. One field a message, so that a store's shallow meta merge keeps the
   * messages two requests of one session add or read at once; a store keeps them as any other
   * meta field.
   */
  [field: FlashField]: [level: string, message: string];
  userAgent?: string;
  ip?: string;
  label?: string;
  /**
   * Whether the cookie outlives the browser (`Max-Age`), chosen for this session by
   * `session.rememberMe`; absent, the `cookie.persistent` option decides.
   */
  persistent?: boolean;
  /**
   * The session's CSRF seed: 16 bytes in base64url (22 characters), made by its first
   * `session.csrfToken()` (an HMAC of the id of that moment under the secret) and bound into every
   * token it hands out. Kept here rather than derived from the current id because `renewInterval`
   * moves the id on its own, and a form open in another tab must outlive that; `regenerate` and
   * `destroy` drop it, which ends the tokens. A secret of the
   * session: `listByUser` and `sessionkit inspect` never show it. A store keeps it as any other
   * meta field.
   */
  csrf?: string;
  /**
   * A hash of the session's store key before its first move to a new id (`regenerate`, a
   * `renewInterval` renewal), carried by every move after it. A sign-out that finds its record
   * gone looks for this among its user's sessions: another request may have moved the session
   * first. Written by the manager on a store session's move; a store keeps it as any other meta
   * field.
   */
  lineage?: string;
}

/** The changes of one request, as `commit` hands them to `patch`. */
export interface SessionPatch {
  /** Top-level data keys to set, with their new values. */
  set: Record<string, unknown>;
  /** Top-level data keys to delete. */
  delete: string[];
  /** Meta fields to replace (shallow merge); a field set to `null` is removed. */
  meta?: { [K in keyof SessionMeta]?: SessionMeta[K] | null };
}

/** Applies a patch to a plain record, for stores that patch in process (memory, SQLite). */
export function applyPatch(session: StoredSession, patch: SessionPatch): StoredSession {
  const data = { ...session.data, ...patch.set };
  for (const key of patch.delete) delete data[key];
  const meta: Record<string, unknown> = { ...session.meta };
  if (patch.meta) {
    for (const [field, value] of Object.entries(patch.meta)) {
      if (value === null) delete meta[field];
      else if (value !== undefined) meta[field] = value;
    }
  }
  return { data, meta: meta as unknown as SessionMeta };
}
