import type { IncomingMessage } from "node:http";

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
