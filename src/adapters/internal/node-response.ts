import { ServerResponse } from "node:http";
import type { HeaderList } from "./header-list.js";

type Held = "writeHead" | "write" | "end" | "flushHeaders";
const HELD: readonly Held[] = ["writeHead", "write", "end", "flushHeaders"];
type Method = (this: ServerResponse, ...args: unknown[]) => unknown;

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
 * The holds of responses in flight. A WeakMap rather than a property: adding a property to a response
 * costs a hidden-class change, and Express's responses share no hidden class from one request to the
 * next, so every added property copies one (about 2 µs and as much again in GC per property, measured).
 */
const holds = new WeakMap<ServerResponse, Hold>();

/** A held method: queues the call while its response is held, and answers as `original` otherwise. */
function holding(method: Held, original: (res: ServerResponse) => Method): Method {
  return function (this: ServerResponse, ...args: unknown[]) {
    const hold = holds.get(this);
    if (hold === undefined || hold.released) return original(this).apply(this, args);
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
 * Framework prototypes whose methods hold their responses (see `holdingPrototype`), with the methods
 * they had before.
 */
const patched = new WeakSet<object>();

/**
 * Where a response's methods can be held without touching the response: the framework's own
 * prototype between the response and node's (Express's `express.response`, shared by every app and
 * sub-app). Patched once; its held methods answer as before for any response without a hold. A bare
 * node:http response has no such prototype; its methods are set on it by name, which is cheap there
 * (node's responses share hidden classes).
 */
function holdingPrototype(res: ServerResponse): object | undefined {
  let proto: object | null = Object.getPrototypeOf(res);
  if (proto === ServerResponse.prototype || proto === null) return undefined;
  for (let below = Object.getPrototypeOf(proto); below !== ServerResponse.prototype; ) {
    if (below === null) return undefined; // not a node:http response underneath: hold per response
    proto = below;
    below = Object.getPrototypeOf(proto);
  }
  const target = proto as Record<Held, unknown>;
  if (!patched.has(target)) {
    for (const method of HELD) {
      const original = target[method] as Method;
      target[method] = holding(method, () => original);
    }
    patched.add(target);
  }
  return target;
}

/** The held methods set on a bare node:http response: once released, they answer as its prototype's. */
const HOLDING: Record<Held, Method> = {
  writeHead: holding("writeHead", (res) => Object.getPrototypeOf(res).writeHead),
  write: holding("write", (res) => Object.getPrototypeOf(res).write),
  end: holding("end", (res) => Object.getPrototypeOf(res).end),
  flushHeaders: holding("flushHeaders", (res) => Object.getPrototypeOf(res).flushHeaders),
};

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
  // Another middleware's own wrappers (compression, on-headers) or a second session's hold would
  // shadow or share the shared held methods: wrap what is there, per response, the slower way.
  const wrapped = HELD.some((method) => Object.hasOwn(res, method)) || holds.has(res);
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
      // Released: each method now answers as it did before the hold.
      const target = res as unknown as Record<Held, Method>;
      for (const { method, args } of hold.queue ?? []) target[method].apply(res, args);
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
    holds.set(res, hold);
    if (!holdingPrototype(res)) install(res, HOLDING);
  }
  // Whether the handler has begun to respond (held or sent).
  return () => hold.queue !== undefined || res.headersSent;
}

/** Sets the four methods by name: by computed key, V8 would turn a response into a slow dictionary. */
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
