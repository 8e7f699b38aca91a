import type { Sessions } from "../manager.js";
import type { Session, SessionData } from "../session.js";
import { checkHandler, checkOptions, checkSessions } from "./internal/adapter-args.js";
import { serveFetch } from "./internal/serve-fetch.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";
export { createHandler, type GuardedHandler, type InferProps } from "./internal/guarded-handler.js";

/** What a fetch-style handler receives beside the request. */
export interface FetchSessionContext<T extends SessionData> {
  session: Session<T>;
}

/** Options of `withSession`. */
export interface FetchSessionOptions<A extends unknown[]> {
  /**
   * The client's address, recorded by store sessions for a devices page (`track.ip`); given the
   * request and the handler's extra arguments. Fetch has no portable one: on Workers
   * `(request) => request.headers.get("cf-connecting-ip") ?? undefined`; on Deno
   * `(_request, info) => info.remoteAddr.hostname`; on Bun `(request, server) =>
   * server.requestIP(request)?.address`. Called only when a session records it. Default: none.
   */
  ip?: (request: Request, ...rest: A) => string | null | undefined;
}

/**
 * Wraps a fetch-style handler (Cloudflare Workers, Deno.serve, Bun.serve, any `Request -> Response`)
 * with a session: loaded before, committed onto the response after, also on redirects and streamed
 * bodies (headers are set before the body is read). An unhandled `StoreUnavailableError` becomes 503.
 * Extra arguments (a Worker's `env` and `ctx`) pass through. Wrapped inside another `withSession` or
 * `createHandler` of the same manager and given the same Request, it reuses that session, which the
 * outer one commits.
 *
 * A handler may return `undefined` where its runtime answers by itself (Bun after
 * `server.upgrade(request)`): nothing is committed then, and a session the handler changed throws
 * `ERR_SESSION_STATE` (no response is left to carry its cookie); commit into the upgrade's headers
 * first (`await sessions.commit(session, headers)`) to keep such a change.
 *
 * @example
 * ```ts
 * import { createSessions } from "sessionkit";
 * import { withSession } from "sessionkit/fetch";
 * // Deno or Bun; on Workers the secret is in `env`, given to fetch: create the manager there, once
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET! });
 * export default {
 *   fetch: withSession(sessions, (request, { session }) => {
 *     const visits = ((session.get("visits") as number) ?? 0) + 1;
 *     session.set("visits", visits);
 *     return new Response(`visit ${visits}`);
 *   }),
 * };
 * ```
 */
export function withSession<
  T extends SessionData,
  A extends unknown[],
  R extends Response | undefined = Response,
>(
  sessions: Sessions<T>,
  handler: (request: Request, context: FetchSessionContext<T>, ...rest: A) => R | Promise<R>,
  options: FetchSessionOptions<A> = {},
): (request: Request, ...rest: A) => Promise<R> {
  checkSessions("sessionkit/fetch withSession()", sessions);
  checkHandler("sessionkit/fetch withSession()", handler);
  checkOptions("sessionkit/fetch withSession()", options, ["ip"]);
  const ip = options.ip;
  return (request, ...rest) =>
    serveFetch(
      sessions,
      request,
      ip
        ? {
            headers: request.headers,
            url: request.url,
            ip: () => ip(request, ...rest) ?? undefined,
          }
        : request,
      (session) => handler(request, { session }, ...rest),
    );
}
