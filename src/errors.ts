/**
 * Stable error codes. They are public API: renaming one is a breaking change.
 * - `ERR_CONFIG`: an option is missing, unknown or invalid (thrown by `createSessions`).
 * - `ERR_STORE_UNAVAILABLE`: the session store could not be reached; map it to 503.
 * - `ERR_SESSION_TOO_LARGE`: a write would push a cookie session past `maxSize`.
 * - `ERR_SESSION_SCHEMA`: a commit would save data the `schema` refuses; nothing was saved.
 * - `ERR_STORE_CAPABILITY`: an optional store method (e.g. `listByUser`) is not implemented.
 * - `ERR_SESSION_STATE`: an operation that the session's state does not allow.
 * - `ERR_LOCK_TIMEOUT`: the per-session lock could not be taken within `lock.wait`.
 */
export type SessionErrorCode =
  | "ERR_CONFIG"
  | "ERR_STORE_UNAVAILABLE"
  | "ERR_SESSION_TOO_LARGE"
  | "ERR_SESSION_SCHEMA"
  | "ERR_STORE_CAPABILITY"
  | "ERR_SESSION_STATE"
  | "ERR_LOCK_TIMEOUT";

/**
 * The base of every error sessionkit throws. Branch on `code`, never on the message.
 * Messages start with `sessionkit:` and never contain a secret, session id, token or cookie value.
 *
 * @example
 * ```ts
 * async function handle(request: Request): Promise<Response> {
 *   try {
 *     const session = await sessions.load(request);
 *     return new Response(`visits: ${session.get("visits") ?? 0}`);
 *   } catch (err) {
 *     if (isSessionError(err, "ERR_STORE_UNAVAILABLE")) return new Response(null, { status: 503 });
 *     throw err;
 *   }
 * }
 * ```
 */
export class SessionError extends Error {
  readonly code: SessionErrorCode;
  constructor(code: SessionErrorCode, message: string, options?: ErrorOptions) {
    super(`sessionkit: ${message}`, options);
    this.name = "SessionError";
    this.code = code;
  }
}

/**
 * A misconfiguration found by `createSessions` or a store factory; the message says what to change.
 *
 * @example
 * ```ts
 * try {
 *   createSessions({ secret: "too short" }); // a secret needs at least 32 characters
 * } catch (err) {
 *   if (err instanceof ConfigError) console.error(err.message); // "sessionkit: ..."
 * }
 * ```
 */
export class ConfigError extends SessionError {
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_CONFIG", message, options);
    this.name = "ConfigError";
  }
}

/** Seconds a client should wait before retrying while the store is down (`Retry-After`). */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * The store could not be reached or failed. Nothing was written. Adapters turn an unhandled one into
 * a 503 response; the store recovers by itself when its server returns. It carries the HTTP fields
 * framework error handlers read (Koa's `ctx.onerror`, Express's final handler, Fastify's error
 * handler), so one a route throws is answered 503 with `Retry-After` there too, its message unshown.
 *
 * @example
 * ```ts
 * import express from "express";
 * const app = express();
 * // A route that throws it (store down) is answered 503 with Retry-After: 5 by Express itself
 * app.get("/devices", async (req, res) => {
 *   res.json(await sessions.listByUser(req.session.userId!));
 * });
 * ```
 */
export class StoreUnavailableError extends SessionError {
  /** The HTTP status, as Koa and Express read it. */
  readonly status = 503;
  /** The HTTP status, as Fastify reads it. */
  readonly statusCode = 503;
  /** http-errors' convention: the message is for logs, not for the client. */
  readonly expose = false;
  /** Response headers error handlers send with the 503. */
  readonly headers: Readonly<Record<string, string>> = {
    "retry-after": String(STORE_RETRY_AFTER_SECONDS),
  };
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_STORE_UNAVAILABLE", message, options);
    this.name = "StoreUnavailableError";
  }
}

/**
 * Tells whether `err` is a sessionkit error, optionally with the given code.
 *
 * @example
 * ```ts
 * try {
 *   await sessions.destroyByUser(userId); // "sign out everywhere"
 * } catch (err) {
 *   if (!isSessionError(err, "ERR_STORE_UNAVAILABLE")) throw err;
 *   // the store is down and nothing was deleted: ask the user to try again
 * }
 * ```
 */
export function isSessionError(err: unknown, code?: SessionErrorCode): err is SessionError {
  return err instanceof SessionError && (code === undefined || err.code === code);
}
