import { loadedBy, type Sessions } from "../manager.js";
import type { Session, SessionData } from "../session.js";
import {
  commitToResponse,
  isStoreUnavailable,
  servedSessions,
  storeUnavailableResponse,
} from "./internal/respond.js";

export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";
export { createHandler, type GuardedHandler, type InferProps } from "./internal/guarded-handler.js";

/** What a fetch-style handler receives beside the request. */
export interface FetchSessionContext<T extends SessionData> {
  session: Session<T>;
}

/**
 * Wraps a fetch-style handler (Cloudflare Workers, Deno.serve, Bun.serve, any `Request -> Response`)
 * with a session: loaded before, committed onto the response after, also on redirects and streamed
 * bodies (headers are set before the body is read). An unhandled `StoreUnavailableError` becomes 503.
 * Extra arguments (a Worker's `env` and `ctx`) pass through. Wrapped inside another `withSession` or
 * `createHandler` of the same manager and given the same Request, it reuses that session, which the
 * outer one commits.
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
export function withSession<T extends SessionData, A extends unknown[]>(
  sessions: Sessions<T>,
  handler: (
    request: Request,
    context: FetchSessionContext<T>,
    ...rest: A
  ) => Response | Promise<Response>,
): (request: Request, ...rest: A) => Promise<Response> {
  return async (request, ...rest) => {
    const outer = loadedBy(servedSessions.get(request) as Session<T> | undefined, sessions);
    if (outer) return handler(request, { session: outer }, ...rest);
    try {
      const session = await sessions.load(request);
      servedSessions.set(request, session);
      const response = await handler(request, { session }, ...rest);
      return await commitToResponse(sessions, session, response);
    } catch (err) {
      if (isStoreUnavailable(err)) return storeUnavailableResponse();
      throw err;
    }
  };
}
