import type { SessionStore, StoredSession } from "../stores/store.js";
import {
  canonical,
  DATA_KEYS,
  FLASH_FIELDS,
  generator,
  patchModel,
  put,
  type Random,
  randomPatch,
  randomString,
  randomValue,
} from "./store-model.js";

/**
 * "No lost updates" (DESIGN.md invariant 4) under random concurrency, checked the way one checks
 * linearizability: what the store answered must be explained by SOME serial order of the writes.
 * Each round writes one entry at a fresh key, fires 2 to 6 concurrent operations at it, waits for
 * all, reads it back, and searches every order of the writes (at most 6! = 720) for one that
 * explains everything seen. A failure names its seed (`SESSIONKIT_STORE_SEED` replays the same
 * operations; the interleaving is the server's) and lists the round's calls and answers. The same
 * search checks requests through the manager (store-concurrency-requests.ts).
 *
 * `checkConcurrentCalls`, on the store: `patch` (sets and deletes over 3 data names shared by the
 * round, unicode, "__proto__"-like and NUL-holding ones among them, and meta changes: touchedAt,
 * userId, flash message fields set and removed, label, ...), `touch` and `get`, all started before
 * any answers; in half the rounds `delete` and `deleteByUser` (of either of the round's users, now
 * and then with the entry among the keys it spares) race them too. The entry is "absent" once removed,
 * and nothing may bring it back. Checked, against one order of all the writes that explains
 * everything:
 * - each `patch` and `touch` resolves `true` where the entry is there at its place in the order and
 *   `false` where a removal came before (so a write ordered after a removal never revives it);
 *   `delete` resolves whether it removed the entry (of two deletes, only the first says `true`; a
 *   store's `void` may be either), and `deleteByUser` counts 1 exactly when it removed the entry;
 * - that order, applied to the entry as written, gives exactly the record (data and meta) the final
 *   `get` returns, or nothing: so no write is lost in part or whole, and a touch, which may change
 *   only `touchedAt`, never drops or reverts what a patch wrote;
 * - each concurrent `get` returns the record after some prefix of that SAME order, `undefined`
 *   after a removal (all calls overlap in time, so any prefix is allowed);
 * - with `listByUser`, for each user of the round: the entry is listed under the user its final
 *   meta names and under no other (nowhere once removed), as the final `get` returned it, and with
 *   the deadline of the last patch or touch of the order (each asks a different deadline, so this
 *   pins which came last).
 *
 * Written without a property-testing library, like store-model.ts.
 */

/** What one run drives: the store, the suite's clock and keys, a seed and how many rounds. */
export interface ConcurrencyRun {
  store: SessionStore;
  /** The suite's clock: the manager's, and an "injected" store's; `advance` moves it. */
  now: () => number;
  advance: (ms: number) => void;
  /** A fresh store key (43 characters of base64url). */
  randomKey: () => string;
  /** For the manager of `checkConcurrentRequests`. */
  secret: string;
  seed: number;
  rounds: number;
}

const HOUR_MS = 3_600_000;
const NAMES_PER_ROUND = 3;

/** Ticks of one counter, taken as a call starts and as its answer arrives. @internal */
export interface Span {
  start: number;
  end: number;
}

/**
 * One write of a history: what it makes of the state before it, given what it answered, and when
 * it ran. @internal
 */
export interface Step<S> extends Span {
  /**
   * The state after this step, from the state before it (a copy it may change); `undefined` when
   * what the step answered cannot have come from that state.
   */
  apply: (before: S) => S | undefined;
  /** The index of a step that must come before this one (two store calls of one commit). */
  follows?: number;
}

/** One read of a history: what it saw (as `view` shows a state), when it ran. @internal */
export interface Read extends Span {
  seen: string;
}

/** What a round found wrong (empty: nothing), and the calls and answers that show it. @internal */
export interface Verdict {
  wrong: string;
  trace: string[];
}

/** The state of the entry of `checkConcurrentCalls`: its record (`null`: removed) and deadline. */
interface Entry {
  record: StoredSession | null;
  expiresAt: number;
}

/** Concurrent patch, touch, get, delete and deleteByUser calls on one entry; throws when no serial order explains them. */
export async function checkConcurrentCalls(run: ConcurrencyRun): Promise<void> {
  const random = generator(run.seed);
  const users = roundUsers(run);
  const jittery = { ...run, store: jittered(run.store, run.seed) };
  for (let round = 0; round < run.rounds; round++) {
    const play = () => callRound(jittery, random, users);
    await judge(run, round, "concurrent calls on one entry", play);
  }
}

/** Two user ids for one run, its own so that no other run's entries are listed with them. @internal */
export function roundUsers(run: ConcurrencyRun): string[] {
  const tag = run.randomKey().slice(0, 8);
  return ["ann", "b\u0000\ufdd0"].map((name) => `${name}-${tag}`);
}

/** Plays one round; a failure, found or thrown, names the seed and the round. @internal */
export async function judge(
  run: ConcurrencyRun,
  round: number,
  subject: string,
  play: () => Promise<Verdict>,
): Promise<void> {
  let verdict: Verdict;
  let cause: unknown;
  try {
    verdict = await play();
  } catch (err) {
    cause = err;
    verdict = { wrong: `a call failed: ${String(err)}`, trace: [] };
  }
  if (!verdict.wrong) return;
  throw new Error(
    `${run.store.name}: ${subject}: ${verdict.wrong} (seed ${run.seed}, round ${round}; replay with SESSIONKIT_STORE_SEED=${run.seed})\n  ${verdict.trace.join("\n  ")}`,
    { cause },
  );
}

/** A call of a round: what it is, how to make it, and (for a write) what it does to the entry. */
interface Call {
  label: string;
  call: () => Promise<unknown>;
  /** For a write: the entry after it, given its answer; `undefined` when that answer cannot follow. */
  effect?: (before: Entry, answer: unknown) => Entry | undefined;
}

async function callRound(
  run: ConcurrencyRun,
  random: Random,
  users: readonly string[],
): Promise<Verdict> {
  const { store } = run;
  const key = run.randomKey();
  const names = pickNames(random);
  const at = run.now();
  const start: StoredSession = { data: {}, meta: { createdAt: at, touchedAt: at, renewedAt: at } };
  for (const name of names) if (random.chance(0.7)) put(start.data, name, randomValue(random));
  if (random.chance(0.7)) start.meta.userId = random.pick(users);
  for (const field of FLASH_FIELDS)
    if (random.chance(0.2)) start.meta[field] = ["info", randomString(random)];
  const startExpiresAt = at + HOUR_MS;
  let deadline = startExpiresAt;
  await store.set(key, start, deadline);

  // Half the rounds race removals against the writes; the rest keep the entry throughout.
  const kinds = random.chance(0.5) ? 6 : 4;
  const calls = Array.from({ length: 2 + random.int(5) }, (_, i): Call => {
    // Each write asks its own deadline, so the one left names the write that came last.
    deadline += 1 + random.int(1000);
    const expiresAt = deadline;
    const until = `until +${expiresAt - at}`;
    const roll = random.int(kinds);
    if (roll < 2) {
      const patch = randomPatch(random, users, at, names);
      return {
        label: `#${i} patch ${canonical(patch)} ${until}`,
        call: () => store.patch(key, patch, expiresAt),
        effect: written(expiresAt, (record) => patchModel(record, patch)),
      };
    }
    if (roll < 3) {
      const touchedAt = at + 1 + random.int(1000);
      return {
        label: `#${i} touch ${touchedAt - at} ${until}`,
        call: () => store.touch(key, touchedAt, expiresAt),
        effect: written(expiresAt, (record) => {
          record.meta.touchedAt = touchedAt;
        }),
      };
    }
    if (roll < 4) return { label: `#${i} get`, call: () => store.get(key) };
    const deleteByUser = store.deleteByUser?.bind(store);
    if (roll === 5 && deleteByUser) {
      const user = random.pick(users);
      const except = random.chance(0.25) ? [key] : [];
      return {
        label: `#${i} deleteByUser ${canonical(user)}${except.length > 0 ? " except it" : ""}`,
        call: () => deleteByUser(user, except),
        effect: (entry, count) => {
          const hit = entry.record?.meta.userId === user && except.length === 0;
          if (count !== (hit ? 1 : 0)) return undefined;
          return hit ? { ...entry, record: null } : entry;
        },
      };
    }
    return {
      label: `#${i} delete`,
      call: () => store.delete(key),
      effect: (entry, removed) => {
        // `void` is "unknown" (a store written before delete said), so it fits either way.
        if (removed !== undefined && removed !== (entry.record !== null)) return undefined;
        return { ...entry, record: null };
      },
    };
  });
  const tick = ticker();
  const answers = await Promise.all(calls.map(({ call }) => tick<unknown>(call)));
  const final = await store.get(key);
  const list = store.listByUser?.bind(store);
  const listed = list && (await Promise.all(users.map((user) => list(user))));
  await store.delete(key);

  const trace = [`start ${canonical(start)}`];
  const steps: Step<Entry>[] = [];
  const reads: Read[] = [];
  calls.forEach(({ label, effect }, i) => {
    const { value, ...span } = answers[i] as (typeof answers)[number];
    trace.push(`${label} -> ${canonical(value)}`);
    if (!effect) reads.push({ ...span, seen: canonical(value ?? null) });
    else steps.push({ ...span, apply: (before) => effect(before, value) });
  });
  // Listed under the final user only, as the final get has it; its deadline is the last write's.
  let wrong = "";
  let endExpiresAt: number | undefined;
  listed?.forEach((entries, u) => {
    const user = users[u] as string;
    const ours = entries.filter((entry) => entry.key === key);
    const entry = ours[0];
    const name = `listByUser(${canonical(user)})`;
    if (ours.length !== (final?.meta.userId === user ? 1 : 0))
      wrong ||= `${name} lists the entry ${ours.length} times`;
    else if (entry && canonical({ data: entry.data, meta: entry.meta }) !== canonical(final))
      wrong ||= `${name} differs from get: ${canonical(entry)}`;
    else if (entry) endExpiresAt = entry.expiresAt;
  });
  const kept = endExpiresAt === undefined ? "" : ` until +${endExpiresAt - at}`;
  trace.push(`end   ${canonical(final) ?? "absent"}${kept}`);
  const end = canonical(final ?? null);
  const explained = explains<Entry>({
    start: { record: start, expiresAt: startExpiresAt },
    steps,
    reads,
    view: (entry) => canonical(entry.record),
    ends: (entry) =>
      canonical(entry.record) === end &&
      (endExpiresAt === undefined || entry.expiresAt === endExpiresAt),
  });
  return {
    wrong: wrong || (explained ? "" : "no serial order of the writes explains the answers"),
    trace,
  };
}

/**
 * The effect of a `patch` or `touch`: `change` and the new deadline where the entry is there
 * (answered `true`), nothing where it was removed before (answered `false`).
 */
function written(
  expiresAt: number,
  change: (record: StoredSession) => void,
): NonNullable<Call["effect"]> {
  return (entry, applied) => {
    if (applied !== (entry.record !== null)) return undefined;
    if (!entry.record) return entry;
    change(entry.record);
    return { record: entry.record, expiresAt };
  };
}

/**
 * Whether some order of `steps` explains a history: each step's answer fits the state it finds,
 * the last state is one `ends` accepts, each read saw `view` of the state after a prefix of that
 * order, and the order and the prefixes keep real time (a step that ended before another began
 * comes first; a read sees every step that ended before it began, none begun after it ended).
 *
 * A depth-first search over orders. Reads are matched as the prefix grows (a read's window opens
 * once every step that ended before it began is placed, and closes at the first step begun after
 * it ended: closed unmatched, the branch is dead), so a branch is known by the steps placed, the
 * reads matched and the state; each such node is searched once. Steps that commute (two
 * regenerates' writes of their new records) would otherwise make a failing round search every
 * permutation of them before it could say so. @internal
 */
export function explains<S>(history: {
  start: S;
  steps: readonly Step<S>[];
  reads: readonly Read[];
  view: (state: S) => string;
  ends: (state: S) => boolean;
}): boolean {
  const { steps, reads, view } = history;
  const bits = (keep: (step: Step<S>) => boolean) =>
    steps.reduce((mask, step, s) => (keep(step) ? mask | (1 << s) : mask), 0);
  // Per read: the steps that must come before what it saw, and those that must come after.
  const windows = reads.map((read) => ({
    before: bits((step) => step.end < read.start),
    after: bits((step) => step.start > read.end),
    seen: read.seen,
  }));
  const all = (1 << steps.length) - 1;
  const everyRead = (1 << reads.length) - 1;
  const tried = new Set<string>();
  /** `matched` with the reads that see `seen` now, or -1 when a read's window closed unmatched. */
  const match = (placed: number, matched: number, seen: string): number => {
    let now = matched;
    for (const [r, window] of windows.entries()) {
      if (now & (1 << r)) continue;
      if (placed & window.after) return -1;
      if ((placed & window.before) === window.before && window.seen === seen) now |= 1 << r;
    }
    return now;
  };
  const search = (state: S, placed: number, matched: number): boolean => {
    if (placed === all) return matched === everyRead && history.ends(state);
    const node = `${placed} ${matched} ${canonical(state)}`;
    if (tried.has(node)) return false;
    tried.add(node);
    for (const [s, step] of steps.entries()) {
      if (placed & (1 << s)) continue;
      if (step.follows !== undefined && !(placed & (1 << step.follows))) continue;
      const early = steps.some(
        (other, o) => o !== s && !(placed & (1 << o)) && other.end < step.start,
      );
      if (early) continue;
      const next = step.apply(JSON.parse(JSON.stringify(state)) as S);
      if (next === undefined) continue;
      const now = placed | (1 << s);
      const seen = match(now, matched, view(next));
      if (seen >= 0 && search(next, now, seen)) return true;
    }
    return false;
  };
  const first = match(0, 0, view(history.start));
  return first >= 0 && search(history.start, 0, first);
}

/**
 * `store` with each call put off by 0 to 7 microtask turns, drawn from a generator of its own (so
 * the round's operations stay those of the seed). A store that answers at once (memory, SQLite)
 * would otherwise apply concurrent calls in the order they were made, and the window between two
 * store calls of one commit (a regenerate writes the new record, then removes the old) would never
 * meet another request's call. On the memory store the interleaving stays a function of the seed.
 * @internal
 */
export function jittered(store: SessionStore, seed: number): SessionStore {
  const random = generator(seed ^ JITTER_SALT);
  return new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        for (let turns = random.int(8); turns > 0; turns--) await undefined;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Any constant: it only keeps the jitter's numbers apart from the operations'. */
const JITTER_SALT = 0x5bd1e995;

/** A few distinct data names for one round: few, so that concurrent writes overlap. @internal */
export function pickNames(random: Random): string[] {
  const pool = [...DATA_KEYS];
  return Array.from(
    { length: NAMES_PER_ROUND },
    () => pool.splice(random.int(pool.length), 1)[0] as string,
  );
}

/** Times calls by one counter: a call's start tick is taken as it begins, its end as it answers. @internal */
export function ticker() {
  let tick = 0;
  return async <T>(call: () => Promise<T>): Promise<{ value: T } & Span> => {
    const start = ++tick;
    const value = await call();
    return { value, start, end: ++tick };
  };
}
