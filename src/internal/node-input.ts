import type { HeaderReader, SessionInput } from "../manager.js";

/**
 * A Node.js `IncomingMessage`, as far as loading a session needs it. Structural, so the core imports
 * nothing from `node:http` and still runs on Workers, Deno and Bun.
 */
export interface NodeRequestLike {
  headers: Record<string, string | string[] | undefined>;
  url?: string | undefined;
  socket?: { remoteAddress?: string | undefined; encrypted?: boolean } | null | undefined;
}

/** Whether `input` carries Node's header record rather than a Fetch-style `get`. */
export function isNodeRequest(input: object): input is NodeRequestLike {
  const headers = (input as { headers?: unknown }).headers;
  return (
    typeof headers === "object" &&
    headers !== null &&
    typeof (headers as { get?: unknown }).get !== "function"
  );
}

/** What `load` reads of a Node request: its headers in place, its URL and, when asked, its address. */
export function nodeSessionInput(
  req: NodeRequestLike,
  ip?: () => string | undefined,
): SessionInput {
  const headers = req.headers;
  return {
    // Read in place, without a copy. A repeated header other than Cookie arrives as an array and is
    // read as absent: the core wants single-valued ones only.
    headers: {
      get: (name) => {
        const value = headers[name];
        return typeof value === "string" ? value : null;
      },
    } satisfies HeaderReader,
    url: nodeRequestUrl(req),
    ip: ip ?? (() => req.socket?.remoteAddress),
  };
}

/**
 * The request's absolute URL as it reached this server (no proxy header trusted): node:http gives the
 * target, and the host is the client's Host header. Both are whatever the client wrote, so the URL is
 * made to parse and to keep the path the router serves (see `requestUrl`).
 */
export function nodeRequestUrl(req: NodeRequestLike): string {
  // HTTP/2 names the host in the `:authority` pseudo-header; a client may leave Host out.
  const host = req.headers.host ?? req.headers[":authority"];
  return requestUrl(
    req.socket?.encrypted === true ? "https" : "http",
    typeof host === "string" ? host : "",
    req.url ?? "/",
  );
}

/**
 * Where a request's host is not one (it would not parse, or would carry a path, query or fragment
 * of its own): a name that never resolves (RFC 6761 reserves `.invalid`), so neither an Origin nor
 * a redirect can match it.
 */
export const UNSOUND_HOST = "host.invalid";

/** A name or IPv4 address, or a bracketed IPv6 literal, then at most a port: nothing a URL reads further. */
const AUTHORITY = /^(?:[\da-z._-]+|\[[\da-f:.]+\])(?::\d{1,5})?$/i;
const MAX_PORT = 65_535;
const OPEN_BRACKET = 91;

/** Whether a Host value is a host (and port) only, so `scheme://host` + a path parses as that path. */
function isAuthority(host: string): boolean {
  if (!AUTHORITY.test(host)) return false;
  // Runs on every request: the port's range is read only when there is one.
  const colon = host.charCodeAt(0) === OPEN_BRACKET ? host.indexOf("]:") + 1 : host.indexOf(":");
  return colon <= 0 || Number(host.slice(colon + 1)) <= MAX_PORT;
}

/**
 * The absolute URL of a request from the scheme, the Host the client sent and the request target.
 * A Host holding "/", "?", "#" or "@" would move the start of the path: `Host: evil/x?` with target
 * `/admin` reads as path `/x`, so a guard matching paths saw one the router does not serve; a Host
 * that does not parse (`app:99999`) made the whole URL fail. Such a Host becomes `UNSOUND_HOST`; a
 * missing or empty one, `localhost`. An absolute-form target (`GET http://other/admin`, RFC 9112
 * §3.2.2) names its own host, and the router serves its path: it is the URL, as Koa, Hono and h3
 * read it, when it is http(s) with a sound host.
 */
export function requestUrl(scheme: "http" | "https", host: string, target: string): string {
  const origin = `${scheme}://${host === "" ? "localhost" : isAuthority(host) ? host : UNSOUND_HOST}`;
  if (target.charCodeAt(0) === SLASH) return origin + target;
  // `OPTIONS *`, or a target that is no URL: the origin's root.
  return absoluteTarget(target) ?? `${origin}/`;
}

const SLASH = 47;

function absoluteTarget(target: string): string | undefined {
  try {
    const url = new URL(target);
    if ((url.protocol === "http:" || url.protocol === "https:") && isAuthority(url.host)) {
      // Without userinfo or fragment, which a request target cannot mean.
      return `${url.protocol}//${url.host}${url.pathname}${url.search}`;
    }
  } catch {
    // not a URL: the origin's root, below
  }
  return undefined;
}
