import type { ErrorRequestHandler, Request, RequestHandler, Response } from "express";
import { type Guard, runGuards } from "../guard.js";
import { loadedBy, type Sessions } from "../manager.js";
import type { RegisteredSessionData } from "../register.js";
import type { Session } from "../session.js";
import { checkOptions, checkSessions } from "./internal/adapter-args.js";
import { guardRequest, guardUrl } from "./internal/node-request.js";
import { sendWebResponse } from "./internal/node-response.js";
import { type HeldSession, loadAndHold } from "./internal/node-session.js";
import { isStoreUnavailable, storeUnavailableResponse } from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
// `Register` lives in the core (`declare module "sessionkit"`); augmenting it as `sessionkit/express` works too.
export type { Register, RegisteredSessionData } from "../register.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

declare global {
  namespace Express {
    interface Request {
      /** The visitor's session, set by `session()`. */
      session: Session<RegisteredSessionData>;
    }
  }
}

/** Options of the `session()` middleware. */
export interface ExpressSessionOptions {
  /** Run after the session loads, for every request; the first Response answers instead of the app. */
  guards?: readonly Guard<RegisteredSessionData>[];
}

/**
 * Express (5 or 4) middleware that loads `req.session` and commits it before the response's headers
 * leave, whatever answers: `res.send`, `res.redirect`, a stream, Express's own error page. A store that
 * is down while loading or committing gives a 503. One your handlers throw is a 503 with `Retry-After`
 * from Express's own error handler too (the error carries `status` and `headers`); `sessionErrors()`
 * answers it with the adapter's plain-text, `no-store` 503 instead.
 *
 * @example
 * ```ts
 * const app = express();
 * app.use(session(sessions));
 * app.get("/", (req, res) => {
 *   const visits = ((req.session.get("visits") as number) ?? 0) + 1; // no cast once `Register` is declared
 *   req.session.set("visits", visits);
 *   res.send(`visit ${visits}`);
 * });
 * ```
 */
export function session(
  sessions: Sessions<RegisteredSessionData>,
  options: ExpressSessionOptions = {},
): RequestHandler {
  checkSessions("sessionkit/express session()", sessions);
  checkOptions("sessionkit/express session()", options, ["guards"]);
  const guards = options.guards ?? [];
  const loaded = (
    req: Request,
    res: Response,
    held: HeldSession<RegisteredSessionData> | globalThis.Response,
  ) => {
    if (held instanceof globalThis.Response) return sendWebResponse(res, held).then(() => false);
    req.session = held.session;
    return guards.length === 0 || allow(guards, req, res);
  };
  return middleware((req, res) => {
    // Mounted again (a sub-app, a router): the outer mount's session is this request's session.
    if (loadedBy(req.session, sessions)) return guards.length === 0 || allow(guards, req, res);
    const held = loadAndHold(sessions, req, res, {
      ip: () => req.ip,
      onError: (err) => {
        console.error(err); // past Express's error handler already: report, as Express does, and answer 500
        return new Response("Internal Server Error", { status: 500 });
      },
    });
    // A session loaded synchronously goes on to the next handler in this same event (loadSession).
    return held instanceof Promise ? held.then((h) => loaded(req, res, h)) : loaded(req, res, held);
  });
}

/**
 * Turns guards into route middleware; the first guard that returns a Response answers the request.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.has("username"), { redirect: "/login" });
 * app.get("/account", guard(signedIn), (req, res) => res.send("secret"));
 * ```
 */
export function guard(...guards: Guard<RegisteredSessionData>[]): RequestHandler {
  return middleware((req, res) => allow(guards, req, res));
}

/**
 * Error middleware answering 503 (with `Retry-After`) for a `StoreUnavailableError` a handler throws,
 * e.g. from `sessions.listByUser`; other errors pass on. Add it after your routes. Without it Express's
 * final handler answers such an error 503 with `Retry-After` as well, with its own HTML page.
 *
 * @example
 * ```ts
 * app.use(sessionErrors());
 * ```
 */
export function sessionErrors(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isStoreUnavailable(err) || res.headersSent) return next(err);
    sendWebResponse(res, storeUnavailableResponse()).catch(next);
  };
}

async function allow(guards: readonly Guard<RegisteredSessionData>[], req: Request, res: Response) {
  const url = guardUrl(req.protocol, trustedHost(req), req.originalUrl);
  const denied = await runGuards(guards, req.session, guardRequest(req, url, req.body));
  if (denied) await sendWebResponse(res, denied);
  return !denied;
}

/**
 * The host Express trusts, port included: the Host, or behind a proxy `trust proxy` trusts, the
 * first X-Forwarded-Host entry. Express 5's `req.host`. Express 4 has it only as `req.hostname`,
 * without the port (its `req.host` is a deprecated alias of that), so there the same rule runs on
 * the trust function Express compiles from `trust proxy`, the one its own `hostname` and `protocol`
 * ask.
 */
function trustedHost(req: Request): string | undefined {
  // Express 5 removed `req.param`.
  if (typeof (req as { param?: unknown }).param !== "function") return req.host;
  const forwarded = req.get("x-forwarded-host");
  const trust = req.app.get("trust proxy fn") as (
    address: string | undefined,
    hop: number,
  ) => boolean;
  if (!forwarded || !trust(req.socket.remoteAddress, 0)) return req.get("host");
  const comma = forwarded.indexOf(",");
  return comma < 0 ? forwarded : forwarded.slice(0, comma).trimEnd();
}

/**
 * Express 4 ignores a middleware's promise: errors go to `next` here, for both versions. A verdict
 * known synchronously calls `next` at once.
 */
function middleware(
  run: (req: Request, res: Response) => boolean | Promise<boolean>,
): RequestHandler {
  return (req, res, next) => {
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = run(req, res);
    } catch (err) {
      next(err);
      return;
    }
    if (verdict === true) next();
    else if (verdict instanceof Promise) {
      verdict.then((pass) => {
        if (pass) next();
      }, next);
    }
  };
}
