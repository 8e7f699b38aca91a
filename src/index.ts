/**
 * sessionkit: typed, secure, fast sessions for every JavaScript web framework and runtime.
 *
 * @example
 * ```ts
 * import { createSessions } from "sessionkit";
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET! });
 * const session = await sessions.load(request);
 * session.set("visits", ((session.get("visits") as number) ?? 0) + 1);
 * await sessions.commit(session, response.headers);
 * ```
 * @module
 */
export type { SecretInput } from "./crypto/keyring.js";
export { type CsrfTokenOptions, requireCsrfToken } from "./csrf.js";
export {
  ConfigError,
  isSessionError,
  SessionError,
  type SessionErrorCode,
  StoreUnavailableError,
} from "./errors.js";
export type { SessionEvent } from "./events.js";
export {
  createSessions,
  type HeaderReader,
  type HeaderWriter,
  type InferSessionData,
  type SessionInput,
  type Sessions,
  type UserSession,
} from "./manager.js";
export type { CookieOptions, Duration, InvalidReason, SessionsOptions } from "./options.js";
export type { Register, RegisteredSessionData } from "./register.js";
export type { FlashEntry, FlashLevel, Session, SessionData } from "./session.js";
export type {
  SessionMeta,
  SessionPatch,
  SessionStore,
  StoredSession,
  StoredSessionEntry,
} from "./stores/store.js";
