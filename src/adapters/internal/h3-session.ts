/**
 * The machinery behind `sessionkit/h3`'s h3-shaped functions: one sessionkit manager per distinct
 * config (keys derived once, never per request), the session loaded once per event and name, and
 * commits written onto the event's response (and h3's error headers) as h3 writes on update.
 */
import type { H3Event, HTTPEvent } from "h3";
import { ConfigError } from "../../errors.js";
import { createSessions, heldToken, type SessionInput, type Sessions } from "../../manager.js";
import type { CookieOptions } from "../../options.js";
import type { Session as SessionkitSession } from "../../session.js";
import type { Session, SessionConfig, SessionData } from "../h3.js";
import { HeaderList } from "./header-list.js";
import { requestSlot } from "./request-slot.js";

/** h3's own `SessionDataT`. */
export type DataT = Record<string, any>;

const CONFIG_KEYS = "password maxAge idleTimeout name cookie sessionHeader generateId".split(" ");
const COOKIE_KEYS = "name path domain httpOnly secure sameSite partitioned priority".split(" ");
/** Distinct configs kept at once: configs built per request with varying values must not grow without end. */
const MAX_CACHED_CONFIGS = 64;
const MIN_PASSWORD_CHARS = 32;

export interface Manager {
  sessions: Sessions;
  name: string;
  cookieName: string;
  header: string | undefined;
  sendCookie: boolean;
  /** idleTimeout is set: a read may reseal the cookie to slide the window, as h3's getSession does. */
  slides: boolean;
}

export interface State {
  manager: Manager;
  session: SessionkitSession;
  /**
   * The session's current token: received, last sent, or sealed for the body (`sealSession`);
   * undefined when none.
   */
  token: string | undefined;
  /**
   * No request brought this session and no response has written it yet: h3's new session, which
   * `useSession` writes at once. A `sealSession` token leaves it new, as h3 seals without writing.
   */
  fresh: boolean;
  cleared: boolean;
  started?: Promise<void>;
  /** Commits run one after another: each writes everything its predecessors did not. */
  queue: Promise<unknown>;
}

const byConfig = new WeakMap<SessionConfig, Manager>();
const byValue = new Map<string, Manager>();
const functionIds = new WeakMap<() => unknown, number>();
let nextFunctionId = 0;
/** The event's loads by session name (see request-slot.ts for why not a WeakMap). */
const loads = requestSlot<Map<string, Promise<State>>>("sessionkit.h3.loads");

export function managerFor(config: SessionConfig): Manager {
  const cached = byConfig.get(config);
  if (cached) return cached;
  // Configs are often object literals written inside the handler: cache by value too, so keys are
  // derived once per distinct config, never per request. Every key counts (an unsupported one must
  // still reach validation); functions count by identity.
  const key = JSON.stringify(config, (_name, value) =>
    typeof value === "function" ? `fn#${idOf(value)}` : value,
  );
  let manager = byValue.get(key);
  if (!manager) {
    manager = createManager(config);
    if (byValue.size >= MAX_CACHED_CONFIGS) byValue.delete(byValue.keys().next().value as string);
    byValue.set(key, manager);
  }
  byConfig.set(config, manager);
  return manager;
}

function idOf(fn: () => unknown): number {
  let id = functionIds.get(fn);
  if (id === undefined) {
    id = nextFunctionId++;
    functionIds.set(fn, id);
  }
  return id;
}

function createManager(config: SessionConfig): Manager {
  if (typeof config?.password !== "string" || config.password.length < MIN_PASSWORD_CHARS) {
    throw new ConfigError(
      `sessionkit/h3 needs { password }: a random string of at least ${MIN_PASSWORD_CHARS} characters`,
    );
  }
  rejectUnsupported(config, CONFIG_KEYS, "option");
  const cookie = config.cookie || {};
  rejectUnsupported(cookie, COOKIE_KEYS, "cookie option");
  const name = config.name || "h3";
  const { sameSite, ...attributes } = cookie;
  const cookieOptions: CookieOptions = {
    ...attributes,
    name: cookie.name ?? name,
    secure: cookie.secure ?? true,
    sameSite: sameSite === true ? "strict" : sameSite || "lax",
  };
  const sessions = createSessions({
    secret: config.password,
    cookie: cookieOptions,
    // h3 treats 0 as unset: no deadline, so the cookie lives for the browser session. Its seconds
    // go in with a unit, so the guard against milliseconds given as seconds (a number past 400
    // days) does not refuse a long maxAge. h3 ends a session only once a deadline has passed
    // (`now - start > maxAge`) and slides only past half the idle window, where the core ends it
    // at the deadline's millisecond and touches at half: one millisecond more of each makes them
    // agree to the millisecond.
    absoluteTimeout: config.maxAge ? `${config.maxAge * 1000 + 1}ms` : false,
    idleTimeout: config.idleTimeout ? `${config.idleTimeout * 1000 + 1}ms` : false,
    ...(config.idleTimeout ? { touchInterval: `${config.idleTimeout * 500 + 1}ms` } : {}),
    ...(config.generateId ? { generateId: config.generateId } : {}),
  });
  const header =
    config.sessionHeader === false
      ? undefined
      : (config.sessionHeader || `x-${name}-session`).toLowerCase();
  return {
    sessions,
    name,
    cookieName: sessions.cookieName,
    header,
    sendCookie: config.cookie !== false,
    slides: Boolean(config.idleTimeout),
  };
}

function rejectUnsupported(input: object, known: string[], kind: string): void {
  const unknown = Object.keys(input).find((key) => !known.includes(key));
  if (unknown)
    throw new ConfigError(
      `sessionkit/h3 does not support the ${kind} "${unknown}"; supported: ${known.join(", ")}`,
    );
}

/** Loads the event's session once per name; later calls share the promise, as h3's context cache does. */
export function stateOf(event: HTTPEvent, config: SessionConfig): Promise<State> {
  const manager = managerFor(config);
  let perEvent = loads.get(event);
  if (!perEvent) {
    perEvent = new Map();
    loads.set(event, perEvent);
  }
  let state = perEvent.get(manager.name);
  if (!state) {
    state = load(event, manager);
    perEvent.set(manager.name, state);
  }
  return state;
}

async function load(event: HTTPEvent, manager: Manager): Promise<State> {
  const { req } = event;
  // h3: a non-empty session header wins over the cookie and carries the same token.
  const fromHeader = manager.header ? req.headers.get(manager.header) : null;
  const cookie = fromHeader
    ? `${manager.cookieName}=${encodeURIComponent(fromHeader)}`
    : req.headers.get("cookie");
  // Only the cookie (or the header's token as one) and the URL reach the core.
  const input: SessionInput = {
    headers: { get: (name) => (name === "cookie" ? cookie : null) },
    url: req.url,
  };
  const session = await manager.sessions.load(input);
  const token = heldToken(session);
  const state: State = {
    manager,
    session,
    token,
    fresh: token === undefined,
    cleared: false,
    queue: Promise.resolve(),
  };
  // The core reseals only when a touch is due (half the idle window) or the key rotated. As in h3,
  // only a session the cookie brought slides on a read: one a client sends in the header keeps its
  // token until it is written.
  if (manager.slides && token !== undefined && !fromHeader) await persist(event, state);
  return state;
}

export async function begin(event: HTTPEvent, state: State): Promise<void> {
  state.session.clear(); // marks the new, empty session for writing, so the cookie goes out now
  await persist(event, state);
}

/**
 * Commits now and applies the Set-Cookie lines to the event's response, as h3 writes on update;
 * with `send` false the token is only made (h3's `sealSession` of a session it has not written).
 */
export function persist(event: HTTPEvent, state: State, send = true): Promise<unknown> {
  const { manager, session } = state;
  state.queue = state.queue.then(async () => {
    const headers = new HeaderList();
    await manager.sessions.commit(session, headers);
    if (headers.cookies.length === 0) return;
    state.token = heldToken(session);
    if (!send) return;
    state.fresh = false;
    const res = (event as Partial<H3Event>).res;
    if (manager.sendCookie && res) applyHeaders(event as H3Event, headers);
  });
  return state.queue;
}

function cookieName(line: string): string {
  return line.slice(0, line.indexOf("="));
}

/**
 * Sets committed headers on the response and on h3's error headers (an error page keeps the
 * session's cookie, as h3 stages it). A cookie written earlier in the request is replaced, not
 * repeated: the browser would apply both, and the last one wins anyway.
 */
export function applyHeaders(event: H3Event, committed: HeaderList): void {
  const lines = committed.cookies;
  const names = new Set(lines.map(cookieName));
  for (const target of [event.res.headers, event.res.errHeaders]) {
    const kept = target.getSetCookie().filter((line) => !names.has(cookieName(line)));
    target.delete("set-cookie");
    for (const line of [...kept, ...lines]) target.append("set-cookie", line);
    for (const [name, value] of committed.fields) target.set(name, value);
  }
}

export function view<T extends DataT>(state: State): Session<T> {
  return new SessionView<T>(state);
}

/**
 * Live getters over the request's session, on a class rather than an object literal with getters
 * (see `H3SessionManager` in h3.ts: such literals kept each request's objects alive past the young
 * generation). `toJSON` gives the fields h3's own object serializes to.
 */
class SessionView<T extends DataT> implements Session<T> {
  readonly #state: State;

  constructor(state: State) {
    this.#state = state;
  }

  get id(): string {
    return this.#state.session.id;
  }

  get createdAt(): number {
    return this.#state.session.createdAt;
  }

  get data(): SessionData<T> {
    return this.#state.session.data as SessionData<T>;
  }

  toJSON(): { id: string; createdAt: number; data: SessionData<T> } {
    return { id: this.id, createdAt: this.createdAt, data: this.data };
  }
}
