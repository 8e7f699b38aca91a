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

/** The request's absolute URL as it reached this server (no proxy header trusted): node:http gives the path. */
export function nodeRequestUrl(req: NodeRequestLike): string {
  const encrypted = req.socket?.encrypted === true;
  // HTTP/2 names the host in the `:authority` pseudo-header; a client may leave Host out.
  const host = req.headers.host ?? req.headers[":authority"];
  return `${encrypted ? "https" : "http"}://${typeof host === "string" ? host : "localhost"}${req.url ?? "/"}`;
}
