import type { StandardSchemaV1 } from "@standard-schema/spec";
import { type NamedSecret, normalizeSecrets, type SecretInput } from "./crypto/keyring.js";
import { ConfigError } from "./errors.js";
import type { SessionEvent } from "./events.js";
import { parseDurationMs } from "./internal/duration.js";
import { rejectUnknown } from "./internal/unknown-options.js";
import { nonObjectOutput } from "./schema.js";
import type { SessionStore } from "./stores/store.js";
import { CHUNK_VALUE_BYTES, type CookieSettings, MAX_CHUNKS } from "./transport/cookie.js";

/**
 * Seconds as a number (never milliseconds; at most 400 days, the longest a browser keeps a cookie),
 * or a string such as "30m", "12h", "7d", "1h30m".
 */
export type Duration = number | string;

/** Cookie attributes. Defaults follow OWASP's Session Management Cheat Sheet, "Cookies". */
export interface CookieOptions {
  /** Cookie name. Default "sid". A `__Host-` name demands Secure, Path=/ and no Domain. */
  name?: string;
  /** Default "/". */
  path?: string;
  /** Default: none, so the cookie goes back to the exact host only. */
  domain?: string;
  /** Default true: scripts cannot read the cookie. */
  httpOnly?: boolean;
  /**
   * Default "auto": Secure on every origin but plain-http localhost (so local development works). A
   * proxy saying the client spoke https (`X-Forwarded-Proto: https`, `Forwarded: proto=https`) keeps
   * Secure on a localhost `Host` too; such a header can only add Secure, never remove it.
   */
  secure?: boolean | "auto";
  /** Default "lax". "none" forces Secure. Lax is not a full CSRF defence: see the README. */
  sameSite?: "lax" | "strict" | "none";
  /** CHIPS `Partitioned` attribute, for third-party embeds. Default false; forces Secure. */
  partitioned?: boolean;
  /** Chrome's `Priority` attribute. Default: not sent. */
  priority?: "low" | "medium" | "high";
  /**
   * Default true: the cookie carries `Max-Age` (the time left to the session's earlier deadline), so it
   * outlives the browser. false: browser-session cookies, except for sessions that
   * `session.rememberMe()` opts in. Either way the server enforces the idle and absolute deadlines.
   */
  persistent?: boolean;
}

/**
 * Options of `createSessions`. Unknown options are a `ConfigError`, so a typo never silently
 * weakens a setting.
 */
export interface SessionsOptions<S extends StandardSchemaV1 | undefined = undefined> {
  /** Required. A string of >= 32 characters, a list (first seals, all open) or `{ keyId: secret }`. */
  secret: SecretInput;
  /**
   * Any Standard Schema (Zod, Valibot, ArkType...). Stored data that fails it never reaches a handler,
   * and a commit of data that fails it throws `ERR_SESSION_SCHEMA` and saves nothing.
   */
  schema?: S;
  /** A server store. Without one, the whole session lives in the cookie. */
  store?: SessionStore;
  /** Cookie sessions only: "encrypted" (AES-256-GCM, default) or "signed" (HMAC-SHA256, readable by the client). */
  mode?: "encrypted" | "signed";
  cookie?: CookieOptions;
  /**
   * Expire after this much inactivity; slides with use. Default "7d". `false`: never idle-expire.
   * Not longer than `absoluteTimeout`, which would end every session first.
   */
  idleTimeout?: Duration | false;
  /** Expire this long after creation, however active; survives `regenerate`. Default "30d". `false`: none. */
  absoluteTimeout?: Duration | false;
  /**
   * The deadlines of the sessions that called `session.rememberMe()` (or `rememberMe(true)`), in
   * place of `idleTimeout` and `absoluteTimeout`: ordinary sessions idle out quickly while a
   * remembered one lasts. Each key as its top-level namesake (`false`: none); an unset key keeps the
   * top-level value. Default: none, so remembered sessions live by the same deadlines as the others.
   * Everything that follows a deadline follows the session's own: `session.expiresAt`, what load
   * enforces, the store's TTL, the cookie's `Max-Age`, and the default `touchInterval` (a quarter of
   * the session's own idle timeout, at most "1h"). `rememberMe(false)` returns a session to the
   * top-level deadlines (a session older than `absoluteTimeout` then ends). Neither deadline may be
   * shorter than an ordinary session's, and `idleTimeout` given here is not longer than this
   * `absoluteTimeout`. The choice is the app's: it is sealed in the cookie, or kept in the store.
   *
   * @example
   * ```ts
   * createSessions({
   *   secret,
   *   idleTimeout: "30m",
   *   cookie: { persistent: false }, // browser-session cookies unless remembered
   *   rememberMe: { idleTimeout: "30d", absoluteTimeout: "90d" },
   * });
   * ```
   */
  rememberMe?: { idleTimeout?: Duration | false; absoluteTimeout?: Duration | false } | false;
  /**
   * An unchanged session extends its idle deadline (one store touch or one re-sealed cookie) at most
   * this often. Default: a quarter of `idleTimeout`, at most "1h". Shorter than `idleTimeout`.
   */
  touchInterval?: Duration;
  /**
   * Rotate the id (store) or token (cookie) this often, even without sign-in. Default false (off).
   * Shorter than `absoluteTimeout`.
   */
  renewInterval?: Duration | false;
  /** Request/response header for clients without cookies, e.g. "x-session". Default false (off). */
  header?: string | false;
  /**
   * Largest cookie token in bytes, 256 to 256000; a write past it throws `ERR_SESSION_TOO_LARGE` in the
   * handler. Default 12000 (3 chunk cookies of 4000), which leaves a browser's other headers and
   * cookies about 4 KB under Node's 16 KB limit on a request's headers (past it, a 431 before any
   * handler runs). Behind a proxy that limits one header line to 8 KB (nginx's and Apache's
   * defaults), keep it under about 7000.
   */
  maxSize?: number;
  /** Send `Clear-Site-Data: "cookies"` when a session is destroyed. Default false. */
  clearSiteData?: boolean;
  /**
   * Store sessions: record user agent and IP beside the data for a devices page. Default both true.
   * An IPv4 client of a dual-stack socket (`::ffff:203.0.113.9`) is recorded as `203.0.113.9`.
   */
  track?: { userAgent?: boolean; ip?: boolean } | false;
  /**
   * Store sessions: serialise the requests of one session with a store lock. Default false. `wait`
   * (default "5s"): how long a request waits for the lock before `ERR_LOCK_TIMEOUT`; `ttl` (default
   * "30s"): how long a lock lasts when its request never releases it (a crash). Needs a store with
   * `lock()`. `wait` is at most `ttl`.
   */
  lock?: { wait?: Duration; ttl?: Duration } | false;
  /**
   * At most how many accepted tokens to remember, so the same cookie on the next request skips its
   * decryption (or, with a store, its HMAC check and id hash). Expiry and the store are still checked
   * every time. Kept in two generations of half each: a token in use stays, one seen once ages out.
   * Default 1000 (tokens up to 4 KB each); `false` or 0: off.
   */
  tokenCache?: number | false;
  /** Told of a refused token or data (tampered, expired, invalid). Never given the token. */
  onInvalid?: (reason: InvalidReason) => void;
  /** Told of every lifecycle event, for audit logs. Never given an id or a token. */
  onEvent?: (event: SessionEvent) => void;
  /** The clock, epoch ms. Default `Date.now`; inject one in tests. */
  now?: () => number;
  /** The id generator. Default: 256 bits from the platform CSPRNG. Inject one only in tests. */
  generateId?: () => string;
}

/** Why input was refused and a fresh session given instead. */
export type InvalidReason =
  | "malformed"
  | "unknown-key"
  | "tampered"
  | "oversized"
  | "expired-idle"
  | "expired-absolute"
  | "schema"
  | "unknown-session";

/** The deadlines one kind of session lives by, in milliseconds; `undefined`: none. */
export interface Deadlines {
  idleTimeoutMs: number | undefined;
  absoluteTimeoutMs: number | undefined;
  touchIntervalMs: number;
}

export interface ResolvedOptions extends Deadlines {
  secrets: NamedSecret[];
  schema: StandardSchemaV1 | undefined;
  store: SessionStore | undefined;
  mode: "encrypted" | "signed";
  cookie: CookieSettings;
  /** The deadlines of remembered sessions (`SessionMeta.persistent === true`), when they differ. */
  rememberMe: Deadlines | undefined;
  renewIntervalMs: number | undefined;
  header: string | undefined;
  maxSize: number;
  clearSiteData: boolean;
  track: { userAgent: boolean; ip: boolean };
  lock: { waitMs: number; ttlMs: number } | undefined;
  tokenCache: number;
  onInvalid: ((reason: InvalidReason) => void) | undefined;
  onEvent: ((event: SessionEvent) => void) | undefined;
  now: () => number;
  generateId: (() => string) | undefined;
}

export const DEFAULTS = Object.freeze({
  cookieName: "sid",
  idleTimeout: "7d",
  absoluteTimeout: "30d",
  maxTouchIntervalMs: 3_600_000,
  maxSize: 3 * CHUNK_VALUE_BYTES,
  lockWait: "5s",
  lockTtl: "30s",
  tokenCache: 1000,
});

const OPTION_NAMES = [
  "secret",
  "schema",
  "store",
  "mode",
  "cookie",
  "idleTimeout",
  "absoluteTimeout",
  "rememberMe",
  "touchInterval",
  "renewInterval",
  "header",
  "maxSize",
  "clearSiteData",
  "track",
  "lock",
  "tokenCache",
  "onInvalid",
  "onEvent",
  "now",
  "generateId",
] as const;
const TRACK_OPTION_NAMES = ["userAgent", "ip"] as const;
const LOCK_OPTION_NAMES = ["wait", "ttl"] as const;
const REMEMBER_ME_OPTION_NAMES = ["idleTimeout", "absoluteTimeout"] as const;
const COOKIE_OPTION_NAMES = [
  "name",
  "path",
  "domain",
  "httpOnly",
  "secure",
  "sameSite",
  "partitioned",
  "priority",
  "persistent",
] as const;

// RFC 6265bis section 5.6.1 and 5.6.2: browsers cap a cookie's Max-Age and Expires at 400 days, so a
// longer deadline never reaches the browser; a number past it is most often milliseconds.
const MAX_DURATION_MS = 400 * 86_400_000;
const DIGITS = /^\s*\d+(?:\.\d+)?\s*$/;

// RFC 6265 section 4.1.1: a cookie name is an HTTP token.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Printable ASCII but ";" and "<", without white space (RFC 6265 section 4.1.1, path-value). */
const COOKIE_PATH = /^[!-:=-~]*$/;
/** Dot-separated labels of letters, digits and inner hyphens, with an optional leading dot. */
const COOKIE_DOMAIN =
  /^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Headers with a meaning of their own, which the token would collide with: the cookie transport's,
// the connection's, and the credentials other middleware reads.
const RESERVED_HEADERS = [
  "cookie",
  "set-cookie",
  "host",
  "connection",
  "content-length",
  "content-type",
  "transfer-encoding",
  "authorization",
  "proxy-authorization",
  "origin",
  // Sent by browsers on their own, or settable by any page without a CORS preflight (the Fetch
  // standard's CORS-safelisted request headers): the header transport stands for "not a browser's
  // ambient credential", on which requireCsrfToken lets it pass.
  "accept",
  "accept-language",
  "content-language",
  "range",
];

/** Validates and normalises options once, at start-up. Throws `ConfigError` saying what to change. */
export function resolveOptions(
  input: SessionsOptions<StandardSchemaV1 | undefined>,
): ResolvedOptions {
  if (typeof input !== "object" || input === null) {
    throw new ConfigError("createSessions needs an options object with at least { secret }");
  }
  rejectUnknown(input, OPTION_NAMES, "option");
  checkSecretShape("secret" in input, input.secret);
  const secrets = normalizeSecrets(input.secret);

  if (input.schema !== undefined && typeof input.schema?.["~standard"]?.validate !== "function") {
    throw new ConfigError(
      `"schema" must be a Standard Schema (Zod 3.24+, Valibot 1+, ArkType 2+): it has no ["~standard"].validate`,
    );
  }
  const described = input.schema && nonObjectOutput(input.schema);
  if (described) {
    throw new ConfigError(
      `"schema" must describe an object (session data is a set of keys), but this one's output is ${described}; wrap it, e.g. z.object({ value: yourSchema })`,
    );
  }
  const store = input.store;
  if (store !== undefined) {
    for (const method of ["get", "set", "patch", "touch", "delete"] as const) {
      if (typeof store?.[method] !== "function") {
        throw new ConfigError(`"store" lacks the required method ${method}(); pass a SessionStore`);
      }
    }
  }
  const mode = input.mode ?? "encrypted";
  if (mode !== "encrypted" && mode !== "signed") {
    throw new ConfigError(`"mode" must be "encrypted" or "signed"`);
  }
  if (store && input.mode !== undefined) {
    throw new ConfigError(
      `"mode" applies to cookie sessions only; remove it when a store is given`,
    );
  }

  const idleTimeoutMs = durationOption("idleTimeout", input.idleTimeout, DEFAULTS.idleTimeout);
  const absoluteTimeoutMs = durationOption(
    "absoluteTimeout",
    input.absoluteTimeout,
    DEFAULTS.absoluteTimeout,
  );
  const renewIntervalMs = durationOption("renewInterval", input.renewInterval, false);
  // An idle deadline past the absolute one never ends a session: the user meant something else.
  // Only when idleTimeout was given: shortening absoluteTimeout alone below the default idle is fine.
  if (
    input.idleTimeout !== undefined &&
    idleTimeoutMs !== undefined &&
    absoluteTimeoutMs !== undefined &&
    idleTimeoutMs > absoluteTimeoutMs
  ) {
    throw new ConfigError(
      `"idleTimeout" (${shown(input.idleTimeout)}) is longer than ${shownOption("absoluteTimeout", input.absoluteTimeout, DEFAULTS.absoluteTimeout)}, so it would never end a session; shorten idleTimeout, or lengthen absoluteTimeout (false for none)`,
    );
  }
  if (
    renewIntervalMs !== undefined &&
    absoluteTimeoutMs !== undefined &&
    renewIntervalMs >= absoluteTimeoutMs
  ) {
    throw new ConfigError(
      `"renewInterval" (${shown(input.renewInterval)}) is not shorter than ${shownOption("absoluteTimeout", input.absoluteTimeout, DEFAULTS.absoluteTimeout)}, so no session would live long enough to be renewed; shorten renewInterval`,
    );
  }
  const touchIntervalMs =
    input.touchInterval === undefined
      ? defaultTouchInterval(idleTimeoutMs)
      : (durationOption("touchInterval", input.touchInterval, false) ?? 0);
  // A read slides the idle deadline only once a touch is due: a touch interval as long as the idle
  // timeout would end every session idleTimeout after its last write, however active its visitor.
  if (idleTimeoutMs !== undefined && touchIntervalMs >= idleTimeoutMs) {
    throw new ConfigError(
      `"touchInterval" must be shorter than "idleTimeout", or an active visitor who only reads is signed out; leave it unset for a quarter of idleTimeout`,
    );
  }

  const rememberMe =
    input.rememberMe === undefined || input.rememberMe === false
      ? undefined
      : resolveRememberMe(input, input.rememberMe, {
          idleTimeoutMs,
          absoluteTimeoutMs,
          touchIntervalMs,
        });

  const maxSize = input.maxSize ?? DEFAULTS.maxSize;
  const maxSizeCeiling = MAX_CHUNKS * CHUNK_VALUE_BYTES;
  if (!Number.isInteger(maxSize) || maxSize < 256 || maxSize > maxSizeCeiling) {
    throw new ConfigError(
      `"maxSize" must be a whole number of bytes from 256 to ${maxSizeCeiling}`,
    );
  }

  let header: string | undefined;
  if (input.header !== undefined && input.header !== false) {
    if (typeof input.header !== "string" || !HEADER_NAME.test(input.header)) {
      throw new ConfigError(`"header" must be a header name such as "x-session", or false`);
    }
    if (RESERVED_HEADERS.includes(input.header.toLowerCase())) {
      throw new ConfigError(
        `"header" cannot be "${input.header}": HTTP and browsers give it another meaning; use a name of your own such as "x-session"`,
      );
    }
    header = input.header.toLowerCase();
  }

  const track = input.track === false ? { userAgent: false, ip: false } : (input.track ?? {});
  if (typeof track !== "object" || track === null)
    throw new ConfigError(`"track" must be { userAgent?, ip? } or false`);
  rejectUnknown(track, TRACK_OPTION_NAMES, "track option");
  for (const name of TRACK_OPTION_NAMES) booleanOption(`track.${name}`, track[name]);

  let lock: ResolvedOptions["lock"];
  if (input.lock) {
    if (!store?.lock) {
      throw new ConfigError(
        `"lock" needs a store with lock(); ${store ? `the ${store.name} store has none` : "cookie sessions cannot lock"}`,
      );
    }
    // `lock: true` takes both defaults.
    const given = typeof input.lock === "object" ? input.lock : {};
    rejectUnknown(given, LOCK_OPTION_NAMES, "lock option");
    lock = {
      waitMs: durationOption("lock.wait", given.wait, DEFAULTS.lockWait) ?? 0,
      ttlMs: durationOption("lock.ttl", given.ttl, DEFAULTS.lockTtl) ?? 0,
    };
    // Waiting longer than a lock lives says requests may hold it that long, yet a lock held past its
    // ttl passes to the next request while the first still runs: the two would no longer be serial.
    if (lock.waitMs > lock.ttlMs) {
      throw new ConfigError(
        `${shownOption("lock.wait", given.wait, DEFAULTS.lockWait)} is longer than ${shownOption("lock.ttl", given.ttl, DEFAULTS.lockTtl)}: a request still running when its lock's ttl ends loses the lock to the next one; make ttl at least as long as wait`,
      );
    }
  }

  const tokenCache = input.tokenCache === undefined ? DEFAULTS.tokenCache : input.tokenCache || 0;
  if (!Number.isInteger(tokenCache) || tokenCache < 0 || tokenCache > 1_000_000) {
    throw new ConfigError(
      `"tokenCache" must be a whole number of tokens from 0 to 1000000, or false`,
    );
  }

  booleanOption("clearSiteData", input.clearSiteData);
  for (const name of ["onInvalid", "onEvent", "now", "generateId"] as const) {
    if (input[name] !== undefined && typeof input[name] !== "function") {
      throw new ConfigError(`"${name}" must be a function`);
    }
  }

  return {
    secrets,
    schema: input.schema,
    store,
    mode,
    cookie: resolveCookie(input.cookie ?? {}),
    idleTimeoutMs,
    absoluteTimeoutMs,
    touchIntervalMs,
    rememberMe,
    renewIntervalMs,
    header,
    maxSize,
    clearSiteData: input.clearSiteData === true,
    track: { userAgent: track.userAgent !== false, ip: track.ip !== false },
    lock,
    tokenCache,
    onInvalid: input.onInvalid,
    onEvent: input.onEvent,
    now: input.now ?? Date.now,
    generateId: input.generateId,
  };
}

/**
 * The deadlines of remembered sessions: each key given, or the top-level one. Checked so that a
 * session never ends sooner for calling `rememberMe()` than it would have without.
 */
function resolveRememberMe(
  input: SessionsOptions<StandardSchemaV1 | undefined>,
  given: NonNullable<SessionsOptions["rememberMe"]>,
  base: Deadlines,
): Deadlines {
  // `true` most often means "turn remember me on", which is session.rememberMe()'s job.
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw new ConfigError(
      `"rememberMe" must be { idleTimeout?, absoluteTimeout? } or false: the deadlines of the sessions that call session.rememberMe(), such as { idleTimeout: "30d" }; session.rememberMe() is what marks a session`,
    );
  }
  rejectUnknown(given, REMEMBER_ME_OPTION_NAMES, "rememberMe option");
  const idleTimeoutMs =
    given.idleTimeout === undefined
      ? base.idleTimeoutMs
      : durationOption("rememberMe.idleTimeout", given.idleTimeout, false);
  const absoluteTimeoutMs =
    given.absoluteTimeout === undefined
      ? base.absoluteTimeoutMs
      : durationOption("rememberMe.absoluteTimeout", given.absoluteTimeout, false);
  const remembered = (name: "idleTimeout" | "absoluteTimeout"): string =>
    given[name] === undefined
      ? `"rememberMe.${name}" (unset, so "${name}"'s ${input[name] === undefined ? `default ${shown(DEFAULTS[name])}` : shown(input[name])})`
      : `"rememberMe.${name}" (${shown(given[name])})`;
  const ordinary = (name: "idleTimeout" | "absoluteTimeout"): string =>
    shownOption(name, input[name], DEFAULTS[name]);

  if (
    given.idleTimeout !== undefined &&
    idleTimeoutMs !== undefined &&
    absoluteTimeoutMs !== undefined &&
    idleTimeoutMs > absoluteTimeoutMs
  ) {
    throw new ConfigError(
      `${remembered("idleTimeout")} is longer than ${remembered("absoluteTimeout")}, so it would never end a remembered session; shorten rememberMe.idleTimeout, or set rememberMe.absoluteTimeout (false for none)`,
    );
  }
  // Shorter remembered deadlines would sign out sooner the visitors who asked to stay: a mistake
  // (most often the two sets swapped). Compared as they bind: no deadline outlives 400 days, and an
  // idle timeout past the absolute one never ends a session.
  const none = Number.POSITIVE_INFINITY;
  if ((absoluteTimeoutMs ?? none) < (base.absoluteTimeoutMs ?? none)) {
    throw new ConfigError(
      `${remembered("absoluteTimeout")} is shorter than ${ordinary("absoluteTimeout")}, so a session that calls rememberMe() could end before one that does not; lengthen rememberMe.absoluteTimeout (false for none), or give ordinary sessions a shorter absoluteTimeout`,
    );
  }
  const binding = (idle: number | undefined) =>
    Math.min(idle ?? none, MAX_DURATION_MS, base.absoluteTimeoutMs ?? none);
  if (binding(idleTimeoutMs) < binding(base.idleTimeoutMs)) {
    throw new ConfigError(
      `${remembered("idleTimeout")} is shorter than ${ordinary("idleTimeout")}, so a session that calls rememberMe() would idle out before one that does not; lengthen rememberMe.idleTimeout (false for none), or shorten idleTimeout`,
    );
  }

  const touchIntervalMs =
    input.touchInterval === undefined ? defaultTouchInterval(idleTimeoutMs) : base.touchIntervalMs;
  if (idleTimeoutMs !== undefined && touchIntervalMs >= idleTimeoutMs) {
    throw new ConfigError(
      `"touchInterval" must be shorter than "rememberMe.idleTimeout" too, or a remembered visitor who only reads is signed out; leave touchInterval unset for a quarter of each idle timeout`,
    );
  }
  return { idleTimeoutMs, absoluteTimeoutMs, touchIntervalMs };
}

/** With `touchInterval` unset: a quarter of the idle timeout, at most an hour. */
function defaultTouchInterval(idleTimeoutMs: number | undefined): number {
  return Math.min(DEFAULTS.maxTouchIntervalMs, Math.floor((idleTimeoutMs ?? Infinity) / 4));
}

function resolveCookie(input: CookieOptions): CookieSettings {
  if (typeof input !== "object" || input === null)
    throw new ConfigError(`"cookie" must be an object`);
  rejectUnknown(input, COOKIE_OPTION_NAMES, "cookie option");
  const name = input.name ?? DEFAULTS.cookieName;
  if (typeof name !== "string" || !COOKIE_NAME.test(name) || name.length > 64) {
    throw new ConfigError(
      `cookie.name must be 1-64 characters of an HTTP token (letters, digits, !#$%&'*+-.^_\`|~)`,
    );
  }
  const sameSite = input.sameSite ?? "lax";
  if (!["lax", "strict", "none"].includes(sameSite)) {
    throw new ConfigError(`cookie.sameSite must be "lax", "strict" or "none"`);
  }
  let secure = input.secure ?? "auto";
  if (secure !== true && secure !== false && secure !== "auto") {
    throw new ConfigError(`cookie.secure must be true, false or "auto"`);
  }
  const path = input.path ?? "/";
  // The Set-Cookie line is written by hand (transport/cookie.ts), so these checks are at least those
  // of `cookie.serialize`: printable ASCII without ";" (nor "<", which it also refuses).
  if (typeof path !== "string" || !path.startsWith("/") || !COOKIE_PATH.test(path)) {
    throw new ConfigError(`cookie.path must start with "/" and hold no ";" or white space`);
  }
  const domain = input.domain;
  if (domain !== undefined && (typeof domain !== "string" || !COOKIE_DOMAIN.test(domain))) {
    throw new ConfigError(`cookie.domain must be a host name such as "example.com"`);
  }
  // Browsers refuse these combinations silently (RFC 6265bis 4.1.3, 5.4.7; CHIPS); say so at start-up.
  // They match the prefixes in any case, so "__host-sid" is held to the rules of "__Host-".
  const lowerName = name.toLowerCase();
  const hostPrefix = lowerName.startsWith("__host-");
  const needsSecure = [
    hostPrefix && "a __Host- cookie name",
    lowerName.startsWith("__secure-") && "a __Secure- cookie name",
    sameSite === "none" && 'sameSite "none"',
    input.partitioned === true && "partitioned",
  ].find(Boolean);
  if (needsSecure) {
    if (secure === false)
      throw new ConfigError(`${needsSecure} requires cookie.secure; remove secure: false`);
    secure = true;
  }
  // Lower-cased as `cookie.serialize` did before the line was written by hand, so "High" still works.
  const priority =
    typeof input.priority === "string" ? input.priority.toLowerCase() : input.priority;
  if (
    priority !== undefined &&
    priority !== "low" &&
    priority !== "medium" &&
    priority !== "high"
  ) {
    throw new ConfigError(`cookie.priority must be "low", "medium" or "high"`);
  }
  for (const flag of ["httpOnly", "partitioned", "persistent"] as const) {
    booleanOption(`cookie.${flag}`, input[flag]);
  }
  if (hostPrefix && (path !== "/" || domain !== undefined)) {
    throw new ConfigError(`a __Host- cookie name requires path "/" and no domain`);
  }
  return {
    name,
    path,
    domain,
    httpOnly: input.httpOnly !== false,
    secure,
    sameSite,
    partitioned: input.partitioned === true,
    priority,
    persistent: input.persistent !== false,
  };
}

function durationOption(
  name: string,
  value: Duration | false | undefined,
  fallback: Duration | false,
): number | undefined {
  const chosen = value === undefined ? fallback : value;
  if (chosen === false) return undefined;
  const ms = parseDurationMs(chosen);
  const orFalse = name.includes("Interval") || name.startsWith("lock.") ? "" : ", or false";
  if (typeof chosen === "string" && DIGITS.test(chosen)) {
    // Most often an environment variable: process.env holds strings, and a bare number is ambiguous.
    throw new ConfigError(
      `"${name}" is a string of digits; give seconds as a number (Number(process.env.X)) or with a unit, such as "${chosen.trim()}s"`,
    );
  }
  if (ms === undefined || ms <= 0) {
    throw new ConfigError(
      `"${name}" must be a positive number of seconds or a duration such as "30m", "12h" or "7d"${orFalse}`,
    );
  }
  // A number past 400 days (what a browser keeps a cookie at most) is most often milliseconds. A
  // longer deadline written with a unit is meant (the header transport has no cookie to outlive).
  if (typeof chosen === "number" && ms > MAX_DURATION_MS) {
    throw new ConfigError(
      `"${name}" is ${Math.round(ms / 86_400_000)} days, past the 400 days browsers keep a cookie; numbers are seconds, not milliseconds: use a duration such as "30d" (a longer one with its unit, "800d")${orFalse}`,
    );
  }
  // Whole minutes in milliseconds (express-session's `30 * 60 * 1000`) are seconds to us, and short of
  // 400 days they pass the check above: 30 minutes become 21 days. Seconds are counted in multiples
  // of 60 000 only as whole days (`100 * 86_400`), which pass; anything else meant that way can be
  // written with its unit.
  if (
    typeof chosen === "number" &&
    chosen >= 60_000 &&
    chosen % 60_000 === 0 &&
    chosen % 86_400 !== 0
  ) {
    const minutes = chosen / 60_000;
    const days = Math.round((chosen / 86_400) * 10) / 10;
    throw new ConfigError(
      `"${name}" is ${chosen} seconds (${days} days), which reads as ${minutes} minutes in milliseconds; numbers are seconds: write "${minutes}m" for ${minutes} minutes, or "${chosen}s" if ${days} days is meant`,
    );
  }
  return ms;
}

/** A duration as the user wrote it, for messages: "30m" as is, a number as seconds. */
function shown(value: Duration | false | undefined): string {
  return typeof value === "number" ? `${value}s` : String(value);
}

/** `"name" (value)`, or `"name" (default value)` when the user left it unset. */
function shownOption(
  name: string,
  value: Duration | false | undefined,
  fallback: Duration,
): string {
  return value === undefined
    ? `"${name}" (default ${shown(fallback)})`
    : `"${name}" (${shown(value)})`;
}

/** A flag read with `=== true` or `!== false` would take "false" from an env file as the opposite. */
function booleanOption(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") {
    throw new ConfigError(`${name.includes(".") ? name : `"${name}"`} must be true or false`);
  }
}

/**
 * The mistakes that come before the secret's own checks (crypto/keyring.ts): a value left undefined
 * by an unset environment variable, said as such, and bytes where a string goes. Never echoes a
 * secret; a key id is echoed only once it has the shape of one (a secret never has: 32+ characters).
 */
function checkSecretShape(given: boolean, secret: unknown): void {
  const unset = `is the environment variable it is read from unset? Set it to 32 or more random characters ("npx sessionkit secret" makes one)`;
  if (given && secret === undefined) {
    throw new ConfigError(`the "secret" option is required but is undefined; ${unset}`);
  }
  if (secret === "") {
    throw new ConfigError(
      `the "secret" option is required but is an empty string; is the environment variable it is read from set to nothing? Set it to 32 or more random characters ("npx sessionkit secret" makes one)`,
    );
  }
  if (secret instanceof ArrayBuffer || ArrayBuffer.isView(secret)) {
    throw new ConfigError(
      `"secret" must be a string, not bytes (a Buffer or Uint8Array); encode them, e.g. buffer.toString("base64url")`,
    );
  }
  if (Array.isArray(secret)) {
    const index = secret.indexOf(undefined);
    if (index >= 0) throw new ConfigError(`secret #${index + 1} is undefined; ${unset}`);
  } else if (typeof secret === "object" && secret !== null) {
    const missing = Object.entries(secret).find(([, entry]) => entry === undefined);
    if (missing) {
      const id = /^[A-Za-z0-9_-]{1,16}$/.test(missing[0]) ? `"${missing[0]}"` : "of the map";
      throw new ConfigError(`secret ${id} is undefined; ${unset}`);
    }
  }
}
