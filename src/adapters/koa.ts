import type { Middleware, ParameterizedContext } from "koa";
import { type Guard, runGuards } from "../guard.js";
import { loadedBy, type Sessions } from "../manager.js";
import type { RegisteredSessionData } from "../register.js";
import type { Session } from "../session.js";
import { checkOptions, checkSessions } from "./internal/adapter-args.js";
import { guardRequest, guardUrl } from "./internal/node-request.js";
import { loadAndHold } from "./internal/node-session.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
// `Register` lives in the core (`declare module "sessionkit"`); augmenting it as `sessionkit/koa` works too.
export type { Register, RegisteredSessionData } from "../register.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

declare module "koa" {
  interface ExtendableContext {
    /** The visitor's session, set by `session()`. */
    session: Session<RegisteredSessionData>;
  }
}

/** Options of the `session()` middleware. */
export interface KoaSessionOptions {
  /** Run after the session loads, for every request; the first Response answers instead of the app. */
  guards?: readonly Guard<RegisteredSessionData>[];
}

/**
 * Koa 3 middleware that loads `ctx.session` and commits it as the response's headers leave: after the
 * downstream middleware resolve or throw. Koa's error response resets every header, and the session's
 * are applied after that reset, so the cookie is on it too. A store that is down gives a 503.
 *
 * @example
 * ```ts
 * const app = new Koa();
 * app.use(session(sessions));
 * app.use((ctx) => {
 *   const visits = ((ctx.session.get("visits") as number) ?? 0) + 1; // no cast once `Register` is declared
 *   ctx.session.set("visits", visits);
 *   ctx.body = `visit ${visits}`;
 * });
 * ```
 */
export function session(
  sessions: Sessions<RegisteredSessionData>,
  options: KoaSessionOptions = {},
): Middleware {
  checkSessions("sessionkit/koa session()", sessions);
  checkOptions("sessionkit/koa session()", options, ["guards"]);
  const guards = options.guards ?? [];
  return async (ctx, next) => {
    // Mounted again (a sub-app, a router): the outer mount's session is this request's session.
    if (loadedBy(ctx.session as Session | undefined, sessions)) {
      if (await allow(guards, ctx)) await next();
      return;
    }
    // Holding the raw response, rather than committing after `next()`, also covers Koa's error
    // response (which clears headers set before it), `ctx.respond = false` and early flushes.
    const held = await loadAndHold(sessions, ctx.req, ctx.res, {
      ip: () => ctx.ip,
      onError: (err) => {
        ctx.app.emit("error", err, ctx);
        return new Response("Internal Server Error", { status: 500 });
      },
    });
    if (held instanceof Response) {
      ctx.body = held; // Koa 3 takes a Web Response as the body: its status, headers and body
      return;
    }
    ctx.session = held.session;
    if (await allow(guards, ctx)) await next();
  };
}

/**
 * Turns guards into middleware for the routes behind it; the first guard that returns a Response
 * answers the request.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.has("username"), { redirect: "/login" });
 * app.use(guard(signedIn)); // every middleware below needs a signed-in session
 * app.use((ctx) => { ctx.body = "secret" });
 * ```
 */
export function guard(...guards: Guard<RegisteredSessionData>[]): Middleware {
  return async (ctx, next) => {
    if (await allow(guards, ctx)) await next();
  };
}

async function allow(guards: readonly Guard<RegisteredSessionData>[], ctx: ParameterizedContext) {
  // No guards, no guard Request: building one per request read Koa's host and protocol getters and
  // kept the request reachable through scavenges (a read route at half bare Koa's req/s).
  if (guards.length === 0) return true;
  // Koa's own scheme and host: the forwarded ones when `app.proxy` is set.
  const url = guardUrl(ctx.protocol, ctx.host, ctx.originalUrl);
  const denied = await runGuards(
    guards,
    ctx.session,
    guardRequest(ctx.req, url, (ctx.request as { body?: unknown }).body),
  );
  // Koa 3 takes a Web Response as the body: its status, headers and body.
  if (denied) ctx.body = denied;
  return !denied;
}
