import { SessionError } from "../../errors.js";
import { loadedBy, releaseLock, type SessionInput, type Sessions } from "../../manager.js";
import { changedByHandler, closeSession, type Session, type SessionData } from "../../session.js";
import { releaseOnAbort } from "./release-on-abort.js";
import { requestSlot } from "./request-slot.js";
import { commitToResponse, isStoreUnavailable, storeUnavailableResponse } from "./respond.js";

/**
 * The session each fetch `Request` is being served with, by `withSession` or `createHandler`: a
 * handler wrapped again inside another (a router handing the same Request to a sub-handler) reuses
 * the outer one's session. Two would both commit, the outer last, and its touch would re-seal a
 * session the inner one signed out.
 */
const served = requestSlot<object>("sessionkit.served");

/**
 * Serves a fetch `Request` with a session, the block `withSession` and `createHandler` share: the
 * outer handler's session when one of the same manager already serves this Request (it commits),
 * else one loaded from `input`, committed onto the Response `run` returns (also on redirects and
 * streamed bodies), its lock let go if the client leaves first. An unhandled
 * `StoreUnavailableError` answers 503.
 */
export async function serveFetch<T extends SessionData, R extends Response | undefined>(
  sessions: Sessions<T>,
  request: Request,
  input: SessionInput,
  run: (session: Session<T>) => R | Promise<R>,
): Promise<R> {
  const outer = loadedBy(served.get(request) as Session<T> | undefined, sessions);
  if (outer) return run(outer);
  let session: Session<T> | undefined;
  try {
    session = await sessions.load(input);
    served.set(request, session);
    releaseOnAbort(session, () => request.signal);
    const response = await run(session);
    if (response === undefined) return (await answeredElsewhere(session)) as R;
    return (await commitToResponse(sessions, session, response)) as R;
  } catch (err) {
    // A handler that threw commits nothing, and commit is what lets go of the session's lock (the
    // `lock` option): held on, it would make the visitor's next requests wait out its ttl.
    if (session) await releaseLock(session);
    if (isStoreUnavailable(err)) return storeUnavailableResponse() as R;
    throw err;
  }
}

/**
 * The handler returned no Response: its runtime answered (a WebSocket upgrade), so no cookie can
 * follow. An unchanged session is left as it is (a touch or a `renewInterval` renewal due waits for
 * the next request, which still brings the id it has); a change of the handler's would be lost
 * without a word, so it is refused instead. Either way nothing commits, and commit is what lets go
 * of the session's lock: let go here, or the visitor's next requests wait out its ttl.
 */
async function answeredElsewhere<T extends SessionData>(session: Session<T>): Promise<undefined> {
  const changed = changedByHandler(session);
  closeSession(session);
  await releaseLock(session);
  if (changed) {
    throw new SessionError(
      "ERR_SESSION_STATE",
      "the handler changed the session but returned no Response (after a WebSocket upgrade?), so nothing can carry its cookie; commit it into the upgrade's headers first: await sessions.commit(session, headers)",
    );
  }
  return undefined;
}
