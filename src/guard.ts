import { ConfigError } from "./errors.js";
import type { Session, SessionData } from "./session.js";

/**
 * A guard runs before a handler: it returns a `Response` to stop the request (a redirect to the
 * sign-in page, a 401, a 403), or nothing to let it through. Every adapter runs guards the same way
 * and commits the session on the guard's response too. `request` is the Fetch `Request` (method, URL,
 * headers; in the node-based adapters without its body, which stays the framework's to read), e.g.
 * to send the visitor back where they were after signing in. It is `undefined` only where the
 * node-based adapters meet a method Fetch cannot carry (CONNECT, TRACE, TRACK): a guard that
 * protects something refuses then too, as below.
 *
 * The URL's host is whatever the client put in its Host header (`host.invalid` in the node-based
 * adapters when that is no host; some servers hand on one that does not even parse): redirect with a
 * relative `Location`, not one built on `request.url`, and treat the path as the client's text. To
 * protect some routes, mount the guard on them (`guard()`, `sessionGuard()`) rather than testing the
 * path in a guard for every request: routers match paths decoded or case-insensitively, which a
 * string test does not.
 *
 * @example
 * ```ts
 * const signedIn: Guard = (session, request) => {
 *   if (session.has("user")) return undefined;
 *   // The path and query only, with one leading slash: "//evil.example/" would be another site.
 *   const here = request && URL.canParse(request.url) ? new URL(request.url) : undefined;
 *   const next = here ? `/${here.pathname.replace(/^\/+/, "")}${here.search}` : "/";
 *   return new Response(null, {
 *     status: 303,
 *     headers: { location: `/login?next=${encodeURIComponent(next)}` },
 *   });
 * };
 * // The sign-in page checks `next` again before redirecting to it: any link can carry one.
 * ```
 */
export type Guard<T extends SessionData = SessionData> = (
  session: Session<T>,
  request: Request | undefined,
) => Response | undefined | void | Promise<Response | undefined | void>;

/**
 * How a guard refuses: a redirect (303 by default, so a POST becomes a GET) or a status. A redirect
 * may leave a flash message for the page it leads to (`flash: ["info", "Please sign in"]`).
 */
export type Denial =
  | {
      redirect: string;
      status?: 301 | 302 | 303 | 307 | 308;
      flash?: [level: string, message: string];
    }
  | { status: 401 | 403 | 404; body?: string };

/**
 * Builds a guard from a predicate on the session.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.userId !== undefined, { redirect: "/login" });
 * const admin = requireSession((s) => s.get("role") === "admin", { status: 403 });
 * const told = requireSession((s) => s.userId !== undefined, {
 *   redirect: "/login",
 *   flash: ["info", "Please sign in first"],
 * });
 * ```
 */
export function requireSession<T extends SessionData = SessionData>(
  allow: (session: Session<T>) => boolean | Promise<boolean>,
  deny: Denial,
): Guard<T> {
  const refusal = prepareDenial(deny);
  return async (session) => {
    if (await allow(session)) return undefined;
    // The adapter commits the session with the denial, so the page redirected to reads it.
    if ("redirect" in refusal && refusal.flash) session.flash(refusal.flash[0], refusal.flash[1]);
    return denialResponse(refusal);
  };
}

/** Runs guards in order; the first Response wins. */
export async function runGuards<T extends SessionData>(
  guards: readonly Guard<T>[],
  session: Session<T>,
  request: Request | undefined,
): Promise<Response | undefined> {
  // A fetch server on Node (@hono/node-server, h3's srvx) checks a Host's characters, not its
  // meaning, and hands on a URL no parser accepts (`Host: 1.2.3.256`): a guard reading it would throw
  // (a 500). No browser sends one; it is a bad request, answered before any guard runs.
  if (guards.length > 0 && request !== undefined && !URL.canParse(request.url)) {
    return new Response("Bad Request: the request's host is not a valid host", {
      status: 400,
      headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
    });
  }
  for (const guard of guards) {
    const denied = await guard(session, request);
    if (!denied) continue;
    if (typeof denied === "function") {
      // requireSession or a guard factory given uncalled: it made a guard instead of answering.
      throw new ConfigError(
        "a guard returned a function, not a Response: pass requireSession(allow, deny)'s result, not requireSession itself",
      );
    }
    return denied;
  }
  return undefined;
}

/**
 * A `Denial` as its Response will carry it, prepared once when the guard is made: the redirect
 * percent-encoded as Express's `res.location` does (characters outside URL syntax as UTF-8, escapes
 * already there kept). A header holds Latin-1 only: "/ログイン" failed every refusal with a 500,
 * "/déjà" went out as raw bytes a browser reads as another path, and a CR or LF was a 500 as well.
 */
export function prepareDenial(deny: Denial): Denial {
  if (!("redirect" in deny) || typeof deny.redirect !== "string") return deny;
  return {
    ...deny,
    redirect: deny.redirect.replace(LONE_SURROGATE, "\uFFFD").replace(NOT_IN_URL, encodeURI),
  };
}

/** Runs of characters a URL does not hold as they are, and a "%" that starts no escape. */
const NOT_IN_URL = /(?:[^\x21\x23-\x3b\x3d\x3f-\x5f\x61-\x7a\x7c\x7e]|%(?![\da-fA-F]{2}))+/g;
/** Half of a surrogate pair alone: `encodeURI` throws on it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * The Response a `Denial` describes; shared by the guard builders. Never stored: a refusal depends
 * on the session (or the request's headers), yet 301, 308 and 404 are cacheable by default
 * (RFC 9111 §4.2.2), so a browser kept a 301 to the sign-in page after sign-in, and a shared cache
 * could answer one visitor's 404 to another.
 */
export function denialResponse(deny: Denial): Response {
  if ("redirect" in deny) {
    return new Response(null, {
      status: deny.status ?? 303,
      headers: { location: deny.redirect, "cache-control": "no-store" },
    });
  }
  const body =
    deny.body ??
    (deny.status === 401 ? "Unauthorized" : deny.status === 403 ? "Forbidden" : "Not Found");
  return new Response(body, {
    status: deny.status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}
