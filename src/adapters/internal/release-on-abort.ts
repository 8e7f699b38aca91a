import { holdsLock, releaseLock } from "../../manager.js";

/**
 * Lets go of a session's lock (the `lock` option) when the request's client goes away before any
 * answer: a handler that stops on abort (a long poll) never commits, and the lock would otherwise
 * block that visitor's next requests until its ttl. Once committed, the abort is a no-op. A request
 * that holds no lock does not touch the signal (on @hono/node-server reading it builds one).
 */
export function releaseOnAbort(session: object, signal: () => AbortSignal | undefined): void {
  if (!holdsLock(session)) return;
  const aborts = signal();
  if (!aborts) return;
  if (aborts.aborted) void releaseLock(session);
  else aborts.addEventListener("abort", () => void releaseLock(session), { once: true });
}
