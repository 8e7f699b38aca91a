import type { ServerResponse } from "node:http";
import type {
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  preHandlerAsyncHookHandler,
} from "fastify";
import { type Guard, runGuards } from "../guard.js";
import { nodeSessionInput } from "../internal/node-input.js";
import { closeIfQuiet, holdsLock, loadSession, releaseLock, type Sessions } from "../manager.js";
import type { RegisteredSessionData } from "../register.js";
import type { Session } from "../session.js";
import { checkOptions, checkSessions } from "./internal/adapter-args.js";
import { HeaderList } from "./internal/header-list.js";
import { guardRequest, guardUrl } from "./internal/node-request.js";
import { holdUntilCommitted } from "./internal/node-session.js";
import {
  commitLast,
  discardBody,
  isStoreUnavailable,
  storeUnavailableResponse,
} from "./internal/respond.js";

export { type CsrfTokenOptions, requireCsrfToken } from "../csrf.js";
export { type Denial, type Guard, requireSession } from "../guard.js";
// `Register` lives in the core (`declare module "sessionkit"`); augmenting it as `sessionkit/fastify` works too.
export type { Register, RegisteredSessionData } from "../register.js";
export { requireSameOrigin, type SameOriginOptions } from "../same-origin.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The visitor's session, set by the `session()` plugin. */
    session: Session<RegisteredSessionData>;
  }
}

/** Options of the `session()` plugin. */
export interface FastifySessionOptions {
  /** Run after the session loads, for every request; the first Response answers instead of the route. */
  guards?: readonly Guard<RegisteredSessionData>[];
}

/**
 * A Fastify 5 plugin that loads `request.session` in `onRequest` and commits it in `onSend`, which every
 * reply passes before it leaves: `reply.send`, redirects, streams and Fastify's error replies. A reply
 * taken over with `reply.hijack()` skips onSend: its session commits at the first write to `reply.raw`
 * instead, before the head leaves. It applies to the whole app (no encapsulation). A store that is
 * down gives a 503.
 *
 * @example
 * ```ts
 * const app = Fastify();
 * await app.register(session(sessions));
 * app.get("/", async (request) => {
 *   const visits = ((request.session.get("visits") as number) ?? 0) + 1; // no cast once `Register` is declared
 *   request.session.set("visits", visits);
 *   return `visit ${visits}`;
 * });
 * ```
 */
export function session(
  sessions: Sessions<RegisteredSessionData>,
  options: FastifySessionOptions = {},
) {
  try {
    checkSessions("sessionkit/fastify session()", sessions);
    checkOptions("sessionkit/fastify session()", options, ["guards"]);
  } catch (err) {
    // `app.register(session, { sessions })`: Fastify calls this factory as the plugin, and a plugin
    // fails its register by rejecting; a throw would escape Fastify's loader as an uncaught exception.
    if (typeof (sessions as { register?: unknown })?.register === "function") {
      return Promise.reject(err) as never;
    }
    throw err;
  }
  const guards = options.guards ?? [];
  const plugin: FastifyPluginAsync = async (app) => {
    app.decorateRequest("session"); // keeps every request the same shape; set in onRequest
    // A hijacked reply never reaches onSend, so its session would be neither stored nor sent: its
    // raw response is held until the session commits, as the node adapters hold theirs. Shadowing
    // `hijack` on the app's reply prototype (Fastify's public decorator) costs replies that never
    // hijack nothing, where a hold or a wrapper set up in onRequest would cost every request.
    app.decorateReply("hijack", function hijack(this: FastifyReply): FastifyReply {
      const already = this.sent; // hijacked before, or ended: nothing of the session can still go out
      inheritedHijack(this, hijack).call(this);
      if (!already) holdHijacked(sessions, this);
      return this;
    });
    // Callback hooks, not async ones: a session loaded synchronously (see loadSession) and one with
    // nothing to commit let the request go on in the same event, with no promise in between.
    app.addHook("onRequest", (request, reply, done) => {
      const loaded = loadSession(
        sessions,
        nodeSessionInput(request.raw, () => request.ip),
      );
      if (!(loaded instanceof Promise)) return ready(request, reply, loaded, done);
      loaded.then(
        (session) => ready(request, reply, session, done),
        (err: unknown) => {
          if (!isStoreUnavailable(err)) return done(err as Error);
          send(reply, storeUnavailableResponse()).then(() => done(), done);
        },
      );
    });
    const ready = (
      request: FastifyRequest,
      reply: FastifyReply,
      session: Session<RegisteredSessionData>,
      done: (err?: Error) => void,
    ) => {
      request.session = session;
      // A client that goes away before any answer (a long poll) leaves a handler that may never
      // reply, and so never reach onSend: its session lock is let go now rather than at its ttl.
      // The raw response's close rather than the onRequestAbort hook: that hook, once added, makes
      // Fastify listen on every request's close, locked or not.
      if (holdsLock(session)) {
        reply.raw.once("close", () => {
          if (!reply.raw.headersSent) void releaseLock(session);
        });
      }
      if (guards.length === 0) return done();
      allow(guards, request, reply).then(() => done(), done);
    };
    app.addHook("onSend", (request, reply, payload, done) => {
      // The load failed (nothing to commit), or the commit would change nothing.
      if (!request.session || closeIfQuiet(request.session, sessions)) return done(null, payload);
      commitReply(request.session, reply, payload).then((sent) => done(null, sent), done);
    });
  };
  const commitReply = async (
    session: Session<RegisteredSessionData>,
    reply: FastifyReply,
    payload: unknown,
  ) => {
    const headers = new HeaderList();
    try {
      await commitLast(sessions, session, headers);
    } catch (err) {
      // The payload will not be sent: a stream (a file, a database cursor) would stay open.
      discardBody(payload);
      if (!isStoreUnavailable(err)) throw err;
      // The reply speaks of a session that was not saved: answer 503 instead.
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
      return toReply(reply, storeUnavailableResponse());
    }
    if (!headers.empty) reply.headers(listRecord(headers)); // Fastify appends set-cookie to any the route set
    return payload;
  };
  // Fastify's own opt-out of encapsulation (what fastify-plugin sets): the hooks cover every route.
  return Object.assign(plugin, { [Symbol.for("skip-override")]: true });
}

/**
 * Turns guards into a `preHandler` hook for routes; the first guard that returns a Response answers.
 *
 * @example
 * ```ts
 * const signedIn = requireSession((s) => s.has("username"), { redirect: "/login" });
 * app.get("/account", { preHandler: guard(signedIn) }, async () => "secret");
 * ```
 */
export function guard(...guards: Guard<RegisteredSessionData>[]): preHandlerAsyncHookHandler {
  return (request, reply) => allow(guards, request, reply);
}

async function allow(
  guards: readonly Guard<RegisteredSessionData>[],
  request: FastifyRequest,
  reply: FastifyReply,
) {
  // Fastify's own scheme and host: the last forwarded entries from a peer `trustProxy` trusts.
  const url = guardUrl(request.protocol, request.host, request.raw.url ?? request.url);
  const denied = await runGuards(
    guards,
    request.session,
    guardRequest(request.raw, url, request.body),
  );
  return denied ? send(reply, denied) : undefined;
}

async function send(reply: FastifyReply, response: Response): Promise<FastifyReply> {
  return reply.send(await toReply(reply, response));
}

type Hijack = (this: FastifyReply) => FastifyReply;

/** The `hijack` the plugin's decorator shadows: Fastify's own, or a decorator of an outer context. */
function inheritedHijack(reply: FastifyReply, own: Hijack): Hijack {
  let proto = Object.getPrototypeOf(reply) as object | null;
  while (proto !== null && Object.getOwnPropertyDescriptor(proto, "hijack")?.value !== own) {
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return Reflect.get(Object.getPrototypeOf(proto ?? reply) as object, "hijack") as Hijack;
}

/**
 * Holds a hijacked reply's raw response at its first write until the session commits, then sends
 * the session's headers with the handler's own. A session changed after that write throws
 * `ERR_SESSION_STATE` (it is closed), as on every other reply. A commit that fails drops the raw
 * response for a 503 (store outage) or a 500, logged: the handler's answer spoke of a session that
 * was not saved.
 */
function holdHijacked(sessions: Sessions<RegisteredSessionData>, reply: FastifyReply): void {
  const { request } = reply;
  // Undefined when the load failed (its 503 is sent) or the reply was hijacked before onRequest.
  const session = request.session as Session<RegisteredSessionData> | undefined;
  if (session === undefined || reply.raw.headersSent) return;
  holdUntilCommitted(sessions, session, reply.raw as ServerResponse, (err) => {
    request.log.error({ err }, "sessionkit: a hijacked reply failed while its session committed");
    return new Response("Internal Server Error", {
      status: 500,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  });
}

/** Puts a Web Response's status and headers on the reply; returns its body. */
function toReply(reply: FastifyReply, response: Response): Promise<string> {
  reply.code(response.status).headers(listRecord(HeaderList.from(response.headers)));
  return response.text();
}

/** Headers as `reply.headers` takes them: Set-Cookie as its list of lines, the rest one value each. */
function listRecord(headers: HeaderList): Record<string, string | string[]> {
  const record: Record<string, string | string[]> = Object.fromEntries(headers.fields);
  if (headers.cookies.length > 0) record["set-cookie"] = headers.cookies;
  return record;
}
