import { ConfigError } from "./errors.js";
import { type Denial, denialResponse, type Guard, prepareDenial } from "./guard.js";
import { rejectUnknown } from "./internal/unknown-options.js";
import type { SessionData } from "./session.js";

/** Options of `requireSameOrigin`. */
export interface SameOriginOptions {
  /**
   * Origins (`https://app.example.com`, scheme, host and port only) whose requests pass as if they
   * were this site's own: another front end that posts to this one, or the public origin when a
   * proxy forwards a different `Host`. Default none.
   */
  trustedOrigins?: readonly string[];
  /** How a cross-origin request is refused. Default `{ status: 403 }`. */
  deny?: Denial;
}

// Methods a browser sends cross-origin without asking (no CORS preflight) and that must not change
// state anyway: refusing them would break links and images from other sites.
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A guard that refuses state-changing requests (POST, PUT, PATCH, DELETE, ...) a browser sends on
 * behalf of another origin: cross-site request forgery, including from a sibling subdomain or another
 * port of the same host, which `SameSite=Lax` lets through because they are the same *site*.
 *
 * It reads the headers browsers set themselves and pages cannot forge: `Sec-Fetch-Site` (every
 * current browser) must be `same-origin` or `none` (typed in, a bookmark); without it, an `Origin`
 * header must name this request's host. A request with neither is not from a current browser (curl,
 * a server, a mobile app) and passes: it carries no cookies a victim's browser attached. GET, HEAD
 * and OPTIONS always pass, so keep them free of side effects. This is OWASP's "Fetch Metadata" and
 * "verifying origin with standard headers" defence; browsers older than 2020 that send neither header
 * on a cross-site form post are not covered (add a CSRF token for them).
 *
 * @example
 * ```ts
 * import { requireSameOrigin, session } from "sessionkit/express";
 * app.use(session(sessions, { guards: [requireSameOrigin()] }));
 * // a front end on another origin that posts here:
 * requireSameOrigin({ trustedOrigins: ["https://admin.example.com"] });
 * ```
 */
export function requireSameOrigin<T extends SessionData = SessionData>(
  options: SameOriginOptions = {},
): Guard<T> {
  rejectUnknown(options, ["trustedOrigins", "deny"], "requireSameOrigin option");
  const trusted = new Set((options.trustedOrigins ?? []).map(checkOrigin));
  const deny = prepareDenial(
    options.deny ?? { status: 403, body: "Forbidden: cross-origin request" },
  );
  return (_session, request) => {
    if (request && isSameOrigin(request, trusted)) return undefined;
    return denialResponse(deny);
  };
}

function isSameOrigin(request: Request, trusted: ReadonlySet<string>): boolean {
  if (SAFE_METHODS.has(request.method)) return true;
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  if (origin !== null && trusted.has(origin)) return true;
  if (site !== null) return site === "same-origin" || site === "none";
  if (origin === null) return true;
  return isSameHost(origin, request.url);
}

/** Default ports of the schemes an Origin names, as the URL parser leaves them out. */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { "http:": "80", "https:": "443" };

/**
 * Whether an Origin names the request's host. The host only, not the scheme: behind a proxy that
 * ends TLS the request URL says http while the browser's Origin says https, and a scheme downgrade
 * needs a network attacker, not a page. For the same reason a request host with the default port
 * of the Origin's scheme is that host: nginx's common `proxy_set_header Host $host:$server_port`
 * forwards `app.example.com:443`. A request URL that does not parse (h3 on Node hands on
 * `http://app:99999/`, a Host no browser sends) names no host: refused, where it threw (a 500).
 */
function isSameHost(origin: string, requestUrl: string): boolean {
  let from: URL;
  let to: URL;
  try {
    from = new URL(origin);
    to = new URL(requestUrl);
  } catch {
    return false; // "null", or no URL at all
  }
  if (from.host === "") return false;
  if (from.host === to.host) return true;
  return (
    from.port === "" && to.hostname === from.hostname && to.port === DEFAULT_PORTS[from.protocol]
  );
}

/** An origin as browsers serialise it in the Origin header, or a ConfigError saying what to change. */
function checkOrigin(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || url.origin === "null" || url.origin !== value) {
    throw new ConfigError(
      `requireSameOrigin: trustedOrigins entry ${JSON.stringify(value)} is not an origin; write it as the browser sends it, scheme and host only, e.g. "https://app.example.com"${url && url.origin !== "null" ? ` ("${url.origin}")` : ""}`,
    );
  }
  return value;
}
