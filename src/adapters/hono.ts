import type { Context, MiddlewareHandler } from "hono";
import { type Guard, runGuards } from "../guard.js";
import { loadedBy, type Sessions } from "../manager.js";
import type { Session, SessionData } from "../session.js";
import { checkOptions, checkSessions } from "./internal/adapter-args.js";
import { releaseOnAbort } from "./internal/release-on-abort.js";
import {
  commitToResponse,
  isStoreUnavailable,
  storeUnavailableResponse,
} from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

/** The data type of a `Sessions` manager, or the data type itself. */
type DataOf<T> = T extends Sessions<infer D> ? D : T extends SessionData ? T : never;

/**
 * Hono's `Env` with the session on `c.get("session")`. Give it the manager's type or the data type:
 * `new Hono<SessionEnv<typeof sessions>>()`, or combine it with your own bindings:
 * `new Hono<{ Bindings: Env } & SessionEnv<typeof sessions>>()`.
 *
 * @example
 * ```ts
 * const app = new Hono<SessionEnv<typeof sessions>>();
 * app.get("/", (c) => c.text(String(c.get("session").get("visits") ?? 0)));
 * ```
 */
export type SessionEnv<T extends SessionData | Sessions<any> = SessionData> = EnvOf<DataOf<T>>;

/** The `Env` the middleware declares; `SessionEnv` resolves to it. */
interface EnvOf<T extends SessionData> {
  Variables: { session: Session<T> };
}

/** Options of `sessionMiddleware`. */
export interface HonoSessionOptions<T extends SessionData, E extends EnvOf<T> = EnvOf<T>> {
  /** Run after the session loads, before the routes; the first Response a guard returns answers. */
  guards?: readonly Guard<T>[];
  /**
   * The client's address, recorded by store sessions for a devices page (`track.ip`). Hono has no
   * portable one: on Node, `(c) => getConnInfo(c).remote.address` from `@hono/node-server/conninfo`;
   * behind a proxy, the header it sets. Called only when a session records it. Default: none.
   */
  ip?: (c: Context<E>) => string | undefined;
}

/**
 * Hono middleware: loads the session onto `c.get("session")` and commits it onto `c.res` after the
 * handler, so redirects, streams and the `onError` response (Hono catches a thrown error below
 * this middleware and answers it before `next()` returns) all carry the cookie. A
 * `StoreUnavailableError` while loading or committing, or one that reached Hono's error handler
 * as a 500, answers 503. It takes the app's `Env` (`E`), so it can be kept in a
 * `MiddlewareHandler<Env>` made on a Worker's first request, and `ip` reads `c.env` typed.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { type SessionEnv, sessionMiddleware } from "sessionkit/hono";
 * const app = new Hono<SessionEnv<typeof sessions>>();
 * app.use(sessionMiddleware(sessions));
 * app.get("/count", (c) => {
 *   const session = c.get("session");
 *   const count = ((session.get("count") as number) ?? 0) + 1;
 *   session.set("count", count);
 *   return c.text(String(count));
 * });
 * ```
 */
export function sessionMiddleware<T extends SessionData, E extends EnvOf<T> = EnvOf<T>>(
  sessions: Sessions<T>,
  options: HonoSessionOptions<T, E> = {},
): MiddlewareHandler<E> {
  checkSessions("sessionkit/hono sessionMiddleware()", sessions);
  checkOptions("sessionkit/hono sessionMiddleware()", options, ["guards", "ip"]);
  const guards = options.guards ?? [];
  const ip = options.ip;
  return async (given, next) => {
    // Typed by the app's own Env where it has one (bindings beside the session); read as the part
    // this middleware declares.
    const c = given as unknown as Context<EnvOf<T>>;
    // Mounted again (app.route of a sub-app with its own): the outer mount loads and commits.
    const outer = loadedBy(c.get("session"), sessions);
    if (outer) {
      const denied = await runGuards(guards, outer, c.req.raw);
      if (denied) c.res = denied;
      else await next();
      return;
    }
    let session: Session<T>;
    try {
      const req = c.req.raw;
      session = await sessions.load(
        ip ? { headers: req.headers, url: req.url, ip: () => ip(given) } : req,
      );
    } catch (err) {
      if (isStoreUnavailable(err)) return storeUnavailableResponse();
      throw err;
    }
    c.set("session", session);
    releaseOnAbort(session, () => c.req.raw.signal);
    const denied = await runGuards(guards, session, c.req.raw);
    if (denied) c.res = denied;
    else await next();
    if (isStoreUnavailable(c.error) && c.res.status === 500)
      return replace(c, storeUnavailableResponse());
    try {
      const committed = await commitToResponse(sessions, session, c.res);
      // A copy carrying the session's headers replaces c.res without Hono's header merge.
      if (committed !== c.res) replace(c, committed);
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      replace(c, storeUnavailableResponse());
    }
  };
}

/**
 * Route middleware that runs guards on the loaded session: the first that returns a Response (a
 * redirect to sign-in, a 401 or 403) answers instead of the route. Use after `sessionMiddleware`.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.userId !== undefined, { redirect: "/login" });
 * app.get("/account", sessionGuard(signedIn), (c) => c.text("secret"));
 * ```
 */
export function sessionGuard<T extends SessionData>(
  ...guards: Guard<T>[]
): MiddlewareHandler<EnvOf<T>> {
  return async (c, next) => {
    const denied = await runGuards(guards, c.get("session"), await guardRequest(c));
    if (denied) return denied;
    await next();
  };
}

/**
 * The Request a guard reads. Hono's body readers (`c.req.parseBody()`, `validator("form", ...)`,
 * `c.req.text()`) read the Request's own stream and keep what they read on `c.req.bodyCache`: after
 * one of them the raw Request's body is spent, and a guard reading a form field
 * (`requireCsrfToken`) would find none. Then the guard gets a copy carrying what Hono kept, as the
 * node-based adapters hand on what their framework's parser read. A JSON body is no form: left out.
 */
async function guardRequest(c: Context): Promise<Request> {
  const raw = c.req.raw;
  if (!raw.bodyUsed) return raw;
  const cache = c.req.bodyCache;
  // The bytes as they came first (their Content-Type and size hold); a FormData only when Hono
  // kept nothing else.
  const kept = cache.arrayBuffer ?? cache.text ?? cache.blob ?? cache.formData;
  if (kept === undefined) return raw;
  try {
    // Hono keeps the reader's promise, typed as its value.
    const body: BodyInit = await kept;
    const headers = new Headers(raw.headers);
    headers.delete("content-length");
    // Encoded anew, with a boundary of its own that the Request's own Content-Type then names.
    if (body instanceof FormData) headers.delete("content-type");
    return new Request(raw.url, { method: raw.method, headers, body });
  } catch {
    // The reader failed (a malformed form): the guard sees a spent body, as it would have.
    return raw;
  }
}

/** Hono's `c.res` setter copies the old response's headers onto the new one; clearing it first skips that. */
function replace(c: Context, response: Response): void {
  c.res = undefined;
  c.res = response;
}
