import { ConfigError } from "../errors.js";
import { rejectUnknown } from "../internal/unknown-options.js";
import { createExpiryHeap } from "./internal/expiry-heap.js";
import { createKeyLocks } from "./internal/key-locks.js";
import {
  applyPatch,
  type SessionMeta,
  type SessionPatch,
  type SessionStore,
  type StoredSession,
  type StoredSessionEntry,
} from "./store.js";

/** Options of `memoryStore`. */
export interface MemoryStoreOptions {
  /** Most sessions kept; past it the least recently used one goes (an expired one first). Default 10 000. */
  maxSessions?: number;
  /** The clock, epoch ms, for expiry on read. Default `Date.now`. */
  now?: () => number;
  /** Milliseconds between automatic sweeps on an `unref`'d timer that `close()` stops. Default false (off). */
  sweepInterval?: number | false;
}

/** The memory store: a `SessionStore` with a size and a raw view for tests and `sessionkit inspect`. */
export interface MemoryStore extends SessionStore {
  listByUser(userId: string): Promise<StoredSessionEntry[]>;
  deleteByUser(userId: string, except?: readonly string[]): Promise<number>;
  sweep(now: number): Promise<number>;
  expiredMeta(key: string): Promise<SessionMeta | undefined>;
  move: NonNullable<SessionStore["move"]>;
  lock(key: string, ttlMs: number, waitMs: number): Promise<(() => Promise<void>) | null>;
  close(): Promise<void>;
  /** Entries held, including expired ones not yet swept, evicted or deleted. */
  readonly size: number;
  /**
   * Every entry as stored: `[key, json, expiresAt]`, least recently used first. `json` is the compact
   * record `[data, createdAt, touchedAt, renewedAt]`, plus the other meta fields as a fifth element.
   */
  rawEntries(): IterableIterator<[key: string, json: string, expiresAt: number]>;
}

// Date.now is looked up per call, so fake timers installed after import still govern the default clock.
const DEFAULTS = Object.freeze({
  maxSessions: 10_000,
  now: () => Date.now(),
  sweepInterval: false as const,
});

/** One session. The record is kept as its JSON text: one flat string costs far less heap than its object graph. */
interface Entry {
  /** The same string as the Map key (one pointer, not a copy): the heap needs it to sweep. */
  key: string;
  json: string;
  expiresAt: number;
  userId: string | undefined;
  /** This entry's position in the deadline heap, so an update or delete sifts in place. */
  /** Neighbours in the use order (see `oldest`). */
  older: Entry | undefined;
  newer: Entry | undefined;
  slot: number;
}

/**
 * Sessions in this process's memory: for development, tests and single-process apps. Everything is
 * lost on restart and nothing is shared between processes; use a server store in production clusters.
 * Expiry is checked on read (an expired entry stays, unread, until swept, evicted or deleted, so
 * `expiredMeta` can say it timed out), and no timer runs unless `sweepInterval` asks for one. Patches apply
 * synchronously, so concurrent requests changing different keys all survive.
 *
 * @example
 * ```ts
 * import { createSessions } from "sessionkit";
 * import { memoryStore } from "sessionkit/stores/memory";
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET!, store: memoryStore({ maxSessions: 50_000 }) });
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  rejectUnknown(options, ["maxSessions", "now", "sweepInterval"], "memoryStore option");
  const { maxSessions, now, sweepInterval } = { ...DEFAULTS, ...options };
  if (!Number.isInteger(maxSessions) || maxSessions < 1) {
    throw new ConfigError(`memoryStore "maxSessions" must be a whole number of at least 1`);
  }
  if (typeof now !== "function") throw new ConfigError(`memoryStore "now" must be a function`);
  if (sweepInterval !== false && !(Number.isFinite(sweepInterval) && sweepInterval > 0)) {
    throw new ConfigError(
      `memoryStore "sweepInterval" must be a positive number of milliseconds, or false`,
    );
  }
  const entries = new Map<string, Entry>();
  // The use order is a list through the entries, not the Map's insertion order: moving a key to the
  // Map's end (delete + set) leaves a deleted slot behind, and finding the Map's first live key walks
  // every such slot at its front. At the bound each new session evicts that first key: on a full
  // store of 100 000 a new session cost 42-78 µs that way, 3-6 µs with the list. (A Map iterator kept
  // between evictions avoids the walk too, but holds on to the tables the Map rehashes away from:
  // 560-580 heap bytes per session against 530 measured.)
  let oldest: Entry | undefined;
  let newest: Entry | undefined;
  const deadlines = createExpiryHeap<Entry>((a, b) => a.expiresAt < b.expiresAt);
  const users = new Map<string, Set<string>>();
  const locks = createKeyLocks();
  let timer: ReturnType<typeof setInterval> | undefined;
  if (sweepInterval !== false) {
    timer = setInterval(() => void sweep(now()), sweepInterval);
    timer.unref?.();
  }

  function index(key: string, from: string | undefined, to: string | undefined): void {
    if (from === to) return;
    if (from !== undefined) {
      const keys = users.get(from);
      keys?.delete(key);
      if (keys?.size === 0) users.delete(from);
    }
    if (to !== undefined) {
      const keys = users.get(to) ?? new Set<string>();
      users.set(to, keys.add(key));
    }
  }

  function link(entry: Entry): void {
    entry.older = newest;
    entry.newer = undefined;
    if (newest) newest.newer = entry;
    else oldest = entry;
    newest = entry;
  }

  function unlink(entry: Entry): void {
    if (entry.older) entry.older.newer = entry.newer;
    else oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else newest = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  }

  function markUsed(entry: Entry): void {
    if (entry === newest) return;
    unlink(entry);
    link(entry);
  }

  function remove(key: string, entry: Entry): void {
    entries.delete(key);
    unlink(entry);
    deadlines.remove(entry);
    index(key, entry.userId, undefined);
  }

  /**
   * The live entry of a key, marked as just used. An expired one is left where it is, for
   * `expiredMeta` to report why the session ended; the bound still holds, since eviction takes
   * expired entries first, and `sweep` and `delete` remove them.
   */
  function use(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (!entry || entry.expiresAt <= now()) return undefined;
    markUsed(entry);
    return entry;
  }

  /** `json` first, so a value JSON cannot hold throws before anything changed. */
  function write(key: string, entry: Entry, session: StoredSession, expiresAt: number): void {
    assign(key, entry, encode(session), session, expiresAt);
  }

  function assign(
    key: string,
    entry: Entry,
    json: string,
    session: StoredSession,
    expiresAt: number,
  ): void {
    entry.json = json;
    index(key, entry.userId, session.meta.userId);
    entry.userId = session.meta.userId;
    entry.expiresAt = expiresAt;
    deadlines.update(entry);
  }

  function put(
    key: string,
    session: StoredSession,
    expiresAt: number,
    json = encode(session),
  ): void {
    const existing = entries.get(key);
    // A record already past its deadline (a session that ended during the request that wrote it) is
    // kept like any expired one, hidden from reads, so `expiredMeta` can say why it ended, as the SQL
    // stores' rows do; it goes first at eviction and at the next sweep.
    if (existing) {
      markUsed(existing);
      assign(key, existing, json, session, expiresAt);
      return;
    }
    const entry: Entry = {
      key,
      json,
      expiresAt,
      userId: undefined,
      slot: -1,
      older: undefined,
      newer: undefined,
    };
    entries.set(key, entry);
    link(entry);
    deadlines.push(entry);
    assign(key, entry, json, session, expiresAt);
    while (entries.size > maxSessions) evictOne();
  }

  function evictOne(): void {
    const soonest = deadlines.peek();
    // An expired entry is worth nothing: it goes before any live one, however recently used.
    const victim = soonest && soonest.expiresAt <= now() ? soonest : (oldest as Entry);
    remove(victim.key, victim);
  }

  async function patch(key: string, changes: SessionPatch, expiresAt: number): Promise<boolean> {
    const entry = use(key);
    if (!entry) return false;
    write(key, entry, applyPatch(decode(entry.json), changes), expiresAt);
    return true;
  }

  /** Synchronous from the read to the write: nothing else runs in between, so it is atomic. */
  async function move(
    fromKey: string,
    toKey: string,
    changes: SessionPatch,
    expiresAt: number,
  ): Promise<StoredSession | undefined> {
    const entry = use(fromKey);
    if (!entry) return undefined;
    const session = applyPatch(decode(entry.json), changes);
    const json = encode(session); // throws, on a value JSON cannot hold, before anything changed
    remove(fromKey, entry);
    put(toKey, session, expiresAt, json);
    return decode(json);
  }

  async function touch(key: string, touchedAt: number, expiresAt: number): Promise<boolean> {
    const entry = use(key);
    if (!entry) return false;
    const session = decode(entry.json);
    session.meta.touchedAt = touchedAt;
    write(key, entry, session, expiresAt);
    return true;
  }

  async function listByUser(userId: string): Promise<StoredSessionEntry[]> {
    const list: StoredSessionEntry[] = [];
    const at = now();
    for (const key of users.get(userId) ?? []) {
      const entry = entries.get(key) as Entry;
      if (entry.expiresAt > at)
        list.push({ key, expiresAt: entry.expiresAt, ...decode(entry.json) });
    }
    return list;
  }

  async function deleteByUser(userId: string, except: readonly string[] = []): Promise<number> {
    let count = 0;
    const at = now();
    for (const key of [...(users.get(userId) ?? [])]) {
      if (except.includes(key)) continue;
      const entry = entries.get(key) as Entry;
      // An expired entry stays for `expiredMeta` (the device timed out before this sign-out) and
      // goes at the next sweep, as the SQL stores leave such rows.
      if (entry.expiresAt <= at) continue;
      if (except.length > 0) {
        const lineage = decode(entry.json).meta.lineage;
        if (lineage !== undefined && except.includes(lineage)) continue;
      }
      count++;
      remove(key, entry);
    }
    return count;
  }

  async function sweep(at: number): Promise<number> {
    let count = 0;
    // The heap yields deadlines soonest first: the loop stops at the first live one.
    for (let entry = deadlines.peek(); entry && entry.expiresAt <= at; entry = deadlines.peek()) {
      remove(entry.key, entry);
      count++;
    }
    return count;
  }

  return {
    name: "memory",
    get: async (key) => {
      const entry = use(key);
      return entry && decode(entry.json);
    },
    set: async (key, session, expiresAt) => put(key, session, expiresAt),
    patch,
    move,
    touch,
    delete: async (key) => {
      const entry = entries.get(key);
      if (entry) remove(key, entry);
      return entry !== undefined;
    },
    listByUser,
    deleteByUser,
    sweep,
    expiredMeta: async (key) => {
      const entry = entries.get(key);
      return entry && entry.expiresAt <= now() ? decode(entry.json).meta : undefined;
    },
    lock: async (key, ttlMs, waitMs) => locks.acquire(key, ttlMs, waitMs),
    close: async () => {
      clearInterval(timer);
      timer = undefined;
      locks.clear();
    },
    get size() {
      return entries.size;
    },
    *rawEntries() {
      for (let entry = oldest; entry; entry = entry.newer)
        yield [entry.key, entry.json, entry.expiresAt];
    },
  };
}

/**
 * A record as stored: `[data, createdAt, touchedAt, renewedAt]`, and the other meta fields as a fifth
 * element when there are any. Every session carries its field names in heap: this form has 52
 * characters fewer than `{"data":…,"meta":{"createdAt":…}}` for the usual record, which pays for the
 * use-order list's two pointers and more (heap per session measured by `npm run bench:stores`).
 */
function encode(session: StoredSession): string {
  const { data, meta } = session;
  let rest: Record<string, unknown> | undefined;
  for (const field in meta) {
    if (field === "createdAt" || field === "touchedAt" || field === "renewedAt") continue;
    const value = meta[field as keyof SessionMeta];
    if (value === undefined) continue;
    rest ??= {};
    rest[field] = value;
  }
  const record = [data, meta.createdAt, meta.touchedAt, meta.renewedAt];
  if (rest) record.push(rest);
  return flatten(JSON.stringify(record));
}

function decode(json: string): StoredSession {
  const record = JSON.parse(json) as [
    Record<string, unknown>,
    number,
    number,
    number,
    Partial<SessionMeta> | undefined,
  ];
  // Indexed reads, not a destructuring (the iterator protocol), and no spread of an absent fifth
  // element: this runs twice per write.
  const rest = record[4];
  const meta: SessionMeta = rest
    ? { createdAt: record[1], touchedAt: record[2], renewedAt: record[3], ...rest }
    : { createdAt: record[1], touchedAt: record[2], renewedAt: record[3] };
  return { data: record[0], meta };
}

/**
 * V8's JSON.stringify returns a rope: a tree of partly filled chunks, ~1.5x the text in heap. Converting
 * it to a number (the trick pino's `flatstr` uses) flattens it in place, and the next GC drops the
 * tree: measured 337 -> 242 heap bytes for a 196-character session. The result is the same string.
 */
function flatten(text: string): string {
  Number(text);
  return text;
}
