import { parse } from "cookie";

/**
 * Chrome, Firefox and Safari cap a cookie's name plus value at 4096 bytes (RFC 6265bis section 5.7
 * asks for at least that). A chunk carries at most this many value bytes, leaving room for the name.
 */
export const CHUNK_VALUE_BYTES = 4000;
/** More chunk cookies than this in one request is hostile input, whatever `maxSize` says. */
export const MAX_CHUNKS = 64;

/** Resolved cookie attributes (see `CookieOptions` for the documented user-facing form). */
export interface CookieSettings {
  name: string;
  path: string;
  domain: string | undefined;
  httpOnly: boolean;
  /** "auto": Secure unless the request is plain http to localhost. */
  secure: boolean | "auto";
  sameSite: "lax" | "strict" | "none";
  partitioned: boolean;
  priority: "low" | "medium" | "high" | undefined;
  /** Whether cookies carry Max-Age unless the session chose (`SessionMeta.persistent`). */
  persistent: boolean;
}

export interface CookieRead {
  /** The token, chunks joined; undefined when absent or refused. */
  token: string | undefined;
  /** Every cookie of ours the request carried (base and chunks), so stale ones can be cleared. */
  present: string[];
  /** The request carried more chunk bytes than allowed. */
  oversized: boolean;
}

const NO_COOKIES: Record<string, string | undefined> = Object.freeze({}) as Record<string, string>;

/**
 * Parses a whole Cookie header. Never throws: a value that does not percent-decode is kept as sent.
 * Its cost grows with every pair sent: to read the session's own cookies, use `parseOwnCookies`.
 */
export function parseCookies(
  header: string | null | undefined,
): Record<string, string | undefined> {
  if (!header) return NO_COOKIES;
  try {
    return parse(header);
  } catch {
    // The parser guards decoding itself; this is belt and braces for client input.
    return NO_COOKIES;
  }
}

/**
 * The cookies named `name` or `name.<index>` (the chunks), exactly as `parseCookies` would give them
 * (first value of a name, trimmed and decoded by the same parser), without parsing any other pair.
 * Never throws. For "theme=dark; sid.0=ab; xsid=no; sid.1=cd" and "sid": `{ "sid.0": "ab", "sid.1": "cd" }`.
 */
export function parseOwnCookies(
  header: string | null | undefined,
  name: string,
): Record<string, string | undefined> {
  // An empty name (no configuration allows one) would be found at every position.
  if (!header || name === "") return NO_COOKIES;
  // Any client can send 16 KB of tiny or %-encoded pairs: parsing them all cost ten times the rest
  // of a request (test/core/cookie-header-cost.test.ts). Only the pairs of our names reach the
  // parser, and only the first of each name, the one the parser keeps.
  // The one name seen so far, the common case: the table of every name is made (a typed array of
  // 1 111 bytes, 2 µs of a request in a profile) only when a second pair of ours turns up.
  let first = -1;
  let seen: Uint8Array | undefined;
  const pairs: string[] = [];
  forEachPairNamed(header, name, true, (at, nameEnd, end) => {
    const id = ownNameId(header, at + name.length, nameEnd);
    if (first === -1) first = id;
    else if (seen === undefined) {
      if (id === first) return true;
      seen = new Uint8Array(OWN_NAME_IDS);
      seen[first] = 1;
      seen[id] = 1;
    } else if (seen[id] === 0) seen[id] = 1;
    else return true;
    pairs.push(header.slice(at, end));
    return true;
  });
  // One parse for all of them: a header of nothing but chunk names (up to 1 111 distinct ones)
  // costs one parse of those pairs, not a parse and an object per pair.
  return pairs.length === 0 ? NO_COOKIES : parseCookies(pairs.join(";"));
}

/** Whether `key` is our cookie `name` or one of its chunks, `name.` and one to three digits. */
function isOwnName(key: string, name: string): boolean {
  return (
    key === name ||
    (key.length > name.length + 1 &&
      key.startsWith(name) &&
      key.charCodeAt(name.length) === DOT &&
      isChunkIndex(key.slice(name.length + 1)))
  );
}

/**
 * Reads our token from parsed cookies: the plain cookie `name`, or chunks `name.0`, `name.1`, ...
 * joined in order. Reading stops at `maxBytes`: an oversized set of chunks is refused whole.
 */
export function readCookieToken(
  cookies: Record<string, string | undefined>,
  name: string,
  maxBytes: number,
): CookieRead {
  const present: string[] = [];
  for (const key in cookies) if (isOwnName(key, name)) present.push(key);
  if (present.length === 0) return { token: undefined, present, oversized: false };
  const whole = cookies[name];
  if (whole !== undefined) {
    const oversized = whole.length > maxBytes;
    return { token: oversized || whole === "" ? undefined : whole, present, oversized };
  }
  return { ...joinChunks(cookies, name, maxBytes, present), present };
}

/**
 * The chunks `name.0`, `name.1`, ... joined in order, refused whole past `maxBytes` or when the
 * request carries more of our cookies (`present`) than MAX_CHUNKS: never a truncated token.
 */
export function joinChunks(
  cookies: Record<string, string | undefined>,
  name: string,
  maxBytes: number,
  present: readonly string[],
): { token: string | undefined; oversized: boolean } {
  let token = "";
  for (let i = 0; i < MAX_CHUNKS; i++) {
    const part = cookies[`${name}.${i}`];
    if (part === undefined) break;
    token += part;
    if (token.length > maxBytes) return { token: undefined, oversized: true };
  }
  const oversized = present.length > MAX_CHUNKS;
  return { token: oversized || token === "" ? undefined : token, oversized };
}

/**
 * The values of cookie `name` after the first, in the order sent, at most `max`. The parser keeps only
 * the first value of a name, but a browser sends every cookie whose path and domain match: one left
 * on another path or set for a parent domain comes before ours. Read only once the first is refused.
 * Only the pairs of this name are parsed, found by searching for the name: a refused cookie in front
 * of thousands of others (or of 100 000 bare ";") must cost neither a parse and a percent-decode per
 * pair nor a string per pair (test/security/attack-cookie-cost.test.ts).
 */
export function laterValues(
  header: string | null | undefined,
  name: string,
  max: number,
): string[] {
  return laterOwnValues(header, name, max, false).get(name) ?? [];
}

/**
 * `laterValues` of `name` and (with `chunks`) of each of its chunk names, in one pass over the header: a name
 * absent or sent once has no entry. For the retry of a tossed chunk, which needs the later values
 * of every chunk name the request carried; asking `laterValues` name by name searched the whole
 * header once per name.
 * For "sid.0=a; sid.1=b; sid.0=c; sid.0=d", "sid" and 3: `Map { "sid.0" => ["c", "d"] }`.
 */
export function laterOwnValues(
  header: string | null | undefined,
  name: string,
  max: number,
  chunks = true,
): Map<string, string[]> {
  const later = new Map<string, string[]>();
  // An empty name would be found at the end of the header forever.
  if (!header || name === "" || max < 1) return later;
  let sent: Uint32Array | undefined;
  forEachPairNamed(header, name, chunks, (at, nameEnd, end) => {
    const id = ownNameId(header, at + name.length, nameEnd); // 0 for `name` itself
    sent ??= new Uint32Array(chunks ? OWN_NAME_IDS : 1);
    const count = sent[id] as number;
    // Past `max` later values, a repeat costs neither a string nor a parse.
    if (count > max) return true;
    sent[id] = count + 1;
    // The first of a name is the one the parser keeps (and any pair found here has a value).
    if (count === 0) return true;
    const key = header.slice(at, nameEnd);
    const value = parseCookies(header.slice(at, end))[key] as string;
    const values = later.get(key);
    if (values === undefined) later.set(key, [value]);
    else values.push(value);
    // One name alone: the search ends with its last wanted value.
    return chunks || count < max;
  });
  return later;
}

/**
 * Calls `visit` with each pair named `name` (with `chunks`, also `name.<index>`) in the order sent:
 * where its name starts and ends and where the pair ends, until `visit` answers false.
 */
function forEachPairNamed(
  header: string,
  name: string,
  chunks: boolean,
  visit: (at: number, nameEnd: number, end: number) => boolean,
): void {
  for (let at = header.indexOf(name); at >= 0; ) {
    const nameEnd = pairNameEnd(header, at, name, chunks);
    // Only the first non-blank of a pair can begin its name: however often the name recurs in the
    // rest of this pair ("sidsidsid..."), the search resumes after its ";".
    const semicolon = header.indexOf(";", nameEnd < 0 ? at : nameEnd);
    const end = semicolon < 0 ? header.length : semicolon;
    if (nameEnd >= 0 && !visit(at, nameEnd, end)) return;
    if (end === header.length) return;
    at = header.indexOf(name, end + 1);
  }
}

/**
 * Where the pair's name ends when `name` at `at` begins it as the parser reads a name, -1 otherwise:
 * only blanks (spaces and tabs) between it and the previous ";" (or the start), then, with `chunks`,
 * an optional "." and one to three digits, then only blanks before "=".
 */
function pairNameEnd(header: string, at: number, name: string, chunks: boolean): number {
  let start = at;
  while (start > 0 && isBlank(header.charCodeAt(start - 1))) start--;
  if (start > 0 && header.charCodeAt(start - 1) !== SEMICOLON) return -1;
  let nameEnd = at + name.length;
  if (chunks && header.charCodeAt(nameEnd) === DOT) {
    let digit = nameEnd + 1;
    // One digit past the longest index is enough to refuse the name: a run of 16 000 is not read.
    while (digit <= nameEnd + CHUNK_INDEX_DIGITS + 1 && isDigit(header.charCodeAt(digit))) digit++;
    const digits = digit - nameEnd - 1;
    if (digits === 0 || digits > CHUNK_INDEX_DIGITS) return -1;
    nameEnd = digit;
  }
  let eq = nameEnd;
  while (eq < header.length && isBlank(header.charCodeAt(eq))) eq++;
  return header.charCodeAt(eq) === EQUALS ? nameEnd : -1;
}

/** Our name, then ten one-digit, a hundred two-digit and a thousand three-digit chunk names. */
const OWN_NAME_IDS = 1 + 10 + 100 + 1000;

/**
 * A small number for each of our names, so a repeat is known without making a string of it: 0 for
 * `name`, then its digit suffix (`suffix` to `nameEnd`, empty or "." and digits) read as a base-10
 * number whose digits count 1 to 10, so "sid.1" and "sid.01", two cookies to the parser, differ:
 * ".0" is 1, ".9" is 10, ".00" is 11, ".999" is 1 110.
 */
function ownNameId(header: string, suffix: number, nameEnd: number): number {
  let id = 0;
  for (let i = suffix + 1; i < nameEnd; i++) id = id * 10 + 1 + header.charCodeAt(i) - ZERO;
  return id;
}

const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const DOT = 0x2e;
const ZERO = 0x30;
/** Chunk names carry at most three digits: MAX_CHUNKS is far below 1000. */
const CHUNK_INDEX_DIGITS = 3;

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

function isDigit(code: number): boolean {
  return code >= ZERO && code <= ZERO + 9;
}

function isChunkIndex(text: string): boolean {
  if (text.length === 0 || text.length > CHUNK_INDEX_DIGITS) return false;
  for (let i = 0; i < text.length; i++) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}

/** Splits a token into the cookies that carry it: one when it fits, numbered chunks otherwise. */
export function splitToken(name: string, token: string): Array<[string, string]> {
  if (token.length <= CHUNK_VALUE_BYTES) return [[name, token]];
  const parts: Array<[string, string]> = [];
  for (let i = 0, n = 0; i < token.length; i += CHUNK_VALUE_BYTES, n++) {
    parts.push([`${name}.${n}`, token.slice(i, i + CHUNK_VALUE_BYTES)]);
  }
  return parts;
}

/** Writes our Set-Cookie lines for one cookie configuration. */
export interface CookieWriter {
  /**
   * Lines that write `token` and clear whatever of ours the request carried that the new token does
   * not overwrite (a stale chunk would otherwise corrupt the next read).
   */
  write(
    secure: boolean,
    token: string,
    maxAgeSeconds: number | undefined,
    present: readonly string[],
  ): string[];
  /** Lines that delete our base cookie and every chunk the request carried. */
  clear(secure: boolean, present: readonly string[]): string[];
}

/**
 * At most this many stale cookies of ours are cleared in one response. Browsers keep at most 180
 * cookies per domain (Chrome; fewer elsewhere), so a request carrying more of our names than that
 * was not sent from a browser's jar, and a clearing line per name (1 001 lines, 104 KB of headers,
 * for a 10 KB Cookie header of chunk names) would only amplify it.
 */
export const MAX_CLEARED = 180;

/** Expires as well as Max-Age=0 when deleting: a zero Max-Age alone is ignored by some old clients. */
const EXPIRED = "; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
const SAME_SITE = { lax: "Lax", strict: "Strict", none: "None" } as const;
const PRIORITY = { low: "Low", medium: "Medium", high: "High" } as const;

/**
 * Renders the attributes once, at start-up, instead of running a general serializer per line; the
 * output is byte for byte what `cookie.serialize` gives (same attribute order and spelling).
 *
 * Writing the line by hand is safe because nothing in it is unchecked:
 * - the name is the configured cookie name or `<name>.<n>`, validated as an RFC 6265 token by
 *   `resolveOptions`, or a name from the request that `readCookieToken` matched against those forms;
 * - the value is a token we issued or one that just authenticated (version, key id, base64url and
 *   dots, all cookie-octets), or empty when clearing;
 * - path, domain, sameSite and priority passed the same checks `cookie.serialize` makes, in
 *   `resolveOptions`, so a bad one fails at start-up rather than on every response.
 */
export function createCookieWriter(settings: CookieSettings): CookieWriter {
  let head = "";
  if (settings.domain) head += `; Domain=${settings.domain}`;
  head += `; Path=${settings.path}`;
  const tail = (secure: boolean) => {
    let text = settings.httpOnly ? "; HttpOnly" : "";
    if (secure) text += "; Secure";
    if (settings.partitioned) text += "; Partitioned";
    if (settings.priority) text += `; Priority=${PRIORITY[settings.priority]}`;
    return `${text}; SameSite=${SAME_SITE[settings.sameSite]}`;
  };
  const tailSecure = tail(true);
  const tailPlain = tail(false);

  const line = (secure: boolean, name: string, value: string, maxAge: number | undefined) =>
    `${name}=${value}${maxAge === undefined ? "" : `; Max-Age=${maxAge}`}${head}${
      maxAge === 0 ? EXPIRED : ""
    }${secure ? tailSecure : tailPlain}`;

  return {
    write(secure, token, maxAgeSeconds, present) {
      if (token.length <= CHUNK_VALUE_BYTES) {
        // The common case: one cookie, plus deletions for any chunks it replaces.
        const lines = [line(secure, settings.name, token, maxAgeSeconds)];
        for (const name of present) {
          if (lines.length > MAX_CLEARED) break;
          if (name !== settings.name) lines.push(line(secure, name, "", 0));
        }
        return lines;
      }
      const parts = splitToken(settings.name, token);
      const lines = parts.map(([name, value]) => line(secure, name, value, maxAgeSeconds));
      const written = new Set(parts.map(([name]) => name));
      for (const name of present) {
        if (lines.length >= parts.length + MAX_CLEARED) break;
        if (!written.has(name)) lines.push(line(secure, name, "", 0));
      }
      return lines;
    },
    clear(secure, present) {
      const names = new Set(present.slice(0, MAX_CLEARED));
      names.add(settings.name);
      return [...names].map((name) => line(secure, name, "", 0));
    },
  };
}
