import type { Sessions } from "../../manager.js";
import type { Session, SessionData } from "../../session.js";
import { checkSessions } from "./adapter-args.js";
import { serveFetch } from "./serve-fetch.js";

/** What guards and props resolvers receive: the request, the session's data, and the session itself. */
export interface HandlerContext<T extends SessionData> {
  request: Request;
  /** The session's data, typed by the schema (the Wille shape: `session.username`). */
  session: Readonly<Partial<T>>;
  /** The session itself, to write, flash or regenerate. */
  handle: Session<T>;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * A page handler in the Wille seed's shape: guards that may answer first, then a props resolver,
 * then a render function; `fetch` serves it.
 */
export interface GuardedHandler<T extends SessionData, P> {
  /** Adds a guard: return a Response (e.g. a 303 to /login) to stop before the page runs. */
  addGuard(
    guard: (context: HandlerContext<T>) => MaybePromise<Response | undefined | void>,
  ): GuardedHandler<T, P>;
  /** Sets how props are computed from the request and session; the props type flows to `render`. */
  addPropsResolver<Q>(
    resolve: (context: HandlerContext<T>) => MaybePromise<Q>,
  ): GuardedHandler<T, Q>;
  /** Turns props into the response; returns the fetch handler. */
  render(
    view: (props: P, context: HandlerContext<T>) => MaybePromise<Response>,
  ): (request: Request) => Promise<Response>;
  /** Type-only: the props the resolver produces. */
  readonly "~props"?: P;
}

/** The props type of a handler, as Wille's `inferProps<typeof handler>`. */
export type InferProps<H> = H extends GuardedHandler<SessionData, infer P> ? P : never;

/**
 * Builds a guarded page handler on a session manager.
 *
 * @example
 * ```ts
 * export const handler = createHandler(sessions)
 *   .addGuard(({ session }) => {
 *     if (session.username == null) return new Response(null, { status: 303, headers: { location: "/login" } });
 *   })
 *   .addPropsResolver(({ session }) => ({ username: session.username }));
 * export const fetch = handler.render(({ username }) => new Response(`username: ${username}`));
 * ```
 */
export function createHandler<T extends SessionData>(
  sessions: Sessions<T>,
): GuardedHandler<T, Record<string, never>> {
  checkSessions("sessionkit/fetch createHandler()", sessions);
  return build(sessions, [], () => ({}));
}

/**
 * A handler's context. A class with `session` as a prototype getter, not an object literal with a
 * getter: V8 builds such literals on a slow path whose objects kept each request alive past the
 * young generation (see `H3SessionManager` in h3.ts).
 */
class Context<T extends SessionData> implements HandlerContext<T> {
  constructor(
    readonly request: Request,
    readonly handle: Session<T>,
  ) {}

  get session(): Readonly<Partial<T>> {
    return this.handle.data;
  }
}

function build<T extends SessionData, P>(
  sessions: Sessions<T>,
  guards: ReadonlyArray<(context: HandlerContext<T>) => MaybePromise<Response | undefined | void>>,
  resolve: (context: HandlerContext<T>) => MaybePromise<P>,
): GuardedHandler<T, P> {
  return {
    addGuard: (guard) => build(sessions, [...guards, guard], resolve),
    addPropsResolver: (next) => build(sessions, guards, next),
    render: (view) => (request) =>
      serveFetch(sessions, request, request, async (handle) => {
        const context: HandlerContext<T> = new Context(request, handle);
        for (const guard of guards) {
          const denied = (await guard(context)) ?? undefined;
          if (denied) return denied;
        }
        return view(await resolve(context), context);
      }),
  };
}
