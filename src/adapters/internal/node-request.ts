import type { IncomingMessage } from "node:http";
import type { SessionInput } from "../../manager.js";

/** The request headers the core reads; copying only these keeps the per-request cost small. */
const READ_HEADERS = ["cookie", "host", "user-agent"] as const;

/**
 * A node:http request as the core's input: a small Web `Headers`, the URL (for the Secure-on-localhost
 * decision) and the peer address. Proxies are not trusted here: pass `ip` (the address the framework
 * resolved through its trusted proxies) to use it instead of the socket's.
 */
export function nodeSessionInput(
  req: IncomingMessage,
  headerName: string | undefined,
  ip?: string,
): SessionInput {
  const headers = new Headers();
  for (const name of READ_HEADERS) {
    const value = req.headers[name];
    if (typeof value === "string") headers.set(name, value);
  }
  if (headerName) {
    const value = req.headers[headerName];
    if (typeof value === "string") headers.set(headerName, value);
  }
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  const url = `${encrypted ? "https" : "http"}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
  return { headers, url, ip: ip ?? req.socket?.remoteAddress };
}
