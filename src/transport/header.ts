import type { HeaderReader, HeaderWriter } from "../manager.js";

/**
 * Header transport for clients without a cookie jar (mobile apps, CLIs, server-to-server): the token
 * travels in a request header, and a new token comes back in the same response header. When the
 * request carries the header it takes precedence over the cookie; a client without a token yet sends
 * the header empty to receive its first token there instead of in Set-Cookie.
 */
export function readHeaderToken(headers: HeaderReader, name: string): string | undefined {
  // An empty header is kept as "": the client asks for the header transport before it has a token.
  return headers.get(name)?.trim();
}

/** Sends the token back; an empty value tells the client to forget it. */
export function writeHeaderToken(headers: HeaderWriter, name: string, token: string): void {
  headers.set(name, token);
}
