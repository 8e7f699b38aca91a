import type { IncomingMessage } from "node:http";
import { isAuthority, requestUrl, UNSOUND_HOST } from "../../internal/node-input.js";

/**
 * The Fetch `Request` a guard receives in the node-based adapters: the method, `url` (absolute, as
 * the framework resolved it, made sound by `guardUrl`) and the headers, without the body, which
 * stays the framework's to read. Built only when a guard runs. `undefined` only for a method a Fetch
 * `Request` cannot carry (CONNECT, TRACE, TRACK), never for anything in the URL.
 */
export function guardRequest(req: IncomingMessage, url: string): Request | undefined {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i] as string, raw[i + 1] as string);
    } catch {
      // A name Fetch refuses (an HTTP/2 pseudo-header through the compatibility API): not a header.
    }
  }
  try {
    return new Request(guardUrl(req, url), { method: req.method ?? "GET", headers });
  } catch {
    return undefined;
  }
}

/**
 * The adapter's URL for a guard, when it is sound: the framework's scheme and host (which may follow
 * a trusted proxy's X-Forwarded-Host) before the request target as node:http read it. Both halves
 * are the client's, and a guard was handed `undefined` when they did not parse together (an
 * absolute-form target after the host, `Host: app:99999`), or a path the router does not serve
 * (`Host: evil/x?`, `Host: evil#`, no Host: `http:///admin` reads as host "admin", path "/"). Such
 * a request gets the same path under `UNSOUND_HOST` instead, and an absolute-form target is its own
 * URL. The scheme is http or https, whatever a forwarded header said.
 */
function guardUrl(req: IncomingMessage, url: string): string {
  const authority = url.indexOf("://") + 3;
  const scheme = url.slice(0, authority).toLowerCase() === "https://" ? "https" : "http";
  // Express keeps the path the client asked for in `originalUrl` while a mounted router cuts `url`.
  const original = (req as { originalUrl?: unknown }).originalUrl;
  const target = typeof original === "string" ? original : (req.url ?? "/");
  if (authority < 3 || target.charCodeAt(0) !== SLASH) return requestUrl(scheme, "", target);
  // Every header a framework takes the host from is sound, so the URL's host is one of them (or the
  // framework's own default) and the path after it is the target's.
  if (!hostHeadersSound(req)) return requestUrl(scheme, UNSOUND_HOST, target);
  // No Host at all: Koa and Fastify then write an empty host.
  if (url.charCodeAt(authority) === SLASH) return requestUrl(scheme, "", url.slice(authority));
  const sound = `${scheme}://${url.slice(authority)}`;
  // A host of the right characters that still does not parse (`1.2.3.256`).
  return URL.canParse(sound) ? sound : requestUrl(scheme, UNSOUND_HOST, target);
}

const SLASH = 47;

function hostHeadersSound(req: IncomingMessage): boolean {
  const { host } = req.headers;
  if (host !== undefined && host !== "" && !isAuthority(host)) return false;
  const authority = req.headers[":authority"];
  if (typeof authority === "string" && authority !== "" && !isAuthority(authority)) return false;
  // Express, Koa and Fastify read it only behind a proxy they trust, each a different entry of it.
  const forwarded = req.headers["x-forwarded-host"];
  if (forwarded === undefined) return true;
  const entries = (Array.isArray(forwarded) ? forwarded.join(",") : forwarded).split(",");
  return entries.every((entry) => isAuthority(entry.trim()));
}
