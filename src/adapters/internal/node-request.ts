import type { IncomingMessage } from "node:http";
import type { HeaderReader, SessionInput } from "../../manager.js";

/**
 * A node:http request as the core's input: its headers read in place, the URL (for the
 * Secure-on-localhost decision) and the peer address. Proxies are not trusted here: pass `ip` (a
 * function giving the address the framework resolved through its trusted proxies) to use it instead
 * of the socket's; it is called only when a store session records the address.
 */
export function nodeSessionInput(
  req: IncomingMessage,
  ip?: () => string | undefined,
): SessionInput {
  return {
    headers: nodeHeaderReader(req.headers),
    url: requestUrl(req),
    ip: ip ?? (() => req.socket?.remoteAddress),
  };
}

/**
 * A node:http header object (`req.headers`, lower-case keys) read in place, without a copy. A
 * repeated header other than Cookie arrives as an array and is read as absent, as the core wants only
 * single-valued ones.
 */
function nodeHeaderReader(headers: Record<string, string | string[] | undefined>): HeaderReader {
  return {
    get: (name) => {
      const value = headers[name];
      return typeof value === "string" ? value : null;
    },
  };
}

/** The absolute URL of a node:http request as it reached this server (no proxy headers trusted). */
export function requestUrl(req: IncomingMessage): string {
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  return `${encrypted ? "https" : "http"}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
}

/**
 * The Fetch `Request` a guard receives in the node-based adapters: the method, `url` (absolute, as
 * the framework resolved it) and the headers, without the body, which stays the framework's to read.
 * Built only when a guard runs. `undefined` for what a Fetch `Request` cannot carry (a CONNECT
 * request).
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
    return new Request(url, { method: req.method ?? "GET", headers });
  } catch {
    return undefined;
  }
}
