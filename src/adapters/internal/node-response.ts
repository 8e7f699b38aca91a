import { OutgoingMessage, ServerResponse } from "node:http";
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
  /**
   * The held response was dropped for an error answer: calls that still reach this hold (a
   * middleware mounted after the session, as compression, captured its methods and writes the
   * dropped body late) are discarded rather than mixed into the answer.
   */
  dropped: boolean;
  /** The error answer of a dropped response is being written: its calls pass. */
  answering: boolean;
  release: () => Promise<void>;
  /**
   * Whether the commit would change nothing, having closed the session as it would: the first held
   * call then goes straight out. Undefined where the hold wraps another middleware's methods.
   */
  quiet: (() => boolean) | undefined;
  /** The response's first hold (this one, unless another session middleware held it before). */
  root: Hold;
  /** On the root: holds of this response that have begun and not yet settled. */
  pending: number;
}

/**
 * The response's hold, under a plain name: V8 turns an object with many properties into a slow
 * dictionary when one is added by computed key (`res[symbol] = …`, `Object.assign`), but not by
 * name, and node's responses have many. Every store on the response below is by name for that reason.
 */
type HoldingResponse = ServerResponse & { sessionkitHold?: Hold };
type Method = (this: ServerResponse, ...args: unknown[]) => unknown;

/**
 * node:http's own `headersSent` getter, read through once no hold of the response is pending.
 * Undefined where a runtime's node:http keeps it otherwise: `headersSent` is then left alone.
 */
const sentHeaders = Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, "headersSent")?.get;

/** Whether node:http has sent the head, whatever a pending hold makes `res.headersSent` say. */
function headSent(res: ServerResponse): boolean {
  if (res instanceof OutgoingMessage)
    return sentHeaders ? Boolean(sentHeaders.call(res)) : res.headersSent;
  // node:http2's compatibility response: not an OutgoingMessage (whose getter reads `_header`, which
  // node:http2 defines as `headersSent`: endless recursion), so its prototype's own getter is asked,
  // past the hold's getter on the response itself.
  return Boolean(Reflect.get(Object.getPrototypeOf(res) as object, "headersSent", res));
}

/**
 * `res.headersSent` once the handler has begun to answer but the commit still runs: true, as it
 * would be unheld. Express's final handler and Koa's error handler read it to decide whether an
 * error may still have a response of its own; a false there appended an error page to a body already
 * begun, under the page's Content-Length, so a keep-alive connection read the rest as the next
 * response. Unheld, it answers as node:http's own.
 */
const HEADERS_SENT: PropertyDescriptor = {
  configurable: true,
  get(this: HoldingResponse) {
    return (this.sessionkitHold?.pending ?? 0) > 0 || headSent(this);
  },
};

/**
 * The object a framework put between its responses and node's ServerResponse prototype (Express's
 * response, beneath every app's and sub-app's `app.response`); undefined for a plain node:http
 * response, and for node:http2's, whose prototype every HTTP/2 server shares.
 */
function frameworkBase(res: ServerResponse): object | undefined {
  if (!(res instanceof OutgoingMessage)) return undefined;
  let proto = Object.getPrototypeOf(res) as object | null;
  if (proto === ServerResponse.prototype) return undefined;
  while (proto !== null) {
    const next = Object.getPrototypeOf(proto) as object | null;
    if (next === ServerResponse.prototype) return proto;
    proto = next;
  }
  return undefined;
}

/**
 * Puts the getter where it costs least. Express gives each response its app's prototype
 * (`app.response`), after which every property added to a response makes V8 build it a new hidden
 * class and copy its descriptors: there the getter goes once on the framework's base (Express's own
 * object, beneath every app's and sub-app's prototype, so a response inside a mounted sub-app keeps
 * it). A plain node:http response keeps a shared class, so the getter goes on the response itself
 * rather than on node's ServerResponse prototype, which every server in the process shares.
 */
function installHeadersSent(res: ServerResponse): void {
  if (!sentHeaders) return;
  const base = frameworkBase(res);
  if (base === undefined) {
    Object.defineProperty(res, "headersSent", HEADERS_SENT);
  } else if (!withHeadersSent.has(base)) {
    Object.defineProperty(base, "headersSent", HEADERS_SENT);
    withHeadersSent.add(base);
  }
}

/** Framework prototypes that already carry the getter. */
const withHeadersSent = new WeakSet<object>();

/**
 * The held methods, the same functions for every response, so response objects keep one shape from
 * request to request. Once released, a method answers as the prototype's own.
 */
const HOLDING: Record<Held, Method> = holdingMethods(undefined);

/**
 * The held methods over `beneath` (the response's own prototype when undefined). Unheld or released,
 * a call goes to `beneath`'s method.
 */
function holdingMethods(beneath: object | undefined): Record<Held, Method> {
  const holding = (method: Held): Method =>
    function (this: HoldingResponse, ...args: unknown[]) {
      const hold = this.sessionkitHold;
      if (hold === undefined || hold.released) {
        if (hold?.dropped && !hold.answering) return discard(this, method);
        return ((beneath ?? Object.getPrototypeOf(this))[method] as Method).apply(this, args);
      }
      return enqueue(hold, this, method, args);
    };
  return {
    writeHead: holding("writeHead"),
    write: holding("write"),
    end: holding("end"),
    flushHeaders: holding("flushHeaders"),
  };
}

/** The held methods on each framework base that carries them (see `sharedHolding`). */
const atBase = new WeakMap<object, Record<Held, Method>>();

/**
 * The held methods a response reaches through its framework's base, put there at the first hold of
 * one of its responses; undefined for a plain node:http response (its methods go on the response
 * itself) or where something between the response and the base has methods of its own. On Express,
 * setting the four methods on each response cost ~12 µs of CPU per request (each property added
 * builds the response a hidden class of its own): on the base they cost nothing per request, and
 * every other response of the app, held by no session, pays one check of an absent hold. (Keeping
 * the hold itself off the response, in a WeakMap, measured slower: the map's upkeep in the
 * garbage collector outweighed the property.)
 */
function sharedHolding(res: ServerResponse): Record<Held, Method> | undefined {
  const proto = Object.getPrototypeOf(res) as object;
  let methods = sharedBeneath.get(proto);
  if (methods === undefined) {
    methods = reachedShared(res, proto);
    sharedBeneath.set(proto, methods);
  }
  return methods ?? undefined;
}

/**
 * Per response prototype, the shared held methods its responses reach, or null. Checked once per
 * prototype: looking the methods up through each response's own hidden class cost more per request
 * than the install it saves. A method an app puts on its prototype after its first session request
 * goes unseen.
 */
const sharedBeneath = new WeakMap<object, Record<Held, Method> | null>();

function reachedShared(res: ServerResponse, proto: object): Record<Held, Method> | null {
  const base = frameworkBase(res);
  if (base === undefined) return null;
  let methods = atBase.get(base);
  if (methods === undefined) {
    methods = holdingMethods(Object.getPrototypeOf(base) as object);
    install(base, methods);
    atBase.set(base, methods);
  }
  for (let between = proto; between !== base; between = Object.getPrototypeOf(between) as object)
    if (HELD.some((method) => Object.hasOwn(between, method))) return null;
  return methods;
}

/** What a call to a dropped response returns: as if written, so a producer finishes and lets go. */
function discard(res: ServerResponse, method: Held): unknown {
  return method === "write" ? true : res;
}

/** A held call: the first one starts the commit; the response goes out when it settles. */
function enqueue(hold: Hold, res: ServerResponse, method: Held, args: unknown[]): unknown {
  if (hold.queue === undefined && hold.quiet?.()) {
    // Nothing to wait for: the call goes on now, to what lies beneath the hold, as the replay
    // would. Not through `res[method]`: a wrapper installed after the session (a body rewriter, a
    // logger that ends once) is what called this, and would run a second time.
    hold.released = true;
    return HOLDING[method].apply(res, args);
  }
  if (method === "flushHeaders" && hold.queue === undefined) {
    // Node's flushHeaders writes the head through res.writeHead. A wrapper there (compression's
    // on-headers) must see it now, as it would unheld: once headersSent reads true it takes the
    // head for sent, skips its set-up, and writes the body raw under its gzip header.
    res.writeHead(res.statusCode);
  }
  // Only a writeHead that sends the head: one after a held write would throw on replay, as unheld.
  const held = method === "writeHead" && hold.queue === undefined ? liftFields(res, args) : args;
  if (hold.queue === undefined) {
    hold.queue = [];
    hold.root.pending++;
    installHeadersSent(res);
    // release answers its own failures; this only keeps a last one from becoming an unhandled rejection
    hold.release().catch(() => res.destroy());
  }
  hold.queue.push({ method, args: held });
  // write() reports "no backpressure" while held; the queue is bounded by what the handler wrote
  // synchronously before the commit settled.
  return method === "write" ? true : res;
}

/**
 * Sets the fields of a held `writeHead(status[, reason][, fields])` on the response now, as Node's
 * own writeHead does once any header is set, and returns the call with its status and reason only.
 * Replayed as given, the fields would land after the session's headers and replace them: a
 * Set-Cookie there would drop the session's cookie, a Cache-Control its `no-store`. Set now, a field
 * Node refuses (a non-Latin-1 filename in Content-Disposition) throws to the handler synchronously,
 * as it does without the hold.
 */
function liftFields(res: ServerResponse, args: unknown[]): unknown[] {
  const withReason = typeof args[1] === "string";
  const fields = withReason ? args[2] : args[1];
  if (fields === null || typeof fields !== "object") return args;
  type Value = Parameters<ServerResponse["setHeader"]>[1];
  if (Array.isArray(fields)) {
    if (fields.length % 2 !== 0) return args; // malformed: left for Node to refuse on replay
    // Raw name/value pairs: a repeated name is one more line, not a replacement.
    const seen = new Set<string>();
    for (let i = 0; i < fields.length; i += 2) {
      const name = String(fields[i] ?? "");
      if (!name) continue;
      const lower = name.toLowerCase();
      if (seen.has(lower)) res.appendHeader(name, fields[i + 1] as string | string[]);
      else res.setHeader(name, fields[i + 1] as Value);
      seen.add(lower);
    }
  } else {
    for (const [name, value] of Object.entries(fields))
      if (name) res.setHeader(name, value as Value);
  }
  return withReason ? [args[0], args[1]] : [args[0]];
}

/**
 * Holds a node:http response at its first write until `commit` has run, then applies the headers it
 * returns and lets the response go. Session writes are asynchronous (a store round trip) while
 * `res.end()` is synchronous, so this is the one way to commit before the headers leave for every
 * handler shape: plain `end`, redirects, `pipe`d streams, error pages. If `commit` fails, the held
 * response is dropped and `fail` answers instead (a 503 for a store outage), since the session the
 * response speaks of was not saved; `fail` also answers a held call node:http refuses on replay.
 * Returns whether the handler has begun to respond.
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  commit: () => Promise<HeaderList>,
  fail: (err: unknown) => Response,
  quiet?: () => boolean,
): () => boolean {
  const response = res as HoldingResponse;
  const shared = sharedHolding(res);
  // Another middleware's own wrappers (compression, a second session) would bypass the shared
  // methods' prototype lookup: wrap those where they are, the slower way.
  const wrapped =
    HELD.some((method) => Object.hasOwn(res, method)) || response.sessionkitHold !== undefined;
  const original = wrapped
    ? { writeHead: res.writeHead, write: res.write, end: res.end, flushHeaders: res.flushHeaders }
    : undefined;

  let wrappers: Record<Held, Method> | undefined;
  const hold: Hold = {
    queue: undefined,
    released: false,
    dropped: false,
    answering: false,
    root: response.sessionkitHold as Hold,
    pending: 0,
    quiet: original ? undefined : quiet,
    release: async () => {
      let headers: HeaderList | undefined;
      let failure: Response | undefined;
      try {
        headers = await commit();
      } catch (err) {
        failure = fail(err);
      }
      hold.released = true;
      hold.root.pending--;
      // Only where a wrapper of this hold is still in place: one installed after it (compression
      // mounted after the session) stays, or the rest of a streamed body would bypass it.
      if (original && wrappers) restore(res, wrappers, original);
      if (failure) {
        if (!headSent(res)) await answerInstead(hold, res, original, failure);
        return;
      }
      if (headers && !headSent(res)) applyHeaders(res, headers);
      try {
        for (const { method, args } of hold.queue ?? []) {
          ((original?.[method] as Method | undefined) ?? HOLDING[method]).apply(res, args);
        }
      } catch (err) {
        // A call node:http refused (a bad status code, a chunk of the wrong type): unheld, it would
        // have thrown to the handler and become the framework's 500. Answer that here, with the
        // session's headers (the commit did run), rather than leave the request hanging.
        const answer = fail(err);
        if (headSent(res)) {
          res.destroy();
          return;
        }
        await answerInstead(hold, res, original, answer, headers);
      }
    },
  };

  // The first hold of a response is its root, found by `headersSent` (and the shared methods).
  if (response.sessionkitHold === undefined) {
    hold.root = hold;
    response.sessionkitHold = hold;
  }
  if (original) {
    wrappers = wrapOver(hold, res, original);
    install(res, wrappers);
  } else if (shared === undefined) {
    install(res, HOLDING);
  }
  // Whether the handler has begun to respond (held or sent).
  return () => hold.queue !== undefined || res.headersSent;
}

/**
 * Drops the held response for `answer`, sent through the methods beneath the hold: a wrapper
 * mounted after the session (compression) may have begun the dropped body, and would swallow or
 * encode the answer. A module function, not a closure per request: it runs only on errors.
 */
async function answerInstead(
  hold: Hold,
  res: ServerResponse,
  original: Record<Held, unknown> | undefined,
  answer: Response,
  headers?: HeaderList,
): Promise<void> {
  hold.dropped = true;
  install(res, original ?? (Object.getPrototypeOf(res) as Record<Held, unknown>));
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  if (headers) applyHeaders(res, headers);
  const body = await bodyOf(answer);
  // A middleware before the session may have wrapped the methods of a framework's base, which hold
  // too (see `sharedHolding`): the answer passes through them while it is written, synchronously,
  // and a late write of the dropped body after it is still discarded.
  hold.answering = true;
  try {
    writeWebResponse(res, answer, body);
  } finally {
    hold.answering = false;
  }
}

/** The wrappers a hold installs over another middleware's own methods (the slower way). */
function wrapOver(hold: Hold, res: ServerResponse, original: Record<Held, unknown>) {
  const wrap =
    (method: Held): Method =>
    (...args) => {
      if (hold.dropped) return discard(res, method);
      // Released: a middleware mounted after the session captured this wrapper (compression's
      // gzip output arrives after the commit), and its call goes on rather than into a spent queue.
      if (hold.released) return (original[method] as Method).apply(res, args);
      return enqueue(hold, res, method, args);
    };
  return {
    writeHead: wrap("writeHead"),
    write: wrap("write"),
    end: wrap("end"),
    flushHeaders: wrap("flushHeaders"),
  };
}

/** Puts `original` back for each method whose wrapper is still the response's own. */
function restore(
  res: ServerResponse,
  wrappers: Record<Held, unknown>,
  original: Record<Held, unknown>,
): void {
  const target = res as unknown as Record<Held, unknown>;
  for (const method of HELD)
    if (target[method] === wrappers[method]) target[method] = original[method];
}

/** Sets the four methods by name (see `HoldingResponse`), on a response or a framework's base. */
function install(res: object, methods: Record<Held, unknown>): void {
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
  writeWebResponse(res, response, await bodyOf(response));
}

async function bodyOf(response: Response): Promise<Buffer | undefined> {
  return response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
}

/** Writes a Web Response's status and headers and its body, read before, in one synchronous step. */
function writeWebResponse(res: ServerResponse, response: Response, body: Buffer | undefined): void {
  res.statusCode = response.status;
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") res.setHeader(name, value);
  });
  res.end(body);
}
