import type { Context, MiddlewareHandler } from "hono";
import { type Guard, runGuards } from "../guard.js";
import { loadedBy, type Sessions } from "../manager.js";
import type { Session, SessionData } from "../session.js";
import { checkOptions, checkSessions } from "./internal/adapter-args.js";
import { releaseOnAbort } from "./internal/release-on-abort.js";
import {
  commitToResponse,
  isStoreUnavailable,
  storeUnavailableResponse,
} from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

/** The data type of a `Sessions` manager, or the data type itself. */
type DataOf<T> = T extends Sessions<infer D> ? D : T extends SessionData ? T : never;

/**
 * Hono's `Env` with the session on `c.get("session")`. Give it the manager's type or the data type:
 * `new Hono<SessionEnv<typeof sessions>>()`, or combine it with your own bindings:
 * `new Hono<{ Bindings: Env } & SessionEnv<typeof sessions>>()`.
 *
 * @example
 * ```ts
 * const app = new Hono<SessionEnv<typeof sessions>>();
 * app.get("/", (c) => c.text(String(c.get("session").get("visits") ?? 0)));
 * ```
 */
export type SessionEnv<T extends SessionData | Sessions<any> = SessionData> = EnvOf<DataOf<T>>;

/** The `Env` the middleware declares; `SessionEnv` resolves to it. */
interface EnvOf<T extends SessionData> {
  Variables: { session: Session<T> };
}

/** Options of `sessionMiddleware`. */
export interface HonoSessionOptions<T extends SessionData, E extends EnvOf<T> = EnvOf<T>> {
  /** Run after the session loads, before the routes; the first Response a guard returns answers. */
  guards?: readonly Guard<T>[];
  /**
   * The client's address, recorded by store sessions for a devices page (`track.ip`). Hono has no
   * portable one: on Node, `(c) => getConnInfo(c).remote.address` from `@hono/node-server/conninfo`;
   * behind a proxy, the header it sets. Called only when a session records it. Default: none.
   */
  ip?: (c: Context<E>) => string | undefined;
}

/**
 * Hono middleware: loads the session onto `c.get("session")` and commits it onto `c.res` after the
 * handler, so redirects, streams and the `onError` response (Hono catches a thrown error below
 * this middleware and answers it before `next()` returns) all carry the cookie. A
 * `StoreUnavailableError` while loading or committing, or one that reached Hono's error handler
 * as a 500, answers 503. It takes the app's `Env` (`E`), so it can be kept in a
 * `MiddlewareHandler<Env>` made on a Worker's first request, and `ip` reads `c.env` typed.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { type SessionEnv, sessionMiddleware } from "sessionkit/hono";
 * const app = new Hono<SessionEnv<typeof sessions>>();
 * app.use(sessionMiddleware(sessions));
 * app.get("/count", (c) => {
 *   const session = c.get("session");
 *   const count = ((session.get("count") as number) ?? 0) + 1;
 *   session.set("count", count);
 *   return c.text(String(count));
 * });
 * ```
 */
export function sessionMiddleware<T extends SessionData, E extends EnvOf<T> = EnvOf<T>>(
  sessions: Sessions<T>,
  options: HonoSessionOptions<T, E> = {},
): MiddlewareHandler<E> {
  checkSessions("sessionkit/hono sessionMiddleware()", sessions);
  checkOptions("sessionkit/hono sessionMiddleware()", options, ["guards", "ip"]);
  const guards = options.guards ?? [];
  const ip = options.ip;
  return async (given, next) => {
    // Typed by the app's own Env where it has one (bindings beside the session); read as the part
    // this middleware declares.
    const c = given as unknown as Context<EnvOf<T>>;
    // Mounted again (app.route of a sub-app with its own): the outer mount loads and commits.
    const outer = loadedBy(c.get("session"), sessions);
    if (outer) {
      const request = guards.length === 0 ? c.req.raw : await guardRequest(c);
      const denied = await runGuards(guards, outer, request);
      if (denied) c.res = denied;
      else await next();
      return;
    }
    let session: Session<T>;
    try {
      const req = c.req.raw;
      session = await sessions.load(
        ip ? { headers: req.headers, url: req.url, ip: () => ip(given) } : req,
      );
    } catch (err) {
      if (isStoreUnavailable(err)) return storeUnavailableResponse();
      throw err;
    }
    c.set("session", session);
    releaseOnAbort(session, () => c.req.raw.signal);
    // A middleware mounted before this one may have read the body already: see `guardRequest`.
    const request = guards.length === 0 ? c.req.raw : await guardRequest(c);
    const denied = await runGuards(guards, session, request);
    if (denied) c.res = denied;
    else await next();
    if (isStoreUnavailable(c.error) && c.res.status === 500)
      return replace(c, storeUnavailableResponse());
    try {
      const committed = await commitToResponse(sessions, session, c.res);
      // A copy carrying the session's headers replaces c.res without Hono's header merge.
      if (committed !== c.res) replace(c, committed);
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      replace(c, storeUnavailableResponse());
    }
  };
}

/**
 * Route middleware that runs guards on the loaded session: the first that returns a Response (a
 * redirect to sign-in, a 401 or 403) answers instead of the route. Use after `sessionMiddleware`.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.userId !== undefined, { redirect: "/login" });
 * app.get("/account", sessionGuard(signedIn), (c) => c.text("secret"));
 * ```
 */
export function sessionGuard<T extends SessionData>(
  ...guards: Guard<T>[]
): MiddlewareHandler<EnvOf<T>> {
  return async (c, next) => {
    const denied = await runGuards(guards, c.get("session"), await guardRequest(c));
    if (denied) return denied;
    await next();
  };
}

/**
 * The Request a guard reads. Hono's body readers (`c.req.parseBody()`, `validator("form", ...)`,
 * `c.req.text()`) read the Request's own stream and keep what they read on `c.req.bodyCache`: after
 * one of them the raw Request's body is spent, and a guard reading a form field
 * (`requireCsrfToken`) would find none. Then the guard gets a copy carrying what Hono kept, as the
 * node-based adapters hand on what their framework's parser read. A JSON body is no form: left out.
 */
async function guardRequest(c: Context): Promise<Request> {
  const raw = c.req.raw;
  if (!raw.bodyUsed) return raw;
  const cache = c.req.bodyCache;
  // The bytes as they came first (their Content-Type holds); a FormData only when Hono kept
  // nothing else.
  const kept = cache.arrayBuffer ?? cache.blob ?? cache.text ?? cache.formData;
  if (kept === undefined) return raw;
  try {
    // Hono keeps the reader's promise, typed as its value.
    const body: BodyInit = await kept;
    const headers = new Headers(raw.headers);
    headers.delete("content-length");
    let init: BodyInit = body;
    // `new Request` would copy the bytes (or encode the text) whole, for every guarded request,
    // whether a guard reads them or not: handed on as a stream they are copied only when read.
    // Their size is declared where it is known, so `maxFormBytes` refuses a larger body unread.
    if (body instanceof ArrayBuffer) {
      headers.set("content-length", String(body.byteLength));
      init = bytesStream(body);
    } else if (body instanceof Blob) headers.set("content-length", String(body.size));
    else if (typeof body === "string") init = textStream(body);
    // Encoded anew, with a boundary of its own that the Request's own Content-Type then names.
    else if (body instanceof FormData) headers.delete("content-type");
    // `duplex` is what Node's fetch asks of a stream body; other runtimes ignore it.
    const request: RequestInit & { duplex: "half" } = {
      method: raw.method,
      headers,
      body: init,
      duplex: "half",
    };
    return new Request(raw.url, request);
  } catch {
    // The reader failed (a malformed form): the guard sees a spent body, as it would have.
    return raw;
  }
}

/** At most this much text is encoded per read of `textStream`, so a reader that stops early stops the copy. */
const TEXT_CHUNK = 16_384;

/** `bytes` as a stream that copies them when read, not before (a high-water mark of 0). */
function bytesStream(bytes: ArrayBuffer): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        controller.enqueue(new Uint8Array(bytes.slice(0)));
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
}

/** `text` as UTF-8 bytes, encoded a chunk at a time as they are read. */
function textStream(text: string): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (at >= text.length) return controller.close();
        let end = Math.min(at + TEXT_CHUNK, text.length);
        // Never between the halves of a surrogate pair: each would encode as U+FFFD.
        const last = text.charCodeAt(end - 1);
        if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
        controller.enqueue(encoder.encode(text.slice(at, end)));
        at = end;
      },
    },
    { highWaterMark: 0 },
  );
}

/** Hono's `c.res` setter copies the old response's headers onto the new one; clearing it first skips that. */
function replace(c: Context, response: Response): void {
  c.res = undefined;
  c.res = response;
}
