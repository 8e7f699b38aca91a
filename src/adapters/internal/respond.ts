import { isSessionError, STORE_RETRY_AFTER_SECONDS } from "../../errors.js";
import { closeIfQuiet, type HeaderWriter, type Sessions } from "../../manager.js";
import { closeSession, type Session, type SessionData } from "../../session.js";
import { HeaderList } from "./header-list.js";

/** The response every adapter gives for an unhandled `StoreUnavailableError`. */
export function storeUnavailableResponse(): Response {
  return new Response("Service Unavailable: the session store cannot be reached", {
    status: 503,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": String(STORE_RETRY_AFTER_SECONDS),
      "cache-control": "no-store",
    },
  });
}

/** A store outage, or a session lock not obtained in time: both are "try again shortly", a 503. */
export function isStoreUnavailable(err: unknown): boolean {
  return isSessionError(err, "ERR_STORE_UNAVAILABLE") || isSessionError(err, "ERR_LOCK_TIMEOUT");
}

/**
 * The answer to an error no framework handles (node:http has no error page of its own): a 503 for a
 * store outage; otherwise the error is reported and the answer is a 500, rather than a crashed process.
 */
export function errorResponse(err: unknown): Response {
  if (isStoreUnavailable(err)) return storeUnavailableResponse();
  console.error(err);
  return new Response("Internal Server Error", {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * Commits the session into a Response. A Response without a body (204, 304, a redirect) can be
 * returned to many requests, as a module-level constant: its headers are left alone and the session's
 * go on a copy, or one visitor's Set-Cookie would reach every later one. So do those of a Response
 * whose headers are immutable (Response.redirect, a fetched response). Any other is written in place:
 * its body can be sent once only, and copying it would turn a runtime's string body into a stream
 * (measured on @hono/node-server: twice the CPU per cookie write).
 * If the commit fails, the response will not be sent (the caller answers 503 or rethrows): its body
 * is cancelled, so a stream behind it (a file, a cursor, an upstream fetch) does not stay open.
 */
export async function commitToResponse<T extends SessionData>(
  sessions: Sessions<T>,
  session: Session<T>,
  response: Response,
): Promise<Response> {
  // Nothing to commit (a read, most often): the response goes as it is, with no commit to await.
  if (closeIfQuiet(session, sessions)) return response;
  const headers = new HeaderList();
  try {
    await commitLast(sessions, session, headers);
  } catch (err) {
    discardBody(response.body);
    throw err;
  }
  if (headers.empty) return response;
  if (!NO_BODY_STATUS.has(response.status)) {
    try {
      headers.appendTo(response.headers);
      return response;
    } catch {
      // immutable headers: copied below
    }
  }
  const copy = new Response(response.body, response);
  headers.appendTo(copy.headers);
  return copy;
}

/** Statuses whose responses usually carry no body (no content, redirects), so one object may serve many requests. */
const NO_BODY_STATUS = new Set([204, 205, 301, 302, 303, 304, 307, 308]);

/**
 * An adapter's last commit of a request. The response has begun (its first write, a returned
 * Response, Fastify's onSend), so the session is closed first: a change made after this, e.g. while
 * a body streams, throws `ERR_SESSION_STATE` instead of reaching neither cookie nor store.
 */
export function commitLast<T extends SessionData>(
  sessions: Sessions<T>,
  session: Session<T>,
  headers: HeaderWriter,
): Promise<void> {
  closeSession(session);
  return sessions.commit(session, headers);
}

/**
 * Releases a body that will not be sent: a Web stream (or a Response's) is cancelled, a Node stream
 * destroyed, so the file or cursor behind it does not stay open. A locked or already-read stream is
 * left to its reader.
 */
export function discardBody(body: unknown): void {
  const stream = body instanceof Response ? body.body : body;
  if (stream instanceof ReadableStream) {
    if (!stream.locked) stream.cancel().catch(() => undefined);
  } else if (typeof (stream as { destroy?: unknown } | null)?.destroy === "function") {
    (stream as { destroy(): void }).destroy();
  }
}

/** Copies committed headers: Set-Cookie lines are appended, the rest replace. */
export function mergeHeaders(target: Headers, source: Headers): void {
  for (const line of source.getSetCookie()) target.append("set-cookie", line);
  source.forEach((value, name) => {
    if (name !== "set-cookie") target.set(name, value);
  });
}
