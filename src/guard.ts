import { ConfigError } from "./errors.js";
import type { Session, SessionData } from "./session.js";

/**
 * A guard runs before a handler: it returns a `Response` to stop the request (a redirect to the
 * sign-in page, a 401, a 403), or nothing to let it through. Every adapter runs guards the same way
 * and commits the session on the guard's response too. `request` is the Fetch `Request` (method, URL,
 * headers; in the node-based adapters without its body, which stays the framework's to read), e.g.
 * to send the visitor back where they were after signing in.
 *
 * @example
 * ```ts
 * const signedIn: Guard = (session, request) => {
 *   if (session.has("user") || !request) return undefined;
 *   const here = new URL(request.url);
 *   return Response.redirect(new URL(`/login?next=${encodeURIComponent(here.pathname)}`, here), 303);
 * };
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
  return async (session) => {
    if (await allow(session)) return undefined;
    // The adapter commits the session with the denial, so the page redirected to reads it.
    if ("redirect" in deny && deny.flash) session.flash(deny.flash[0], deny.flash[1]);
    return denialResponse(deny);
  };
}

/** Runs guards in order; the first Response wins. */
export async function runGuards<T extends SessionData>(
  guards: readonly Guard<T>[],
  session: Session<T>,
  request: Request | undefined,
): Promise<Response | undefined> {
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

/** The Response a `Denial` describes; shared by the guard builders. */
export function denialResponse(deny: Denial): Response {
  if ("redirect" in deny) {
    return new Response(null, { status: deny.status ?? 303, headers: { location: deny.redirect } });
  }
  const body =
    deny.body ??
    (deny.status === 401 ? "Unauthorized" : deny.status === 403 ? "Forbidden" : "Not Found");
  return new Response(body, {
    status: deny.status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
