import { createSessions, type Sessions } from "../manager.js";
import type { Session, SessionData } from "../session.js";
import type { SessionStore } from "../stores/store.js";
import {
  canonical,
  DATA_KEYS,
  generator,
  put,
  type Random,
  randomString,
  randomValue,
} from "./store-model.js";

/**
 * Random visits of a few browsers, served twice: by a manager on the store, and by one on cookie
 * sessions, which keeps everything in the cookie and shares no code with any store. Each request
 * does the same things in both (set, delete, update, clear, flash and read flashes, regenerate with
 * and without a user, destroy), and each world's browsers keep their own cookies; what a handler
 * reads (data, flashes, user, new or not) must be the same in both, request by request. Between
 * requests the clock moves, past the idle timeout now and then. Then the store's user index, through
 * `listByUser`, must list exactly the browsers whose session is signed in as that user.
 */
export interface DifferentialRun {
  store: SessionStore;
  /** "server": the store expires entries on its own clock, not on `now`. */
  clock: "injected" | "server";
  /** The clock both managers read; `advance` moves it. */
  now: () => number;
  advance: (ms: number) => void;
  secret: string;
  seed: number;
  requests: number;
}

const IDLE_MS = 10 * 60_000;
const USERS = ["ann", "bo\u0000"];
const LEVELS = ["info", "error"];

/** @internal */
export interface Browser {
  cookies: Map<string, string>;
  /** CSRF tokens this world's sessions handed the browser, newest last. */
  tokens: string[];
}

/** One thing a request does to its session. @internal */
export type Action =
  | { kind: "set"; key: string; value: unknown }
  | { kind: "delete"; key: string }
  | { kind: "update"; changes: Record<string, unknown> }
  | { kind: "clear" }
  | { kind: "flash"; level: string; message: string }
  | { kind: "flashes"; level: string }
  | { kind: "regenerate"; userId: string | null | undefined }
  | { kind: "destroy" }
  /** Sets "blob" to that many "é" (2 bytes each): a cookie session splits into chunk cookies. */
  | { kind: "blob"; length: number }
  | { kind: "rememberMe"; remember: boolean }
  | { kind: "csrfToken" }
  | { kind: "verifyCsrfToken"; age: number };

/** @internal */
export function randomAction(random: Random, tag: string): Action {
  const roll = random.int(100);
  // Now and then a value large enough to split a cookie session into chunk cookies.
  if (roll < 3) return { kind: "blob", length: 1500 + random.int(1500) };
  if (roll < 30) return { kind: "set", key: random.pick(DATA_KEYS), value: randomValue(random) };
  if (roll < 40) return { kind: "delete", key: random.pick(DATA_KEYS) };
  if (roll < 50) {
    const changes: Record<string, unknown> = {};
    for (let i = random.int(3); i >= 0; i--)
      put(changes, random.pick(DATA_KEYS), random.chance(0.2) ? undefined : randomValue(random));
    return { kind: "update", changes };
  }
  if (roll < 54) return { kind: "clear" };
  if (roll < 64)
    return { kind: "flash", level: random.pick(LEVELS), message: randomString(random) };
  if (roll < 72) return { kind: "flashes", level: random.pick(LEVELS) };
  if (roll < 76) return { kind: "rememberMe", remember: random.chance(0.7) };
  if (roll < 82) return { kind: "csrfToken" };
  if (roll < 88) return { kind: "verifyCsrfToken", age: random.int(3) };
  if (roll < 97) {
    const userId = random.chance(0.2)
      ? null
      : random.chance(0.2)
        ? undefined
        : `${random.pick(USERS)}-${tag}`;
    return { kind: "regenerate", userId };
  }
  return { kind: "destroy" };
}

/**
 * Does `action` to `session`; what a handler would see of it. A CSRF token differs between the two
 * worlds, so each browser keeps its own world's tokens (`tokens`, newest last) and `verifyCsrfToken`
 * checks one of them: both worlds must agree whether it still holds.
 */
async function perform(
  session: Session<SessionData>,
  action: Action,
  tokens: string[],
): Promise<unknown> {
  switch (action.kind) {
    case "set":
      session.set(action.key, action.value);
      return session.get(action.key);
    case "delete":
      session.delete(action.key);
      return session.has(action.key);
    case "update":
      session.update(action.changes);
      return session.data;
    case "clear":
      session.clear();
      return session.data;
    case "flash":
      session.flash(action.level, action.message);
      return undefined;
    case "flashes":
      return session.flashes(action.level);
    case "regenerate":
      await session.regenerate(action.userId === undefined ? undefined : { userId: action.userId });
      return { data: session.data, userId: session.userId };
    case "destroy":
      session.destroy();
      return session.data;
    case "blob":
      session.set("blob", "é".repeat(action.length));
      return session.has("blob");
    case "rememberMe":
      session.rememberMe(action.remember);
      return session.expiresAt;
    case "csrfToken":
      tokens.push(await session.csrfToken());
      return tokens.length;
    case "verifyCsrfToken": {
      const token = tokens[tokens.length - 1 - action.age];
      return token === undefined ? "none" : await session.verifyCsrfToken(token);
    }
  }
}

/**
 * What a handler sees of a session (flashes are compared where an action reads them: reading
 * removes them), with when it ends and why the one the request carried was refused.
 */
function view(session: Session<SessionData>) {
  return {
    isNew: session.isNew,
    data: session.data,
    userId: session.userId,
    expiresAt: session.expiresAt,
    invalidReason: session.invalidReason,
  };
}

/** One request of `browser`: load, the actions, commit, its cookies kept. @internal */
export async function visit(
  sessions: Sessions,
  browser: Browser,
  actions: readonly Action[],
): Promise<Served> {
  const cookie = [...browser.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  const served = await serve(
    sessions,
    new Headers(cookie ? { cookie } : {}),
    actions,
    browser.tokens,
  );
  for (const line of served.headers.getSetCookie()) {
    const [pair = "", ...attributes] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const gone = attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute));
    if (gone) browser.cookies.delete(name);
    else browser.cookies.set(name, pair.slice(eq + 1));
  }
  return served;
}

/** What one request saw, what its actions read, its session after the commit, and the response's headers. */
interface Served {
  seen: ReturnType<typeof view>;
  results: unknown[];
  after: Session<SessionData>;
  headers: Headers;
}

/** Load from `request`, the actions, commit: one request, whichever transport carries the token. */
async function serve(
  sessions: Sessions,
  request: Headers,
  actions: readonly Action[],
  tokens: string[],
): Promise<Served> {
  const session = await sessions.load(request);
  const { seen, results } = await runActions(session, actions, tokens);
  const headers = new Headers();
  await sessions.commit(session, headers);
  return { seen, results, after: session, headers };
}

/** The session as the handler first sees it, and what each action reads of it. @internal */
export async function runActions(
  session: Session<SessionData>,
  actions: readonly Action[],
  tokens: string[],
): Promise<{ seen: ReturnType<typeof view>; results: unknown[] }> {
  const seen = view(session);
  const results: unknown[] = [];
  for (const action of actions) results.push(await perform(session, action, tokens));
  return { seen, results };
}

/**
 * The manager options of the visits: every deadline in play, idle and absolute, remember-me's own,
 * touches and renewals (a renewal moves a store session to a new key, and its user index entry with
 * it). @internal
 */
export const VISIT_OPTIONS = {
  idleTimeout: "10m",
  absoluteTimeout: "2h",
  rememberMe: { idleTimeout: "1d", absoluteTimeout: "3d" },
  touchInterval: "1m",
  renewInterval: "15m",
} as const;

/** The header a client without cookies sends, empty until it holds a token. @internal */
export const HEADER = "x-session";

/** A client of the header transport: the last token a response gave it, and its CSRF tokens. @internal */
export interface HeaderClient {
  token: string;
  tokens: string[];
}

/**
 * The header protocol's client side, for a response served here or over HTTP: no Set-Cookie may
 * come, and the header, when the response carries it, replaces the token (empty: forget it).
 * @internal
 */
export function keepHeaderToken(client: HeaderClient, response: Headers): void {
  const cookies = response.getSetCookie();
  if (cookies.length > 0) throw new Error(`a header client was sent Set-Cookie: ${cookies[0]}`);
  const next = response.get(HEADER);
  if (next !== null) client.token = next;
}

/** One request of a header client: as `visit`, with the token in `HEADER` and no cookie ever. @internal */
export async function visitByHeader(
  sessions: Sessions,
  client: HeaderClient,
  actions: readonly Action[],
): Promise<Served> {
  const served = await serve(
    sessions,
    new Headers({ [HEADER]: client.token }),
    actions,
    client.tokens,
  );
  keepHeaderToken(client, served.headers);
  return served;
}

/** Serves `run.requests` random requests in both worlds; throws at the first difference. */
export async function checkAgainstCookies(run: DifferentialRun): Promise<void> {
  const random = generator(run.seed);
  const common = { secret: run.secret, now: run.now, ...VISIT_OPTIONS };
  const stored = createSessions({ ...common, store: run.store });
  const sealed = createSessions(common);
  // A third world, checked against the second: the same cookie sessions carried by a header.
  const headed = createSessions({ ...common, header: HEADER });
  const tag = Math.floor(random.next() * 1e9).toString(36);
  const browsers = Array.from({ length: 3 }, () => ({
    stored: { cookies: new Map<string, string>(), tokens: [] },
    sealed: { cookies: new Map<string, string>(), tokens: [] },
    header: { token: "", tokens: [] } as HeaderClient,
    userId: undefined as string | undefined,
    /** When the store world's session of this browser ends, as its last commit left it. */
    until: 0,
    /** The store world's session of this browser's last request. */
    last: undefined as Session<SessionData> | undefined,
  }));
  const trace: string[] = [];
  const fail = (what: string, store: unknown, cookie: unknown): never => {
    throw new Error(
      `${run.store.name}: ${what} differs from a cookie session's (seed ${run.seed}; replay with SESSIONKIT_STORE_SEED=${run.seed})\n` +
        `  store  ${canonical(store)}\n  cookie ${canonical(cookie)}\n` +
        `  after the requests:\n    ${trace.slice(-10).join("\n    ")}`,
    );
  };

  /**
   * The cookie world's view as the store's may tell it: a store on its own clock has nothing left to
   * say why a session ended once its entry went (Redis' expiry), so "expired-*" there may read as
   * "unknown-session", as the store contract allows.
   */
  const sameAs = (cookie: ReturnType<typeof view>, store: ReturnType<typeof view>) =>
    run.clock === "server" &&
    store.invalidReason === "unknown-session" &&
    cookie.invalidReason?.startsWith("expired-")
      ? { ...cookie, invalidReason: store.invalidReason }
      : cookie;

  for (let request = 0; request < run.requests; request++) {
    const index = random.int(browsers.length);
    const browser = browsers[index] as (typeof browsers)[number];
    const actions = Array.from({ length: random.int(4) }, () => randomAction(random, tag));
    trace.push(`browser ${index}: ${canonical(actions)}`);
    const a = await visit(stored, browser.stored, actions);
    const b = await visit(sealed, browser.sealed, actions);
    if (canonical(a.seen) !== canonical(sameAs(b.seen, a.seen)))
      fail("the loaded session", a.seen, b.seen);
    if (canonical(a.results) !== canonical(b.results))
      fail("what the actions read", a.results, b.results);
    const after = view(a.after);
    if (canonical(after) !== canonical(sameAs(view(b.after), after)))
      fail("the committed session", after, view(b.after));
    const c = await visitByHeader(headed, browser.header, actions);
    if (canonical(c.seen) !== canonical(b.seen))
      fail("the header client's loaded session (first: header; second: cookie)", c.seen, b.seen);
    if (canonical(c.results) !== canonical(b.results))
      fail("what the header client's actions read", c.results, b.results);
    if (canonical(view(c.after)) !== canonical(view(b.after)))
      fail("the header client's committed session", view(c.after), view(b.after));
    // The store leaves a cookie it does not know in place (a parallel request may have moved the
    // session on), where the cookie session cleared its expired one: both mean no session.
    if (
      run.clock === "server" &&
      browser.sealed.cookies.size === 0 &&
      a.seen.invalidReason === "unknown-session"
    )
      browser.stored.cookies.clear();
    browser.userId = b.after.userId;
    browser.until = a.after.expiresAt;
    browser.last = a.after;

    const roll = random.int(10);
    const ms = roll === 0 ? IDLE_MS + 1 : random.int(IDLE_MS / 3);
    trace.push(`clock +${ms}`);
    run.advance(ms);
    const user = `${random.pick(USERS)}-${tag}`;
    if (random.int(12) === 0) {
      // "Sign out everywhere else": a store can, a cookie cannot. The signed-out browsers must come
      // back with a new session that says why; then both worlds forget them, and go on in step.
      const keep = random.int(browsers.length);
      const except = browsers[keep]?.last;
      trace.push(`destroyByUser ${canonical(user)} except browser ${keep}`);
      const count = await stored.destroyByUser(user, except ? { except } : {});
      const ours = browsers.filter((other, i) => i !== keep && other.userId === user);
      const out = ours.filter((other) => other.until > run.now());
      // A store on its own clock has not yet expired what this clock, ahead of it, calls expired.
      const most = run.clock === "server" ? ours.length : out.length;
      if (count < out.length || count > most)
        fail("destroyByUser's count", count, `${out.length}..${most}`);
      for (const other of out) {
        const back = await visit(stored, other.stored, []);
        const seen = back.seen;
        if (!seen.isNew || seen.invalidReason !== "unknown-session")
          fail("a signed-out browser's next session", seen, "new, unknown-session");
        for (const world of [other.stored, other.sealed]) {
          world.cookies.clear();
          world.tokens.length = 0;
        }
        other.header.token = "";
        other.header.tokens.length = 0;
        other.userId = undefined;
      }
    }
    const listed = await stored.listByUser(user);
    // A browser idle past its session's deadline is signed out, listed nowhere.
    const expected = browsers.filter(
      (other) => other.userId === user && other.until > run.now(),
    ).length;
    if (listed.length !== expected)
      fail(`listByUser(${canonical(user)})'s count`, listed.length, expected);
  }
}
