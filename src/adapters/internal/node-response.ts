import type { ServerResponse } from "node:http";

type Held = "writeHead" | "write" | "end" | "flushHeaders";
const HELD: readonly Held[] = ["writeHead", "write", "end", "flushHeaders"];

/**
 * Holds a node:http response at its first write until `commit` has run, then applies the headers it
 * returns and lets the response go. Session writes are asynchronous (a store round trip) while
 * `res.end()` is synchronous, so this is the one way to commit before the headers leave for every
 * handler shape: plain `end`, redirects, `pipe`d streams, error pages. If `commit` fails, the held
 * response is dropped and `fail` answers instead (a 503 for a store outage), since the session the
 * response speaks of was not saved. Returns whether the handler has begun to respond.
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  commit: () => Promise<Headers>,
  fail: (err: unknown) => Response,
): () => boolean {
  const original = {
    writeHead: res.writeHead,
    write: res.write,
    end: res.end,
    flushHeaders: res.flushHeaders,
  };
  let queue: Array<{ method: Held; args: unknown[] }> | undefined;

  const release = async () => {
    let headers: Headers | undefined;
    let failure: Response | undefined;
    try {
      headers = await commit();
    } catch (err) {
      failure = fail(err);
    }
    Object.assign(res, original);
    if (failure) {
      if (!res.headersSent) {
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        await sendWebResponse(res, failure);
      }
      return;
    }
    if (headers && !res.headersSent) applyHeaders(res, headers);
    for (const { method, args } of queue ?? []) {
      (original[method] as (...a: unknown[]) => unknown).apply(res, args);
    }
  };

  for (const method of HELD) {
    (res as unknown as Record<Held, unknown>)[method] = (...args: unknown[]) => {
      if (!queue) {
        queue = [];
        void release();
      }
      queue.push({ method, args });
      // write() reports "no backpressure" while held; the queue is bounded by what the handler wrote
      // synchronously before the commit settled.
      return method === "write" ? true : res;
    };
  }
  // Whether the handler has begun to respond (held or sent).
  return () => queue !== undefined || res.headersSent;
}

/** Applies committed headers: Set-Cookie lines are added to any the handler set, the rest replace. */
export function applyHeaders(res: ServerResponse, headers: Headers): void {
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) {
    const existing = res.getHeader("set-cookie");
    const before =
      existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
    res.setHeader("set-cookie", [...before, ...cookies]);
  }
  headers.forEach((value, name) => {
    if (name !== "set-cookie") res.setHeader(name, value);
  });
}

/** Writes a Web Response (a guard's redirect, a 503) to a node:http response. */
export async function sendWebResponse(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") res.setHeader(name, value);
  });
  res.end(response.body ? Buffer.from(await response.arrayBuffer()) : undefined);
}
