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

/** Parses a Cookie header. Never throws: a value that does not percent-decode is kept as sent. */
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
 * Reads our token from parsed cookies: the plain cookie `name`, or chunks `name.0`, `name.1`, ...
 * joined in order. Reading stops at `maxBytes`: an oversized set of chunks is refused whole.
 */
export function readCookieToken(
  cookies: Record<string, string | undefined>,
  name: string,
  maxBytes: number,
): CookieRead {
  const present: string[] = [];
  const chunkPrefix = `${name}.`;
  for (const key in cookies) {
    if (
      key === name ||
      (key.startsWith(chunkPrefix) && isChunkIndex(key.slice(chunkPrefix.length)))
    ) {
      present.push(key);
    }
  }
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
 */
export function laterValues(
  header: string | null | undefined,
  name: string,
  max: number,
): string[] {
  const values: string[] = [];
  if (!header) return values;
  let seenFirst = false;
  // Only the pairs of this name are parsed, found by searching for the name: a refused cookie in
  // front of thousands of others (or of 100 000 bare ";") must cost neither a parse and a
  // percent-decode per pair nor a string per pair (test/security/attack-cookie-cost.test.ts).
  for (let at = header.indexOf(name); at >= 0; at = header.indexOf(name, at + 1)) {
    const pair = pairNamedAt(header, at, name);
    if (pair === undefined) continue;
    // The parser reads the pair, so a value is trimmed and decoded exactly as the first one was.
    const value = parseCookies(pair)[name];
    if (value === undefined) continue;
    if (!seenFirst) {
      seenFirst = true;
      continue;
    }
    values.push(value);
    if (values.length === max) break;
  }
  return values;
}

/**
 * The whole pair when `name` at `at` is a pair's name, trimmed of spaces and tabs as the parser
 * trims it: only blanks between it and the previous ";" (or the start), and between it and "=".
 */
function pairNamedAt(header: string, at: number, name: string): string | undefined {
  let start = at;
  while (start > 0 && isBlank(header.charCodeAt(start - 1))) start--;
  if (start > 0 && header.charCodeAt(start - 1) !== SEMICOLON) return undefined;
  let eq = at + name.length;
  while (eq < header.length && isBlank(header.charCodeAt(eq))) eq++;
  if (header.charCodeAt(eq) !== EQUALS) return undefined;
  const end = header.indexOf(";", eq);
  return header.slice(start, end < 0 ? header.length : end);
}

const SEMICOLON = 0x3b;
const EQUALS = 0x3d;

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

function isChunkIndex(text: string): boolean {
  return text.length > 0 && text.length <= 3 && /^\d+$/.test(text);
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
          if (name !== settings.name) lines.push(line(secure, name, "", 0));
        }
        return lines;
      }
      const parts = splitToken(settings.name, token);
      const lines = parts.map(([name, value]) => line(secure, name, value, maxAgeSeconds));
      const written = new Set(parts.map(([name]) => name));
      for (const name of present) {
        if (!written.has(name)) lines.push(line(secure, name, "", 0));
      }
      return lines;
    },
    clear(secure, present) {
      const names = new Set(present);
      names.add(settings.name);
      return [...names].map((name) => line(secure, name, "", 0));
    },
  };
}
