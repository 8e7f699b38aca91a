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
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  const url = `${encrypted ? "https" : "http"}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
  return {
    headers: nodeHeaderReader(req.headers),
    url,
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
