import type { Application, Context, Middleware, Request as OakRequest } from "@oakserver/oak";
import type { SecretInput } from "../crypto/keyring.js";
import { SessionError, StoreUnavailableError } from "../errors.js";
import { type Guard, runGuards } from "../guard.js";
import { requestUrl, UNSOUND_HOST } from "../internal/node-input.js";
import { createSessions, loadedBy, type Sessions } from "../manager.js";
import type { SessionsOptions } from "../options.js";
import type { FlashEntry, FlashLevel, Session, SessionData } from "../session.js";
import { type OpenedSqliteFile, openSqliteFile } from "../stores/internal/sqlite-file.js";
import { type MemoryStoreOptions, memoryStore } from "../stores/memory.js";
import { type SqliteDatabase, type SqliteStoreOptions, sqliteStore } from "../stores/sqlite.js";
import type { SessionStore } from "../stores/store.js";
import { checkSessions } from "./internal/adapter-args.js";
import { releaseOnAbort } from "./internal/release-on-abort.js";
import {
  commitLast,
  discardBody,
  isStoreUnavailable,
  mergeHeaders,
  storeUnavailableResponse,
} from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

/** The environment variable `OakSession` reads its secret from when none is passed. */
export const SECRET_ENV_VAR = "SESSION_SECRET";

/**
 * The session on `ctx.state.session`, in the Oak sessions seed's shape: every operation returns a
 * promise. `raw` is the synchronous sessionkit `Session` underneath, for guards and helpers.
 */
export interface AsyncSession<T extends SessionData = SessionData> {
  readonly raw: Session<T>;
  readonly isNew: boolean;
  readonly userId: string | undefined;
  get<K extends keyof T & string>(key: K): Promise<T[K] | undefined>;
  set<K extends keyof T & string>(key: K, value: T[K] | undefined): Promise<void>;
  has(key: keyof T & string): Promise<boolean>;
  delete(key: keyof T & string): Promise<void>;
  update(changes: Partial<T>): Promise<void>;
  clear(): Promise<void>;
  flash(level: FlashLevel, message: string): Promise<void>;
  flashes(level: FlashLevel): Promise<string[]>;
  flashEntries(): Promise<FlashEntry[]>;
  regenerate(options?: { userId?: string | null }): Promise<void>;
  destroy(): Promise<void>;
  /** A CSRF token for a form's `_csrf` field or a script's `x-csrf-token` header (`Session.csrfToken`). */
  csrfToken(): Promise<string>;
  /** Whether `token` is one of this session's CSRF tokens (`Session.verifyCsrfToken`); never throws. */
  verifyCsrfToken(token: unknown): Promise<boolean>;
}

/** Type your application with it: `new Application<OakSessionState<MyData>>()`. */
export interface OakSessionState<T extends SessionData = SessionData> {
  session: AsyncSession<T>;
}

/** `createSessions` options with the secret optional (see `OakSession`) and the store defaulting to memory. */
export type OakSessionOptions = Omit<SessionsOptions, "secret"> & { secret?: SecretInput };

/** What `OakSession` takes beside the app: a store (the seed's way), a manager, or options. */
export type OakSessionSource<T extends SessionData> =
  | SessionStore
  | Sessions<T>
  | OakSessionOptions;

/**
 * Sessions for an Oak application, as the Oak sessions seed spells it: registers a middleware that
 * loads the session into `ctx.state.session` before the next middleware and commits it onto
 * `ctx.response.headers` after (also when a later middleware throws: the cookie then rides on the
 * error's `headers`, which Oak's error response keeps). An unhandled `StoreUnavailableError` becomes 503.
 * Create it before `app.use(router.routes())`.
 *
 * The secret: a `Sessions` manager brings its own; otherwise `options.secret`, else the
 * `SESSION_SECRET` environment variable, else a random secret made at start-up with a console
 * warning: sessions then end when the process restarts (the safe default that lets the seed run
 * unchanged). Set `SESSION_SECRET` (>= 32 characters) in production.
 *
 * Oak 14's own Node server (`app.listen()` on Node) sends only the last `Set-Cookie` of a response
 * (it calls `setHeader` per line), so a cookie session past ~4 KB (chunked) breaks there; store
 * sessions (the default) use one cookie. Nor does it tell the middleware when a client leaves, so
 * with the `lock` option an abandoned request (a long poll) keeps its session's lock until the lock's
 * ttl. Deno, Bun and `app.handle` behind a fetch server on Node send every line and let the lock go.
 *
 * @example
 * ```ts
 * import { Application, Router } from "@oakserver/oak";
 * import { OakSession, SqliteStore } from "sessionkit/oak";
 * const app = new Application();
 * new OakSession(app, new SqliteStore("./database.db"));
 * const router = new Router();
 * router.get("/", async (ctx) => {
 *   const count = ((await ctx.state.session.get("count")) ?? 0) + 1;
 *   await ctx.state.session.set("count", count);
 *   ctx.response.body = `Visited page ${count} times`;
 * });
 * app.use(router.routes());
 * ```
 */
export class OakSession<T extends SessionData = SessionData> {
  /** The manager behind the middleware, for `listByUser`, `destroyByUser` and tests. */
  readonly sessions: Sessions<T>;

  constructor(app: Application<any>, source?: OakSessionSource<T>) {
    this.sessions = toSessions(source);
    app.use(sessionMiddleware(this.sessions));
  }
}

/**
 * The middleware `OakSession` registers, for apps that compose middleware themselves.
 *
 * @example
 * ```ts
 * app.use(sessionMiddleware(createSessions({ secret: Deno.env.get("SESSION_SECRET")! })));
 * ```
 */
export function sessionMiddleware<T extends SessionData>(
  sessions: Sessions<T>,
): Middleware<OakSessionState<T>> {
  checkSessions("sessionkit/oak sessionMiddleware()", sessions);
  return async (ctx, next) => {
    // Mounted again (on a router, beside OakSession): the outer mount loads and commits.
    if (loadedBy(ctx.state.session?.raw, sessions)) return next();
    let session: Session<T>;
    try {
      session = await sessions.load({
        headers: ctx.request.headers,
        url: requestHref(ctx.request),
        ip: ctx.request.ip,
      });
    } catch (err) {
      if (isStoreUnavailable(err)) return respondWith(ctx, storeUnavailableResponse());
      throw err;
    }
    ctx.state.session = new AsyncSessionState(session);
    // Deno, Bun and `app.handle` behind a fetch server give the Request, whose signal tells of a
    // client gone. Oak 14's own Node server gives none: `source` is undefined, and its request keeps
    // node:http's request and response in private class fields, with no signal nor close event
    // exposed, so there the lock waits out its ttl (docs/adapters/oak.md says so).
    releaseOnAbort(session, () => ctx.request.source?.signal);
    const headers = new Headers();
    try {
      await next();
    } catch (err) {
      if (isStoreUnavailable(err)) return respondWith(ctx, storeUnavailableResponse());
      try {
        await sessions.commit(session, headers);
      } catch {
        throw err; // the handler's error is the one to report; nothing was written
      }
      // Oak's error handler drops the response's headers and keeps `err.headers`: the cookie goes there.
      attachHeaders(err, headers, ctx.response.headers);
      throw err;
    }
    try {
      await commitLast(sessions, session, headers);
    } catch (err) {
      if (isStoreUnavailable(err)) return respondWith(ctx, storeUnavailableResponse());
      throw err;
    }
    mergeHeaders(ctx.response.headers, headers);
  };
}

/**
 * Runs guards (e.g. `requireSession`) before the next middleware; the first `Response` one returns
 * answers instead, and the session is still committed. Use after `OakSession`.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.has("user"), { redirect: "/login" });
 * router.get("/account", sessionGuard(signedIn), (ctx) => { ctx.response.body = "secret"; });
 * ```
 */
export function sessionGuard<T extends SessionData>(
  ...guards: Guard<T>[]
): Middleware<OakSessionState<T>> {
  return async (ctx, next) => {
    const session = ctx.state.session as AsyncSession<T> | undefined;
    if (!session) {
      throw new SessionError(
        "ERR_SESSION_STATE",
        "sessionGuard needs OakSession: create it before the routes",
      );
    }
    const denied = await runGuards(guards, session.raw, fetchRequest(ctx.request));
    if (denied) return respondWith(ctx, denied);
    await next();
  };
}

/**
 * The Fetch `Request` for guards: Oak's own `source` on Deno and Bun; on Node, where Oak has none,
 * one with the method, URL and headers (the body stays Oak's to read).
 */
function fetchRequest(request: OakRequest): Request | undefined {
  // Oak's request type comes from its own fetch implementation (undici on Node): the same shape.
  if (request.source) return request.source as unknown as Request;
  try {
    return new Request(requestHref(request), { method: request.method, headers: request.headers });
  } catch {
    return undefined; // CONNECT, TRACE, TRACK: methods a Fetch Request cannot carry
  }
}

/**
 * The request's URL as Oak reads it. Oak's own Node server builds it from the Host then the
 * target, and its getter throws when that does not parse: an absolute-form target
 * (`http://127.0.0.1:3000http://evil.example/account`) or `Host: app:99999`. Read first at load,
 * that made every such request a 500 even in an app that never reads the URL, and hid it from
 * guards. Such a request gets the URL the node-based adapters give it: the target's path under
 * `UNSOUND_HOST`, or an absolute-form target's own URL. Oak's router still throws on its own read.
 */
function requestHref(request: OakRequest): string {
  try {
    return request.url.href;
  } catch {
    const scheme = request.secure ? "https" : "http";
    return requestUrl(scheme, UNSOUND_HOST, request.originalRequest.url);
  }
}

/**
 * Delegates to a store made by a factory (or one still opening), so the seed's classes stay thin.
 * Every method the seed's stores have is here; the factory's stores have all of them.
 */
class StoreWrapper implements SessionStore {
  readonly name: string;
  readonly #inner: Promise<SessionStore>;
  readonly #onClose: (() => Promise<void>) | undefined;

  constructor(
    name: string,
    inner: SessionStore | Promise<SessionStore>,
    onClose?: () => Promise<void>,
  ) {
    this.name = name;
    this.#inner = Promise.resolve(inner);
    this.#onClose = onClose;
  }
  async get(key: string) {
    return (await this.#inner).get(key);
  }
  async set(...args: Parameters<SessionStore["set"]>) {
    return (await this.#inner).set(...args);
  }
  async patch(...args: Parameters<SessionStore["patch"]>) {
    return (await this.#inner).patch(...args);
  }
  async touch(...args: Parameters<SessionStore["touch"]>) {
    return (await this.#inner).touch(...args);
  }
  async delete(key: string) {
    return (await this.#inner).delete(key);
  }
  async listByUser(userId: string) {
    return call(await this.#inner, "listByUser")(userId);
  }
  async deleteByUser(userId: string, except?: readonly string[]) {
    return call(await this.#inner, "deleteByUser")(userId, except);
  }
  async sweep(now: number) {
    return call(await this.#inner, "sweep")(now);
  }
  async lock(key: string, ttlMs: number, waitMs: number) {
    return call(await this.#inner, "lock")(key, ttlMs, waitMs);
  }
  /** Not a capability to fail on: without it the manager says "unknown-session", as before. */
  async expiredMeta(key: string) {
    return (await this.#inner).expiredMeta?.(key);
  }
  /** Stops what the store started, and closes a database the wrapper opened. */
  async close() {
    try {
      await (await this.#inner).close?.();
    } finally {
      await this.#onClose?.();
    }
  }
}

function call<M extends "listByUser" | "deleteByUser" | "sweep" | "lock">(
  store: SessionStore,
  method: M,
) {
  const fn = store[method];
  if (typeof fn !== "function") {
    throw new SessionError(
      "ERR_STORE_CAPABILITY",
      `the ${store.name} store does not implement ${method}()`,
    );
  }
  return fn.bind(store) as NonNullable<SessionStore[M]>;
}

/**
 * The seed's memory store: sessions in this process, lost on restart. A class over `memoryStore`.
 *
 * @example
 * ```ts
 * new OakSession(app, new MemoryStore({ maxSessions: 50_000 }));
 * ```
 */
export class MemoryStore extends StoreWrapper {
  constructor(options?: MemoryStoreOptions) {
    super("memory", memoryStore(options));
  }
}

/**
 * The seed's SQLite store: opens the database file at `path` (created if missing, WAL journal) with
 * better-sqlite3, or with `node:sqlite` where better-sqlite3 cannot load (Deno, Bun), or uses an open
 * database you pass. A class over `sqliteStore`; `close()` closes a database it opened. An
 * unopenable file answers 503 (`StoreUnavailableError`).
 *
 * @example
 * ```ts
 * new OakSession(app, new SqliteStore("./database.db"));
 * ```
 */
export class SqliteStore extends StoreWrapper {
  constructor(pathOrDb: string | SqliteDatabase, options: Omit<SqliteStoreOptions, "db"> = {}) {
    if (typeof pathOrDb !== "string") {
      super("sqlite", sqliteStore({ ...options, db: pathOrDb }));
      return;
    }
    let opened: OpenedSqliteFile | undefined;
    const opening = openSqliteFile(pathOrDb, { wal: true }).then(
      (file) => {
        opened = file;
        return sqliteStore({ ...options, db: file.db });
      },
      (cause: unknown) => {
        throw new StoreUnavailableError(`could not open the SQLite store at ${pathOrDb}`, {
          cause,
        });
      },
    );
    opening.catch(() => {}); // reported to each request that needs the store, not as an unhandled rejection
    super("sqlite", opening, async () => opened?.close());
  }
}

// ---------------------------------------------------------------------------------------------------

function toSessions<T extends SessionData>(source: OakSessionSource<T> | undefined): Sessions<T> {
  if (source && isSessions<T>(source)) return source;
  if (source && isStore(source))
    return createSessions({ secret: findSecret(), store: source }) as unknown as Sessions<T>;
  const options = (source ?? {}) as OakSessionOptions;
  const { secret = findSecret(), store = new MemoryStore(), ...rest } = options;
  return createSessions({ ...rest, secret, store }) as unknown as Sessions<T>;
}

function isSessions<T extends SessionData>(value: object): value is Sessions<T> {
  return (
    typeof (value as Sessions<T>).load === "function" &&
    typeof (value as Sessions<T>).commit === "function"
  );
}

function isStore(value: object): value is SessionStore {
  const store = value as SessionStore;
  return (
    typeof store.get === "function" &&
    typeof store.set === "function" &&
    typeof store.patch === "function"
  );
}

function findSecret(): string {
  const fromEnv = readEnv(SECRET_ENV_VAR);
  if (fromEnv !== undefined) return fromEnv; // createSessions refuses a short one with a ConfigError
  console.warn(
    `sessionkit: ${SECRET_ENV_VAR} is not set, so OakSession uses a random secret made at start-up: sessions end when the process restarts. Set ${SECRET_ENV_VAR} to 32 or more random characters.`,
  );
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function readEnv(name: string): string | undefined {
  const global = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { env: { get(n: string): string | undefined } };
  };
  try {
    return global.Deno ? global.Deno.env.get(name) : global.process?.env?.[name];
  } catch {
    return undefined; // Deno without --allow-env
  }
}

/** Puts the committed headers where Oak's error handler looks: `err.headers`, a Headers of Oak's class. */
function attachHeaders(err: unknown, committed: Headers, like: Headers): void {
  if (typeof err !== "object" || err === null) return;
  const target = err as { headers?: unknown };
  const HeadersOfOak = like.constructor as typeof Headers;
  try {
    if (target.headers instanceof HeadersOfOak) mergeHeaders(target.headers, committed);
    else if (target.headers === undefined) {
      const headers = new HeadersOfOak();
      mergeHeaders(headers, committed);
      target.headers = headers;
    }
  } catch {
    // a frozen error: Oak answers without the cookie
  }
}

function respondWith(ctx: Context, response: Response): void {
  discardBody(ctx.response.body); // a stream the app set will not be sent
  ctx.response.body = response.body;
  ctx.response.status = response.status;
  mergeHeaders(ctx.response.headers, response.headers);
}

class AsyncSessionState<T extends SessionData> implements AsyncSession<T> {
  constructor(readonly raw: Session<T>) {}
  get isNew() {
    return this.raw.isNew;
  }
  get userId() {
    return this.raw.userId;
  }
  async get<K extends keyof T & string>(key: K) {
    return this.raw.get(key);
  }
  async set<K extends keyof T & string>(key: K, value: T[K] | undefined) {
    this.raw.set(key, value);
  }
  async has(key: keyof T & string) {
    return this.raw.has(key);
  }
  async delete(key: keyof T & string) {
    this.raw.delete(key);
  }
  async update(changes: Partial<T>) {
    this.raw.update(changes);
  }
  async clear() {
    this.raw.clear();
  }
  async flash(level: FlashLevel, message: string) {
    this.raw.flash(level, message);
  }
  async flashes(level: FlashLevel) {
    return this.raw.flashes(level);
  }
  async flashEntries() {
    return this.raw.flashEntries();
  }
  regenerate(options?: { userId?: string | null }) {
    return this.raw.regenerate(options);
  }
  async destroy() {
    this.raw.destroy();
  }
  csrfToken() {
    return this.raw.csrfToken();
  }
  verifyCsrfToken(token: unknown) {
    return this.raw.verifyCsrfToken(token);
  }
}
