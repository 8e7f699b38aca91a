import type { IncomingMessage, ServerResponse } from "node:http";
import { nodeSessionInput } from "../../internal/node-input.js";
import { closeIfQuiet, holdsLock, loadSession, releaseLock, type Sessions } from "../../manager.js";
import type { Session, SessionData } from "../../session.js";
import { HeaderList } from "./header-list.js";
import { commitBeforeHeaders } from "./node-response.js";
import { commitLast, isStoreUnavailable, storeUnavailableResponse } from "./respond.js";

/** A loaded session whose response is held until it is committed. */
export interface HeldSession<T extends SessionData> {
  session: Session<T>;
  /** Whether the handler has begun to respond (held or sent). */
  responding: () => boolean;
}

export interface HoldOptions {
  /**
   * The client address as the framework resolves it (trusted proxies); default the socket's. Called
   * only when a store session records it.
   */
  ip?: (() => string | undefined) | undefined;
  /**
   * The answer when the commit fails for any reason but a store outage (that one is a 503), or when
   * node:http refuses a call the handler made on the held response.
   */
  onError: (err: unknown) => Response;
}

/**
 * Loads a node:http request's session and holds its response until the session is committed, the
 * block every node-based adapter (node:http, Express, Koa) shares. A store outage while loading
 * resolves the 503 to answer with instead, for the adapter to send its own way; any other load
 * error rejects. Synchronous when the load is (see `loadSession`), so the adapter can call the
 * handler at once.
 */
export function loadAndHold<T extends SessionData>(
  sessions: Sessions<T>,
  req: IncomingMessage,
  res: ServerResponse,
  options: HoldOptions,
): HeldSession<T> | Promise<HeldSession<T> | Response> {
  const loaded = loadSession(sessions, nodeSessionInput(req, options.ip));
  if (!(loaded instanceof Promise)) return hold(sessions, loaded, res, options);
  return loaded.then(
    (session) => hold(sessions, session, res, options),
    (err: unknown) => {
      if (isStoreUnavailable(err)) return storeUnavailableResponse();
      throw err;
    },
  );
}

function hold<T extends SessionData>(
  sessions: Sessions<T>,
  session: Session<T>,
  res: ServerResponse,
  options: HoldOptions,
): HeldSession<T> {
  const responding = holdUntilCommitted(sessions, session, res, options.onError);
  // A client that goes away before any answer (a long poll) leaves a handler that may never
  // respond, and so never commit: its session lock is let go now rather than at its ttl.
  if (holdsLock(session)) {
    res.once("close", () => {
      if (!res.headersSent) void releaseLock(session);
    });
  }
  return { session, responding };
}

/**
 * Holds `res` at its first write until `session` is committed (see `commitBeforeHeaders`); a store
 * outage answers 503, any other failure `onError`'s answer. Returns whether the handler has begun
 * to respond.
 */
export function holdUntilCommitted<T extends SessionData>(
  sessions: Sessions<T>,
  session: Session<T>,
  res: ServerResponse,
  onError: (err: unknown) => Response,
): () => boolean {
  const commit = async () => {
    const headers = new HeaderList();
    await commitLast(sessions, session, headers);
    return headers;
  };
  return commitBeforeHeaders(
    res,
    commit,
    (err) => (isStoreUnavailable(err) ? storeUnavailableResponse() : onError(err)),
    () => closeIfQuiet(session, sessions),
  );
}
