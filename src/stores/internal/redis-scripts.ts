/**
 * The Lua scripts of the Redis store and the field names of a session hash they share with it.
 * Each script but MOVE_SCRIPT touches one key only, so the same code runs on a single server and on
 * a cluster.
 */
import { createHash } from "node:crypto";

// Field names inside a session hash. Data and meta get a prefix each so that no user key can collide
// with metadata (STYLE: "metadata sits beside data").
export const DATA = "d:";
export const META = "m:";
export const EXPIRES = "e";
export const INDEX_UNTIL = "i";
export const USER_FIELD = `${META}userId`;
export const LINEAGE_FIELD = `${META}lineage`;
/**
 * Present while a cluster `move` takes the session away (see FENCE_SCRIPT): `<deadline> <new key>`,
 * the deadline in epoch ms by the server's clock. Neither data nor meta, so reads skip it.
 */
export const FENCE = "f";

/** A script's text and its SHA1, for EVALSHA with an EVAL fallback. */
export interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/** Lua: the local `now`, the server's clock in epoch ms, one clock for every script of a key. */
const SERVER_NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Lua: whether the FENCE value `field` stands at `now` (a garbled one does not). */
const fenceStands = (field: string) => `(tonumber(string.match(${field}, '^%d+')) or 0) > now`;

// The scripts write with one HSET or HDEL per chunk of up to 128 ARGV entries rather than one per
// field (each redis.call costs the server about a microsecond): chunks stay small enough for Lua's
// `unpack` and even, so field/value pairs are never split.

/** Replaces the whole hash. ARGV: expiresAt, then field/value pairs. */
export const SET_SCRIPT = script(`
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 128 do redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 127, #ARGV))) end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`);

/**
 * Applies a patch to an existing hash only: a destroyed or expired session is never revived.
 * ARGV: expiresAt, pair count n, n field/value pairs (the first is always "e"), then fields to delete.
 * Returns 0 when missing; the stored user id (JSON) when the user index must be kept alive longer
 * than it is known to live; else 1.
 *
 * No EXISTS first: HSET counts the fields it added, and every live session hash has "e", which the
 * pairs always set. All fields new means the hash was not there (or was not a session), and the
 * script deletes what it just wrote before anyone can see it. PEXPIREAT comes after the writes, so a
 * deadline already past on the server's clock deletes the hash, never leaves one without expiry.
 */
const PATCH_SOURCE = `
local last = 2 + 2 * tonumber(ARGV[2])
local added = 0
for i = 3, last, 128 do
  added = added + redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 127, last)))
end
if added * 2 == last - 2 then
  redis.call('DEL', KEYS[1])
  return 0
end
for i = last + 1, #ARGV, 128 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 127, #ARGV)))
end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
local u = redis.call('HMGET', KEYS[1], '${USER_FIELD}', '${INDEX_UNTIL}')
if u[1] and tonumber(ARGV[1]) > (tonumber(u[2] or '0') or 0) then return u[1] end
return 1`;
export const PATCH_SCRIPT = script(PATCH_SOURCE);

/**
 * PATCH_SCRIPT on a cluster, where a `move` fences the hash it reads (FENCE_SCRIPT): answers -1,
 * writing nothing, while a FENCE stands, since that move would drop this write with the old key.
 * One HGET more per patch (and a TIME when a fence is there), which a single server, whose moves
 * are one script, does not pay.
 */
export const FENCED_PATCH_SCRIPT = script(`
local fence = redis.call('HGET', KEYS[1], '${FENCE}')
if fence then
  ${SERVER_NOW}
  if ${fenceStands("fence")} then return -1 end
end${PATCH_SOURCE}`);

/**
 * Adds a session to a user index (a score only ever grows) and makes the index outlive it by as long
 * again as the session has left, so sliding sessions refresh the index rarely. Never shortens the
 * index's life. ARGV: member, expiresAt. Returns the epoch ms until which the index lives.
 */
export const INDEX_ADD_SCRIPT = script(`
local score = tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not old or tonumber(old) < score then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
${SERVER_NOW}
local target = score + math.max(score - now, 0)
-- a session already past its deadline: keep a new index alive briefly, never expire it at once
if target <= now then target = now + 1000 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 and now + ttl >= target then return now + ttl end
redis.call('PEXPIREAT', KEYS[1], target)
return target`);

/**
 * Sets the index horizon of a live session, but only while it still belongs to the user whose index
 * that horizon is: a sign-in as someone else since then recorded that user's horizon. ARGV: epoch
 * ms, user id as JSON.
 */
export const INDEX_UNTIL_SCRIPT = script(`
if redis.call('HGET', KEYS[1], '${USER_FIELD}') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], '${INDEX_UNTIL}', ARGV[1])
return 1`);

/**
 * Deletes a session. Returns 0 when there was none, else its user id (JSON) so the index entry can go
 * too, or 1 when it was bound to no user (a JSON user id is a quoted string, never the integer 1).
 */
export const DELETE_SCRIPT = script(`
local user = redis.call('HGET', KEYS[1], '${USER_FIELD}')
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
return user or 1`);

/**
 * Deletes a session only if it belongs to the user and its lineage is not spared. ARGV: user id as
 * JSON, then lineages (JSON) to spare. 1 deleted, -1 missing or bound to no user, 2 spared, else
 * the user id (JSON) it belongs to; `{fence}` when deleted with a FENCE (a cluster `move` was
 * copying it to the key the fence names), so that a sign-out that deletes that copy too counts the
 * session once.
 */
export const DELETE_IF_USER_SCRIPT = script(`
local held = redis.call('HMGET', KEYS[1], '${USER_FIELD}', '${FENCE}', '${LINEAGE_FIELD}')
local user = held[1]
if not user then return -1 end
if user ~= ARGV[1] then return user end
if held[3] then
  for i = 2, #ARGV do if held[3] == ARGV[i] then return 2 end end
end
redis.call('DEL', KEYS[1])
if held[2] then return {held[2]} end
return 1`);

/**
 * Removes index members, but only those whose score is at or before ARGV[1]: a member whose score
 * moved on meanwhile belongs to a session that is being (re)written right now. ARGV: now, members.
 */
export const PRUNE_SCRIPT = script(`
local n = 0
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= tonumber(ARGV[1]) then n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return n`);

/** Compare-and-delete, so a lock that expired and was taken by another request is not released. */
export const UNLOCK_SCRIPT = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

/**
 * Moves a session hash to a new key with a patch applied, and its user index entry along, in one
 * step: no other script or command on either key lands in between, so a `patch` of the old key
 * comes before (carried) or finds nothing. PATCH_SCRIPT and INDEX_ADD_SCRIPT run inside it as Lua
 * functions whose parameters shadow KEYS and ARGV, so a move changes fields exactly as `patch`
 * does and indexes exactly as `set` does, from the same source.
 *
 * KEYS: old hash, new hash, and the user index of the owner after the move, when it has one.
 * ARGV: that owner's id as JSON ('' for none); '1' when the patch names it, '0' when it is the
 * caller's guess of the stored owner; now (the store's clock); old and new store key (the index
 * members); then PATCH_SCRIPT's ARGV.
 * Returns 0 when the old hash holds no live session (nothing written); the stored owner (JSON, ''
 * for none) when the guess was wrong (nothing written: run again with that owner's index); else
 * `{owner, fields}`: the stored owner when its index still lists the old key (another user's; ''
 * when none or handled here), and HGETALL of the new hash.
 *
 * RENAME moves the hash whole (replacing whatever the new key held) and its TTL; the patch then
 * sets the new deadline, and a deadline already past on the server's clock deletes the new hash,
 * as `set` does. The index fields come before the patch so that such a deletion leaves no `i`
 * behind in a hash without expiry. PATCH_SCRIPT answers 1 here (the hash has "e", and "i" already
 * covers the deadline), so its reply is not read.
 */
export const MOVE_SCRIPT = script(`
local function patch(KEYS, ARGV)
${PATCH_SCRIPT.source}
end
local function indexAdd(KEYS, ARGV)
${INDEX_ADD_SCRIPT.source}
end
local held = redis.call('HMGET', KEYS[1], '${USER_FIELD}', '${EXPIRES}')
if (tonumber(held[2]) or 0) <= tonumber(ARGV[3]) then return 0 end
local owner = held[1] or ''
if ARGV[2] == '0' and owner ~= ARGV[1] then return owner end
local changes = {}
for i = 6, #ARGV do changes[i - 5] = ARGV[i] end
redis.call('RENAME', KEYS[1], KEYS[2])
if KEYS[3] then
  if owner == ARGV[1] then redis.call('ZREM', KEYS[3], ARGV[4]) end
  redis.call('HSET', KEYS[2], '${INDEX_UNTIL}', indexAdd({KEYS[3]}, {ARGV[5], changes[1]}))
end
patch({KEYS[2]}, changes)
if owner == ARGV[1] then owner = '' end
return {owner, redis.call('HGETALL', KEYS[2])}`);

/**
 * The first step of a `move` on a cluster, where the old and new hash live in different slots and
 * no script reaches both: fences a live session hash and reads it. While the fence stands,
 * FENCED_PATCH_SCRIPT answers -1 for the hash, so a `patch` or `touch` landing after this read is held
 * off rather than acknowledged and then dropped with the old key; one landing before is in the
 * read, and carried. The fence lasts a span (ARGV) on the server's clock, after which a mover that
 * crashed blocks writes no more.
 *
 * KEYS: the old hash. ARGV: now (the store's clock), the fence span in ms, the new store key.
 * Returns 0 when the hash holds no live session; -1 while it stands fenced (another move of it is
 * under way, and at most one may win); else HGETALL of the fenced hash.
 */
export const FENCE_SCRIPT = script(`
local held = redis.call('HMGET', KEYS[1], '${EXPIRES}', '${FENCE}')
if (tonumber(held[1]) or 0) <= tonumber(ARGV[1]) then return 0 end
${SERVER_NOW}
if held[2] and ${fenceStands("held[2]")} then return -1 end
redis.call('HSET', KEYS[1], '${FENCE}', string.format('%.0f %s', now + tonumber(ARGV[2]), ARGV[3]))
return redis.call('HGETALL', KEYS[1])`);
