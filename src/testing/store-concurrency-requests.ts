import { flashFieldsOf, isFlashField, isFlashMessage } from "../internal/flash.js";
import { createSessions, type Sessions } from "../manager.js";
import type { InvalidReason } from "../options.js";
import type { Session, SessionState } from "../session.js";
import type { FlashField, SessionMeta, SessionPatch, StoredSession } from "../stores/store.js";
import {
  type ConcurrencyRun,
  explains,
  jittered,
  judge,
  pickNames,
  roundUsers,
  type Span,
  type Step,
  ticker,
  type Verdict,
} from "./store-concurrency.js";
import { type Action, runActions, visit } from "./store-differential.js";
import {
  canonical,
  generator,
  patchModel,
  put,
  type Random,
  randomString,
  randomValue,
  storeKeyOf,
} from "./store-model.js";

/**
 * `checkConcurrentRequests`: "no lost updates" for 2 to 6 concurrent requests of one session
 * through `createSessions`, explained by a serial order as store-concurrency.ts explains store
 * calls. A session is created and committed (bound to one of two users half the time); then each
 * request loads it with the same cookie, does random `set`, `delete`, `update`, `clear`, `flash`
 * and `flashes` over 3 shared names, and commits. In most rounds requests also `destroy()` it,
 * `regenerate()` it (without options, with `{ userId }` of either user, or `{ userId: null }`), and
 * now and then `sessions.destroyByUser` of either user ("sign out everywhere" from another device,
 * or "sign out my other devices" from a tab that loaded the session before the round) races them.
 * Some requests start only once an earlier one has loaded or committed.
 *
 * A request's commit is modelled from the record it loaded and what it did, as the manager sends it
 * (the model does not read the session's change log):
 * - nothing written, no touch due: no store write and no Set-Cookie;
 * - writes (or a touch due) on the loaded session: a patch of the record, setting each data key it
 *   wrote to its final value and deleting the rest of those (`clear` counts every key it saw, so a
 *   key another request added meanwhile survives), with `touchedAt`, each flash message it added
 *   (a meta field of its own) and a removal of exactly each message it read or cleared (so a
 *   message another request added meanwhile survives both); where the record is gone by then, the
 *   request is abandoned;
 * - `regenerate`: a record written under the new id, then the loaded record removed; where that
 *   record is gone by then, the request is abandoned and the new record removed again. The new
 *   record is this request's changes (data keys written, flashes, user, `renewedAt`, lineage) on
 *   the record as the store holds it at the move (gone then: abandoned before any write), or, after
 *   a switch of user or an unbinding, the request's own emptied record. Some requests commit only
 *   after an earlier one has, so a move that wrote the record as loaded would show. In a store with
 *   `move`, a regenerate keeping the data is one step (read, write, removal at once), so a write of
 *   another request that lands between its read and its removal shows too;
 * - `destroy`: the loaded record removed, whatever else happened meanwhile; anything written after
 *   it is a new session under a new id. A destroy that comes after a regenerate of the same session
 *   finds the loaded record gone and removes, for a session bound to a user, that user's records of
 *   the same lineage (`meta.lineage`, which a move makes of the key it moved from): the session
 *   signed out wherever it moved;
 * - a request whose load found no session (a removal came first): its writes are a new session.
 * An abandoned request ends on a new, empty session whose `invalidReason` is "unknown-session", and
 * its response sets no cookie (the cookie it came with may belong to a session that moved on).
 * `destroyByUser` removes each record then bound to its user and counts them; with `except`, it
 * keeps the excepted session's record under its key and every record of its lineage (each record
 * a move of it wrote).
 *
 * Checked: a load that finds no session says "unknown-session"; each response's Set-Cookie is what
 * the commit's kind calls for (none when abandoned or when nothing was written, only clearing lines
 * for a destroy, a new token for a new record); and some order of the commits' store writes that
 * keeps real time (the two writes of a regenerate, or of a destroy that wrote on, in their order)
 * gives exactly what the store then holds under the loaded id and every new id a request wrote or
 * tried to write (a removed record never comes back, at most one regenerate of it wins, and the
 * loser's record is gone too), with every abandonment and `destroyByUser` count where that order
 * puts it, and each request loaded the record (or nothing) after a prefix of it that real time
 * allows. Loads are matched each on its own, so the order between two loads is not checked. After
 * the round: the first cookie, and every cookie a response set, opens exactly the record the store
 * holds for its id, or a new session with "unknown-session" where there is none; and, with
 * `listByUser`, `sessions.listByUser` of each user lists exactly the live records bound to it.
 *
 * Flash messages: the session names each message's field with a random id the model cannot know,
 * so every message of a round is made unique (its random text and "#" and a counter), the model
 * names its field by that counter (`flash:#3`), and each record the store or a load showed is
 * compared with the model's after its fields are renamed so, by content. A message held twice, or
 * one the round never added, keeps its real field and so differs. The content comparison is of
 * sets; order is checked on every record seen apart from it (`flashOrderIssue`): where the order
 * of two messages' adds is known (one request's, in its order; the first visit's before the rest;
 * a request's before another's whose load ended after its commit began), their ids must sort so.
 */

/** The requests' manager touches a record this long after its last write. */
const TOUCH_INTERVAL_MS = 60_000;
const LEVELS = ["info", "error"];

/** Concurrent requests of one session through the manager; throws when no serial order explains them. */
export async function checkConcurrentRequests(run: ConcurrencyRun): Promise<void> {
  const random = generator(run.seed);
  const users = roundUsers(run);
  const store = jittered(run.store, run.seed);
  const sessions = createSessions({
    secret: run.secret,
    store,
    now: run.now,
    touchInterval: TOUCH_INTERVAL_MS / 1000, // a number is seconds
  });
  for (let round = 0; round < run.rounds; round++) {
    const play = () => requestRound({ ...run, store }, sessions, random, users);
    await judge(run, round, "concurrent requests of one session", play);
  }
}

/** The store's records of one round by key: what the search orders the commits over. */
type Records = Record<string, StoredSession>;

/** What a request's commit does, given the record it loaded (see the module's comment). */
type Plan =
  | { kind: "none" }
  | { kind: "patch"; patch: SessionPatch }
  /** `patch`: a move keeping the data, applied to the record as the store then holds it. */
  | { kind: "move"; record: StoredSession; patch?: SessionPatch }
  /** `user` and `lineage`: the destroyed record's, for a sign-out that finds it moved. */
  | { kind: "destroy"; record: StoredSession | undefined; user?: string; lineage?: string }
  | { kind: "create"; record: StoredSession };

/** One request of a round: what it does, and whether it waits for an earlier one. */
interface Request {
  actions: Action[];
  after: number | undefined;
  stage: "load" | "commit";
  /** An earlier request whose commit this one's waits for, as a slow handler's would. */
  hold: number | undefined;
}

/** "Sign out everywhere" of a round, racing its requests. */
interface SignOut {
  user: string;
  after: number | undefined;
  stage: "load" | "commit";
  /**
   * "Sign out my other devices" from a tab that loaded the session before the round: the session
   * is kept wherever the round moves it.
   */
  except: boolean;
}

/** What a request's load found (`seen`: the record, canonical, or "null"), and when. */
interface Loaded extends Span {
  session: SessionState;
  seen: string;
  reason: InvalidReason | undefined;
}

/** A round's flash message: the model's field for it, who added it (`FIRST`: the first visit). */
interface Added {
  field: FlashField;
  owner: number;
  /** Its place among the round's messages, which grows in the order one request adds them. */
  n: number;
}

const FIRST = -1;

/** What a request's commit sent: the id it wrote a new record under (if any), its Set-Cookie lines. */
interface Committed extends Span {
  id: string;
  lines: string[];
}

async function requestRound(
  run: ConcurrencyRun,
  sessions: Sessions,
  random: Random,
  users: readonly string[],
): Promise<Verdict> {
  const { store } = run;
  const names = pickNames(random);
  const first: Action[] = names
    .filter((_, i) => i === 0 || random.chance(0.6))
    .map((key) => ({ kind: "set", key, value: randomValue(random) }));
  if (random.chance(0.4))
    first.push({ kind: "flash", level: random.pick(LEVELS), message: randomString(random) });
  // Signed in half the time, so that a regenerate may keep the user, switch it or unbind it.
  if (random.chance(0.5)) first.unshift({ kind: "regenerate", userId: random.pick(users) });
  const added = new Map<string, Added>();
  tagFlashes(first, FIRST, added);
  const browser = { cookies: new Map<string, string>(), tokens: [] };
  const created = await visit(sessions, browser, first);
  const loadedKey = (created.after as SessionState).origin?.key;
  const cookie = [...browser.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  // Past the touch interval: a request that writes nothing touches, racing the others' patches.
  run.advance(TOUCH_INTERVAL_MS);
  const now = run.now();
  const start = loadedKey === undefined ? undefined : await store.get(loadedKey);
  if (loadedKey === undefined || !start)
    return { wrong: "the session just created is not in the store", trace: [] };

  // Most rounds race removals (destroy, regenerate, sign-out everywhere) against the writes.
  const removals = random.chance(0.6) ? users : [];
  const requests: Request[] = Array.from({ length: 2 + random.int(5) }, (_, i) => ({
    actions: Array.from({ length: random.int(4) }, () => requestAction(random, names, removals)),
    // Now and then a request waits for an earlier one to load, or to commit.
    after: i > 0 && random.chance(0.4) ? random.int(i) : undefined,
    stage: random.chance(0.5) ? "load" : "commit",
    // Loaded before that one committed, committing after it: what a move must not write over.
    hold: i > 0 && random.chance(0.3) ? random.int(i) : undefined,
  }));
  for (const [i, { actions }] of requests.entries()) tagFlashes(actions, i, added);
  // Mostly of the session's own user: a sign-out landing between a regenerate's two store calls.
  const signOut: SignOut | undefined =
    removals.length > 0 && store.deleteByUser && random.chance(0.5)
      ? {
          user: (random.chance(0.8) && start.meta.userId) || random.pick(users),
          after: random.chance(0.5) ? random.int(requests.length) : undefined,
          stage: random.chance(0.5) ? "load" : "commit",
          except: random.chance(0.4),
        }
      : undefined;
  const keeper = signOut?.except ? await sessions.load(new Headers({ cookie })) : undefined;

  const { loaded, committed, removed } = await serve(sessions, cookie, requests, signOut, keeper);
  // The model's view of a record: its flash fields named by content (see the module's comment).
  const named = (record: StoredSession | undefined) => record && nameFlashes(record, added);
  // Whether all flash adds of `a` came before all of `b`'s: `b` ran its actions after its load.
  const before = (a: number, b: number) =>
    a === FIRST
      ? b !== FIRST
      : b !== FIRST && (committed[a] as Committed).start < (loaded[b] as Loaded).end;
  const orderIssue = (what: string, record: StoredSession | undefined) =>
    flashOrderIssue(what, record, added, before);
  // Every record the round may have left: the loaded one and each a request wrote or tried to.
  const newKeys = await Promise.all(committed.map(({ id }) => storeKeyOf(id)));
  const keys = [...new Set([loadedKey, ...newKeys])];
  const loadedLineage = await storeKeyOf(`lineage:${loadedKey}`);
  const finals = new Map<string, StoredSession | undefined>();
  for (const key of keys) finals.set(key, await store.get(key));
  let wrong = await afterRound(run, sessions, users, finals, [
    { name: "the first cookie", cookie, key: loadedKey },
    ...(await Promise.all(
      committed.map(async ({ lines }, i) => ({
        name: `the cookie request #${i} got`,
        cookie: cookieOf(lines),
        // The session as its commit left it: the id the cookie it set must open.
        key: await storeKeyOf((loaded[i] as Loaded).session.id),
      })),
    )),
  ]);
  for (const key of keys) await store.delete(key);
  wrong ||= orderIssue("the record the round started from", start);
  for (const [key, final] of finals) wrong ||= orderIssue(`the record ${key.slice(0, 6)}`, final);
  loaded.forEach(({ seen }, i) => {
    wrong ||= orderIssue(`the record request #${i} loaded`, JSON.parse(seen) ?? undefined);
  });
  const views = loaded.map(({ seen }) => canonical(named(JSON.parse(seen) ?? undefined) ?? null));

  const trace = [`start ${canonical(named(start))}`];
  const steps: Step<Records>[] = [];
  const atomicMove = store.move !== undefined;
  requests.forEach(({ actions, after, stage, hold }, i) => {
    const load = loaded[i] as Loaded;
    const commit = committed[i] as Committed;
    const seen = views[i] as string;
    const plan = planOf(JSON.parse(seen) ?? undefined, actions, now, loadedLineage, added);
    const abandoned = load.session.isNew && (plan.kind === "patch" || plan.kind === "move");
    const waits =
      (after === undefined ? "" : ` (after #${after}'s ${stage})`) +
      (hold === undefined ? "" : ` (commits after #${hold}'s commit)`);
    const outcome = abandoned ? "abandoned" : `${commit.lines.length} Set-Cookie`;
    trace.push(
      `#${i}${waits} saw ${seen}, did ${canonical(actions)}: ${canonical(plan)} -> ${outcome}`,
    );
    wrong ||= answerIssue(i, load, commit, plan, abandoned);
    const key = newKeys[i] as string;
    stepsOf(plan, abandoned, loadedKey, loadedLineage, key, commit, steps, atomicMove);
  });
  if (signOut && removed) {
    const count = removed.value;
    const except = signOut.except ? ", except the first cookie's session" : "";
    trace.push(`destroyByUser(${canonical(signOut.user)}${except}) -> ${count}`);
    steps.push({
      start: removed.start,
      end: removed.end,
      apply: (records) => {
        // Kept by its key, or by the lineage every move of it carries.
        const kept = (k: string) =>
          signOut.except && (k === loadedKey || records[k]?.meta.lineage === loadedLineage);
        const ended = Object.keys(records).filter(
          (k) => records[k]?.meta.userId === signOut.user && !kept(k),
        );
        if (ended.length !== count) return undefined;
        for (const k of ended) delete records[k];
        return records;
      },
    });
  }
  const ends = new Map(keys.map((key) => [key, canonical(named(finals.get(key)) ?? null)]));
  for (const key of keys)
    trace.push(`end ${key.slice(0, 6)} ${finals.get(key) ? ends.get(key) : "absent"}`);
  const explained = explains<Records>({
    start: { [loadedKey]: named(start) as StoredSession },
    steps,
    reads: loaded.map(({ start, end }, i) => ({ seen: views[i] as string, start, end })),
    view: (records) => canonical(records[loadedKey] ?? null),
    ends: (records) => keys.every((key) => canonical(records[key] ?? null) === ends.get(key)),
  });
  return {
    wrong: wrong || (explained ? "" : "no serial order of the requests explains the store"),
    trace,
  };
}

/** Runs the round's requests (and its sign-out) concurrently, each loading with `cookie`. */
async function serve(
  sessions: Sessions,
  cookie: string,
  requests: readonly Request[],
  signOut: SignOut | undefined,
  keeper: Session | undefined,
) {
  const tick = ticker();
  const loads: Promise<Loaded>[] = [];
  const commits: Promise<Committed>[] = [];
  const wait = (after: number | undefined, stage: "load" | "commit") =>
    after === undefined ? undefined : stage === "load" ? loads[after] : commits[after];
  for (const { after, stage, actions, hold } of requests) {
    const load = (async (): Promise<Loaded> => {
      await wait(after, stage);
      const { value, ...span } = await tick(() => sessions.load(new Headers({ cookie })));
      const session = value as SessionState;
      const seen = canonical(session.isNew ? null : { data: session.data, meta: session.meta });
      return { session, seen, reason: session.invalidReason, ...span };
    })();
    loads.push(load);
    commits.push(
      load.then(async ({ session }): Promise<Committed> => {
        await runActions(session, actions, []);
        if (hold !== undefined) await commits[hold];
        const id = session.id;
        const headers = new Headers();
        const { value: _, ...span } = await tick(() => sessions.commit(session, headers));
        return { id, lines: headers.getSetCookie(), ...span };
      }),
    );
  }
  const removing =
    signOut &&
    (async () => {
      await wait(signOut.after, signOut.stage);
      return tick(() =>
        sessions.destroyByUser(signOut.user, keeper ? { except: keeper } : undefined),
      );
    })();
  const loaded = await Promise.all(loads);
  const committed = await Promise.all(commits);
  return { loaded, committed, removed: await removing };
}

/**
 * What is wrong once the round is over: a cookie (the first, or one a response set) that does not
 * open exactly the record the store holds for its id, or a new session with "unknown-session"
 * where there is none; a user whose `listByUser` is not exactly their live records.
 */
async function afterRound(
  run: ConcurrencyRun,
  sessions: Sessions,
  users: readonly string[],
  finals: ReadonlyMap<string, StoredSession | undefined>,
  cookies: ReadonlyArray<{ name: string; cookie: string; key: string }>,
): Promise<string> {
  for (const { name, cookie, key } of cookies) {
    if (!cookie) continue;
    const session = (await sessions.load(new Headers({ cookie }))) as SessionState;
    const final = finals.get(key);
    const opened = session.isNew
      ? `a new session (${session.invalidReason})`
      : canonical({ data: session.data, meta: session.meta });
    const right = final
      ? !session.isNew && (await storeKeyOf(session.id)) === key && opened === canonical(final)
      : session.isNew && session.invalidReason === "unknown-session";
    if (!right) return `${name} opens ${opened}, where the store holds ${canonical(final)}`;
  }
  for (const user of run.store.listByUser ? users : []) {
    const listed = (await sessions.listByUser(user)).map(({ handle }) => handle).sort();
    const live = [...finals.keys()].filter((key) => finals.get(key)?.meta.userId === user).sort();
    if (canonical(listed) !== canonical(live))
      return `listByUser(${canonical(user)}) lists ${listed.length} sessions, ${live.length} live`;
  }
  return "";
}

/**
 * What is wrong with one request's answers that no order can explain: a load that found nothing
 * but not for "unknown-session", an abandoned request that says otherwise, or Set-Cookie lines
 * its commit's kind does not call for.
 */
function answerIssue(
  i: number,
  load: Loaded,
  commit: Committed,
  plan: Plan,
  abandoned: boolean,
): string {
  if (load.seen === "null" && load.reason !== "unknown-session")
    return `request #${i} loaded a new session (${load.reason})`;
  if (abandoned && load.session.invalidReason !== "unknown-session")
    return `request #${i} was abandoned, yet says ${load.session.invalidReason}`;
  const issued = commit.lines.some((line) => !CLEARING.test(line));
  const clears = commit.lines.some((line) => CLEARING.test(line));
  let fits: boolean;
  if (abandoned || plan.kind === "none") fits = commit.lines.length === 0;
  // A patch may send the same token again, when the cookie's Max-Age moves with the deadline.
  else if (plan.kind === "patch") fits = !clears;
  else if (plan.kind === "destroy" && !plan.record) fits = clears && !issued;
  else fits = issued;
  if (fits) return "";
  const what = `${abandoned ? "an abandoned " : ""}${plan.kind}`;
  return `request #${i}'s response sets ${canonical(commit.lines)} after ${what}`;
}

/**
 * Adds the store writes of one request's commit to `steps`, as the search orders them: one for a
 * patch, two in their order for a regenerate (its new record, then the old one's removal, or the
 * new one's when the old was gone) and for a destroy that wrote on. With `atomicMove` (the store
 * has `move`) a regenerate keeping the data is one step: the old record read, patched, written
 * under the new key and removed at once, or, gone, nothing written; no write of another request
 * may then land between its read and its removal.
 */
function stepsOf(
  plan: Plan,
  abandoned: boolean,
  loadedKey: string,
  loadedLineage: string,
  key: string,
  commit: Committed,
  steps: Step<Records>[],
  atomicMove: boolean,
): void {
  const step = (apply: Step<Records>["apply"], follows?: number) =>
    steps.push({ start: commit.start, end: commit.end, apply, follows }) - 1;
  const write = (record: StoredSession) => (records: Records) => {
    records[key] = JSON.parse(JSON.stringify(record)) as StoredSession;
    return records;
  };
  if (plan.kind === "patch") {
    step((records) => {
      const record = records[loadedKey];
      if (!record !== abandoned) return undefined;
      if (record) patchModel(record, plan.patch);
      return records;
    });
  } else if (plan.kind === "move" && plan.patch && atomicMove) {
    const { patch } = plan;
    step((records) => {
      const current = records[loadedKey];
      if (!current !== abandoned) return undefined;
      if (!current) return records;
      const next = JSON.parse(JSON.stringify(current)) as StoredSession;
      patchModel(next, patch);
      records[key] = next;
      delete records[loadedKey];
      return records;
    });
  } else if (plan.kind === "move") {
    const { patch } = plan;
    const written = step(
      patch
        ? (records) => {
            const current = records[loadedKey];
            // Gone at the move's read: abandoned before it writes anything.
            if (!current) return abandoned ? records : undefined;
            const next = JSON.parse(JSON.stringify(current)) as StoredSession;
            patchModel(next, patch);
            records[key] = next;
            return records;
          }
        : write(plan.record),
    );
    step((records) => {
      if (!records[loadedKey] !== abandoned) return undefined;
      delete records[abandoned ? key : loadedKey];
      return records;
    }, written);
  } else if (plan.kind === "destroy") {
    const removal = step((records) => {
      if (records[loadedKey]) delete records[loadedKey];
      else if (plan.user !== undefined) {
        // Moved first by another request: the sign-out ends the user's record of its lineage.
        const lineage = plan.lineage ?? loadedLineage;
        for (const [key, record] of Object.entries(records))
          if (record.meta.userId === plan.user && record.meta.lineage === lineage)
            delete records[key];
      }
      return records;
    });
    if (plan.record) step(write(plan.record), removal);
  } else if (plan.kind === "create") step(write(plan.record));
}

/** A Set-Cookie line that deletes its cookie. */
const CLEARING = /;\s*max-age=0\s*(?:;|$)/i;

/** The cookie header a browser sends back after `lines`, or "" when they set none. */
function cookieOf(lines: readonly string[]): string {
  return lines
    .filter((line) => !CLEARING.test(line))
    .map((line) => line.split(";")[0])
    .join("; ");
}

/**
 * Makes each flash message of `actions` unique in the round (the model tells messages apart by
 * content) and notes the model's field for it and who adds it. A counter that grows in the order
 * the actions are made also grows in the order one request adds its messages.
 */
function tagFlashes(actions: Action[], owner: number, added: Map<string, Added>): void {
  actions.forEach((action, i) => {
    if (action.kind !== "flash") return;
    const n = added.size;
    const message = `${action.message}#${n}`;
    added.set(message, { field: `flash:#${n}`, owner, n });
    actions[i] = { ...action, message };
  });
}

/**
 * `record` with each flash field the round added renamed to the model's field for its message. A
 * message already renamed (held twice), or not the round's, keeps its field, so it shows.
 */
function nameFlashes(record: StoredSession, added: ReadonlyMap<string, Added>): StoredSession {
  const meta: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(record.meta)) {
    const ours = isFlashField(field) && isFlashMessage(value) ? added.get(value[1]) : undefined;
    put(meta, ours && !Object.hasOwn(meta, ours.field) ? ours.field : field, value);
  }
  return { data: record.data, meta: meta as unknown as SessionMeta };
}

/**
 * What is wrong with the order of a real record's flash fields: two messages whose ids sort
 * against the order they were added in, where that order is known (`before(a, b)`: every add of
 * `a` came before any of `b`). Across requests that ran at once it is not: the set alone counts.
 */
function flashOrderIssue(
  what: string,
  record: StoredSession | undefined,
  added: ReadonlyMap<string, Added>,
  before: (a: number, b: number) => boolean,
): string {
  if (!record) return "";
  const messages = flashFieldsOf(record.meta).flatMap((field) => {
    const value: unknown = record.meta[field];
    const ours = isFlashMessage(value) ? added.get(value[1]) : undefined;
    return ours ? [{ message: (value as [string, string])[1], ...ours }] : [];
  });
  // `a` sorts before `b`: wrong where `b` is known to have been added first.
  for (const [i, a] of messages.entries()) {
    for (const b of messages.slice(i + 1)) {
      if (a.owner === b.owner ? b.n > a.n : !before(b.owner, a.owner)) continue;
      return `${what} holds ${canonical(a.message)} before ${canonical(b.message)}, added first`;
    }
  }
  return "";
}

/**
 * What a request's commit does, given the record it loaded (`undefined`: it loaded a new session)
 * and what it did, worked out on plain records as the module's comment says.
 */
function planOf(
  seen: StoredSession | undefined,
  actions: readonly Action[],
  now: number,
  loadedLineage: string,
  added: ReadonlyMap<string, Added>,
): Plan {
  const fresh = (): SessionMeta => ({ createdAt: now, touchedAt: now, renewedAt: now });
  let data = seen ? seen.data : {};
  let meta = seen ? seen.meta : fresh();
  let destroyed = false;
  let signedOut: { user?: string; lineage?: string } = {};
  let moved = false;
  let movesData = true; // false once a regenerate switched user: it starts afresh
  let cleared = false;
  // Flash fields added, read or cleared: each is patched alone, set or removed.
  let flashed = new Set<FlashField>();
  const unflash = (fields: readonly FlashField[]) => {
    for (const field of fields) {
      delete meta[field];
      flashed.add(field);
    }
  };
  let written = new Set<string>();
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
      unflash(flashFieldsOf(meta));
    } else if (action.kind === "flash") {
      const { field } = added.get(action.message) as Added;
      meta[field] = [action.level, action.message];
      flashed.add(field);
    } else if (action.kind === "flashes") {
      unflash(flashFieldsOf(meta).filter((field) => meta[field]?.[0] === action.level));
    } else if (action.kind === "regenerate") {
      moved = true;
      meta.renewedAt = now;
      const { userId } = action;
      // Another user's session, or a sign-out keeping the session: nothing of the last user's stays.
      if (meta.userId !== undefined && userId !== undefined && userId !== meta.userId) {
        movesData = false;
        data = {};
        written = new Set();
        meta.createdAt = now;
        unflash(flashFieldsOf(meta));
        delete meta.label;
        delete meta.persistent;
      }
      if (userId === null) delete meta.userId;
      else if (userId !== undefined) meta.userId = userId;
    } else if (action.kind === "destroy") {
      if (!destroyed && seen) signedOut = { user: meta.userId, lineage: meta.lineage };
      destroyed ||= seen !== undefined;
      data = {};
      meta = fresh();
      written = new Set();
      moved = false;
      cleared = false;
      flashed = new Set();
    }
  }
  const writes = written.size > 0 || flashed.size > 0 || cleared || moved;
  const record: StoredSession = { data, meta: { ...meta, touchedAt: now } };
  if (destroyed) return { kind: "destroy", record: writes ? record : undefined, ...signedOut };
  if (!seen) return writes ? { kind: "create", record } : { kind: "none" };
  const set: Record<string, unknown> = {};
  const remove: string[] = [];
  for (const name of written) {
    if (Object.hasOwn(data, name)) put(set, name, data[name]);
    else remove.push(name);
  }
  const patchMeta: SessionPatch["meta"] = { touchedAt: now };
  for (const field of flashed) patchMeta[field] = meta[field] ?? null;
  // The first move names the lineage: a hash of the key it moved from.
  const lineage = meta.lineage ?? loadedLineage;
  if (moved) {
    // One keeping the data writes this request's changes onto the record as it is at the move.
    const { createdAt, renewedAt, userId } = meta;
    const moveMeta = { ...patchMeta, createdAt, renewedAt, userId: userId ?? null, lineage };
    const patch = movesData ? { set, delete: remove, meta: moveMeta } : undefined;
    return { kind: "move", record: { data, meta: { ...record.meta, lineage } }, patch };
  }
  if (written.size > 0 || flashed.size > 0 || cleared)
    return { kind: "patch", patch: { set, delete: remove, meta: patchMeta } };
  const touchDue = now - seen.meta.touchedAt >= TOUCH_INTERVAL_MS;
  return touchDue
    ? { kind: "patch", patch: { set: {}, delete: [], meta: patchMeta } }
    : { kind: "none" };
}

/**
 * A request's action on the round's names, as a handler would do it; with `users`, now and then a
 * regenerate (without options, binding either user, or unbinding) or a destroy.
 */
function requestAction(random: Random, names: readonly string[], users: readonly string[]): Action {
  const roll = random.int(users.length > 0 ? 116 : 100);
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
  if (roll < 100) return { kind: "flashes", level: random.pick(LEVELS) };
  if (roll < 108) {
    const which = random.int(4);
    const userId = which === 0 ? undefined : which === 1 ? null : random.pick(users);
    return { kind: "regenerate", userId };
  }
  return { kind: "destroy" };
}
