/**
 * A tiny browser for core tests: a fake clock, a cookie jar that obeys Set-Cookie (Max-Age=0
 * deletes), and one call per request that loads, runs the handler and commits, returning the wire.
 * No sleeps anywhere: time moves only when a test calls `clock.advance`.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import {
  createSessions,
  type InferSessionData,
  type InvalidReason,
  type Session,
  type SessionEvent,
} from "../../src/index.js";
import type { SessionsOptions } from "../../src/options.js";
import { memoryStore } from "../../src/stores/memory.js";

export const SECRET = "s3cr3t-for-tests-0123456789-abcdefghijklmnop";
export const OTHER_SECRET = "another-secret-for-tests-0123456789-qrstuvwx";
export const THIRD_SECRET = "third-secret-for-tests-0123456789-yzABCDEFGH";
export const START = Date.UTC(2025, 0, 1);
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export interface FakeClock {
  now: () => number;
  advance(ms: number): void;
}

export function fakeClock(start = START): FakeClock {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

/** One parsed Set-Cookie line. Attribute names are kept as sent, so tests can assert exact spelling. */
export interface SetCookie {
  name: string;
  value: string;
  /** Attributes in order, e.g. ["Max-Age=604800", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"]. */
  attributes: string[];
  maxAge: number | undefined;
}

export function parseSetCookie(line: string): SetCookie {
  const [pair = "", ...attributes] = line.split("; ");
  const eq = pair.indexOf("=");
  const maxAgeAttr = attributes.find((a) => a.startsWith("Max-Age="));
  return {
    name: pair.slice(0, eq),
    value: pair.slice(eq + 1),
    attributes,
    maxAge: maxAgeAttr === undefined ? undefined : Number(maxAgeAttr.slice("Max-Age=".length)),
  };
}

/** Applies Set-Cookie lines the way a browser does for our purposes: Max-Age=0 deletes. */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  apply(lines: readonly string[]): void {
    for (const line of lines) {
      const cookie = parseSetCookie(line);
      if (cookie.maxAge === 0) this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
  }

  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}

export interface Exchange {
  headers: Headers;
  setCookies: SetCookie[];
  /** The raw Set-Cookie lines. */
  lines: string[];
}

export interface RequestInit {
  /** Replaces the jar's Cookie header for this request. */
  cookie?: string;
  url?: string;
  headers?: Record<string, string>;
  /** Do not store the response's cookies in the jar. */
  keepJar?: boolean;
}

/** A sessions manager wired to a fake clock, and recorders for onInvalid and onEvent. */
export function harness<S extends StandardSchemaV1 | undefined = undefined>(
  options: Partial<SessionsOptions<S>> = {},
) {
  const clock = fakeClock();
  const invalid: InvalidReason[] = [];
  const events: SessionEvent[] = [];
  const sessions = createSessions<S>({
    secret: SECRET,
    now: clock.now,
    onInvalid: (reason) => invalid.push(reason),
    onEvent: (event) => events.push(event),
    ...options,
  } as SessionsOptions<S>);
  const jar = new CookieJar();
  type Data = Session<InferSessionData<S>>;

  /** One request: load, run the handler, commit. Returns the session and the response headers. */
  async function request(
    handler: (session: Data) => void | Promise<void> = () => {},
    init: RequestInit = {},
  ): Promise<Exchange & { session: Data }> {
    const headers = new Headers(init.headers);
    const cookie = init.cookie ?? jar.header();
    if (cookie !== undefined) headers.set("cookie", cookie);
    const session = await sessions.load(
      new Request(init.url ?? "https://example.com/", { headers }),
    );
    await handler(session);
    const response = new Headers();
    await sessions.commit(session, response);
    const lines = response.getSetCookie();
    if (!init.keepJar) jar.apply(lines);
    return { session, headers: response, lines, setCookies: lines.map(parseSetCookie) };
  }

  return { sessions, clock, invalid, events, jar, request };
}

export type Harness = ReturnType<typeof harness>;

/** A harness over a memory store that reads the harness's fake clock. */
export function storeHarness(options: Parameters<typeof harness>[0] = {}): Harness {
  let clock = () => 0;
  const h = harness({ store: memoryStore({ now: () => clock() }), ...options });
  clock = h.clock.now;
  return h;
}

/** The token the jar holds (chunks joined), or undefined. */
export function jarToken(jar: CookieJar, name = "sid"): string | undefined {
  const whole = jar.cookies.get(name);
  if (whole !== undefined) return whole;
  let token = "";
  for (let i = 0; jar.cookies.has(`${name}.${i}`); i++) token += jar.cookies.get(`${name}.${i}`);
  return token === "" ? undefined : token;
}

/** The key id of a token: the part between the first and second dot. */
export function keyIdOf(token: string): string {
  return token.split(".")[1] as string;
}

/** Ids long enough to pass the id check (16+ characters), predictable for tests. */
export function counterIds(prefix = "test-session-id-"): () => string {
  let n = 0;
  return () => `${prefix}${String(n++).padStart(4, "0")}`;
}
