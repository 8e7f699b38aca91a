import { parseSetCookie } from "cookie";
import { cookies, headers } from "next/headers.js";
import { type NextRequest, NextResponse } from "next/server.js";
import { SessionError } from "../errors.js";
import { type Guard, runGuards } from "../guard.js";
import { holdsLock, releaseLock, type SessionInput, type Sessions } from "../manager.js";
import { closeSession, type Session, type SessionData } from "../session.js";
import { checkHandler, checkOptions, checkSessions } from "./internal/adapter-args.js";
import { HeaderList } from "./internal/header-list.js";
import {
  commitLast,
  isStoreUnavailable as storeUnavailable,
  storeUnavailableResponse,
} from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";
// Route Handlers are `Request -> Response`: the fetch adapter serves them as they are.
export { type FetchSessionContext, withSession } from "./fetch.js";

type Jar = Awaited<ReturnType<typeof cookies>>;
type RequestHeaders = Awaited<ReturnType<typeof headers>>;

/** The session a `sessionAction` is running with, per request and manager: nested calls share it. */
const acting = new WeakMap<RequestHeaders, Map<object, Session<SessionData>>>();
/** Read-only loads per request and manager, with the Cookie header each was read from. */
const reads = new WeakMap<
  RequestHeaders,
  Map<object, { cookie: string | null; session: Promise<Session<SessionData>> }>
>();

/**
 * The request's session, read-only: for Server Components, which cannot set cookies. Inside a
 * `sessionAction` it is that action's session. Components of one render share one load; a change
 * throws `ERR_SESSION_STATE`, and so does reading flash messages (reading removes them). Nothing is
 * written here, so an idle deadline that is due to slide moves only where a write can happen:
 * `sessionProxy`, a `sessionAction` or a Route Handler. A store that is down rejects with
 * `StoreUnavailableError`.
 *
 * @example
 * ```tsx
 * export default async function Page() {
 *   const session = await getSession(sessions);
 *   return <p>{session.get("username") ?? "Not signed in"}</p>;
 * }
 * ```
 */
export async function getSession<T extends SessionData>(
  sessions: Sessions<T>,
): Promise<Session<T>> {
  checkSessions("sessionkit/next getSession()", sessions);
  const { input, requestHeaders, cookie } = await requestInput(sessions);
  const live = acting.get(requestHeaders)?.get(sessions);
  if (live) return live as Session<T>;
  const perRequest = entriesOf(reads, requestHeaders);
  const cached = perRequest.get(sessions);
  // After an action's commit, the render in the same request reads the cookies it set.
  if (cached?.cookie === cookie) return cached.session as Promise<Session<T>>;
  const session = sessions.load(input).then(async (loaded) => {
    closeSession(loaded);
    // Nothing will commit this session, and commit is what lets go of a lock (the `lock` option).
    if (holdsLock(loaded)) await releaseLock(loaded);
    return loaded;
  });
  perRequest.set(sessions, { cookie, session: session as Promise<Session<SessionData>> });
  return session;
}

/**
 * Wraps a Server Action with a writable session, committed through `cookies()` when the action
 * ends: also when it throws, so `redirect()` carries the cookie. A failed commit (a store down, data
 * the schema refuses) throws instead of the action's outcome. Calls nested in one request share the
 * outermost one's session, which commits. Called where Next refuses cookies (a render, or an
 * `after()` callback, which runs once the response is sent), it throws `ERR_SESSION_STATE` before
 * loading anything; so does its commit, saving nothing, when a call nobody awaited (a promise
 * handed to `after()`) ends once the response has been sent. In a Route Handler use `withSession`:
 * a cookie set through `cookies()` goes out without `Cache-Control: no-store`.
 *
 * @example
 * ```ts
 * "use server";
 * // With a schema, `get` and `set` are typed by it: no cast
 * export const increment = sessionAction(sessions, async (session, by: number) => {
 *   session.set("count", ((session.get("count") as number | undefined) ?? 0) + by);
 * });
 * ```
 */
export function sessionAction<T extends SessionData, A extends unknown[], R>(
  sessions: Sessions<T>,
  action: (session: Session<T>, ...args: A) => R | Promise<R>,
): (...args: A) => Promise<Awaited<R>> {
  checkSessions("sessionkit/next sessionAction()", sessions);
  checkHandler("sessionkit/next sessionAction()", action);
  return async (...args): Promise<Awaited<R>> => {
    const { input, requestHeaders, jar } = await requestInput(sessions);
    const perRequest = entriesOf(acting, requestHeaders);
    const outer = perRequest.get(sessions);
    if (outer) return await action(outer as Session<T>, ...args);
    // Next refuses the cookie only after the commit has written the store: a `regenerate` would
    // delete the visitor's record and never hand them the new id.
    if (!canSetCookies(jar)) {
      throw new SessionError(
        "ERR_SESSION_STATE",
        "sessionAction() ran where Next does not let code set cookies: during a render, or in an after() callback, which runs once the response is sent. Read with getSession() there, and write in the Server Action or Route Handler itself, before it returns",
      );
    }
    const session = await sessions.load(input);
    perRequest.set(sessions, session as Session<SessionData>);
    let outcome: { value: Awaited<R> } | { error: unknown };
    try {
      outcome = { value: await action(session, ...args) };
    } catch (error) {
      outcome = { error };
    }
    perRequest.delete(sessions);
    // A call nobody awaited (a promise handed to `after()`) can end once Next has sent the
    // response, and Next has sealed the jar since the check above: the commit would write the
    // store for a cookie that never leaves. One that ends while Next is still sending it looks
    // like any other call (the jar still takes cookies, which are lost): docs/adapters/next.md.
    const current = await cookies();
    if (!canSetCookies(current)) {
      closeSession(session);
      await releaseLock(session);
      throw new SessionError(
        "ERR_SESSION_STATE",
        "sessionAction() ended after Next had sent the response, so its cookie could not go with it: nothing was saved. Await it in the Server Action or Route Handler itself, not in after()",
        "error" in outcome ? { cause: outcome.error } : undefined,
      );
    }
    const committed = new HeaderList();
    await commitLast(sessions, session, committed);
    // The action's own response carries no other header: `cache-control` is Next's (no-store for
    // an action), `clear-site-data` has no way out of a Server Action.
    if (committed.cookies.length > 0) setCookies(current, committed.cookies);
    if ("error" in outcome) throw outcome.error;
    return outcome.value;
  };
}

/**
 * Whether an error means "try again shortly": the store is down (`StoreUnavailableError`) or the
 * session's lock was not obtained in time. A Server Action cannot answer 503 (Next answers a thrown
 * error with a 500 and the client's error boundary): this lets the action answer something the
 * client shows instead. `sessionProxy` and `withSession` answer 503 themselves.
 *
 * @example
 * ```ts
 * "use server";
 * export async function save(form: FormData) {
 *   try {
 *     return await saveNote(form);
 *   } catch (err) {
 *     if (isStoreUnavailable(err)) return { error: "Please try again in a moment" };
 *     throw err;
 *   }
 * }
 * const saveNote = sessionAction(sessions, (session, form: FormData) => {
 *   session.flash("success", `Saved ${String(form.get("title"))}`);
 *   return { error: undefined };
 * });
 * ```
 */
export function isStoreUnavailable(err: unknown): boolean {
  return storeUnavailable(err);
}

/** Options of `sessionProxy`. */
export interface NextProxyOptions<T extends SessionData> {
  /** Run after the session loads; the first Response answers instead of the app (a redirect to /login). */
  guards?: readonly Guard<T>[];
}

/**
 * The Proxy (`proxy.ts`; `middleware.ts` before Next.js 16): loads the session of each request it
 * matches and commits what the core writes without a change (an idle deadline's slide, a key
 * rotation, a renewal, the deletion of a refused cookie), so pages that only read keep their visitor
 * signed in. What runs after it in the same request (a page's `cookies()`, a Route Handler's
 * `request.headers`) reads the cookie it sets. Guards answer first, for a Server Action's POST too;
 * a store that is down answers 503. What a Server Action's POST (with `Next-Action`, or a form posted
 * without JavaScript) would write is left to the action, which commits.
 *
 * @example
 * ```ts
 * // proxy.ts
 * export const proxy = sessionProxy(sessions, {
 *   guards: [requireSession((s) => s.userId !== undefined, { redirect: "/login" })],
 * });
 * // Pages only: a Route Handler in `withSession` commits its own session
 * export const config = { matcher: ["/((?!api/|_next/static|_next/image|favicon.ico).*)"] };
 * ```
 */
export function sessionProxy<T extends SessionData>(
  sessions: Sessions<T>,
  options: NextProxyOptions<T> = {},
): (request: NextRequest) => Promise<Response> {
  checkSessions("sessionkit/next sessionProxy()", sessions);
  checkOptions("sessionkit/next sessionProxy()", options, ["guards"]);
  const guards = options.guards ?? [];
  return async (request) => {
    let session: Session<T> | undefined;
    try {
      session = await sessions.load(request);
      // Guards run for a Server Action's POST too: Next renders the page after the action.
      const denied = await runGuards(guards, session, request);
      const committed = new HeaderList();
      if (leavesCommitToNext(request, denied)) await releaseLock(session);
      else await commitLast(sessions, session, committed);
      if (denied) {
        const response = new Response(denied.body, denied);
        // Next refuses a relative Location from the proxy (a guard's `redirect: "/login"`).
        const location = response.headers.get("location");
        if (location) response.headers.set("location", new URL(location, request.url).href);
        committed.appendTo(response.headers);
        return response;
      }
      // What comes next reads the cookies the browser will hold: a Route Handler reads
      // `request.headers`, to which only this reaches (a renewed id would otherwise meet the old one).
      const response = NextResponse.next(
        committed.cookies.length > 0
          ? { request: { headers: heldAfter(request, committed.cookies) } }
          : undefined,
      );
      // Through `response.cookies`, Next hands the new cookies to the pages' `cookies()` too.
      setCookies(response.cookies, committed.cookies);
      for (const [name, value] of committed.fields) response.headers.set(name, value);
      return response;
    } catch (err) {
      // A guard that threw: nothing committed, and the lock would otherwise be held until its ttl.
      if (session) await releaseLock(session);
      if (storeUnavailable(err)) return storeUnavailableResponse();
      throw err;
    }
  };
}

/** This request's entries in one of the tables above. */
function entriesOf<V>(table: WeakMap<RequestHeaders, Map<object, V>>, key: RequestHeaders) {
  let entries = table.get(key);
  if (!entries) {
    entries = new Map();
    table.set(key, entries);
  }
  return entries;
}

/**
 * Whether the proxy must write nothing for this request. A Server Action's POST that goes on to the
 * action: the action commits, and a second writer of the cookie in one response could land after
 * it. Next's own fetch of an action's redirect target (it sends the action's answer headers along,
 * `x-action-redirect` among them): Next drops that answer's Set-Cookie, so a renewal written there
 * would delete the record of the cookie the browser keeps. A client that sends that header on its
 * own only keeps its own session from sliding here. (A prefetch cannot be told apart: Next strips
 * `Next-Router-Prefetch` and the other RSC headers from the proxy's request.)
 */
function leavesCommitToNext(request: NextRequest, denied: Response | undefined): boolean {
  if (request.headers.has("x-action-redirect")) return true;
  return !denied && mayBeServerAction(request);
}

/**
 * Whether Next will treat a request as a Server Action, as its own test does (`isPossibleServerAction`
 * in next/dist/server/lib/server-action-request-meta): a POST with `Next-Action` (the client
 * router's fetch), or a form's body (a form posted before JavaScript loads or without it).
 */
function mayBeServerAction(request: NextRequest): boolean {
  if (request.method !== "POST") return false;
  const type = request.headers.get("content-type") ?? "";
  return (
    request.headers.has("next-action") ||
    type === "application/x-www-form-urlencoded" ||
    type.startsWith("multipart/form-data")
  );
}

/**
 * What the core reads, from Next's request: its headers, the session header left out (the token
 * cannot come back in a response header from a Server Action), and the Cookie header as
 * `heldCookies` gives it.
 */
async function requestInput<T extends SessionData>(sessions: Sessions<T>) {
  const [jar, requestHeaders] = await Promise.all([cookies(), headers()]);
  const cookie = heldCookies(jar, requestHeaders.get("cookie"), sessions.cookieName);
  const ignored = sessions.headerName;
  const input: SessionInput = {
    headers: {
      get: (name) =>
        name === "cookie" ? cookie : name === ignored ? null : requestHeaders.get(name),
    },
  };
  return { input, requestHeaders, cookie, jar };
}

/**
 * Whether Next lets this code set cookies. A render's jar is sealed with one throwing function for
 * `set`, `delete` and `clear`; a Server Action's or a Route Handler's has a function of its own for
 * each, until the response is sent: in `after()` (Next's `phase: 'after'`) `cookies()` hands out
 * the sealed jar again. Nothing is read or written to find out. Were Next to seal a jar another
 * way, this says yes, and Next's own refusal at `cookies().set` comes after the commit, as it did
 * before this check.
 */
function canSetCookies(jar: Jar): boolean {
  return jar.set !== jar.delete;
}

/**
 * The request's Cookie header, unless this request changed our cookies already (an action's commit
 * before the page renders, or the proxy's): then Next's cookie jar, which holds what the browser
 * will. The header itself is preferred while the jar agrees, because the jar keeps one value per
 * name, the last, and a stale cookie of our name on another path or domain can be that one: the
 * core tries each value the header carries.
 */
function heldCookies(jar: Jar, sent: string | null, name: string): string | null {
  const ours = jar.getAll().filter((cookie) => cookie.name.startsWith(name));
  // A cookie deleted in this request stays in the jar without a value (and Next writes it back
  // into the request's Cookie header as "name="): the browser will not send it.
  const held = ours.filter((cookie) => cookie.value);
  const parsed = lastValues(sent, name);
  if (held.length === parsed.size && held.every((c) => parsed.get(c.name) === c.value)) return sent;
  return held.length === 0
    ? null
    : held.map((cookie) => `${cookie.name}=${encodeURIComponent(cookie.value)}`).join("; ");
}

/** Our names' values in a Cookie header as Next's jar reads it: split on "; ", decoded, last wins. */
function lastValues(header: string | null, name: string): Map<string, string> {
  const values = new Map<string, string>();
  if (!header) return values;
  for (const pair of header.split(/; */)) {
    const eq = pair.indexOf("=");
    if (eq < 0 || !pair.startsWith(name)) continue;
    try {
      values.set(pair.slice(0, eq), decodeURIComponent(pair.slice(eq + 1)));
    } catch {
      // Next drops a value that does not decode, and so does this view of it.
    }
  }
  return values;
}

/** The request's headers, its Cookie header changed as these Set-Cookie lines change the browser's. */
function heldAfter(request: NextRequest, lines: readonly string[]): Headers {
  for (const line of lines) {
    const { name, value = "", maxAge } = parseSetCookie(line);
    if (value === "" || (maxAge !== undefined && maxAge <= 0)) request.cookies.delete(name);
    else request.cookies.set(name, value);
  }
  return request.headers;
}

/** Hands the core's Set-Cookie lines to a Next cookie jar, attribute for attribute. */
function setCookies(jar: Pick<Jar, "set"> | NextResponse["cookies"], lines: readonly string[]) {
  for (const line of lines) {
    const { name, value = "", ...attributes } = parseSetCookie(line);
    (jar as NextResponse["cookies"]).set({ name, value, ...attributes });
  }
}
