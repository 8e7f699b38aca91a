/**
 * Redis store: one hash per session with native expiry, and a sorted set per user for "your devices"
 * and "sign out everywhere". Works with ioredis (`Redis`, `Cluster`) and node-redis (`createClient`,
 * `createCluster`), passed in by the user; this module imports no driver at run time.
 *
 * Key layout (`P` = `prefix`, `K` = the store key, `U` = the user id, a lone surrogate as U+FFFD):
 * - `P s:{K}` HASH. Field `d:<name>` = JSON of data key `<name>`; `m:<field>` = JSON of a meta field;
 *   `e` = expiresAt (epoch ms); `i` = until when the user index is known to outlive this session;
 *   `f` = the fence of a cluster `move` under way (see below). The key carries PEXPIREAT expiresAt,
 *   so expiry follows the Redis server's clock.
 * - `P u:{U}` ZSET of store keys scored by expiresAt, with a PEXPIREAT that outlives its sessions.
 * - `P l:{K}` the per-session lock (SET NX PX).
 * The `{...}` hash tags put every key of one session in one cluster slot and each user index in its
 * own. Every script but one touches one key, so the same code runs on a single server and on a
 * cluster. The exception is `move`'s: it reads the old session hash, writes the new one and moves
 * the user index entry, three keys in three slots, which only a single server runs. On a cluster
 * client `move` fences the old hash instead (one script, which also reads it), then writes the new
 * one with `set` and removes the old one with `delete`. While the fence stands no patch of the old
 * key lands, so none is lost between the read and the delete: each waits for the move to end and
 * then finds the old key gone ("not found"), as it would after a one-script move.
 */
import { randomUUID } from "node:crypto";
import { ConfigError, isSessionError, StoreUnavailableError } from "../errors.js";
import { rejectUnknown } from "../internal/unknown-options.js";
import { pollLock, type Release } from "./internal/poll-lock.js";
import { createRedisClient, type RedisClientLike } from "./internal/redis-client.js";
import {
  DATA,
  DELETE_IF_USER_SCRIPT,
  DELETE_SCRIPT,
  EXPIRES,
  FENCE_SCRIPT,
  FENCED_PATCH_SCRIPT,
  INDEX_ADD_SCRIPT,
  INDEX_UNTIL,
  INDEX_UNTIL_SCRIPT,
  META,
  MOVE_SCRIPT,
  PATCH_SCRIPT,
  PRUNE_SCRIPT,
  SET_SCRIPT,
  UNLOCK_SCRIPT,
  USER_FIELD,
} from "./internal/redis-scripts.js";
import {
  applyPatch,
  type SessionMeta,
  type SessionPatch,
  type SessionStore,
  type StoredSession,
  type StoredSessionEntry,
} from "./store.js";

export type {
  IoredisClientLike,
  NodeRedisClientLike,
  NodeRedisClusterLike,
  RedisClientLike,
} from "./internal/redis-client.js";

/** Options of `redisStore`: the client you own, and how keys are named and commands bounded. */
export interface RedisStoreOptions {
  /**
   * A connected ioredis `Redis` or `Cluster`, or a node-redis `createClient()` / `createCluster()`
   * after `await client.connect()` (a node-redis client that is not open is a `ConfigError`). The
   * store never connects, quits or configures it.
   *
   * During an outage a client queues commands and retries by default. Bound that: with ioredis set
   * `maxRetriesPerRequest` (e.g. 1) and `enableOfflineQueue: false`, with node-redis
   * `disableOfflineQueue: true`, so a command that timed out here is not replayed when the server
   * returns. (With node-redis 5+ the store also hands `commandTimeout` to each command sent while
   * the client is not ready, so node-redis drops one it still holds when the store gives up on it.)
   * node-redis throws an unhandled `error` event: attach `client.on("error", ...)`.
   */
  client: RedisClientLike;
  /**
   * Prepended to every key; default `"sk:"`. Must not contain `{` or `}` (they would move the
   * cluster hash tag). Do not also set ioredis' `keyPrefix`: `sweep` scans by this prefix.
   */
  prefix?: string;
  /**
   * Clock in epoch ms, default `Date.now`. Expiry itself is Redis' native TTL on the server's clock;
   * this clock only hides an entry whose recorded deadline has passed before the server removed it.
   */
  now?: () => number;
  /**
   * Milliseconds one Redis command may take before the call rejects with `StoreUnavailableError`;
   * default 2000; `false` waits as long as the client does. A timed-out write may still be applied
   * later if the client queued it (see `client`), and one already sent to a server that stalls is
   * applied when it resumes, whatever the client settings.
   */
  commandTimeout?: number | false;
}

const DEFAULTS = Object.freeze({
  prefix: "sk:",
  now: Date.now,
  commandTimeout: 2000 as number | false,
});
const LOCK_RETRY_MIN_MS = 5;
const LOCK_RETRY_MAX_MS = 100;
const SCAN_COUNT = 200;
/** Reads of a user's index by one `deleteByUser`, each after a member was found gone (moved). */
const INDEX_PASSES = 4;
/**
 * Runs of the move script by one `move`: each after a request of the session changed its owner
 * between the store's guess and the script. Bounded, so that endless churn fails the request
 * rather than holding it.
 */
const MOVE_ATTEMPTS = 4;
/**
 * How long the fence of a cluster `move` stands at least, and in `commandTimeout`s: it must outlast
 * the move (the fence's reply and the three commands up to the old key's delete, each given up on
 * after one `commandTimeout`, with a margin for a busy event loop), or a patch landing after it
 * lapsed would be acknowledged and then deleted with the old key. It is also how long a mover that
 * crashed leaves the session refusing writes; reads go on.
 */
const FENCE_MIN_MS = 30_000;
const FENCE_TIMEOUTS = 5;
/** FENCED_PATCH_SCRIPT's and FENCE_SCRIPT's reply while a cluster `move` holds the session's fence. */
const FENCED = -1;
/**
 * How long a write waits for a fenced session's move to end. A live move takes a few round trips;
 * one still fenced after this has stopped (a crash, a timeout), and the write is refused.
 */
const FENCE_WAIT_MS = 2_000;
const FENCE_RETRY_MIN_MS = 1;
const FENCE_RETRY_MAX_MS = 50;

function validate(options: RedisStoreOptions): Required<Omit<RedisStoreOptions, "client">> {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError("redisStore: pass an options object with a client");
  }
  rejectUnknown(options, ["client", "prefix", "now", "commandTimeout"], "redisStore option");
  const resolved = { ...DEFAULTS, ...options };
  if (typeof resolved.prefix !== "string" || /[{}]/.test(resolved.prefix)) {
    throw new ConfigError('redisStore: "prefix" must be a string without "{" or "}"');
  }
  if (typeof resolved.now !== "function")
    throw new ConfigError('redisStore: "now" must be a function');
  const timeout = resolved.commandTimeout;
  if (
    timeout !== false &&
    !(typeof timeout === "number" && Number.isFinite(timeout) && timeout > 0)
  ) {
    throw new ConfigError(
      'redisStore: "commandTimeout" must be a positive number of milliseconds or false',
    );
  }
  return { prefix: resolved.prefix, now: resolved.now, commandTimeout: timeout };
}

/**
 * Creates a Redis session store. Expiry is Redis' own (PEXPIREAT), so there is nothing to sweep
 * but the user indexes. Round trips: `get` 1; `patch` and `touch` 1 (2 when the patch binds a user,
 * 3 about once per session lifetime of activity, to keep the user index alive); `set` 1 (2 with a
 * user); `delete` 1 (2 with a user); `move` 1 (2 when it takes the session from a user, or when the
 * patch leaves the owner unnamed and there is one), and on a cluster client, whose keys span slots,
 * 3 to 5: the fence, a `set` and a `delete` (1 or 2 more when a sign-out deleted the old key
 * meanwhile and the new one goes too). A `patch`, `touch` or `move` of a session a cluster `move`
 * has fenced runs again until that move ends. Any driver failure rejects with
 * `StoreUnavailableError`.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { createSessions } from "sessionkit";
 * import { redisStore } from "sessionkit/stores/redis";
 *
 * const client = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET!, store: redisStore({ client }) });
 * ```
 */
export function redisStore(options: RedisStoreOptions): SessionStore {
  const { prefix, now, commandTimeout } = validate(options);
  const { send, evalScript, masters, isCluster } = createRedisClient(
    options.client,
    commandTimeout,
  );

  const sessionKey = (key: string) => `${prefix}s:{${key}}`;
  // Named by the id as UTF-8 holds it: the bytes a driver sends for a lone surrogate (U+FFFD), and
  // a string whose cluster slot the drivers compute as the server does (they encode a lone
  // surrogate differently, so every command on the raw name bounced with MOVED).
  const indexKey = (userId: string) => `${prefix}u:{${utf8Text(userId)}}`;
  const lockKey = (key: string) => `${prefix}l:{${key}}`;
  const indexPrefix = `${prefix}u:{`;
  // A single server moves a session in one script: no fence to look for on every patch.
  const patchScript = isCluster ? FENCED_PATCH_SCRIPT : PATCH_SCRIPT;
  const fenceMs = String(
    commandTimeout === false
      ? FENCE_MIN_MS
      : Math.max(FENCE_MIN_MS, FENCE_TIMEOUTS * commandTimeout),
  );

  async function run<R>(operation: string, body: () => Promise<R>): Promise<R> {
    try {
      return await body();
    } catch (err) {
      throw unavailable(operation, err);
    }
  }

  /** Adds `key` to the user's index; resolves until when the index is known to live. */
  async function indexAdd(userId: string, key: string, expiresAt: number): Promise<number> {
    return Number(await evalScript(INDEX_ADD_SCRIPT, indexKey(userId), [key, String(expiresAt)]));
  }

  /** Takes keys out of a user's index: a session deleted, or moved away from that user. */
  async function unlist(userId: string, keys: readonly string[]): Promise<void> {
    await send(["ZREM", indexKey(userId), ...keys], indexKey(userId));
  }

  async function prune(userId: string, members: string[], at: number): Promise<number> {
    if (members.length === 0) return 0;
    return Number(await evalScript(PRUNE_SCRIPT, indexKey(userId), [String(at), ...members]));
  }

  async function read(key: string): Promise<Parsed | undefined> {
    const entry = await readAny(key);
    return entry && entry.expiresAt > now() ? entry : undefined;
  }

  /** A session hash as the server holds it, even one whose deadline has passed by `now`. */
  async function readAny(key: string): Promise<Parsed | undefined> {
    const name = sessionKey(key);
    return parseHash(await send(["HGETALL", name], name));
  }

  // get, patch and touch run on every request: their own try/catch, no `run` closure around them.
  async function get(key: string): Promise<StoredSession | undefined> {
    let entry: Parsed | undefined;
    try {
      entry = await read(key);
    } catch (err) {
      throw unavailable("get", err);
    }
    return entry && { data: entry.data, meta: entry.meta };
  }

  function set(key: string, session: StoredSession, expiresAt: number): Promise<void> {
    return write("set", key, session, expiresAt);
  }

  async function write(
    operation: string,
    key: string,
    session: StoredSession,
    expiresAt: number,
  ): Promise<void> {
    // Serialised before `run`: a value JSON cannot hold (a BigInt) is the caller's TypeError, not an outage.
    const at = deadline(expiresAt);
    const pairs: string[] = [EXPIRES, at];
    // A value JSON leaves out (undefined, a function, a symbol) is left out, as JSON.stringify of
    // the record would: an unparsable field would make the whole session unreadable.
    for (const [name, value] of Object.entries(session.data)) {
      const json = JSON.stringify(value);
      if (json !== undefined) pairs.push(DATA + name, json);
    }
    for (const [field, value] of Object.entries(session.meta)) {
      const json = value === null ? undefined : JSON.stringify(value);
      if (json !== undefined) pairs.push(META + field, json);
    }
    return run(operation, async () => {
      const userId = session.meta.userId;
      if (typeof userId === "string") {
        // Index first: a crash between the two writes leaves a stale index entry (filtered out and
        // pruned later), never a user session that "sign out everywhere" cannot find.
        pairs.push(INDEX_UNTIL, String(await indexAdd(userId, key, Number(at))));
      }
      await evalScript(SET_SCRIPT, sessionKey(key), [at, ...pairs]);
    });
  }

  async function applyChanges(
    operation: string,
    key: string,
    patch: SessionPatch,
    expiresAt: number,
  ): Promise<boolean> {
    // Serialised before the try: a value JSON cannot hold is the caller's TypeError, not an outage.
    const at = deadline(expiresAt);
    const { pairs, removed } = patchFields(patch, at);
    const newUser = patch.meta?.userId;
    try {
      if (typeof newUser === "string") {
        // Same order as `set`: the index entry exists before the session claims the user.
        pairs.push(INDEX_UNTIL, String(await indexAdd(newUser, key, Number(at))));
      }
      const args = patchArgs(at, pairs, removed);
      const name = sessionKey(key);
      let reply = await evalScript(patchScript, name, args);
      if (reply === FENCED) reply = await pastFence(() => evalScript(patchScript, name, args));
      if (Number(reply) === 0 || reply === FENCED) {
        // Nothing to patch: take back the index entry added above, if any.
        if (typeof newUser === "string") await prune(newUser, [key], Number.MAX_SAFE_INTEGER);
        return false;
      }
      if (reply !== 1) {
        // The session outlives what its user index is known to: extend the index, then record it
        // (for as long as the session still belongs to that user).
        const owner = bulkText(reply);
        const userId = parseJson(owner);
        if (typeof userId === "string") {
          const until = await indexAdd(userId, key, Number(at));
          await evalScript(INDEX_UNTIL_SCRIPT, sessionKey(key), [String(until), owner as string]);
        }
      }
      return true;
    } catch (err) {
      throw unavailable(operation, err);
    }
  }

  function patch(key: string, changes: SessionPatch, expiresAt: number): Promise<boolean> {
    return applyChanges("patch", key, changes, expiresAt);
  }

  /**
   * One MOVE_SCRIPT run, two when the patch leaves the owner as stored and the session has one:
   * the script names its user index in KEYS, so a first run guessing "no owner" learns it and
   * writes nothing. The manager's moves name the owner (`userId`, or null), so they take one,
   * plus a ZREM when the move leaves a user (the old key is then listed in another index).
   */
  async function move(
    fromKey: string,
    toKey: string,
    changes: SessionPatch,
    expiresAt: number,
  ): Promise<StoredSession | undefined> {
    // Serialised before the try: a value JSON cannot hold is the caller's TypeError, not an outage.
    const at = deadline(expiresAt);
    const { pairs, removed } = patchFields(changes, at);
    const tail = patchArgs(at, pairs, removed);
    const named = changes.meta?.userId;
    const keys = [sessionKey(fromKey), sessionKey(toKey)];
    try {
      let owner = typeof named === "string" ? JSON.stringify(named) : "";
      for (let attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
        // A stored owner that is not a string has no index (as in `set`): nothing to move there.
        const userId = parseJson(owner);
        const reply = await evalScript(
          MOVE_SCRIPT,
          typeof userId === "string" ? [...keys, indexKey(userId)] : keys,
          [owner, named === undefined ? "0" : "1", String(now()), fromKey, toKey, ...tail],
        );
        if (Array.isArray(reply)) {
          const left = parseJson(bulkText(reply[0]));
          // Left indexed under the user the move took the session from: unlisted after the write,
          // as `delete` does; a crash before leaves a stale member, which reads prune.
          if (typeof left === "string") await unlist(left, [fromKey]);
          const entry = parseHash(reply[1]);
          return entry && { data: entry.data, meta: entry.meta };
        }
        const stored = bulkText(reply);
        if (stored === undefined) return undefined; // 0: no live session at fromKey
        owner = stored;
      }
      throw new Error(`the session's owner changed during each of ${MOVE_ATTEMPTS} move attempts`);
    } catch (err) {
      throw unavailable("move", err);
    }
  }

  /**
   * `move` on a cluster client: FENCE_SCRIPT reads the old hash and holds off patches of it from
   * then on, the patched record is written with `set`, and the old key goes with `delete`, where
   * the move takes effect. Until then both keys hold the session (a sign-out everywhere finds it
   * under either, and counts it once); a `delete` of the old key landing before makes this one
   * find nothing, and the new key goes too, as the manager's three calls do it.
   */
  async function fencedMove(
    fromKey: string,
    toKey: string,
    changes: SessionPatch,
    expiresAt: number,
  ): Promise<StoredSession | undefined> {
    // Serialised before the fence: a value JSON cannot hold is the caller's TypeError, and must not
    // leave the session refusing writes for the fence's span.
    patchFields(changes, deadline(expiresAt));
    const name = sessionKey(fromKey);
    const fence = () => evalScript(FENCE_SCRIPT, name, [String(now()), fenceMs, toKey]);
    const held = await run("move", async () => {
      const reply = await fence();
      // Another move of the session is under way: waited out, this one finds the session moved.
      return parseHash(reply === FENCED ? await pastFence(fence) : reply);
    });
    if (!held) return undefined;
    const moved = applyPatch({ data: held.data, meta: held.meta }, changes);
    await write("move", toKey, moved, expiresAt);
    if (await removeAs("move", fromKey)) return moved;
    await removeAs("move", toKey);
    return undefined;
  }

  /**
   * Runs again a script that answered FENCED, backing off, until it answers otherwise or
   * FENCE_WAIT_MS have passed; resolves its last reply. A write held off by a move's fence lands
   * after the move (finding the session gone) rather than answering "not found" while reads still
   * find it there.
   */
  async function pastFence(attempt: () => Promise<unknown>): Promise<unknown> {
    const giveUpAt = Date.now() + FENCE_WAIT_MS;
    for (let delay = FENCE_RETRY_MIN_MS; ; delay = Math.min(delay * 2, FENCE_RETRY_MAX_MS)) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      const reply = await attempt();
      if (reply !== FENCED || Date.now() >= giveUpAt) return reply;
    }
  }

  function touch(key: string, touchedAt: number, expiresAt: number): Promise<boolean> {
    return applyChanges("touch", key, { set: {}, delete: [], meta: { touchedAt } }, expiresAt);
  }

  function remove(key: string): Promise<boolean> {
    return removeAs("delete", key);
  }

  async function removeAs(operation: string, key: string): Promise<boolean> {
    return run(operation, async () => {
      const reply = await evalScript(DELETE_SCRIPT, sessionKey(key), []);
      const owner = bulkText(reply);
      if (owner === undefined) return Number(reply) === 1;
      const userId = parseJson(owner);
      if (typeof userId === "string") await unlist(userId, [key]);
      return true;
    });
  }

  async function members(userId: string): Promise<Array<[string, number]>> {
    const reply = await send(
      ["ZRANGE", indexKey(userId), "0", "-1", "WITHSCORES"],
      indexKey(userId),
    );
    return parseScored(reply);
  }

  async function listByUser(userId: string): Promise<StoredSessionEntry[]> {
    return run("listByUser", async () => {
      const at = now();
      const indexed = await members(userId);
      // Sent together: one client pipelines them, a cluster client groups them by node.
      const entries = await Promise.all(indexed.map(([key]) => readAny(key)));
      const until = now();
      const found: StoredSessionEntry[] = [];
      const stale: string[] = [];
      indexed.forEach(([key], i) => {
        const entry = entries[i];
        if (entry && sameUser(entry.meta.userId, userId)) {
          // Past its deadline by this clock but still on the server (clocks differ): hidden, yet
          // left indexed, as a host with the server's time may still slide it.
          if (entry.expiresAt > until) {
            found.push({ key, expiresAt: entry.expiresAt, data: entry.data, meta: entry.meta });
          }
        } else {
          stale.push(key);
        }
      });
      await prune(userId, stale, at);
      return found;
    });
  }

  async function deleteByUser(userId: string, except: readonly string[] = []): Promise<number> {
    return run("deleteByUser", async () => {
      const at = now();
      const handled = new Set(except);
      const owner = JSON.stringify(userId);
      // Keys are skipped here; a lineage spares in the script (meta fields hold JSON).
      const spared = except.map((entry) => JSON.stringify(entry));
      /** Keys deleted while a cluster `move` was copying them, each with the key it copied to. */
      const movingTo = new Map<string, string>();
      /**
       * DELETE_IF_USER_SCRIPT's reply for `key`: 1 or -1 as it says, 0 spared; `undefined` for an
       * owner.
       */
      const outcome = (key: string, reply: unknown): number | undefined => {
        if (Array.isArray(reply)) {
          const fence = bulkText(reply[0]) ?? "";
          movingTo.set(key, fence.slice(fence.indexOf(" ") + 1));
          return 1;
        }
        if (Number(reply) === 2) return 0;
        return Number(reply) === 1 || Number(reply) === -1 ? Number(reply) : undefined;
      };
      /** 1: deleted; 0: spared, or bound to another user now; -1: gone, or bound to no user. */
      const deleteIfOwner = async (key: string): Promise<number> => {
        const reply = await evalScript(DELETE_IF_USER_SCRIPT, sessionKey(key), [owner, ...spared]);
        const done = outcome(key, reply);
        if (done !== undefined) return done;
        // Another spelling of a user id UTF-8 holds as the same text (see `sameUser`): the same
        // user to this index, so deleted too, if it still has that owner.
        const other = bulkText(reply);
        if (other === undefined || !sameUser(parseJson(other), userId)) return 0;
        const again = await evalScript(DELETE_IF_USER_SCRIPT, sessionKey(key), [other, ...spared]);
        return outcome(key, again) === 1 ? 1 : 0;
      };
      const removed = new Set<string>();
      // A member found gone may have moved to a new key (a renewal or regenerate): the manager
      // writes the new record, indexed first, before it deletes the old one, so the index read
      // again after that miss holds the new key. Read once, a move landing between the read and
      // the deletes survived "sign out everywhere". A few passes at most, against endless churn.
      for (let pass = 0; pass < INDEX_PASSES; pass++) {
        const targets = (await members(userId))
          .map(([key]) => key)
          .filter((key) => !handled.has(key));
        for (const key of targets) handled.add(key);
        const done = await Promise.all(targets.map(deleteIfOwner));
        const deleted = targets.filter((_, i) => done[i] === 1);
        const stale = targets.filter((_, i) => done[i] !== 1);
        if (deleted.length > 0) await unlist(userId, deleted);
        await prune(userId, stale, at);
        for (const key of deleted) removed.add(key);
        if (!done.includes(-1)) break;
      }
      // A moving session deleted under both its keys is one session.
      let twins = 0;
      for (const to of movingTo.values()) if (removed.has(to)) twins++;
      return removed.size - twins;
    });
  }

  /**
   * Session hashes expire by themselves; this prunes user-index members whose recorded deadline is
   * at or before `at` and whose session is gone (or belongs to someone else now). A member whose
   * session lives on (its deadline slid) gets its current deadline as score instead.
   */
  async function sweep(at: number): Promise<number> {
    return run("sweep", async () => {
      let pruned = 0;
      for (const scan of await masters()) {
        let cursor = "0";
        do {
          const reply = (await scan([
            "SCAN",
            cursor,
            "MATCH",
            `${escapeGlob(indexPrefix)}*`,
            "COUNT",
            String(SCAN_COUNT),
            "TYPE",
            "zset",
          ])) as [unknown, unknown[]];
          cursor = String(reply[0]);
          for (const name of reply[1] ?? []) pruned += await sweepIndex(decode(name), at);
        } while (cursor !== "0");
      }
      return pruned;
    });
  }

  async function sweepIndex(name: string, at: number): Promise<number> {
    if (!name.startsWith(indexPrefix) || !name.endsWith("}")) return 0;
    const userId = name.slice(indexPrefix.length, -1);
    const due = parseScored(
      await send(["ZRANGEBYSCORE", name, "-inf", String(at), "WITHSCORES"], name),
    );
    const gone: string[] = [];
    for (const [key] of due) {
      const [user, expires] = (await send(
        ["HMGET", sessionKey(key), USER_FIELD, EXPIRES],
        sessionKey(key),
      )) as unknown[];
      if (user != null && sameUser(parseJson(decode(user)), userId)) {
        // Still on the server: re-scored if it slid past `at`; else left for the server to expire
        // (a sweeping clock ahead of the server's must not unlist a session that may yet slide).
        const expiresAt = Number(decode(expires));
        if (expiresAt > at) await indexAdd(userId, key, expiresAt);
      } else {
        gone.push(key);
      }
    }
    return prune(userId, gone, at);
  }

  async function lock(key: string, ttlMs: number, waitMs: number): Promise<Release | null> {
    const name = lockKey(key);
    const token = randomUUID();
    const px = String(Math.max(1, Math.ceil(ttlMs)));
    return pollLock(
      async () => {
        const reply = await run("lock", () => send(["SET", name, token, "NX", "PX", px], name));
        if (bulkText(reply) !== "OK") return null;
        return () =>
          run("unlock", async () => void (await evalScript(UNLOCK_SCRIPT, name, [token])));
      },
      waitMs,
      { firstMs: LOCK_RETRY_MIN_MS, maxMs: LOCK_RETRY_MAX_MS },
    );
  }

  // Nothing to stop: the store starts no timers, and the client belongs to the caller.
  async function close(): Promise<void> {}

  return {
    name: "redis",
    get,
    set,
    patch,
    // MOVE_SCRIPT spans three slots, which only a single server runs (see the module's docs).
    move: isCluster ? fencedMove : move,
    touch,
    delete: remove,
    listByUser,
    deleteByUser,
    sweep,
    lock,
    close,
  };
}

/**
 * A patch as hash fields: `pairs` to write (EXPIRES first) and the fields to delete. A value JSON
 * leaves out (undefined, a function) deletes its key, as in `set`.
 */
function patchFields(patch: SessionPatch, at: string): { pairs: string[]; removed: string[] } {
  const pairs: string[] = [EXPIRES, at];
  const removed: string[] = [];
  const set = patch.set;
  for (const name in set) {
    if (!Object.hasOwn(set, name)) continue;
    const json = JSON.stringify(set[name]);
    if (json === undefined) removed.push(DATA + name);
    else pairs.push(DATA + name, json);
  }
  for (const name of patch.delete) removed.push(DATA + name);
  const meta = patch.meta;
  if (meta) {
    for (const field in meta) {
      if (!Object.hasOwn(meta, field)) continue;
      const value = meta[field as keyof SessionMeta];
      if (value === null) removed.push(META + field);
      else if (value !== undefined) {
        const json = JSON.stringify(value);
        if (json !== undefined) pairs.push(META + field, json);
      }
    }
  }
  // Unbound: the index horizon belongs to the user the session leaves.
  if (meta?.userId === null) removed.push(INDEX_UNTIL);
  return { pairs, removed };
}

/** PATCH_SCRIPT's ARGV: expiresAt, pair count, pairs, then fields to delete. */
function patchArgs(at: string, pairs: readonly string[], removed: readonly string[]): string[] {
  return [at, String(pairs.length / 2), ...pairs, ...removed];
}

/** A driver failure as `StoreUnavailableError`; the store's own errors pass through unchanged. */
function unavailable(operation: string, err: unknown): unknown {
  if (isSessionError(err)) return err;
  return new StoreUnavailableError(`the redis store failed during ${operation}`, { cause: err });
}

interface Parsed extends StoredSession {
  expiresAt: number;
}

/** A session hash being read: what `readField` has collected so far. */
interface Reading {
  data: Record<string, unknown>;
  meta: Record<string, unknown>;
  expiresAt: number;
}

/**
 * Reads a session hash; `undefined` for a missing or unreadable one ("not found", not an error).
 * HGETALL arrives as a flat `[field, value, ...]` array (RESP2: ioredis `call`), a plain object
 * (RESP3: node-redis 5+ `sendCommand`) or a Map, with strings or buffers; each is walked in place.
 */
function parseHash(reply: unknown): Parsed | undefined {
  if (reply == null || typeof reply !== "object") return undefined;
  const reading: Reading = { data: {}, meta: {}, expiresAt: Number.NaN };
  try {
    if (Array.isArray(reply)) {
      for (let i = 0; i + 1 < reply.length; i += 2)
        readField(reading, decode(reply[i]), reply[i + 1]);
    } else if (reply instanceof Map) {
      for (const [field, raw] of reply) readField(reading, decode(field), raw);
    } else {
      const fields = reply as Record<string, unknown>;
      for (const field in fields) readField(reading, field, fields[field]);
    }
  } catch {
    return undefined; // a value that is not JSON
  }
  const { data, meta, expiresAt } = reading;
  if (!Number.isFinite(expiresAt)) return undefined; // also: no fields at all (missing key)
  if (
    typeof meta.createdAt !== "number" ||
    typeof meta.touchedAt !== "number" ||
    typeof meta.renewedAt !== "number"
  ) {
    return undefined;
  }
  return { data, meta: meta as unknown as SessionMeta, expiresAt };
}

// DATA and META are one letter and ":": a field's kind is read from its first two characters.
const DATA_KIND = DATA.charCodeAt(0);
const META_KIND = META.charCodeAt(0);
const PREFIX_END = DATA.charCodeAt(1);

/** One hash field: "d:<name>" and "m:<field>" hold JSON, "e" the deadline; others are skipped. */
function readField(reading: Reading, field: string, raw: unknown): void {
  if (field.charCodeAt(1) === PREFIX_END) {
    const kind = field.charCodeAt(0);
    const target =
      kind === DATA_KIND ? reading.data : kind === META_KIND ? reading.meta : undefined;
    if (target === undefined) return;
    const name = field.slice(2);
    const value: unknown = JSON.parse(decode(raw));
    if (name === "__proto__") {
      // defineProperty: a data key named "__proto__" stays a key and never becomes the prototype.
      Object.defineProperty(target, name, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      target[name] = value;
    }
  } else if (field === EXPIRES) {
    reading.expiresAt = Number(decode(raw));
  }
}

/** ZRANGE ... WITHSCORES: flat `[m, s, m, s]` or nested `[[m, s]]`, scores as strings or numbers. */
function parseScored(reply: unknown): Array<[string, number]> {
  if (!Array.isArray(reply)) return [];
  if (reply.length > 0 && Array.isArray(reply[0])) {
    return (reply as unknown[][]).map(([m, s]) => [decode(m), Number(decode(s))]);
  }
  const out: Array<[string, number]> = [];
  for (let i = 0; i + 1 < reply.length; i += 2)
    out.push([decode(reply[i]), Number(decode(reply[i + 1]))]);
  return out;
}

const textDecoder = new TextDecoder();

function decode(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return textDecoder.decode(value);
  return String(value);
}

/** A script's or command's string reply, which a client may hand over as a Buffer; else `undefined`. */
function bulkText(reply: unknown): string | undefined {
  if (typeof reply === "string") return reply;
  return reply instanceof Uint8Array ? textDecoder.decode(reply) : undefined;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// A lone surrogate: a high half with no low half after it, or a low half with no high half before it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Whether a session's owner is `userId` to the user index. An index key is named by the user id as
 * UTF-8 sends it, where a lone surrogate becomes U+FFFD (as in the SQL stores' `user_id` column), so
 * ids that differ only there share one index: they are one user to `listByUser`, `deleteByUser`
 * and `sweep` alike, and none of them prunes the others' live sessions as stale.
 */
function sameUser(owner: unknown, userId: string): boolean {
  return owner === userId || (typeof owner === "string" && utf8Text(owner) === utf8Text(userId));
}

/** `text` as UTF-8 holds it (and `TextEncoder` writes it): each lone surrogate becomes U+FFFD. */
function utf8Text(text: string): string {
  return text.replace(LONE_SURROGATE, "\ufffd");
}

/** PEXPIREAT takes whole milliseconds; rounding up never ends a session early. */
function deadline(expiresAt: number): string {
  return String(Math.ceil(expiresAt));
}
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
