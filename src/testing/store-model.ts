import type {
  FlashField,
  SessionMeta,
  SessionPatch,
  SessionStore,
  StoredSession,
  StoredSessionEntry,
} from "../stores/store.js";

/**
 * Random sequences of store calls checked, call by call, against a model of the contract in
 * stores/store.ts: a Map of records with deadlines. The hand-written cases of the conformance suite
 * pin one edge each; this finds what their combinations break (a user index left behind by a patch
 * that moved the user, a deadline a touch failed to move, a value some backend cannot hold). A
 * failure names its seed: `SESSIONKIT_STORE_SEED=<seed>` replays the same sequence of calls.
 *
 * Written without a property-testing library, so `sessionkit/testing` needs nothing but vitest.
 */

/** What one run drives. */
export interface ModelRun {
  store: SessionStore;
  /** "injected": the store reads `now()`, which `advance` moves; "server": the server's clock. */
  clock: "injected" | "server";
  now: () => number;
  advance: (ms: number) => void;
  /** A fresh store key (43 characters of base64url). */
  randomKey: () => string;
  seed: number;
  steps: number;
}

interface ModelEntry {
  data: Record<string, unknown>;
  meta: SessionMeta;
  expiresAt: number;
  /**
   * Past its deadline and perhaps removed already by a call that may drop such entries
   * (`deleteByUser`, `delete`): invisible either way, and what `expiredMeta`, `delete` and `sweep`
   * answer for it may be either.
   */
  maybeGone: boolean;
}

const HOUR_MS = 3_600_000;
// Names and strings that have broken stores: NUL (PostgreSQL's jsonb refuses it), U+FDD0 (the mark
// the PostgreSQL store escapes NUL with), JSON's own characters, prototype names, a space at the end.
export const DATA_KEYS = [
  "a",
  "b",
  "ключ",
  "__proto__",
  "constructor",
  "k\u0000",
  "x\ufdd0",
  "end ",
];
const STRING_PARTS = [
  "x",
  "é€",
  "🚀",
  '"',
  "\\",
  "\\u0000",
  "\u0000",
  "\ufdd0",
  "\ufdd00",
  " ",
  "\n",
];
const FLASH_LEVELS = ["info", "error", "__proto__"];
const META_STRINGS = ["phone", "Mozilla/5.0 (X11)", "10.0.0.1", "\u0000", "ü\ufdd0"];
/**
 * Flash message fields, one meta field a message: a few shared names, so that patches set, replace
 * and remove one another's, and a store must keep a meta field name with a colon. @internal
 */
export const FLASH_FIELDS: readonly FlashField[] = [
  "flash:0mjabc12300x1a2b3c",
  "flash:0mjabc12301x9z8y7w",
  "flash:0mjabd0000000zzzzz",
];

/**
 * The seeds to run: the one `SESSIONKIT_STORE_SEED` names, to replay a failure, else `count` fresh
 * ones. @internal
 */
export function seedsToRun(count: number): number[] {
  const replay = Number(process.env.SESSIONKIT_STORE_SEED);
  if (Number.isInteger(replay)) return [replay];
  return Array.from({ length: count }, () => Math.floor(Math.random() * 2 ** 32));
}

/** mulberry32: a small seeded generator, so a failing sequence can be replayed from its seed. */
export function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  return { next, int, pick, chance: (p: number) => next() < p };
}
export type Random = ReturnType<typeof generator>;

export function randomString(random: Random): string {
  let text = "";
  for (let i = random.int(4); i >= 0; i--) text += random.pick(STRING_PARTS);
  return text;
}

export function randomValue(random: Random, depth = 0): unknown {
  switch (random.int(depth >= 2 ? 5 : 7)) {
    case 0:
      return random.int(2_000_001) - 1_000_000;
    case 1:
      return random.pick([0.5, -2.25, 1e-7, 123456.75]);
    case 2:
      return randomString(random);
    case 3:
      return random.chance(0.5);
    case 4:
      return null;
    case 5:
      return Array.from({ length: random.int(4) }, () => randomValue(random, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = random.int(3); i > 0; i--)
        put(object, random.pick(DATA_KEYS), randomValue(random, depth + 1));
      return object;
    }
  }
}

/** An own data property, "__proto__" included. @internal */
export function put(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** base64url without padding, as store keys are spelled. @internal */
export function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The store key of a session id, base64url(SHA-256(id)), computed here independently of the
 * manager, so the checks that use it check the key derivation too. @internal
 */
export async function storeKeyOf(id: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(id));
  return base64Url(new Uint8Array(digest));
}

/** JSON with object keys sorted, so two records compare whatever order a backend keeps keys in. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) return item;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(item).sort())
      put(sorted, key, (item as Record<string, unknown>)[key]);
    return sorted;
  });
}

/**
 * Runs `run.steps` random calls against the store and the model; throws at the first answer the
 * contract does not allow, with the seed and the calls that led there.
 */
export async function checkAgainstModel(run: ModelRun): Promise<void> {
  const { store, now } = run;
  const injected = run.clock === "injected";
  const random = generator(run.seed);
  const tag = run.randomKey().slice(0, 8);
  const keys = Array.from({ length: 5 }, () => run.randomKey());
  const users = ["ann", "bo", "c\u0000\ufdd0"].map((name) => `${name}-${tag}`);
  const model = new Map<string, ModelEntry>();
  const trace: string[] = [];

  const fail = (what: string, actual: unknown, expected: unknown): never => {
    throw new Error(
      `${store.name}: ${what} disagrees with the store contract (seed ${run.seed}; replay with SESSIONKIT_STORE_SEED=${run.seed})\n` +
        `  got      ${canonical(actual)}\n  expected ${canonical(expected)}\n` +
        `  after the calls:\n    ${trace.slice(-12).join("\n    ")}`,
    );
  };
  const live = (key: string) => {
    const entry = model.get(key);
    return entry && entry.expiresAt > now() ? entry : undefined;
  };
  // A server clock cannot be moved: deadlines are an hour out, or already past when set so.
  const deadline = () => (injected ? now() + 1 + random.int(3000) : now() + HOUR_MS);
  const randomMeta = (): SessionMeta => {
    const at = now() - random.int(10_000);
    const meta: SessionMeta = { createdAt: at, touchedAt: at, renewedAt: at };
    if (random.chance(0.5)) meta.userId = random.pick(users);
    for (const field of FLASH_FIELDS)
      if (random.chance(0.2)) meta[field] = [random.pick(FLASH_LEVELS), randomString(random)];
    if (random.chance(0.3)) meta.label = random.pick(META_STRINGS);
    if (random.chance(0.2)) meta.userAgent = random.pick(META_STRINGS);
    if (random.chance(0.2)) meta.persistent = random.chance(0.5);
    if (random.chance(0.2)) meta.csrf = "0123456789abcdefABCDEF";
    return meta;
  };
  const randomData = (): Record<string, unknown> => {
    const data: Record<string, unknown> = {};
    for (let i = random.int(4); i > 0; i--) put(data, random.pick(DATA_KEYS), randomValue(random));
    return data;
  };

  for (let step = 0; step < run.steps; step++) {
    const key = random.pick(keys);
    const roll = random.int(100);
    if (roll < 16) {
      const session: StoredSession = { data: randomData(), meta: randomMeta() };
      const expired = !injected && random.chance(0.1);
      const expiresAt = expired ? now() - 1000 : deadline();
      trace.push(`set ${key.slice(0, 6)} ${canonical(session)} ${expired ? "past" : "+"}`);
      await store.set(key, session, expiresAt);
      model.set(key, {
        data: JSON.parse(JSON.stringify(session.data)),
        meta: { ...session.meta },
        expiresAt,
        maybeGone: false,
      });
    } else if (roll < 34) {
      const patch = randomPatch(random, users, now());
      const expiresAt = deadline();
      trace.push(`patch ${key.slice(0, 6)} ${canonical(patch)}`);
      const applied = await store.patch(key, patch, expiresAt);
      const entry = live(key);
      if (applied !== (entry !== undefined)) fail(`patch's answer`, applied, entry !== undefined);
      if (entry) {
        patchModel(entry, patch);
        entry.expiresAt = expiresAt;
      }
    } else if (roll < 42) {
      const touchedAt = now();
      const expiresAt = deadline();
      trace.push(`touch ${key.slice(0, 6)}`);
      const touched = await store.touch(key, touchedAt, expiresAt);
      const entry = live(key);
      if (touched !== (entry !== undefined)) fail(`touch's answer`, touched, entry !== undefined);
      if (entry) {
        entry.meta.touchedAt = touchedAt;
        entry.expiresAt = expiresAt;
      }
    } else if (roll < 48) {
      trace.push(`delete ${key.slice(0, 6)}`);
      const removed = await store.delete(key);
      const entry = model.get(key);
      // `void` means "unknown"; an entry past its deadline but not yet swept may count either way.
      const expected = !entry ? false : entry.expiresAt > now() ? true : undefined;
      if (removed !== undefined && expected !== undefined && removed !== expected)
        fail(`delete's answer`, removed, expected);
      model.delete(key);
    } else if (roll < 70) {
      trace.push(`get ${key.slice(0, 6)}`);
      const got = await store.get(key);
      const entry = live(key);
      const expected = entry && { data: entry.data, meta: entry.meta };
      if (canonical(got) !== canonical(expected)) fail(`get`, got, expected);
    } else if (roll < 80 && store.listByUser) {
      const user = random.pick(users);
      trace.push(`listByUser ${canonical(user)}`);
      const listed = await store.listByUser(user);
      const expected: StoredSessionEntry[] = [];
      for (const [k, entry] of model) {
        if (entry.meta.userId === user && entry.expiresAt > now())
          expected.push({ key: k, expiresAt: entry.expiresAt, data: entry.data, meta: entry.meta });
      }
      const order = (a: StoredSessionEntry, b: StoredSessionEntry) => (a.key < b.key ? -1 : 1);
      if (canonical([...listed].sort(order)) !== canonical(expected.sort(order)))
        fail(`listByUser`, listed, expected);
    } else if (roll < 85 && store.deleteByUser) {
      const user = random.pick(users);
      const except = keys.filter(() => random.chance(0.3));
      trace.push(`deleteByUser ${canonical(user)} except ${except.map((k) => k.slice(0, 6))}`);
      const count = await store.deleteByUser(user, except);
      let expected = 0;
      for (const [k, entry] of model) {
        if (entry.meta.userId !== user || except.includes(k)) continue;
        if (entry.expiresAt > now()) {
          expected++;
          model.delete(k);
        } else entry.maybeGone = true;
      }
      if (count !== expected) fail(`deleteByUser's count`, count, expected);
    } else if (roll < 93 && injected) {
      // Half the time to a deadline's instant or the one before it: "expiresAt <= now" is expired.
      const deadlines = [...model.values()]
        .map((entry) => entry.expiresAt - now())
        .filter((ms) => ms > 0);
      const ms =
        deadlines.length > 0 && random.chance(0.5)
          ? random.pick(deadlines) - random.int(2)
          : random.int(1500);
      trace.push(`clock +${ms}`);
      run.advance(ms);
    } else if (roll < 96 && injected && store.sweep) {
      const at = now();
      trace.push("sweep");
      const swept = await store.sweep(at);
      let certain = 0;
      let possible = 0;
      for (const [k, entry] of model) {
        if (entry.expiresAt > at) continue;
        possible++;
        if (!entry.maybeGone) certain++;
        model.delete(k);
      }
      if (swept < certain || swept > possible)
        fail(`sweep's count`, swept, `${certain}..${possible}`);
    } else if (injected && store.expiredMeta) {
      trace.push(`expiredMeta ${key.slice(0, 6)}`);
      const meta = await store.expiredMeta(key);
      const entry = model.get(key);
      const expired = entry && entry.expiresAt <= now() ? entry : undefined;
      if (meta === undefined) {
        if (expired && !expired.maybeGone) fail(`expiredMeta`, meta, expired.meta);
      } else if (!expired || canonical(meta) !== canonical(expired.meta)) {
        fail(`expiredMeta`, meta, expired?.meta);
      }
    }
  }
  // A sweep counts every expired entry of the store: the next sequence starts with none of these.
  for (const key of keys) await store.delete(key);
}

/**
 * What `patch` must make of `session`, written without the stores' shared `applyPatch`, so that a
 * slip there shows up here. Changes `session` in place. @internal
 */
export function patchModel(session: StoredSession, patch: SessionPatch): void {
  for (const [name, value] of Object.entries(patch.set))
    put(session.data, name, JSON.parse(JSON.stringify(value)));
  for (const name of patch.delete) delete session.data[name];
  const meta = session.meta as unknown as Record<string, unknown>;
  for (const [field, value] of Object.entries(patch.meta ?? {})) {
    if (value === null) delete meta[field];
    else if (value !== undefined) meta[field] = value;
  }
}

/**
 * A patch as the manager makes them: disjoint set and delete keys among `names`, meta fields set
 * or removed. @internal
 */
export function randomPatch(
  random: Random,
  users: readonly string[],
  at: number,
  names: readonly string[] = DATA_KEYS,
): SessionPatch {
  const set: Record<string, unknown> = {};
  const remove: string[] = [];
  for (let i = random.int(4); i > 0; i--) {
    const name = random.pick(names);
    if (Object.hasOwn(set, name) || remove.includes(name)) continue;
    if (random.chance(0.7)) put(set, name, randomValue(random));
    else remove.push(name);
  }
  const patch: SessionPatch = { set, delete: remove };
  if (random.chance(0.6)) {
    const meta: NonNullable<SessionPatch["meta"]> = { touchedAt: at - random.int(1000) };
    if (random.chance(0.3)) meta.userId = random.chance(0.3) ? null : random.pick(users);
    for (const field of FLASH_FIELDS)
      if (random.chance(0.15))
        meta[field] = random.chance(0.5) ? null : [random.pick(FLASH_LEVELS), randomString(random)];
    if (random.chance(0.2)) meta.label = random.chance(0.5) ? null : random.pick(META_STRINGS);
    if (random.chance(0.2)) meta.persistent = random.chance(0.5) ? null : random.chance(0.5);
    if (random.chance(0.2)) meta.csrf = random.chance(0.5) ? null : "ABCDEFabcdef0123456789";
    if (random.chance(0.1)) meta.renewedAt = at;
    patch.meta = meta;
  }
  return patch;
}
