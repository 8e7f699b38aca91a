import type { Sessions } from "../../manager.js";
import type { SessionState } from "../../session.js";

/**
 * A second mount of a session middleware on one request (a sub-app or router that mounts it again)
 * must reuse the session the first mount loaded. Two sessions of one manager would both commit, the
 * outer last: its touch re-sealed the old session after the inner one's sign-in or sign-out, and
 * the browser kept the last cookie, so signing out did nothing. A session is known as one manager's
 * by the hooks object the manager gives every session it loads.
 */
const hooksOf = new WeakMap<object, unknown>();

/**
 * Notes which manager `session` came from. Call once per middleware (`if (!noted) noted = noteManager(...)`):
 * the check it makes possible, `loadedBy`, runs only when a request already carries a session.
 */
export function noteManager(sessions: Sessions<any>, session: object): true {
  if (!hooksOf.has(sessions)) hooksOf.set(sessions, (session as SessionState).hooks);
  return true;
}

/** `candidate` if it is a session `sessions` loaded (for this request, by an outer mount). */
export function loadedBy<S>(
  candidate: S | undefined | null,
  sessions: Sessions<any>,
): S | undefined {
  if (candidate === undefined || candidate === null) return undefined;
  const hooks = hooksOf.get(sessions);
  return hooks !== undefined && (candidate as unknown as SessionState).hooks === hooks
    ? candidate
    : undefined;
}
