import type { H3Event, HTTPEvent, Middleware } from "h3";
import { SessionError } from "../errors.js";
import { type Guard, runGuards } from "../guard.js";
import { loadedBy, type Sessions } from "../manager.js";
import type { SessionData as SessionkitData, Session as SessionkitSession } from "../session.js";
import { touchSession } from "../session.js";
import { checkOptions, checkSessions } from "./internal/adapter-args.js";
import {
  applyHeaders,
  begin,
  type DataT,
  managerFor,
  persist,
  type State,
  stateOf,
  view,
} from "./internal/h3-session.js";
import { HeaderList } from "./internal/header-list.js";
import { releaseOnAbort } from "./internal/release-on-abort.js";
import { requestSlot } from "./internal/request-slot.js";
import {
  commitLast,
  commitToResponse,
  discardBody,
  isStoreUnavailable,
  storeUnavailableResponse,
} from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

declare module "h3" {
  interface H3EventContext {
    /** The session `sessionMiddleware` loaded for this request. */
    session?: SessionkitSession;
  }
}

/** h3's session data: what the handler stored, every key optional. */
export type SessionData<T extends DataT = DataT> = Partial<T>;
/** An object to merge into the data, or a function of the data returning one (or mutating it). */
export type SessionUpdate<T extends DataT = DataT> =
  | Partial<SessionData<T>>
  | ((oldData: SessionData<T>) => Partial<SessionData<T>> | undefined);

/** The session as h3's `getSession` returns it: live getters over the request's session. */
export interface Session<T extends DataT = DataT> {
  readonly id: string;
  /** Epoch ms; `maxAge` counts from here. */
  readonly createdAt: number;
  readonly data: SessionData<T>;
}

/** What `useSession` returns, as in h3. */
export interface SessionManager<T extends DataT = DataT> {
  /** `undefined` after `clear()` until the next update starts a new session. */
  readonly id: string | undefined;
  readonly data: SessionData<T>;
  update(update: SessionUpdate<T>): Promise<SessionManager<T>>;
  clear(): Promise<SessionManager<T>>;
}

/** h3's cookie options that sessionkit honours. `name` renames the cookie (h3 only renames the write). */
export interface SessionCookieOptions {
  name?: string;
  /** Default "/". */
  path?: string;
  domain?: string;
  /** Default true. */
  httpOnly?: boolean;
  /** Default true, as in h3. */
  secure?: boolean;
  /** Default "lax"; `true` means "strict"; `false` is taken as "lax" (sessionkit always sends one). */
  sameSite?: boolean | "lax" | "strict" | "none";
  partitioned?: boolean;
  priority?: "low" | "medium" | "high";
}

/** h3's `SessionConfig`, minus the iron options (`seal`, `crypto`, `legacySealFallback`): a ConfigError. */
export interface SessionConfig {
  /** Required: a random string of at least 32 characters. Keys are derived from it once per config. */
  password: string;
  /** Absolute lifetime in seconds from creation. Default: none (a browser-session cookie). */
  maxAge?: number;
  /** Sliding lifetime in seconds; the cookie is resealed at most once per half window. Default: none. */
  idleTimeout?: number;
  /** Session name: the cookie's name and the `x-{name}-session` header's. Default "h3". */
  name?: string;
  /** Cookie attributes, or `false` to send no cookie (hand out `sealSession` tokens yourself). */
  cookie?: false | SessionCookieOptions;
  /** The request header read before the cookie. Default `x-{name}-session`; `false` reads none. */
  sessionHeader?: false | string;
  /** Default: 256 random bits. */
  generateId?: () => string;
}

/**
 * Starts or resumes the session, as h3's `useSession`: a visitor without one gets it (and its
 * cookie) at once. Concurrent calls on one event share one load.
 *
 * @example
 * ```ts
 * import { defineEventHandler } from "h3";
 * import { useSession } from "sessionkit/h3";
 * app.use(defineEventHandler(async (event) => {
 *   const session = await useSession(event, { password: process.env.SESSION_PASSWORD! });
 *   await session.update((data) => ({ count: (data.count ?? 0) + 1 }));
 *   return session.data;
 * }));
 * ```
 */
export async function useSession<T extends DataT = DataT>(
  event: HTTPEvent,
  config: SessionConfig,
): Promise<SessionManager<T>> {
  const state = await stateOf(event, config);
  const begins = state.started === undefined && state.fresh;
  state.started ??= begins ? begin(event, state) : Promise.resolve();
  await state.started;
  if (begins || state.manager.slides) holdNoStoreOnCookie(event, state);
  return new H3SessionManager<T>(state, event, config);
}

/**
 * What `useSession` returns. A class with its getters on the prototype, not an object literal with
 * getters: V8 builds such a literal on a slow path whose objects then kept each request's session
 * alive past the young generation (scavenges of 15-20 ms against 0.4 in `--trace-gc`, and a fifth of
 * the h3 read route's CPU in the garbage collector). `update` and `clear` are bound, as h3's are,
 * so they work destructured; `toJSON` gives the `{ id, data }` h3's own object serializes to.
 */
class H3SessionManager<T extends DataT> implements SessionManager<T> {
  readonly update: (update: SessionUpdate<T>) => Promise<SessionManager<T>>;
  readonly clear: () => Promise<SessionManager<T>>;
  readonly #state: State;

  constructor(state: State, event: HTTPEvent, config: SessionConfig) {
    this.#state = state;
    this.update = async (update) => {
      await updateSession(event, config, update);
      return this;
    };
    this.clear = async () => {
      await clearSession(event, config);
      return this;
    };
  }

  get id(): string | undefined {
    return this.#state.cleared ? undefined : this.#state.session.id;
  }

  get data(): SessionData<T> {
    return this.#state.session.data as SessionData<T>;
  }

  toJSON(): { id: string | undefined; data: SessionData<T> } {
    return { id: this.id, data: this.data };
  }
}

/**
 * The request's session without starting one: no cookie is sent until something is stored.
 *
 * @example
 * ```ts
 * import { redirect } from "h3";
 * app.get("/account", async (event) => {
 *   const session = await getSession(event, { password });
 *   if (!session.data.userId) return redirect("/login");
 *   return `Signed in as ${session.data.userId}`;
 * });
 * ```
 */
export async function getSession<T extends DataT = DataT>(
  event: HTTPEvent,
  config: SessionConfig,
): Promise<Session<T>> {
  const state = await stateOf(event, config);
  // A read reseals only a sliding session; asked of no other, so plain reads touch no headers.
  if (state.manager.slides) holdNoStoreOnCookie(event, state);
  return view<T>(state);
}

/**
 * Merges `update` into the data (an `undefined` value deletes its key) and writes the cookie onto
 * the event's response at once, replacing any this session wrote earlier in the request.
 *
 * @example
 * ```ts
 * await updateSession(event, { password }, { theme: "dark" });
 * ```
 */
export async function updateSession<T extends DataT = DataT>(
  event: HTTPEvent,
  config: SessionConfig,
  update?: SessionUpdate<T>,
): Promise<Session<T>> {
  const state = await stateOf(event, config);
  const { session } = state;
  if (typeof update === "function") {
    // h3 hands the function the data itself, so it may mutate it and return nothing: diff a copy.
    const draft: DataT = { ...session.data };
    const changes: DataT = { ...update(draft as SessionData<T>) };
    for (const key of new Set([...Object.keys(session.data), ...Object.keys(draft)])) {
      if (!(key in changes) && draft[key] !== session.data[key]) changes[key] = draft[key];
    }
    session.update(changes);
  } else if (update) session.update(update);
  else if (state.fresh) session.clear(); // a bare update persists a new session, as in h3
  // h3 reseals on every update, a change or not: the cookie goes out anew, the idle deadline moves.
  if (!state.fresh) touchSession(session);
  state.cleared = false;
  await persist(event, state);
  holdNoStoreOnCookie(event, state);
  return view<T>(state);
}

/**
 * The token of the request's session (persisting a new one first), for clients that send it back
 * in the `x-{name}-session` header instead of a cookie.
 *
 * @example
 * ```ts
 * app.post("/token", async (event) => ({ token: await sealSession(event, { password, cookie: false }) }));
 * ```
 */
export async function sealSession(event: HTTPEvent, config: SessionConfig): Promise<string> {
  const state = await stateOf(event, config);
  if (state.token === undefined) {
    // A session nothing wrote yet: sealed for the body alone, as h3 seals it without a cookie.
    state.session.clear();
    await persist(event, state, false);
  }
  // The token leaves in the body (h3's way for clients without cookies): a shared cache keyed on the
  // URL must not hand it to the next visitor.
  const res = (event as Partial<H3Event>).res;
  if (res) holdNoStore(res);
  return state.token as string;
}

/**
 * Opens a token as h3 does, into `{ id, createdAt, data }`; a token that does not open (tampered,
 * expired, another password) throws, as h3's does. The event's own session is not touched.
 *
 * @example
 * ```ts
 * const { data } = await unsealSession(event, { password }, token);
 * ```
 */
export async function unsealSession(
  _event: HTTPEvent,
  config: SessionConfig,
  sealed: string,
): Promise<Partial<Session>> {
  const manager = managerFor(config);
  const headers = new Headers({ cookie: `${manager.cookieName}=${encodeURIComponent(sealed)}` });
  const session = await manager.sessions.load(headers);
  if (session.isNew)
    throw new SessionError("ERR_SESSION_STATE", "unsealSession: the token was refused");
  return { id: session.id, createdAt: session.createdAt, data: session.data };
}

/**
 * Empties the session and sends the cookie's deletion. Later updates in the request start anew.
 *
 * @example
 * ```ts
 * await clearSession(event, { password });
 * ```
 */
export async function clearSession(event: HTTPEvent, config: SessionConfig): Promise<void> {
  const state = await stateOf(event, config);
  state.session.destroy();
  state.cleared = true;
  await persist(event, state);
  state.fresh = true; // what comes next is a new session, which an update writes
  holdNoStoreOnCookie(event, state);
}

/**
 * Holds `no-store` on a response once the session's cookie is on it (see `holdNoStore`). The
 * caller says when a commit may have written one, so a request that wrote nothing pays nothing.
 */
function holdNoStoreOnCookie(event: HTTPEvent, state: State): void {
  const res = (event as Partial<H3Event>).res;
  if (!res || !state.manager.sendCookie) return;
  const name = state.manager.cookieName;
  const lines = res.headers.getSetCookie();
  if (lines.some((line) => line.startsWith(`${name}=`) || line.startsWith(`${name}.`))) {
    holdNoStore(res);
  }
}

const NO_STORE = "no-store";
/** Marks the headers already held (see request-slot.ts for why not a WeakSet). */
const held = requestSlot<true>("sessionkit.h3.held");

/**
 * h3's functions write the cookie when called, as h3 does, and h3 builds the response from
 * `event.res.headers` (or `errHeaders`) only once the handler returns, with no per-request hook
 * in between: `onResponse` is app config, or middleware the app mounts. So the headers a session
 * token went onto keep `Cache-Control: no-store` from then on: a value the handler sets or appends
 * later (`public, max-age=600`, h3's `handleCacheHeaders`) is stored as `no-store`, and deleting it
 * does nothing. Every other adapter commits as the head leaves and so puts `no-store` over the
 * handler's header; a shared cache must not keep a response that sets a session (OWASP Session
 * Management Cheat Sheet, "Web Content Caching"). Shadows the three methods on these two objects
 * only: other headers, and other requests, are untouched.
 */
function holdNoStore(res: H3Event["res"]): void {
  for (const headers of [res.headers, res.errHeaders]) {
    if (held.get(headers)) continue;
    held.set(headers, true);
    const { set, append, delete: remove } = headers;
    set.call(headers, "cache-control", NO_STORE);
    Object.assign(headers, {
      set: (name: string, value: string) =>
        set.call(headers, name, isCacheControl(name) ? NO_STORE : value),
      append: (name: string, value: string) =>
        isCacheControl(name)
          ? set.call(headers, name, NO_STORE)
          : append.call(headers, name, value),
      delete: (name: string) => {
        if (!isCacheControl(name)) remove.call(headers, name);
      },
    });
  }
}

const isCacheControl = (name: string) => String(name).toLowerCase() === "cache-control";

/**
 * The sessionkit API on h3: an h3 middleware that loads the session onto `event.context.session`
 * (a full sessionkit `Session`: get, set, flash, regenerate...) and commits it onto the response,
 * also onto h3's error response. Guards answer before the route; a `StoreUnavailableError` is 503.
 *
 * @example
 * ```ts
 * const app = new H3().use(sessionMiddleware(sessions));
 * app.get("/count", (event) => {
 *   const session = event.context.session!;
 *   session.set("count", ((session.get("count") as number) ?? 0) + 1);
 *   return String(session.get("count"));
 * });
 * ```
 */
export function sessionMiddleware<T extends SessionkitData>(
  sessions: Sessions<T>,
  options: { guards?: readonly Guard<T>[] } = {},
): Middleware {
  checkSessions("sessionkit/h3 sessionMiddleware()", sessions);
  checkOptions("sessionkit/h3 sessionMiddleware()", options, ["guards"]);
  const guards = options.guards ?? [];
  return async (event, next) => {
    // Mounted again (a mounted sub-app with its own): the outer mount loads and commits.
    const outer = loadedBy(event.context.session as SessionkitSession<T> | undefined, sessions);
    if (outer) return (await runGuards(guards, outer, event.req)) ?? next();
    let session: SessionkitSession<T>;
    try {
      session = await sessions.load({
        headers: event.req.headers,
        url: event.req.url,
        ip: event.req.ip,
      });
    } catch (err) {
      if (isStoreUnavailable(err)) return storeUnavailableResponse();
      throw err;
    }
    event.context.session = session as SessionkitSession;
    releaseOnAbort(session, () => event.req.signal);
    let value: unknown;
    let failure: { error: unknown } | undefined;
    try {
      value = (await runGuards(guards, session, event.req)) ?? (await next());
    } catch (error) {
      if (isStoreUnavailable(error)) return storeUnavailableResponse();
      failure = { error };
    }
    try {
      if (value instanceof Response) return await commitToResponse(sessions, session, value);
      const headers = new HeaderList();
      await commitLast(sessions, session, headers);
      applyHeaders(event, headers);
    } catch (err) {
      discardBody(value); // a stream the handler returned will not be sent
      if (isStoreUnavailable(err)) return storeUnavailableResponse();
      throw err;
    }
    if (failure) throw failure.error;
    return value;
  };
}

/**
 * Route middleware that runs guards on `event.context.session`; use after `sessionMiddleware`.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.userId !== undefined, { redirect: "/login" });
 * app.get("/account", () => "secret", { middleware: [sessionGuard(signedIn)] });
 * ```
 */
export function sessionGuard(...guards: Guard[]): Middleware {
  return (event) => runGuards(guards, event.context.session as SessionkitSession, event.req);
}
