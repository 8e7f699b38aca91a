import type { InvalidReason } from "./options.js";

/**
 * Lifecycle events for audit logs, given to the `onEvent` option. They carry no session id and no
 * token: only what a log may keep. `at` is epoch ms from the injected clock.
 * - `created`: a new session was first written.
 * - `regenerated`: `regenerate()` gave the session a new id (sign-in, privilege change).
 * - `renewed`: `renewInterval` rotated the id or token on its own.
 * - `expired`: a session past its idle or absolute deadline was refused.
 * - `invalid`: a token or stored data was refused (tampered, malformed, unknown key, schema...).
 * - `destroyed`: `destroy()` ended the session, `revoke` ended one, or `destroyByUser` ended at least
 *   one (none when it signed nothing out).
 */
export type SessionEvent =
  | { type: "created"; at: number; userId?: string }
  | { type: "regenerated"; at: number; userId?: string }
  | { type: "renewed"; at: number; userId?: string }
  | { type: "expired"; at: number; reason: "idle" | "absolute"; userId?: string }
  | { type: "invalid"; at: number; reason: InvalidReason }
  | { type: "destroyed"; at: number; userId?: string };
