import type { IncomingMessage, ServerResponse } from "node:http";
import { type Guard, runGuards } from "../guard.js";
import { nodeRequestUrl } from "../internal/node-input.js";
import { loadedBy, type Sessions } from "../manager.js";
import type { Session, SessionData } from "../session.js";
import { checkHandler, checkOptions, checkSessions } from "./internal/adapter-args.js";
import { guardRequest } from "./internal/node-request.js";
import { sendWebResponse } from "./internal/node-response.js";
import { type HeldSession, loadAndHold } from "./internal/node-session.js";
import { errorResponse } from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

/** A node:http request with its session. */
export type SessionRequest<T extends SessionData> = IncomingMessage & { session: Session<T> };

/** Options of `withSession`. */
export interface NodeSessionOptions<T extends SessionData> {
  /** Run before the handler; the first that returns a Response answers instead of the handler. */
  guards?: readonly Guard<T>[];
}

/**
 * Wraps a node:http handler with a session on `req.session`, committed before the response's
 * headers leave, whatever way the handler responds. An unhandled `StoreUnavailableError` becomes a
 * 503; any other error thrown by the handler becomes a 500 that still carries the session cookie.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { withSession } from "sessionkit/node";
 * createServer(withSession(sessions, (req, res) => {
 *   const visits = ((req.session.get("visits") as number) ?? 0) + 1;
 *   req.session.set("visits", visits);
 *   res.end(`visit ${visits}`);
 * })).listen(3000);
 * ```
 */
export function withSession<T extends SessionData>(
  sessions: Sessions<T>,
  handler: (req: SessionRequest<T>, res: ServerResponse) => unknown,
  options: NodeSessionOptions<T> = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  checkSessions("sessionkit/node withSession()", sessions);
  checkHandler("sessionkit/node withSession()", handler);
  checkOptions("sessionkit/node withSession()", options, ["guards"]);
  const guards = options.guards ?? [];
  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    held: HeldSession<T> | Response,
  ) => {
    if (held instanceof Response) {
      await sendWebResponse(res, held);
      return;
    }
    const { session, responding } = held;
    (req as SessionRequest<T>).session = session;
    try {
      const denied =
        guards.length === 0
          ? undefined
          : await runGuards(
              guards,
              session,
              guardRequest(req, nodeRequestUrl(req), (req as { body?: unknown }).body),
            );
      if (denied) await sendWebResponse(res, denied);
      else await handler(req as SessionRequest<T>, res);
    } catch (err) {
      // The response is already on its way: report the error rather than crash the server with an
      // unhandled rejection (node:http ignores the handler's promise).
      if (responding()) console.error(err);
      else await sendWebResponse(res, errorResponse(err));
    }
  };
  return (req, res) => {
    // Nested in another withSession of the same manager: its session is this request's session.
    const outer = loadedBy((req as Partial<SessionRequest<T>>).session, sessions);
    if (outer) return serve(req, res, { session: outer, responding: () => res.headersSent });
    const held = loadAndHold(sessions, req, res, { onError: errorResponse });
    // A session loaded synchronously reaches the handler in this same event (see loadSession).
    if (!(held instanceof Promise)) return serve(req, res, held);
    return held.then(
      (loaded) => serve(req, res, loaded),
      (err: unknown) => serve(req, res, errorResponse(err)),
    );
  };
}
