import type { StandardSchemaV1 } from "@standard-schema/spec";
import { backend } from "#crypto-backend";
import { after, type MaybePromise } from "./crypto/backend.js";
import { generateSessionId, hashSessionId, isSessionId, lineageOf } from "./crypto/id.js";
import { createKeyring, DERIVED_KEY_ID_CHARS, type Keyring } from "./crypto/keyring.js";
import {
  encodeSignedPayload,
  type OpenedToken,
  openToken,
  sealToken,
  signToken,
} from "./crypto/token.js";
import { createCsrfSigner } from "./csrf.js";
import { ConfigError, isSessionError, SessionError, StoreUnavailableError } from "./errors.js";
import type { SessionEvent } from "./events.js";
import { isNodeRequest, type NodeRequestLike, nodeSessionInput } from "./internal/node-input.js";
import { decodeRecord, encodeRecord, isSessionMeta, utf8Length } from "./internal/record.js";
import { reportHookError } from "./internal/report.js";
import { TokenCache } from "./internal/token-cache.js";
import {
  type Deadlines,
  type InvalidReason,
  type ResolvedOptions,
  resolveOptions,
  type SessionsOptions,
} from "./options.js";
import { dataIssues, validateData } from "./schema.js";
import {
  LABEL_MAX_CHARS,
  type Session,
  type SessionData,
  type SessionHooks,
  SessionState,
} from "./session.js";
import {
  applyPatch,
  type SessionMeta,
  type SessionStore,
  type StoredSession,
} from "./stores/store.js";
import {
  CHUNK_VALUE_BYTES,
  type CookieRead,
  createCookieWriter,
  joinChunks,
  laterOwnValues,
  laterValues,
  parseOwnCookies,
  readCookieToken,
} from "./transport/cookie.js";
import { readHeaderToken, writeHeaderToken } from "./transport/header.js";

/** RFC 6265bis section 5.6.2 caps cookie lifetimes at 400 days; no session outlives that either. */
const FOUR_HUNDRED_DAYS_MS = 400 * 86_400_000;
const USER_AGENT_MAX_CHARS = 256;
/** How far ahead of this server's clock a record's timestamps may be (NTP-synced hosts agree to ms). */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** Values of the session cookie's name tried per request: a stale one or two are real, more is hostile. */
const SAME_NAME_TRIES = 4;

/** How long after its last write a session lives at most: its idle timeout, within the 400-day cap. */
function idleSpanOf(idleTimeoutMs: number | undefined): number {
  return idleTimeoutMs === undefined
    ? FOUR_HUNDRED_DAYS_MS
    : Math.min(idleTimeoutMs, FOUR_HUNDRED_DAYS_MS);
}

/**
 * The request headers `load` reads: a Fetch `Headers`, or anything with its `get` (an adapter can wrap
 * its framework's header object instead of copying it).
 */
export interface HeaderReader {
  get(name: string): string | null;
}

/** Where `commit` writes response headers: a Fetch `Headers`, or anything with its `append` and `set`. */
export interface HeaderWriter {
  append(name: string, value: string): void;
  set(name: string, value: string): void;
}

/**
 * What `load` reads: a Fetch `Request`, its `Headers`, headers with the request's URL and client IP,
 * or a Node.js `IncomingMessage` (a WebSocket `upgrade` handler's request, say: read as the
 * node-based adapters read it). `ip` may be a function: it is called only when a server-store
 * session records the address, so an adapter whose framework computes the IP on demand (Express's
 * `req.ip`) pays for it only then.
 */
export type SessionInput =
  | Request
  | HeaderReader
  | { headers: HeaderReader; url?: string; ip?: string | (() => string | undefined) }
  | NodeRequestLike;

/** One session of a user, as a "your devices" page lists it. */
export interface UserSession {
  /** A public handle (the store key, a hash): safe to render, useless as a credential. Pass it to `revoke`. */
  handle: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  userAgent: string | undefined;
  ip: string | undefined;
  label: string | undefined;
  /** True for the session of the request given to `listByUser`. */
  current: boolean;
}

/**
 * The session manager `createSessions` returns. Adapters call `load` and `commit` for you.
 *
 * @example
 * ```ts
 * const session = await sessions.load(request);
 * session.set("theme", "dark");
 * const response = new Response("ok");
 * await sessions.commit(session, response.headers);
 * ```
 */
export interface Sessions<T extends SessionData = SessionData> {
  /**
   * Reads the session of a request. Bad input (tampered, expired, invalid) gives a fresh session and
   * never throws; a store that is down rejects with `StoreUnavailableError`.
   */
  load(input: SessionInput): Promise<Session<T>>;
  /**
   * Writes what the request changed (nothing, if nothing did) and appends `Set-Cookie` (and the
   * header transport) to `headers`. Safe to call again after further changes. Data the `schema`
   * refuses throws `ERR_SESSION_SCHEMA` (naming the keys) and nothing is saved.
   */
  commit(session: Session<T>, headers: HeaderWriter): Promise<void>;
  /** Store sessions: the live sessions of a user, for a "your devices" page. */
  listByUser(userId: string, options?: { current?: Session<T> }): Promise<UserSession[]>;
  /** Store sessions: ends every session of a user ("sign out everywhere"), but `except`. */
  destroyByUser(userId: string, options?: { except?: Session<T> }): Promise<number>;
  /**
   * Store sessions: ends one session of a user by the handle `listByUser` gave, also when a renewal
   * or regenerate moved it to a new id meanwhile. Resolves `false` when the handle is none of the
   * user's live sessions, or the session ended elsewhere before the delete.
   */
  revoke(userId: string, handle: string): Promise<boolean>;
  /** The cookie name, for adapters and tests. */
  readonly cookieName: string;
  /** The header transport's name, when configured. */
  readonly headerName: string | undefined;
  /** The store, when sessions are kept server-side. */
  readonly store: SessionStore | undefined;
}

/**
 * Infers the session data type from a Standard Schema, or a plain JSON object without one (or with a
 * schema whose output type is not an object, such as a schema typed only as `StandardSchemaV1`).
 */
export type InferSessionData<S> = S extends StandardSchemaV1
  ? StandardSchemaV1.InferOutput<S> extends SessionData
    ? StandardSchemaV1.InferOutput<S>
    : SessionData
  : SessionData;

/** A token that passed every check, as the token cache keeps it. */
interface Verified {
  opened: OpenedToken;
  /** Store sessions: the SHA-256 key of the id. */
  key: string | undefined;
  /**
   * Store sessions: no live record of this id is left (the store had none, or the manager deleted an
   * expired or unreadable one). Ids are never reused and a token leaves only once its record is
   * written, so the id never comes back: a client that keeps sending the cookie (an unknown id's is
   * left in place, see `refuse`) is refused without a store call.
   */
  gone: boolean;
}

/** Per-request transport facts, kept on the session for commit. */
interface Transport {
  source: "cookie" | "header" | undefined;
  /** Our cookies (base and chunks) the request carried. */
  present: string[];
  /** Whether our cookies get `Secure`; with `secure: "auto"`, worked out on first write (see `isSecure`). */
  secure: boolean | undefined;
  /** The request's URL and headers, for `secure: "auto"`. */
  url: string | undefined;
  headers: HeaderReader;
  /**
   * A token came in and was refused in a way worth clearing, if nothing else is written. Not for an
   * id the store does not know (see `refuse`).
   */
  refused: boolean;
  /**
   * The token the client holds: as received once accepted, then as last sent. Reused when only the
   * cookie's lifetime must move; read by adapters through `heldToken`.
   */
  token: string | undefined;
  userAgent: string | undefined;
  /** The client's address, or how to get it: asked only when a new record is written. */
  ip: string | (() => string | undefined) | undefined;
  /** Releases the per-session lock (the `lock` option) once the request has committed. */
  release: (() => Promise<void>) | undefined;
  /** Why the request's first refused token was refused, for the new session's `invalidReason`. */
  invalidReason: InvalidReason | undefined;
}

/**
 * Creates the session manager. Options are validated here, once: a missing or short secret, an
 * unknown option or an impossible cookie setting throws `ConfigError` at start-up.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * const sessions = createSessions({
 *   secret: process.env.SESSION_SECRET!,
 *   schema: z.object({ username: z.string().optional(), visits: z.number().default(0) }),
 *   idleTimeout: "30m",
 * });
 * ```
 */
export function createSessions<S extends StandardSchemaV1 | undefined = undefined>(
  options: SessionsOptions<S>,
): Sessions<InferSessionData<S>> {
  const config = resolveOptions(options as SessionsOptions<StandardSchemaV1 | undefined>);
  const { store, cookie, schema } = config;
  let keyringPromise: Promise<Keyring> | undefined;
  /** Set once the keys are derived, so requests after the first skip a promise tick. */
  let ring: Keyring | undefined;
  const keyring = () => {
    keyringPromise ??= createKeyring(config.secrets, backend).then((derived) => {
      ring = derived;
      return derived;
    });
    return keyringPromise;
  };
  const cookieWriter = createCookieWriter(cookie);
  /** Accepted tokens: the opened token and, with a store, the id's key (see TokenCache). */
  const tokens =
    config.tokenCache > 0 ? new TokenCache<Verified>(config.tokenCache, 4096) : undefined;
  const custom = config.generateId;
  const generateId = custom
    ? () => {
        // An id the load side refuses would make every session "malformed" on its next request:
        // said at the first id instead, with what the ids must be.
        const id = custom();
        if (!isSessionId(id)) {
          throw new ConfigError(
            `"generateId" returned an id sessionkit refuses when it comes back: ids are 16 to 128 characters of A-Z, a-z, 0-9, "-" and "_"`,
          );
        }
        return id;
      }
    : () => generateSessionId(backend);
  const primaryKeyIdLength = config.secrets[0]?.id?.length ?? DERIVED_KEY_ID_CHARS;
  const ordinary: Deadlines = config;
  const remembered: Deadlines = config.rememberMe ?? config;
  /**
   * The deadlines a record lives by: a remembered session's (the `rememberMe` option) or everyone's.
   * Read from the record's own meta, sealed in the cookie or kept in the store, so no client can
   * choose the longer ones.
   */
  const deadlinesOf = (meta: SessionMeta): Deadlines =>
    meta.persistent === true ? remembered : ordinary;
  const hooks: SessionHooks = {
    now: config.now,
    generateId,
    checkSize: store ? undefined : checkCookieSize,
    csrf: createCsrfSigner(() => ring ?? keyring(), cookie.name),
    viaHeader: (session) => (session.transport as Transport).source === "header",
    expiresAt(session) {
      // The same rule commit follows: a write stamps touchedAt, and so does a slide that is due.
      const now = config.now();
      const written =
        session.hasWrites ||
        (session.origin !== undefined && !session.destroyed && touchDue(session, now));
      return deadlineOf(written ? { ...session.meta, touchedAt: now } : session.meta);
    },
  };

  /**
   * Ends a user's session that moved to a new id after its record at `key` was read: a sign-out or
   * a revoke that finds that record gone, because another request moved the session (regenerate, a
   * renewal) and committed first, unseen by this one, so it would live on there. A move carries the
   * lineage (made of the key before the first move; `lineage` when the record read had one), so the
   * user's sessions of that lineage are the one meant. A session bound to no user is in no index to
   * look in, nor is one in a store without `listByUser`. Whether a session was ended.
   */
  async function endMoved(
    s: SessionStore,
    userId: string | undefined,
    key: string,
    lineage: string | undefined,
  ): Promise<boolean> {
    const list = s.listByUser?.bind(s);
    if (userId === undefined || !list) return false;
    const wanted = lineage ?? (await lineageOf(backend, key));
    const entries = await guardStore(s, "listByUser", () => list(userId));
    let ended = false;
    for (const entry of entries) {
      if (entry.meta.lineage !== wanted) continue;
      if ((await guardStore(s, "delete", () => s.delete(entry.key))) !== false) ended = true;
    }
    return ended;
  }

  /**
   * A move keeping the data starts from the record as the store holds it now, with this request's
   * changes on top: written as loaded, it lost what another request of the session committed since
   * (a sign-in's password check is that long). A store with `move` reads, writes and deletes in one
   * atomic step; without it the record is read here, and what lands between this read and the old
   * record's delete is still lost. "gone" when the record is (signed out or moved meanwhile),
   * "moved" when the store moved it, "merged" when the caller writes `session` and then deletes
   * the old record.
   */
  async function moveKeepingData(
    s: SessionStore,
    fromKey: string,
    toKey: string,
    session: SessionState,
    now: number,
    expiresAt: number,
    device: Pick<SessionMeta, "userAgent" | "ip">,
  ): Promise<"gone" | "moved" | "merged"> {
    const mine = session.meta;
    const patch = session.storePatch({
      createdAt: mine.createdAt,
      touchedAt: now,
      renewedAt: mine.renewedAt,
      userId: mine.userId ?? null,
      lineage: mine.lineage ?? null,
      // A renewal keeps the seed (the one any request of the old id makes), a regenerate drops it.
      csrf: mine.csrf ?? null,
    });
    const move = s.move?.bind(s);
    if (!move) {
      const current = await guardStore(s, "get", () => s.get(fromKey));
      if (!current) return "gone";
      if (isSessionMeta(current.meta)) await adopt(session, applyPatch(current, patch));
      return "merged";
    }
    Object.assign(patch.meta as object, device);
    const moved = await guardStore(
      s,
      "move",
      () => move(fromKey, toKey, patch, expiresAt),
      patch.set,
    );
    if (!moved) return "gone";
    if (isSessionMeta(moved.meta) && (await adopt(session, moved))) {
      // Another request may have chosen rememberMe meanwhile: the deadline follows the record.
      const due = deadlineOf(session.meta);
      if (due !== expiresAt) await guardStore(s, "touch", () => s.touch(toKey, now, due));
      return "moved";
    }
    // Unreadable after the move (a hand-edited row), or data the schema refuses in the mix: this
    // request's own record replaces it. The old record is gone already, so nothing is left to delete.
    const meta = { ...session.meta, ...device };
    const data = session.data;
    await guardStore(s, "set", () => s.set(toKey, { data, meta }, deadlineOf(meta)), data);
    return "moved";
  }

  /**
   * Takes the merged record as the session's, unless the schema refuses its data (each side passed
   * on its own, the mix need not): then this request's own view stands.
   */
  async function adopt(session: SessionState, merged: StoredSession): Promise<boolean> {
    if (schema && (await dataIssues(schema, merged.data))) return false;
    session.data = merged.data;
    session.meta = merged.meta;
    return true;
  }

  /** Whether a commit now would write nothing: no header, no store call, no lock to let go. */
  function quiet(session: SessionState): boolean {
    // The cases commitSession leaves without a write, in the same order.
    const transport = session.transport as Transport;
    if (session.hasWrites || session.destroyed || session.csrfIssued || session.reissue)
      return false;
    if (transport.release !== undefined) return false;
    if (session.origin !== undefined) return !touchDue(session, config.now());
    return !clearsRefused(transport);
  }

  /**
   * Whether a commit with nothing to write must still clear a refused token: a cookie the browser
   * sent, or the header's token, which a client forgets on an empty header (without it the client
   * sent the dead token on every request, each reported as refused again).
   */
  function clearsRefused(transport: Transport): boolean {
    return transport.refused && (transport.present.length > 0 || transport.source === "header");
  }

  function emit(event: SessionEvent): void {
    if (!config.onEvent) return;
    try {
      config.onEvent(event);
    } catch (err) {
      reportHookError("onEvent", err);
    }
  }

  function refuse(transport: Transport, reason: InvalidReason, userId?: string): void {
    // An id the store does not know is left in place, not cleared: it is most often the id a
    // parallel request carried while another signed in (regenerate) or renewed, and a clearing line
    // arriving after that response would delete the new cookie and sign the visitor out. A dead id
    // opens nothing; the next write replaces it.
    if (reason !== "unknown-session") transport.refused = true;
    transport.invalidReason ??= reason;
    const at = config.now();
    if (reason === "expired-idle" || reason === "expired-absolute") {
      emit({
        type: "expired",
        at,
        reason: reason === "expired-idle" ? "idle" : "absolute",
        userId,
      });
    } else {
      emit({ type: "invalid", at, reason });
    }
    if (!config.onInvalid) return;
    try {
      config.onInvalid(reason);
    } catch (err) {
      reportHookError("onInvalid", err);
    }
  }

  /**
   * The deadline of a record: the earlier of its idle and absolute deadlines, capped at 400 days
   * after its last write.
   */
  function deadlineOf(meta: SessionMeta): number {
    const { idleTimeoutMs, absoluteTimeoutMs } = deadlinesOf(meta);
    const deadline = meta.touchedAt + idleSpanOf(idleTimeoutMs);
    return absoluteTimeoutMs === undefined
      ? deadline
      : Math.min(deadline, meta.createdAt + absoluteTimeoutMs);
  }

  function expiryReason(meta: SessionMeta, now: number): InvalidReason | undefined {
    // A record stamped further ahead than clocks plausibly disagree was issued by a server whose clock
    // is wrong: refuse it rather than let the skew lengthen its life. Within the tolerance, a future
    // stamp counts as "now".
    if (meta.createdAt > now + MAX_CLOCK_SKEW_MS || meta.touchedAt > now + MAX_CLOCK_SKEW_MS) {
      return "malformed";
    }
    const created = Math.min(meta.createdAt, now);
    const touched = Math.min(meta.touchedAt, now);
    const { idleTimeoutMs, absoluteTimeoutMs } = deadlinesOf(meta);
    if (absoluteTimeoutMs !== undefined && created + absoluteTimeoutMs <= now) {
      return "expired-absolute";
    }
    // The 400-day cap included, the deadline `expiresAt` reports and a store's TTL follows holds for
    // a cookie session too: without an idle timeout (or with one past 400 days) its token would
    // otherwise open for longer than it says, or for ever.
    if (touched + idleSpanOf(idleTimeoutMs) <= now) return "expired-idle";
    return undefined;
  }

  /**
   * Refuses a verified token whose id `get` found no live entry for: as expired when the store still
   * holds the entry past its deadline (`expiredMeta`), else as "unknown-session".
   */
  async function refuseMissing(
    store: SessionStore,
    key: string,
    transport: Transport,
  ): Promise<void> {
    let meta: unknown;
    try {
      meta = await store.expiredMeta?.(key);
    } catch {
      // `get` already answered that nothing live is there: an outage in this optional lookup costs
      // only the precise reason, never a 503 for a visitor who would get a fresh session anyway.
      meta = undefined;
    }
    // Checked with the manager's own rules, as a loaded record is: the store's clock and deadline
    // decide only that the entry is hidden, not which of the two deadlines ended it.
    const found = isSessionMeta(meta) ? meta : undefined;
    const reason = found && expiryReason(found, config.now());
    if (!found || (reason !== "expired-idle" && reason !== "expired-absolute")) {
      refuse(transport, "unknown-session");
      return;
    }
    // An expired reason clears the cookie (see `refuse`), which is right here though an unknown id
    // is left alone: a sign-in or renewal elsewhere deletes the old entry, so an entry still held
    // past its deadline is this id's own session timing out, with no newer cookie to lose.
    refuse(transport, reason, found.userId);
    try {
      // Garbage, as on the expired path below; left behind, the next sweep removes it just the same.
      await store.delete(key);
    } catch {
      // Not an outage either: `get` already hides the entry, and the reason is known.
    }
  }

  function freshMeta(now: number): SessionMeta {
    return { createdAt: now, touchedAt: now, renewedAt: now };
  }

  async function freshSession(transport: Transport): Promise<SessionState> {
    // Schema defaults apply to a new session when the empty object passes the schema.
    const data = (schema && (await validateData(schema, {}))) || {};
    const session = new SessionState(
      generateId(),
      data,
      freshMeta(config.now()),
      undefined,
      hooks,
      transport,
    );
    session.invalidReason = transport.invalidReason;
    return session;
  }

  function readTransport(input: SessionInput, headers: HeaderReader): Transport {
    const url = isHeaders(input) ? undefined : input.url;
    const transport: Transport = {
      source: undefined,
      present: [],
      // "auto" reads request headers: deferred to the first write, which most requests never make.
      secure: cookie.secure === "auto" ? undefined : cookie.secure,
      url,
      headers,
      refused: false,
      token: undefined,
      userAgent: undefined,
      ip: undefined,
      release: undefined,
      invalidReason: undefined,
    };
    if (store) {
      if (config.track.userAgent)
        transport.userAgent = headers.get("user-agent")?.slice(0, USER_AGENT_MAX_CHARS);
      if (config.track.ip && !isHeaders(input) && "ip" in input) {
        transport.ip = input.ip;
      }
    }
    return transport;
  }

  function load(given: SessionInput): Promise<SessionState> {
    return Promise.resolve(attempt(loadNow, given));
  }

  /**
   * `load`'s work. The session comes back synchronously when nothing on its way waits: a cookie
   * session whose token was opened before (the token cache) under a schema that validates
   * synchronously. An adapter that can go on synchronously then runs the handler in the request's
   * own event (see `loadSession`).
   */
  function loadNow(given: SessionInput): MaybePromise<SessionState> {
    // A Node request (a WebSocket upgrade, a handler outside the adapters) is read as the adapters do.
    const input = isNodeRequest(given) ? nodeSessionInput(given) : given;
    const headers = (isHeaders(input) ? input : input.headers) as HeaderReader;
    const transport = readTransport(input, headers);
    const cookies = parseOwnCookies(headers.get("cookie"), cookie.name);
    const fromCookie = readCookieToken(cookies, cookie.name, config.maxSize);
    transport.present = fromCookie.present;
    // A request with the header (even empty, asking for a first token) uses the header transport.
    let token = config.header ? readHeaderToken(headers, config.header) : undefined;
    if (token !== undefined) transport.source = "header";
    if (transport.source === "header") token = token || undefined;
    else if (fromCookie.token !== undefined || fromCookie.oversized) {
      transport.source = "cookie";
      token = fromCookie.token;
    }
    const opened = token === undefined ? undefined : sessionFromToken(transport, token);
    if (opened instanceof SessionState) return opened;
    return loadRest(transport, headers, cookies, fromCookie, token, opened);
  }

  /** The rest of `load` once the request's own token did not open a session synchronously. */
  async function loadRest(
    transport: Transport,
    headers: HeaderReader,
    cookies: Record<string, string | undefined>,
    fromCookie: CookieRead,
    token: string | undefined,
    opened: MaybePromise<SessionState | undefined>,
  ): Promise<SessionState> {
    try {
      if (token === undefined) {
        if (transport.source === "header") return freshSession(transport);
        if (fromCookie.oversized) refuse(transport, "oversized");
        else if (fromCookie.present.length > 0) refuse(transport, "malformed");
      } else {
        const session = await opened;
        if (session) return session;
      }
      if (transport.source !== "header" && cookies[cookie.name] !== undefined) {
        // Browsers send every cookie of this name the request matches, longest path and then
        // oldest first: one left on another path, or set for a parent domain by a sibling app (or
        // to toss it), comes before ours. Refusing on the first alone would sign the visitor out on
        // every request, and the clearing line would delete their good cookie, not the stale one.
        const values = laterValues(headers.get("cookie"), cookie.name, SAME_NAME_TRIES - 1);
        // Such a cookie hides a chunked session too: the base name is read before the chunks.
        if (fromCookie.present.length > 1) {
          const chunked = joinChunks(cookies, cookie.name, config.maxSize, fromCookie.present);
          if (chunked.token !== undefined) values.push(chunked.token);
        }
        const session = await retryWith(transport, values);
        if (session) return session;
      } else if (transport.source === "cookie" && fromCookie.present.length > 0) {
        // A chunk tossed the same way (one `sid.0` set for the parent domain on a longer path)
        // hides the chunks behind it: join each chunk name's last value instead.
        // One pass for every chunk name: a search per name cost 15 ms for 1 000 chunk names.
        const laterByName = laterOwnValues(headers.get("cookie"), cookie.name, SAME_NAME_TRIES - 1);
        const last: Record<string, string | undefined> = {};
        let tossed = false;
        for (const name of fromCookie.present) {
          const later = laterByName.get(name) ?? [];
          tossed ||= later.length > 0;
          last[name] = later.length > 0 ? later[later.length - 1] : cookies[name];
        }
        const joined = tossed
          ? joinChunks(last, cookie.name, config.maxSize, fromCookie.present).token
          : undefined;
        const session = joined === undefined ? undefined : await retryWith(transport, [joined]);
        if (session) return session;
      }
      return freshSession(transport);
    } catch (err) {
      // Nothing commits a request whose load failed, and commit is what releases the lock.
      await transport.release?.().catch(() => undefined);
      transport.release = undefined;
      throw err;
    }
  }

  /** The first session one of `values` opens, each tried as a cookie after a refused first one. */
  async function retryWith(
    transport: Transport,
    values: readonly string[],
  ): Promise<SessionState | undefined> {
    for (const value of values) {
      await transport.release?.().catch(() => undefined);
      transport.release = undefined;
      transport.source = "cookie";
      const session = await sessionFromToken(transport, value);
      if (session) {
        transport.refused = false;
        return session;
      }
    }
    return undefined;
  }

  /**
   * The session a token opens, or undefined once `refuse` has recorded why not. Synchronous for a
   * cookie session's token the cache holds (see `loadNow`).
   */
  function sessionFromToken(
    transport: Transport,
    token: string,
  ): MaybePromise<SessionState | undefined> {
    if (token.length > config.maxSize) {
      refuse(transport, "oversized");
      return undefined;
    }
    const verified = tokens?.get(token);
    if (verified === undefined) return openAndVerify(transport, token);
    return store
      ? storedSession(transport, token, verified)
      : cookieSession(transport, token, verified);
  }

  /** A token not seen before: opened, checked against the configured format, remembered. */
  async function openAndVerify(
    transport: Transport,
    token: string,
  ): Promise<SessionState | undefined> {
    const opened = await openToken(backend, ring ?? (await keyring()), token, cookie.name);
    if (typeof opened === "string") {
      refuse(transport, opened);
      return undefined;
    }
    const expected = store ? "i1" : config.mode === "signed" ? "s1" : "e1";
    // Any of our formats may arrive after a configuration change; only the configured one is accepted.
    if (opened.version !== expected || (store && !isSessionId(opened.text))) {
      refuse(transport, "malformed");
      return undefined;
    }
    const key = store ? await hashSessionId(backend, opened.text) : undefined;
    const verified: Verified = { opened, key, gone: false };
    tokens?.set(token, verified);
    return store
      ? storedSession(transport, token, verified)
      : cookieSession(transport, token, verified);
  }

  /** The session a verified cookie token seals. */
  function cookieSession(
    transport: Transport,
    token: string,
    verified: Verified,
  ): MaybePromise<SessionState | undefined> {
    const record = decodeRecord(verified.opened.text);
    if (!record || !isSessionId(record.id)) {
      refuse(transport, "malformed");
      return undefined;
    }
    return liveSession(transport, token, verified, record.id, record);
  }

  /** The session a verified id token names in the store. */
  async function storedSession(
    transport: Transport,
    token: string,
    verified: Verified,
  ): Promise<SessionState | undefined> {
    if (verified.gone) {
      refuse(transport, "unknown-session");
      return undefined;
    }
    const s = store as SessionStore;
    const key = verified.key as string;
    if (config.lock) await acquireLock(s, key, transport);
    const stored = await guardStore(s, "get", () => s.get(key));
    if (!stored) {
      // OWASP "strict" session management: an id the server does not know is never adopted.
      await refuseMissing(s, key, transport);
      verified.gone = true;
      return undefined;
    }
    if (!isSessionMeta(stored.meta)) {
      // Written by another version or by hand: unreadable as this one's, so garbage, as expired.
      refuse(transport, "malformed");
      await guardStore(s, "delete", () => s.delete(key));
      verified.gone = true;
      return undefined;
    }
    return liveSession(transport, token, verified, verified.opened.text, stored);
  }

  /** The loaded session, unless its record is past a deadline or fails the schema. */
  function liveSession(
    transport: Transport,
    token: string,
    verified: Verified,
    id: string,
    stored: StoredSession,
  ): MaybePromise<SessionState | undefined> {
    const now = config.now();
    const expired = expiryReason(stored.meta, now);
    if (expired) {
      refuse(transport, expired, stored.meta.userId);
      // A store entry past its deadline is garbage: delete it rather than wait for a sweep.
      const key = verified.key;
      if (store && key !== undefined) {
        return guardStore(store, "delete", () => store.delete(key)).then(() => {
          verified.gone = true;
          return undefined;
        });
      }
      return undefined;
    }
    const valid = schema ? validateData(schema, stored.data) : stored.data;
    return after(valid, (data) => {
      if (!data) {
        refuse(transport, "schema");
        return undefined;
      }
      transport.token = token;
      const origin = { id, key: verified.key };
      const session = new SessionState(id, data, stored.meta, origin, hooks, transport);
      if (
        config.renewIntervalMs !== undefined &&
        now - stored.meta.renewedAt >= config.renewIntervalMs
      ) {
        // Not regenerate(): no privilege changed, so the session's CSRF tokens stay valid.
        session.renew();
      } else if (verified.opened.stale) {
        session.reissue = "rotate";
      }
      return session;
    });
  }

  function touchDue(session: SessionState, now: number): boolean {
    const { idleTimeoutMs, touchIntervalMs } = deadlinesOf(session.meta);
    return idleTimeoutMs !== undefined && now - session.meta.touchedAt >= touchIntervalMs;
  }

  /**
   * Whether the session's cookie carries Max-Age: its own choice (`rememberMe`), else
   * `cookie.persistent`. Without an idle or absolute timeout, only a session that asked: a 400-day
   * cookie nobody chose would outlive every browser session.
   */
  function lastingCookie(meta: SessionMeta): boolean {
    if (meta.persistent !== undefined) return meta.persistent;
    return (
      cookie.persistent &&
      (config.idleTimeoutMs !== undefined || config.absoluteTimeoutMs !== undefined)
    );
  }

  /**
   * Whether a write moves the session's deadline, and with it a lasting cookie's Max-Age: with an
   * idle timeout, and wherever the 400-day cap after the last write can come before the absolute
   * deadline.
   */
  function deadlineSlides(meta: SessionMeta): boolean {
    const { idleTimeoutMs, absoluteTimeoutMs } = deadlinesOf(meta);
    return (
      idleTimeoutMs !== undefined ||
      absoluteTimeoutMs === undefined ||
      absoluteTimeoutMs > FOUR_HUNDRED_DAYS_MS
    );
  }

  /** A new token for the session, remembered as accepted: the client sends it back next time. */
  async function issueToken(session: SessionState, key?: string): Promise<string> {
    const keys = ring ?? (await keyring());
    // `after`, not `await`: a synchronous backend's token comes back without another microtask.
    if (store) {
      return after(signToken(backend, keys, "i1", session.id, cookie.name), (token) => {
        if (key !== undefined)
          tokens?.set(token, {
            opened: { version: "i1", text: session.id, stale: false },
            key,
            gone: false,
          });
        return token;
      });
    }
    const json = encodeRecord(session.id, session.data, session.meta);
    const signed = config.mode === "signed";
    const sealed = signed
      ? signToken(backend, keys, "s1", encodeSignedPayload(backend, json), cookie.name)
      : sealToken(backend, keys, json, cookie.name);
    return after(sealed, (token) => {
      tokens?.set(token, {
        opened: { version: signed ? "s1" : "e1", text: json, stale: false },
        key: undefined,
        gone: false,
      });
      return token;
    });
  }

  /** Exact token length for the session's current record, without sealing it. */
  function checkCookieSize(session: SessionState): void {
    const bytes = utf8Length(encodeRecord(session.id, session.data, session.meta));
    // "e1." or "s1." + key id + ".": an explicit key id is 1-16 characters, a derived one 6.
    const prefix = 4 + primaryKeyIdLength;
    const size =
      config.mode === "signed"
        ? prefix + Math.ceil((bytes * 4) / 3) + 44
        : prefix + Math.ceil(((12 + bytes + 16) * 4) / 3);
    if (size > config.maxSize) {
      throw new SessionError(
        "ERR_SESSION_TOO_LARGE",
        `this change would make the session cookie ${size} bytes, over maxSize ${config.maxSize}; keep large values in a server store (the "store" option) or raise maxSize`,
      );
    }
  }

  function sendToken(
    session: SessionState,
    headers: HeaderWriter,
    token: string,
    now: number,
  ): void {
    const transport = session.transport as Transport;
    const deadline = deadlineOf(session.meta);
    // One transport answers: the header to a request that used it, the cookie otherwise. Both would
    // double the response's size for a large session.
    if (transport.source === "header" && config.header)
      writeHeaderToken(headers, config.header, token);
    else {
      // A lasting cookie ends at the session's own deadline (a remembered one's, with the
      // `rememberMe` option); any other is a browser-session cookie, gone when the browser closes.
      // Rounded to the nearest second, so a new session shows the configured lifetime (604800 for
      // "7d", not 604799); the sealed deadline, not Max-Age, is what the server enforces.
      const maxAge = lastingCookie(session.meta)
        ? Math.max(1, Math.round((deadline - now) / 1000))
        : undefined;
      const lines = cookieWriter.write(isSecure(transport), token, maxAge, transport.present);
      for (const line of lines) headers.append("set-cookie", line);
      transport.present = token.length > 0 ? currentCookieNames(token) : [];
    }
    transport.token = token;
    headers.set("cache-control", "no-store");
  }

  function isSecure(transport: Transport): boolean {
    transport.secure ??= !isLocalPlainHttp(transport.url, transport.headers);
    return transport.secure;
  }

  function currentCookieNames(token: string): string[] {
    const count = Math.ceil(token.length / CHUNK_VALUE_BYTES);
    return count <= 1
      ? [cookie.name]
      : Array.from({ length: count }, (_, i) => `${cookie.name}.${i}`);
  }

  function sendClear(session: SessionState, headers: HeaderWriter): void {
    const transport = session.transport as Transport;
    if (config.header && transport.source === "header")
      writeHeaderToken(headers, config.header, "");
    else {
      for (const line of cookieWriter.clear(isSecure(transport), transport.present)) {
        headers.append("set-cookie", line);
      }
      transport.present = [];
    }
    transport.token = undefined;
    headers.set("cache-control", "no-store");
  }

  async function acquireLock(s: SessionStore, key: string, transport: Transport): Promise<void> {
    const { ttlMs, waitMs } = config.lock as NonNullable<ResolvedOptions["lock"]>;
    const release = await guardStore(s, "lock", () =>
      (s.lock as NonNullable<SessionStore["lock"]>)(key, ttlMs, waitMs),
    );
    if (!release) {
      throw new SessionError(
        "ERR_LOCK_TIMEOUT",
        `another request held this session's lock for longer than lock.wait (${waitMs} ms); raise lock.wait or shorten the work done under a session`,
      );
    }
    transport.release = release;
  }

  async function commit(input: Session<SessionData>, headers: HeaderWriter): Promise<void> {
    if (!(input instanceof SessionState)) {
      throw new SessionError("ERR_SESSION_STATE", "commit() takes a session that load() returned");
    }
    const transport = input.transport as Transport;
    // Before any await: a token asked for while this commit runs is of the id it sends.
    input.commitBegun = true;
    try {
      await commitSession(input, headers);
      // A page that shows a CSRF token is this session's alone, cookie or not.
      if (input.csrfIssued) headers.set("cache-control", "no-store");
    } finally {
      const release = transport.release;
      transport.release = undefined;
      // The lock's TTL bounds how long a failed release can block the session.
      if (release) await release().catch(() => undefined);
    }
  }

  async function commitSession(session: SessionState, headers: HeaderWriter): Promise<void> {
    const transport = session.transport as Transport;
    const now = config.now();
    const hasWrites = session.hasWrites;
    const origin = session.origin;
    if (hasWrites && schema) {
      // Saved, data the schema refuses (an untyped request body handed to set) would make the next
      // load refuse the whole session: the visitor signed out, and no error anywhere. Said here, in
      // the request that wrote it, before anything is saved.
      const issues = await dataIssues(schema, session.data);
      if (issues) {
        throw new SessionError(
          "ERR_SESSION_SCHEMA",
          `the session's data does not match its schema at ${issues.slice(0, 5).join(", ")}; nothing was saved. Check request input against the schema before session.set`,
        );
      }
    }

    if (session.destroyed && origin) {
      const key = origin.key;
      if (store && key !== undefined) {
        const removed = await guardStore(store, "delete", () => store.delete(key));
        if (removed === false)
          await endMoved(store, session.destroyedUserId, key, session.destroyedLineage);
      }
      emit({ type: "destroyed", at: now, userId: session.destroyedUserId });
      if (config.clearSiteData) headers.set("clear-site-data", '"cookies"');
      if (!hasWrites) {
        sendClear(session, headers);
        session.markCommitted(undefined);
        return;
      }
    }
    const liveOrigin = session.destroyed ? undefined : origin;

    if (hasWrites) {
      session.meta = { ...session.meta, touchedAt: now };
      const idChanged = liveOrigin !== undefined && liveOrigin.id !== session.id;
      if (idChanged && session.reissue === "renew" && session.meta.csrf === undefined) {
        await keepSeedOf(session, liveOrigin.id);
      }
      let expiresAt = deadlineOf(session.meta);
      let key: string | undefined;
      if (store) {
        // Same id as loaded: its key was hashed then, so a write costs no second SHA-256.
        key =
          liveOrigin?.key !== undefined && !idChanged
            ? liveOrigin.key
            : await hashSessionId(backend, session.id);
        // A clear keeping the id is a patch (see `clearedKeys`): only a new record is written whole.
        if (!liveOrigin || idChanged) {
          const device: Pick<SessionMeta, "userAgent" | "ip"> = {};
          if (transport.userAgent !== undefined) device.userAgent = transport.userAgent;
          const ip = typeof transport.ip === "function" ? transport.ip() : transport.ip;
          const address = ip === undefined ? undefined : plainIp(ip);
          if (address !== undefined) device.ip = address;
          let moved = false;
          if (idChanged && liveOrigin.key !== undefined) {
            // The first move names the lineage, every later one carries it (see `endMoved`).
            if (session.meta.lineage === undefined) {
              const lineage = await lineageOf(backend, liveOrigin.key);
              session.meta = { ...session.meta, lineage };
            }
            if (!session.switchedUser) {
              const from = liveOrigin.key;
              const how = await moveKeepingData(store, from, key, session, now, expiresAt, device);
              if (how === "gone") {
                abandon(session, transport); // signed out, or moved, since this request loaded it
                return;
              }
              expiresAt = deadlineOf(session.meta); // another request may have chosen rememberMe
              moved = how === "moved";
            }
          }
          if (!moved) {
            const meta = { ...session.meta, ...device };
            await guardStore(
              store,
              "set",
              () => store.set(key as string, { data: session.data, meta }, expiresAt),
              session.data,
            );
          }
          if (idChanged && liveOrigin.key && !moved) {
            // A record moves to a new id (renewal, regenerate) only while the old one lives: a
            // request loaded before a sign-out elsewhere (destroyByUser, revoke, destroy) would
            // otherwise bring the session back under an id the sign-out never saw. The new record
            // is written first, so a destroyByUser landing in between finds it in the user index;
            // the old one's delete then says whether it was still there (a store that cannot say,
            // resolving nothing, keeps the move as before).
            const oldKey = liveOrigin.key;
            const newKey = key as string;
            const removed = await guardStore(store, "delete", () => store.delete(oldKey));
            if (removed === false) {
              await guardStore(store, "delete", () => store.delete(newKey));
              abandon(session, transport);
              return;
            }
          }
        } else {
          const patch = session.storePatch({ touchedAt: now });
          const applied = await guardStore(
            store,
            "patch",
            () => store.patch(key as string, patch, expiresAt),
            patch.set,
          );
          if (!applied) {
            // Destroyed, regenerated or expired elsewhere since load: a late write must not revive
            // it, nor clear the cookie (see `refuse`).
            abandon(session, transport);
            return;
          }
        }
      }
      if (!liveOrigin) emit({ type: "created", at: now, userId: session.meta.userId });
      else if (idChanged) {
        emit({
          type: session.reissue === "renew" ? "renewed" : "regenerated",
          at: now,
          userId: session.meta.userId,
        });
      }
      // Store sessions: the cookie holds only the id, so it needs a new token only with the id
      // (or a rotated secret). The write moved the idle deadline, though, and a Max-Age must move
      // with it: each write also restarts the touch interval, so waiting for a slide to fall due
      // would let the browser drop the cookie of a visitor who writes on every request.
      const newToken = !store || !liveOrigin || idChanged || session.reissue === "rotate";
      const maxAgeMoved = lastingCookie(session.meta) && deadlineSlides(session.meta);
      if (newToken || maxAgeMoved || session.metaChanges.has("persistent")) {
        const held = newToken ? undefined : transport.token;
        sendToken(session, headers, held ?? (await issueToken(session, key)), now);
      }
      session.markCommitted({ id: session.id, key });
      return;
    }

    if (liveOrigin) {
      // An adapter may ask for the touch itself (h3's updateSession with no change reseals).
      const touch = touchDue(session, now) || session.reissue === "touch";
      if (touch || session.reissue) {
        if (touch) session.meta = { ...session.meta, touchedAt: now };
        if (store && touch && liveOrigin.key) {
          const key = liveOrigin.key;
          const found = await guardStore(store, "touch", () =>
            store.touch(key, now, deadlineOf(session.meta)),
          );
          if (!found) {
            abandon(session, transport); // the cookie stays (see `refuse`)
            return;
          }
        }
        const reuse = store && !session.reissue && transport.token !== undefined;
        sendToken(
          session,
          headers,
          reuse ? (transport.token as string) : await issueToken(session, liveOrigin.key),
          now,
        );
        session.markCommitted(liveOrigin);
      }
      return;
    }

    // A fresh session nobody wrote to: nothing to send, unless a refused token should be cleared.
    if (clearsRefused(transport)) sendClear(session, headers);
  }

  /**
   * A renewal moves the id, and with it the seed that id derives (csrf.ts): a token another request
   * made of the old id's seed, which this one never saw (its first token asked for beside this
   * renewal, or its seed dropped by a re-seal that loaded before it), then verifies under the new
   * id too, as the seed a session keeps does. A cookie too close to `maxSize` to carry the seed
   * renews without it, as before.
   */
  async function keepSeedOf(session: SessionState, id: string): Promise<void> {
    const before = session.meta;
    session.meta = { ...before, csrf: await hooks.csrf.seedOf(id) };
    if (store) return;
    try {
      checkCookieSize(session);
    } catch {
      session.meta = before;
    }
  }

  /**
   * A commit found the session's record gone (signed out elsewhere since load): the request goes on
   * with a fresh, empty session, so a second commit (h3's updateSession commits on each call) writes
   * a new visitor's record, never the signed-out one again.
   */
  function abandon(session: SessionState, transport: Transport): void {
    refuse(transport, "unknown-session");
    session.abandon();
    session.markCommitted(undefined);
  }

  function requireStore<M extends "listByUser" | "deleteByUser">(method: M): SessionStore {
    if (!store) {
      throw new SessionError(
        "ERR_STORE_CAPABILITY",
        `${method} needs a server store: cookie sessions cannot be listed or revoked; pass the "store" option`,
      );
    }
    if (typeof store[method] !== "function") {
      throw new SessionError(
        "ERR_STORE_CAPABILITY",
        `the ${store.name} store does not implement ${method}()`,
      );
    }
    return store;
  }

  async function listByUser(userId: string, options: { current?: Session<SessionData> } = {}) {
    const s = requireStore("listByUser");
    const entries = await guardStore(s, "listByUser", () =>
      (s.listByUser as NonNullable<SessionStore["listByUser"]>)(userId),
    );
    const current = await identityOf(options.current);
    const now = config.now();
    return entries
      .filter(
        (entry) =>
          isSessionMeta(entry.meta) &&
          entry.expiresAt > now &&
          expiryReason(entry.meta, now) === undefined,
      )
      .map(
        (entry): UserSession => ({
          handle: entry.key,
          createdAt: entry.meta.createdAt,
          lastSeenAt: entry.meta.touchedAt,
          expiresAt: entry.expiresAt,
          // Bounded as the write side bounds them, whoever wrote the row.
          userAgent: entry.meta.userAgent?.slice(0, USER_AGENT_MAX_CHARS),
          ip: entry.meta.ip,
          label: entry.meta.label?.slice(0, LABEL_MAX_CHARS),
          current:
            current !== undefined &&
            (entry.key === current.key ||
              (current.lineage !== undefined && entry.meta.lineage === current.lineage)),
        }),
      )
      .sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  /**
   * What identifies `session` among its user's records: its key and, once it has a record, its
   * lineage. Another request (a second tab signing in again) may move the session to a new key
   * after this one loaded it; the move carries the lineage, so the session is still found by it.
   */
  async function identityOf(
    session: Session<SessionData> | undefined,
  ): Promise<{ key: string; lineage: string | undefined } | undefined> {
    if (!(session instanceof SessionState)) return undefined;
    const key = session.origin?.key;
    if (key === undefined)
      return { key: await hashSessionId(backend, session.id), lineage: undefined };
    // The lineage the record read had, else the one its first move will stamp (see `endMoved`).
    return { key, lineage: session.meta.lineage ?? (await lineageOf(backend, key)) };
  }

  async function destroyByUser(userId: string, options: { except?: Session<SessionData> } = {}) {
    const s = requireStore("deleteByUser");
    const kept = await identityOf(options.except);
    // Keys and lineages in one list: both are hashes, of different inputs, so neither matches the other.
    const except = kept ? [kept.key, ...(kept.lineage ? [kept.lineage] : [])] : [];
    const count = await guardStore(s, "deleteByUser", () =>
      (s.deleteByUser as NonNullable<SessionStore["deleteByUser"]>)(userId, except),
    );
    // An audit log records what happened: no event when there was nothing to sign out.
    if (count > 0) emit({ type: "destroyed", at: config.now(), userId });
    return count;
  }

  async function revoke(userId: string, handle: string): Promise<boolean> {
    const s = requireStore("listByUser");
    const entries = await guardStore(s, "listByUser", () =>
      (s.listByUser as NonNullable<SessionStore["listByUser"]>)(userId),
    );
    // Only a handle of this user's own sessions may be revoked: handles come back from forms.
    const listed = entries.find((entry) => entry.key === handle);
    if (!listed) return false;
    // Gone since the listing: signed out elsewhere (nothing to end), or moved to a new id by a
    // renewal or regenerate that won the race, where the device lives on: followed by its lineage.
    if (
      (await guardStore(s, "delete", () => s.delete(handle))) === false &&
      !(await endMoved(s, userId, handle, listed.meta.lineage))
    )
      return false;
    emit({ type: "destroyed", at: config.now(), userId });
    return true;
  }

  const sessions: Sessions<SessionData> = {
    load,
    commit,
    listByUser,
    destroyByUser,
    revoke,
    cookieName: cookie.name,
    headerName: config.header,
    store,
  };
  managers.set(sessions, { hooks, load, loadNow, commit, quiet });
  // The schema's type is a compile-time view of the same runtime object.
  return sessions as unknown as Sessions<InferSessionData<S>>;
}

/**
 * What a manager keeps for the module's functions below: its hooks object, which every session it
 * loads carries (how `loadedBy` knows its own), its own `load` and `commit` with the shortcuts that
 * stand in for them (only while those are not replaced in place: tracing, metrics), and `quiet`.
 */
const managers = new WeakMap<
  object,
  {
    hooks: SessionHooks;
    load: (input: SessionInput) => Promise<SessionState>;
    loadNow: (input: SessionInput) => MaybePromise<SessionState>;
    commit: (session: Session<SessionData>, headers: HeaderWriter) => Promise<void>;
    quiet: (session: SessionState) => boolean;
  }
>();

/** `run(input)`, with a synchronous throw turned into a rejected promise. */
function attempt<I, R>(run: (input: I) => MaybePromise<R>, input: I): MaybePromise<R> {
  try {
    return run(input);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * `sessions.load(input)`, but the session itself rather than a promise when nothing on the way waits
 * (a cookie session whose token was opened before, a synchronous schema). A node adapter then runs
 * the handler in the request's own event, as an app without sessions does, without the promises
 * and the microtask in between (7 µs of CPU per Express cookie read, bench/README.md). A failure
 * always comes as a rejected promise.
 * @internal
 */
export function loadSession<T extends SessionData>(
  sessions: Sessions<T>,
  input: SessionInput,
): MaybePromise<Session<T>> {
  const own = managers.get(sessions);
  if (own === undefined || sessions.load !== own.load) return sessions.load(input);
  return attempt(own.loadNow, input) as MaybePromise<Session<T>>;
}

/**
 * `candidate` if it is a session `sessions` loaded, else undefined. For adapters mounted twice on one
 * request (a sub-app or router that mounts the middleware again): the second mount must reuse the
 * first one's session, since two sessions of one manager would both commit, the outer last, and its
 * touch would re-seal the old session after a sign-out in the inner mount.
 * @internal
 */
export function loadedBy<C>(candidate: C | undefined | null, sessions: object): C | undefined {
  return candidate instanceof SessionState && candidate.hooks === managers.get(sessions)?.hooks
    ? candidate
    : undefined;
}

/**
 * Closes `session` as its last commit through `sessions` would when that commit would change
 * nothing (no header, no store call, no lock to let go), and says so: an adapter then lets its
 * response go unheld. False leaves the session as it was, for the adapter's usual commit; so does
 * a `sessions` that is not the manager itself, or whose `commit` was replaced (that one must run).
 * @internal
 */
export function closeIfQuiet(session: object, sessions: { commit: unknown }): boolean {
  const own = managers.get(sessions);
  if (own === undefined || !(session instanceof SessionState) || session.hooks !== own.hooks)
    return false;
  if (sessions.commit !== own.commit || session.closed || !own.quiet(session)) return false;
  session.commitBegun = true;
  session.closed = true;
  return true;
}

/**
 * Releases the per-session lock (the `lock` option) of a request that will not commit: its client
 * went away before any answer (a long poll), and the lock would otherwise block that visitor's next
 * requests until its ttl. A later commit of the same request still writes, unlocked. For adapters:
 * register with `holdsLock` first, so requests without a lock pay nothing.
 * @internal
 */
export async function releaseLock(session: object): Promise<void> {
  if (!(session instanceof SessionState)) return;
  const transport = session.transport as Transport;
  const release = transport.release;
  transport.release = undefined;
  if (release) await release().catch(() => undefined);
}

/** Whether a session's request holds its per-session lock. @internal */
export function holdsLock(session: object): boolean {
  return session instanceof SessionState && (session.transport as Transport).release !== undefined;
}

/**
 * The token the client holds for a session: as the request brought it (once accepted), or as
 * `commit` last sent it; `undefined` for a new or cleared session. For adapters that hand the token
 * out themselves (h3's `session.id` is its sealed cookie), so they need not parse the cookie again.
 * @internal
 */
export function heldToken(session: Session<SessionData>): string | undefined {
  return session instanceof SessionState ? (session.transport as Transport).token : undefined;
}

/**
 * Runs a store call; anything but a sessionkit error becomes `StoreUnavailableError`, so a store that
 * forgot to wrap its driver's error still gives the handler something it can map to 503.
 */
async function guardStore<R>(
  store: SessionStore,
  operation: string,
  call: () => Promise<R>,
  written?: unknown,
): Promise<R> {
  try {
    return await call();
  } catch (err) {
    if (isSessionError(err)) throw err;
    // A value JSON cannot hold (a BigInt, nesting past the stack) is the caller's error, as it is
    // in a cookie session, not an outage to answer 503. Checked only once a write has failed.
    if (written !== undefined && !isJsonable(written)) throw err;
    throw new StoreUnavailableError(`the ${store.name} store failed during ${operation}`, {
      cause: err,
    });
  }
}

/**
 * The address to record: an IPv4 client of a dual-stack socket reads "::ffff:192.0.2.1" and is kept
 * as the IPv4 address it is; anything not in address form is not kept (behind a trusted proxy an
 * adapter's address is a client-chosen header: 16 KB of markup would be listed as "the IP").
 */
function plainIp(ip: string): string | undefined {
  if (IPV4_MAPPED.test(ip)) return ip.slice(7);
  return ADDRESS.test(ip) ? ip : undefined;
}

// The characters of IPv4 and IPv6 text, at most the longest IPv6 form (45), and an IPv6 zone id.
const ADDRESS = /^[0-9A-Fa-f:.]{2,45}(?:%[\w.-]{1,32})?$/;

const IPV4_MAPPED = /^::ffff:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i;

function isJsonable(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}

function isHeaders(input: SessionInput): input is HeaderReader {
  // Duck-typed: a Headers from another realm or polyfill is still headers.
  return typeof (input as HeaderReader).get === "function" && !("headers" in input);
}

const LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/** Plain http to localhost is the one place a Secure cookie would be dropped by some clients. */
function isLocalPlainHttp(url: string | undefined, headers: HeaderReader): boolean {
  let origin: string;
  if (url?.includes("://")) {
    const hostEnd = url.indexOf("/", url.indexOf("://") + 3);
    origin = hostEnd < 0 ? url : url.slice(0, hostEnd);
  } else {
    origin = `${headers.get("x-forwarded-proto") ?? "http"}://${headers.get("host") ?? ""}`;
  }
  // A server answers a handful of origins: remember the last answer rather than parse per write.
  if (origin !== lastOrigin.origin) lastOrigin = { origin, local: isLocalPlainOrigin(origin) };
  // A proxy in front (nginx's `proxy_pass http://127.0.0.1:3000` sends that as the Host) may say
  // the client's side is https: trusting it can only add Secure, never take it away. Asked only
  // of a local origin, so other requests pay no header lookups.
  return lastOrigin.local && !forwardedHttps(headers);
}

let lastOrigin = { origin: "", local: false };

/** Whether a proxy says the client spoke https: `X-Forwarded-Proto` or `Forwarded: proto=https`. */
function forwardedHttps(headers: HeaderReader): boolean {
  const proto = headers.get("x-forwarded-proto");
  // A chain of proxies appends: the first value is the client's side.
  if (proto && /^\s*https\s*(?:,|$)/i.test(proto)) return true;
  const forwarded = headers.get("forwarded");
  return (
    forwarded !== null &&
    forwarded !== undefined &&
    /^[^,]*\bproto="?https"?\s*(?:[;,]|$)/i.test(forwarded)
  );
}

function isLocalPlainOrigin(origin: string): boolean {
  const schemeEnd = origin.indexOf("://");
  if (origin.slice(0, schemeEnd) !== "http") return false;
  const host = origin.slice(schemeEnd + 3);
  const hostname = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0];
  return LOCAL_HOSTS.includes(hostname ?? "") || (hostname ?? "").endsWith(".localhost");
}
