import { createSessions, type Sessions } from "../manager.js";
import type { SessionState } from "../session.js";
import type { SessionPatch, SessionStore, StoredSession } from "../stores/store.js";
import { type Action, runActions, visit } from "./store-differential.js";
import {
  canonical,
  DATA_KEYS,
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
 * operations; the interleaving is the server's) and lists the round's calls and answers.
 *
 * `checkConcurrentCalls`, on the store: `patch` (sets and deletes over 3 data names shared by the
 * round, unicode, "__proto__"-like and NUL-holding ones among them, and meta changes: touchedAt,
 * userId, flash, label, ...), `touch` and `get`, all started before any answers. Checked:
 * - every `patch` and `touch` resolves `true` (the entry is live throughout);
 * - some order of the patches and touches, applied to the entry as written, gives exactly the
 *   record (data and meta) the final `get` returns: so no write is lost in part or whole, and a
 *   touch, which may change only `touchedAt`, never drops or reverts what a patch wrote;
 * - each concurrent `get` returns the record after some prefix of that SAME order (all calls
 *   overlap in time, so any prefix is allowed);
 * - with `listByUser`, for each user of the round: the entry is listed under the user its final
 *   meta names and under no other, as the final `get` returned it, and with the deadline of the
 *   last write of the order (every write asks a different deadline, so this pins which came last).
 *
 * `checkConcurrentRequests`, through `createSessions`: a session is created and committed; then
 * each request loads it with the same cookie, does random `set`, `delete`, `update`, `clear`,
 * `flash` and `flashes` over 3 shared names, and commits. Some requests start only once an earlier
 * one has loaded or committed, so loads also see other requests' writes. A request's effect is
 * modelled from the record it loaded, as the manager's commit sends it: a patch setting each data
 * key it wrote to its final value and deleting the rest of those (`clear` counts every key it saw,
 * so a key another request added meanwhile survives), with `touchedAt` and, if flashes changed,
 * the whole flash object; nothing written but a touch due: `touchedAt` only; else nothing.
 * Checked: every load finds the session and no commit finds its record gone; some order of the
 * effects that keeps real time (a commit that ended before another began comes first) gives
 * exactly the record (data and meta) the store then holds; and each request loaded the record
 * after a prefix of that order that real time allows (commits that ended before its load began are
 * in it; those begun after its load ended are not). Loads are matched each on its own, so the
 * order between two loads is not checked: weaker than linearizability, so a linearizable store
 * never fails it.
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
/** The requests' manager touches a record this long after its last write. */
const TOUCH_INTERVAL_MS = 60_000;
const NAMES_PER_ROUND = 3;
const LEVELS = ["info", "error"];

/** One write of a history: how it changes the record, the deadline it asks, when it ran. */
interface Write extends Span {
  apply: (session: StoredSession) => void;
  expiresAt?: number;
}
/** One read of a history: what it saw (canonical), when it ran. */
interface Read extends Span {
  seen: string;
}
/** Ticks of one counter, taken as a call starts and as its answer arrives. */
interface Span {
  start: number;
  end: number;
}

/** Concurrent patch, touch and get calls on one entry; throws when no serial order explains them. */
export async function checkConcurrentCalls(run: ConcurrencyRun): Promise<void> {
  const random = generator(run.seed);
  const tag = run.randomKey().slice(0, 8);
  const users = ["ann", "b\u0000\ufdd0"].map((name) => `${name}-${tag}`);
  for (let round = 0; round < run.rounds; round++)
    await judge(run, round, "concurrent calls on one entry", () => callRound(run, random, users));
}

/** Concurrent requests of one session through the manager; throws when no serial order explains them. */
export async function checkConcurrentRequests(run: ConcurrencyRun): Promise<void> {
  const random = generator(run.seed);
  const sessions = createSessions({
    secret: run.secret,
    store: run.store,
    now: run.now,
    touchInterval: TOUCH_INTERVAL_MS / 1000, // a number is seconds
  });
  for (let round = 0; round < run.rounds; round++) {
    const play = () => requestRound(run, sessions, random);
    await judge(run, round, "concurrent requests of one session", play);
  }
}

/** What a round found wrong (empty: nothing), and the calls and answers that show it. */
interface Verdict {
  wrong: string;
  trace: string[];
}

/** Plays one round; a failure, found or thrown, names the seed and the round. */
async function judge(
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
  if (random.chance(0.3)) start.meta.flash = { info: [randomString(random)] };
  const startExpiresAt = at + HOUR_MS;
  let deadline = startExpiresAt;
  await store.set(key, start, deadline);

  const calls = Array.from({ length: 2 + random.int(5) }, (_, i) => {
    // Each write asks its own deadline, so the one left names the write that came last.
    deadline += 1 + random.int(1000);
    const expiresAt = deadline;
    const until = `until +${expiresAt - at}`;
    const roll = random.int(4);
    if (roll < 2) {
      const patch = randomPatch(random, users, at, names);
      const call = () => store.patch(key, patch, expiresAt);
      return { label: `#${i} patch ${canonical(patch)} ${until}`, call, patch, expiresAt };
    }
    if (roll < 3) {
      const touchedAt = at + 1 + random.int(1000);
      const patch: SessionPatch = { set: {}, delete: [], meta: { touchedAt } };
      const call = () => store.touch(key, touchedAt, expiresAt);
      return { label: `#${i} touch ${touchedAt - at} ${until}`, call, patch, expiresAt };
    }
    return { label: `#${i} get`, call: () => store.get(key), patch: undefined, expiresAt };
  });
  const tick = ticker();
  const answers = await Promise.all(calls.map(({ call }) => tick<unknown>(call)));
  const final = await store.get(key);
  const list = store.listByUser?.bind(store);
  const listed = list && (await Promise.all(users.map((user) => list(user))));
  await store.delete(key);

  const trace = [`start ${canonical(start)}`];
  const writes: Write[] = [];
  const reads: Read[] = [];
  let wrong = "";
  calls.forEach(({ label, patch, expiresAt }, i) => {
    const { value, ...span } = answers[i] as (typeof answers)[number];
    trace.push(`${label} -> ${canonical(value)}`);
    if (!patch) reads.push({ ...span, seen: canonical(value) });
    else if (value !== true) wrong ||= `${label.split(" ", 2).join(" ")} resolved ${value}`;
    else writes.push({ ...span, apply: (s) => patchModel(s, patch), expiresAt });
  });
  // Listed under the final user only, as the final get has it; its deadline is the last write's.
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
  trace.push(`end   ${canonical(final)}${kept}`);
  const end = canonical(final);
  const explained = explains({ start, startExpiresAt, writes, reads, end, endExpiresAt });
  return {
    wrong: wrong || (explained ? "" : "no serial order of the writes explains the answers"),
    trace,
  };
}

async function requestRound(
  run: ConcurrencyRun,
  sessions: Sessions,
  random: Random,
): Promise<Verdict> {
  const names = pickNames(random);
  const first: Action[] = names
    .filter((_, i) => i === 0 || random.chance(0.6))
    .map((key) => ({ kind: "set", key, value: randomValue(random) }));
  if (random.chance(0.4))
    first.push({ kind: "flash", level: random.pick(LEVELS), message: randomString(random) });
  const browser = { cookies: new Map<string, string>(), tokens: [] };
  const created = await visit(sessions, browser, first);
  const key = (created.after as SessionState).origin?.key;
  const cookie = [...browser.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  // Past the touch interval: a request that writes nothing touches, racing the others' patches.
  run.advance(TOUCH_INTERVAL_MS);
  const now = run.now();
  const start = key === undefined ? undefined : await run.store.get(key);
  if (key === undefined || !start)
    return { wrong: "the session just created is not in the store", trace: [] };

  const requests = Array.from({ length: 2 + random.int(5) }, (_, i) => ({
    actions: Array.from({ length: random.int(4) }, () => requestAction(random, names)),
    // Now and then a request waits for an earlier one to load, or to commit.
    after: i > 0 && random.chance(0.4) ? random.int(i) : undefined,
    stage: random.chance(0.5) ? ("load" as const) : ("commit" as const),
  }));
  const tick = ticker();
  const loads: Promise<{ session: SessionState; seen: string; fresh: boolean } & Span>[] = [];
  const commits: Promise<{ gone: boolean } & Span>[] = [];
  for (const { after, stage, actions } of requests) {
    const load = (async () => {
      if (after !== undefined) await (stage === "load" ? loads[after] : commits[after]);
      const { value, ...span } = await tick(() => sessions.load(new Headers({ cookie })));
      const session = value as SessionState;
      const seen = canonical({ data: session.data, meta: session.meta });
      return { session, seen, fresh: session.isNew, ...span };
    })();
    loads.push(load);
    commits.push(
      load.then(async ({ session }) => {
        await runActions(session, actions, []);
        const { value: _, ...span } = await tick(() => sessions.commit(session, new Headers()));
        // A commit that finds the record gone starts the request on a new session.
        return { gone: session.isNew, ...span };
      }),
    );
  }
  const loaded = await Promise.all(loads);
  const committed = await Promise.all(commits);
  const final = await run.store.get(key);
  await run.store.delete(key);

  const trace = [`start ${canonical(start)}`];
  const writes: Write[] = [];
  let wrong = "";
  requests.forEach(({ actions, after, stage }, i) => {
    const { seen, fresh } = loaded[i] as (typeof loaded)[number];
    const commit = committed[i] as (typeof committed)[number];
    const effect = effectOf(JSON.parse(seen), actions, now);
    const waits = after === undefined ? "" : ` (after #${after}'s ${stage})`;
    const label = `#${i}${waits} saw ${seen}, did ${canonical(actions)}: ${canonical(effect)}`;
    trace.push(label);
    if (fresh) wrong ||= `request #${i} loaded a new session`;
    if (commit.gone) wrong ||= `request #${i}'s commit found no record`;
    if (effect) writes.push({ ...commit, apply: (s) => patchModel(s, effect) });
  });
  trace.push(`end   ${canonical(final)}`);
  const explained = explains({ start, writes, reads: loaded, end: canonical(final) });
  return {
    wrong: wrong || (explained ? "" : "no serial order of the requests explains the stored record"),
    trace,
  };
}

/**
 * The patch a request's commit sends, given the record it loaded and what it did (a touch as the
 * patch of `touchedAt` it amounts to); `undefined` when it sends nothing.
 */
function effectOf(
  seen: StoredSession,
  actions: readonly Action[],
  now: number,
): SessionPatch | undefined {
  const data = seen.data;
  let flash = seen.meta.flash;
  let flashChanged = false;
  let cleared = false;
  const written = new Set<string>();
  const change = (name: string, value: unknown) => {
    if (value !== undefined) put(data, name, value);
    else if (Object.hasOwn(data, name)) delete data[name];
    else return; // deleting what is not there is no change
    written.add(name);
  };
  for (const action of actions) {
    if (action.kind === "set") change(action.key, action.value);
    else if (action.kind === "delete") change(action.key, undefined);
    else if (action.kind === "update")
      for (const [name, value] of Object.entries(action.changes)) change(name, value);
    else if (action.kind === "clear") {
      for (const name of Object.keys(data)) change(name, undefined);
      cleared = true;
      flashChanged ||= flash !== undefined;
      flash = undefined;
    } else if (action.kind === "flash") {
      const messages = flash && Object.hasOwn(flash, action.level) ? flash[action.level] : [];
      flash = { ...flash, [action.level]: [...(messages ?? []), action.message] };
      flashChanged = true;
    } else if (action.kind === "flashes" && flash && Object.hasOwn(flash, action.level)) {
      if (flash[action.level]?.length === 0) continue;
      const { [action.level]: _, ...rest } = flash;
      flash = Object.keys(rest).length > 0 ? rest : undefined;
      flashChanged = true;
    }
  }
  const meta: SessionPatch["meta"] = { touchedAt: now };
  if (flashChanged) meta.flash = flash ?? null;
  if (written.size > 0 || flashChanged || cleared) {
    const set: Record<string, unknown> = {};
    const remove: string[] = [];
    for (const name of written) {
      if (Object.hasOwn(data, name)) put(set, name, data[name]);
      else remove.push(name);
    }
    return { set, delete: remove, meta };
  }
  const touchDue = now - seen.meta.touchedAt >= TOUCH_INTERVAL_MS;
  return touchDue ? { set: {}, delete: [], meta } : undefined;
}

/**
 * Whether some order of `writes` explains the history: applied to `start` in that order they leave
 * `end` (and `endExpiresAt`, when known, is the deadline of the last), each read saw the record
 * after a prefix of that order, and the order and the prefixes keep real time.
 */
function explains(history: {
  start: StoredSession;
  startExpiresAt?: number;
  writes: readonly Write[];
  reads: readonly Read[];
  end: string;
  endExpiresAt?: number;
}): boolean {
  const { writes, reads } = history;
  const order: number[] = [];
  const states = [canonical(history.start)];
  const readFits = (read: Read) => {
    let from = 0;
    let to = order.length;
    order.forEach((w, position) => {
      const write = writes[w] as Write;
      if (write.end < read.start) from = Math.max(from, position + 1);
      if (write.start > read.end) to = Math.min(to, position);
    });
    for (let p = from; p <= to; p++) if (states[p] === read.seen) return true;
    return false;
  };
  const search = (state: StoredSession): boolean => {
    if (order.length === writes.length) {
      const last = order.length > 0 ? writes[order.at(-1) as number]?.expiresAt : undefined;
      const expiresAt = order.length > 0 ? last : history.startExpiresAt;
      return (
        states.at(-1) === history.end &&
        (history.endExpiresAt === undefined || expiresAt === history.endExpiresAt) &&
        reads.every(readFits)
      );
    }
    for (const [w, write] of writes.entries()) {
      if (order.includes(w)) continue;
      // A write that ended before this one began must come before it.
      const early = writes.some(
        (other, o) => o !== w && !order.includes(o) && other.end < write.start,
      );
      if (early) continue;
      const next = JSON.parse(JSON.stringify(state)) as StoredSession;
      write.apply(next);
      order.push(w);
      states.push(canonical(next));
      if (search(next)) return true;
      order.pop();
      states.pop();
    }
    return false;
  };
  return search(history.start);
}

/** A request's action on the round's names, as a handler would do it. */
function requestAction(random: Random, names: readonly string[]): Action {
  const roll = random.int(100);
  if (roll < 35) return { kind: "set", key: random.pick(names), value: randomValue(random) };
  if (roll < 50) return { kind: "delete", key: random.pick(names) };
  if (roll < 68) {
    const changes: Record<string, unknown> = {};
    for (let i = random.int(2); i >= 0; i--)
      put(changes, random.pick(names), random.chance(0.3) ? undefined : randomValue(random));
    return { kind: "update", changes };
  }
  if (roll < 76) return { kind: "clear" };
  if (roll < 90)
    return { kind: "flash", level: random.pick(LEVELS), message: randomString(random) };
  return { kind: "flashes", level: random.pick(LEVELS) };
}

/** A few distinct data names for one round: few, so that concurrent writes overlap. */
function pickNames(random: Random): string[] {
  const pool = [...DATA_KEYS];
  return Array.from(
    { length: NAMES_PER_ROUND },
    () => pool.splice(random.int(pool.length), 1)[0] as string,
  );
}

/** Times calls by one counter: a call's start tick is taken as it begins, its end as it answers. */
function ticker() {
  let tick = 0;
  return async <T>(call: () => Promise<T>): Promise<{ value: T } & Span> => {
    const start = ++tick;
    const value = await call();
    return { value, start, end: ++tick };
  };
}
