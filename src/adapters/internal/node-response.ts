import type { ServerResponse } from "node:http";
import type { HeaderList } from "./header-list.js";

type Held = "writeHead" | "write" | "end" | "flushHeaders";
const HELD: readonly Held[] = ["writeHead", "write", "end", "flushHeaders"];

interface Queued {
  method: Held;
  args: unknown[];
}

/** One response's hold: what the handler wrote while the commit ran. */
interface Hold {
  queue: Queued[] | undefined;
  released: boolean;
  release: () => Promise<void>;
}

/**
 * The response's hold, under a plain name: V8 turns an object with many properties into a slow
 * dictionary when one is added by computed key (`res[symbol] = …`, `Object.assign`), but not by
 * name, and node's responses have many. Every store on the response below is by name for that reason.
 */
type HoldingResponse = ServerResponse & { sessionkitHold?: Hold };
type Method = (this: ServerResponse, ...args: unknown[]) => unknown;

/**
 * The held methods, the same functions for every response, so response objects keep one shape from
 * request to request. Once released, a method answers as the prototype's own.
 */
const HOLDING: Record<Held, Method> = {
  writeHead: holding("writeHead"),
  write: holding("write"),
  end: holding("end"),
  flushHeaders: holding("flushHeaders"),
};

function holding(method: Held): Method {
  return function (this: HoldingResponse, ...args: unknown[]) {
    const hold = this.sessionkitHold;
    if (hold === undefined || hold.released) {
      return (Object.getPrototypeOf(this)[method] as Method).apply(this, args);
    }
    return enqueue(hold, this, method, args);
  };
}

/** A held call: the first one starts the commit; the response goes out when it settles. */
function enqueue(hold: Hold, res: ServerResponse, method: Held, args: unknown[]): unknown {
  if (hold.queue === undefined) {
    hold.queue = [];
    void hold.release();
  }
  hold.queue.push({ method, args });
  // write() reports "no backpressure" while held; the queue is bounded by what the handler wrote
  // synchronously before the commit settled.
  return method === "write" ? true : res;
}

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
  commit: () => Promise<HeaderList>,
  fail: (err: unknown) => Response,
): () => boolean {
  const response = res as HoldingResponse;
  // Another middleware's own wrappers (compression, a second session) would bypass the shared
  // methods' prototype lookup: wrap those where they are, the slower way.
  const wrapped =
    HELD.some((method) => Object.hasOwn(res, method)) || response.sessionkitHold !== undefined;
  const original = wrapped
    ? { writeHead: res.writeHead, write: res.write, end: res.end, flushHeaders: res.flushHeaders }
    : undefined;

  const hold: Hold = {
    queue: undefined,
    released: false,
    release: async () => {
      let headers: HeaderList | undefined;
      let failure: Response | undefined;
      try {
        headers = await commit();
      } catch (err) {
        failure = fail(err);
      }
      hold.released = true;
      if (original) install(res, original);
      if (failure) {
        if (!res.headersSent) {
          for (const name of res.getHeaderNames()) res.removeHeader(name);
          await sendWebResponse(res, failure);
        }
        return;
      }
      if (headers && !res.headersSent) applyHeaders(res, headers);
      for (const { method, args } of hold.queue ?? []) {
        ((original?.[method] as Method | undefined) ?? HOLDING[method]).apply(res, args);
      }
    },
  };

  if (original) {
    const wrap =
      (method: Held) =>
      (...args: unknown[]) =>
        enqueue(hold, res, method, args);
    install(res, {
      writeHead: wrap("writeHead"),
      write: wrap("write"),
      end: wrap("end"),
      flushHeaders: wrap("flushHeaders"),
    });
  } else {
    response.sessionkitHold = hold;
    install(res, HOLDING);
  }
  // Whether the handler has begun to respond (held or sent).
  return () => hold.queue !== undefined || res.headersSent;
}

/** Sets the four methods by name (see `HoldingResponse`). */
function install(res: ServerResponse, methods: Record<Held, unknown>): void {
  const target = res as unknown as Record<Held, unknown>;
  target.writeHead = methods.writeHead;
  target.write = methods.write;
  target.end = methods.end;
  target.flushHeaders = methods.flushHeaders;
}

/** Applies committed headers: Set-Cookie lines are added to any the handler set, the rest replace. */
export function applyHeaders(res: ServerResponse, headers: HeaderList): void {
  if (headers.cookies.length > 0) {
    const existing = res.getHeader("set-cookie");
    res.setHeader(
      "set-cookie",
      existing === undefined
        ? headers.cookies
        : [...(Array.isArray(existing) ? existing : [String(existing)]), ...headers.cookies],
    );
  }
  for (const [name, value] of headers.fields) res.setHeader(name, value);
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
