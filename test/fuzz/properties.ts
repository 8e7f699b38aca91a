/**
 * Hostile-input properties (issue 7), shared by the CI run (`fuzz.test.ts`, 20 000 cases) and the long
 * run (`npm run fuzz`, 1 000 000 cases by default). Every path that reads client input is driven with
 * random and mutated input: the Cookie header parser, chunk joining, the e1 and s1 codecs, the i1 id
 * token, the header transport, key ids and schema validation.
 *
 * The oracle, for every case:
 * - `load` never throws, and `commit` of the untouched session never throws nor writes a token;
 * - a refusal reports at most one `onInvalid` reason, of the documented set;
 * - **forgery** = a load whose data is not `{}` and not exactly the data one of the tokens the attacker
 *   sent was made with (a token sealed for another cookie name, another secret, another mode or an
 *   expired record counts as not sent: its data must never come back);
 * - the strict part: the token that actually arrives (after the Cookie parser's decoding and the
 *   chunk join, or the trimmed header) opens to its original data when it is one of ours, and to a
 *   fresh session when it is anything else. A bit flip, a truncation or a re-labelled key id is never
 *   accepted, even as the original.
 *
 * No Node-only API is used here beyond `Buffer` for test-side base64url: the module runs under vitest
 * (either crypto backend) and under tsx for `npm run fuzz`.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import fc from "fast-check";
import { backend } from "#crypto-backend";
import { createKeyring, type Keyring, normalizeSecrets } from "../../src/crypto/keyring.js";
import { encodeSignedPayload, sealToken, signToken } from "../../src/crypto/token.js";
import { createSessions, type InvalidReason, type Sessions } from "../../src/index.js";
import type { SessionsOptions } from "../../src/options.js";
import { memoryStore } from "../../src/stores/memory.js";
import { joinChunks, parseCookies, readCookieToken } from "../../src/transport/cookie.js";
import {
  DAY,
  fakeClock,
  OTHER_SECRET,
  parseSetCookie,
  SECRET,
  THIRD_SECRET,
} from "../core/harness.js";

export type Codec = "e1" | "s1" | "i1";
type Data = Record<string, unknown>;

const COOKIE = "sid";
const HEADER = "x-session";
const MAX_SIZE = 16_000;
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const REASONS: ReadonlySet<string> = new Set<InvalidReason>([
  "malformed",
  "unknown-key",
  "tampered",
  "oversized",
  "expired-idle",
  "expired-absolute",
  "schema",
  "unknown-session",
]);

/** One manager under attack, with every token the fuzzer may send it. */
export interface Target {
  name: string;
  codec: Codec;
  sessions: Sessions;
  /** Tokens this manager issued or must accept (rotation), with the data each was made with. */
  valid: Map<string, Data>;
  /** Tokens that must open only to the data they carry: these must load exactly (round trip). */
  strict: Set<string>;
  /** Every token the fuzzer starts from: valid ones and foreign ones (other name, secret, mode, expired...). */
  tokens: string[];
  /** Key ids worth trying: ours, the rotated one, other secrets'. */
  kids: string[];
  /** The keyring of this manager's secrets, for authenticated hostile plaintext. */
  keyring: Keyring;
  /** Store mode: the session ids we stored, with their data. */
  ids: Map<string, Data>;
  /** The ids in `ids` that must open; the others (stamped a day ahead) may also be refused. */
  strictIds: Set<string>;
}

/** One request of the fuzzer. */
export interface Case {
  property: string;
  target: Target;
  /** The Cookie header, if any. */
  cookie?: string | undefined;
  /** The x-session header, if any. */
  header?: string | undefined;
  /** Tokens the attacker legitimately holds and put into this request. */
  sources: string[];
  /** Data an authenticated hostile plaintext carried: allowed back, nothing else. */
  carried?: Data[];
  /** Overrides the reader oracle: "fresh" must load empty; a Data must load exactly. */
  expect?: "fresh" | Data | undefined;
  /** What was done, for the report. */
  note: string;
}

export type Outcome =
  | { ok: true; loaded: "fresh" | "original" }
  | { ok: false; forgery: boolean; message: string };

/** A named property: its case generator and its share of the total. */
export interface FuzzProperty {
  name: string;
  weight: number;
  arbitrary: fc.Arbitrary<Case>;
}

export interface FuzzSuite {
  targets: Target[];
  properties: FuzzProperty[];
  check(c: Case): Promise<Outcome>;
}

// ---------------------------------------------------------------------------------------------------
// Set-up: managers and their tokens
// ---------------------------------------------------------------------------------------------------

/** Stable JSON: the comparison of "exactly the data the token was made with". */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function sameData(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function isEmpty(data: object): boolean {
  return Object.keys(data).length === 0;
}

/** The Headers the core reads. A plain object stands in when the value is not a legal header value. */
function requestHeaders(values: Record<string, string | undefined>): Headers {
  const entries = Object.entries(values).filter((e): e is [string, string] => e[1] !== undefined);
  try {
    return new Headers(entries);
  } catch {
    // Non-ByteString or control characters: no HTTP server would deliver them, but runtimes without a
    // strict parser might. The core only calls get().
    const map = new Map(entries.map(([k, v]) => [k.toLowerCase(), v]));
    return { get: (name: string) => map.get(name.toLowerCase()) ?? null } as unknown as Headers;
  }
}

let reasons: string[] = [];

interface MakeOptions {
  codec: Codec;
  secret?: SessionsOptions["secret"];
  name?: string;
  now?: () => number;
  store?: ReturnType<typeof memoryStore> | undefined;
  schema?: StandardSchemaV1;
}

function make(options: MakeOptions): Sessions {
  const config: SessionsOptions<StandardSchemaV1 | undefined> = {
    secret: options.secret ?? [SECRET, THIRD_SECRET],
    cookie: { name: options.name ?? COOKIE },
    header: HEADER,
    now: options.now ?? clock.now,
    maxSize: MAX_SIZE,
    ...(options.codec === "i1"
      ? { store: options.store }
      : { mode: options.codec === "s1" ? "signed" : "encrypted" }),
    ...(options.schema ? { schema: options.schema } : {}),
    onInvalid: (reason) => reasons.push(reason),
  };
  return createSessions(config) as unknown as Sessions;
}

/** Issues one session holding `data` and returns its token (chunks joined) and id. */
async function issue(sessions: Sessions, data: Data): Promise<{ token: string; id: string }> {
  const session = await sessions.load(new Headers());
  session.update(data);
  // An empty record is still a session: regenerate makes commit write it.
  if (isEmpty(data)) await session.regenerate();
  const headers = new Headers();
  await sessions.commit(session, headers);
  const cookies = headers.getSetCookie().map(parseSetCookie);
  const whole = cookies.find((c) => c.name === sessions.cookieName);
  const token =
    whole?.value ??
    cookies
      .filter((c) => c.name.startsWith(`${sessions.cookieName}.`))
      .sort((a, b) => Number(a.name.split(".")[1]) - Number(b.name.split(".")[1]))
      .map((c) => c.value)
      .join("");
  if (!token) throw new Error("fuzz set-up: no token was issued");
  return { token, id: session.id };
}

const clock = fakeClock();

/** A Standard Schema that accepts short strings and safe integers, and `role` only as "user". */
export const fuzzSchema = {
  "~standard": {
    version: 1 as const,
    vendor: "sessionkit-fuzz",
    validate(value: unknown) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return { issues: [{ message: "not an object" }] };
      }
      for (const [key, v] of Object.entries(value)) {
        const ok =
          (typeof v === "string" && v.length <= 10) ||
          (typeof v === "number" && Number.isSafeInteger(v));
        if (!ok || (key === "role" && v !== "user")) return { issues: [{ message: key }] };
      }
      return { value: value as Data };
    },
  },
};

export function schemaAccepts(data: Data): boolean {
  return !("issues" in fuzzSchema["~standard"].validate(data));
}

async function keyIdOf(sessions: Sessions): Promise<string> {
  const { token } = await issue(sessions, { probe: 1 });
  return token.split(".")[1] as string;
}

async function buildTarget(codec: Codec): Promise<Target> {
  const store = codec === "i1" ? memoryStore({ now: clock.now, maxSessions: 100_000 }) : undefined;
  const sessions = make({ codec, store });
  const valid = new Map<string, Data>();
  const strict = new Set<string>();
  const ids = new Map<string, Data>();
  const strictIds = new Set<string>();
  const foreign: string[] = [];
  const add = async (s: Sessions, data: Data, kind: "strict" | "valid" | "foreign") => {
    const { token, id } = await issue(s, data);
    if (kind === "foreign") foreign.push(token);
    else {
      valid.set(token, JSON.parse(JSON.stringify(data)));
      if (kind === "strict") strict.add(token);
      if (store) ids.set(id, JSON.parse(JSON.stringify(data)));
      if (store && kind === "strict") strictIds.add(id);
    }
    return { token, id };
  };
  for (let k = 0; k < 4; k++)
    await add(sessions, { owner: `${codec}-victim-${k}`, n: k }, "strict");
  // Large enough to be chunked in cookie mode (4 chunks of 4000 bytes at most).
  await add(sessions, { owner: `${codec}-large`, blob: "x".repeat(9_000) }, "strict");
  // Sealed under the second secret alone: open through rotation.
  const rotated = make({ codec, secret: THIRD_SECRET, store });
  for (let k = 0; k < 2; k++) await add(rotated, { owner: `${codec}-rotated-${k}` }, "strict");
  // Stamped by a server whose clock runs a day ahead: may open (to its own data) or be refused.
  const ahead = make({ codec, store, now: () => clock.now() + DAY });
  await add(ahead, { owner: `${codec}-future` }, "valid");

  // Foreign: another cookie name, another secret, our key id over another secret, expired records,
  // another store's ids and a destroyed session.
  const kid = await keyIdOf(sessions);
  const otherName = make({ codec, name: "other", store });
  const otherSecret = make({ codec, secret: OTHER_SECRET, store });
  const forgedKid = make({ codec, secret: { [kid]: OTHER_SECRET }, store });
  const expiredAbsolute = make({ codec, store, now: () => clock.now() - 60 * DAY });
  const expiredIdle = make({ codec, store, now: () => clock.now() - 8 * DAY });
  for (const [label, s] of [
    ["other-name", otherName],
    ["other-secret", otherSecret],
    ["forged-kid", forgedKid],
  ] as const) {
    for (let k = 0; k < 2; k++) await add(s, { owner: `${codec}-${label}-${k}` }, "foreign");
  }
  await add(expiredAbsolute, { owner: `${codec}-expired-absolute` }, "foreign");
  await add(expiredIdle, { owner: `${codec}-expired-idle` }, "foreign");
  if (store) {
    const elsewhere = make({ codec, store: memoryStore({ now: clock.now }) });
    for (let k = 0; k < 2; k++) await add(elsewhere, { owner: `i1-elsewhere-${k}` }, "foreign");
    const { token } = await add(sessions, { owner: "i1-destroyed" }, "foreign");
    const doomed = await sessions.load(requestHeaders({ cookie: `${COOKIE}=${token}` }));
    doomed.destroy();
    await sessions.commit(doomed, new Headers());
  }
  const kids = [kid, await keyIdOf(rotated), await keyIdOf(otherSecret)];
  const keyring = await createKeyring(normalizeSecrets([SECRET, THIRD_SECRET]), backend);
  return {
    name: codec,
    codec,
    sessions,
    valid,
    strict,
    tokens: [...valid.keys(), ...foreign],
    kids,
    keyring,
    ids,
    strictIds,
  };
}

/** The schema target: e1 with a schema; its tokens come from a schema-less twin sharing the secret. */
async function buildSchemaTarget(): Promise<{ target: Target; twin: Sessions }> {
  const sessions = make({ codec: "e1", schema: fuzzSchema });
  const twin = make({ codec: "e1" });
  const valid = new Map<string, Data>();
  const strict = new Set<string>();
  const foreign: string[] = [];
  for (let k = 0; k < 4; k++) {
    const data = { owner: `schema-${k}`, n: k };
    const { token } = await issue(twin, data);
    valid.set(token, data);
    strict.add(token);
  }
  for (const data of [{ role: "admin" }, { n: 1.5 }, { owner: "x".repeat(11) }]) {
    foreign.push((await issue(twin, data)).token);
  }
  return {
    target: {
      name: "schema",
      codec: "e1",
      sessions,
      valid,
      strict,
      tokens: [...valid.keys(), ...foreign],
      kids: [(valid.keys().next().value as string).split(".")[1] as string],
      keyring: await createKeyring(normalizeSecrets([SECRET, THIRD_SECRET]), backend),
      ids: new Map(),
      strictIds: new Set(),
    },
    twin,
  };
}

// ---------------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------------

const b64urlChar = fc.constantFrom(...B64URL);
const b64urlString = (max: number) => fc.string({ unit: b64urlChar, maxLength: max });
/** Printable ASCII plus tab: legal in a header value, so the real Headers class carries it. */
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const garbage = fc.oneof(
  b64urlString(60),
  printable,
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom("=", "==", ".", "..", "%", "%2E", "%00", '"', ";", " ", "\t", "\u00e9", "\ud800"),
  fc.string({ unit: fc.constantFrom("+", "/", "=", "A", "_", "-", "."), maxLength: 20 }),
);

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "decoded-flip"; segment: number; at: number; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "extend"; text: string }
  | { kind: "insert"; at: number; text: string }
  | { kind: "replace-segment"; segment: number; text: string }
  | { kind: "version"; text: string }
  | { kind: "splice"; other: number; at: number }
  | { kind: "segment-from"; other: number; segment: number }
  | { kind: "drop-char"; at: number }
  | { kind: "non-canonical"; segment: number }
  | { kind: "repeat"; times: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("flip"), at: fc.nat(), bit: fc.nat(6) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("decoded-flip"),
      segment: fc.integer({ min: 2, max: 3 }),
      at: fc.nat(),
      bit: fc.nat(7),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("truncate"), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("extend"), text: garbage }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("insert"), at: fc.nat(), text: garbage }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("replace-segment"),
      segment: fc.nat(4),
      text: garbage,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("version"),
      text: fc.constantFrom("e1", "s1", "i1", "e2", "E1", "", "e", "e1e1", "i1.x"),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("splice"), other: fc.nat(), at: fc.nat() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("segment-from"),
      other: fc.nat(),
      segment: fc.nat(3),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop-char"), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("non-canonical"),
      segment: fc.integer({ min: 2, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("repeat"), times: fc.integer({ min: 2, max: 12 }) }),
  },
);

/** Applies one mutation; tokens borrowed from the pool are added to `used` (the attacker holds them). */
function mutate(token: string, m: Mutation, pool: readonly string[], used: string[] = []): string {
  const parts = token.split(".");
  const at = (n: number, len: number) => (len === 0 ? 0 : n % len);
  switch (m.kind) {
    case "flip": {
      if (token.length === 0) return token;
      const i = at(m.at, token.length);
      return (
        token.slice(0, i) +
        String.fromCharCode(token.charCodeAt(i) ^ (1 << m.bit)) +
        token.slice(i + 1)
      );
    }
    case "decoded-flip": {
      const segment = parts[m.segment];
      if (segment === undefined) return token;
      const bytes = Buffer.from(segment, "base64url");
      if (bytes.length === 0) return token;
      const i = at(m.at, bytes.length);
      bytes[i] = (bytes[i] as number) ^ (1 << m.bit);
      parts[m.segment] = bytes.toString("base64url");
      return parts.join(".");
    }
    case "truncate":
      return token.slice(0, at(m.at, token.length));
    case "extend":
      return token + m.text;
    case "insert": {
      const i = at(m.at, token.length + 1);
      return token.slice(0, i) + m.text + token.slice(i);
    }
    case "replace-segment":
      if (m.segment >= parts.length) return `${token}.${m.text}`;
      parts[m.segment] = m.text;
      return parts.join(".");
    case "version":
      parts[0] = m.text;
      return parts.join(".");
    case "splice": {
      const other = pool[m.other % pool.length] as string;
      used.push(other);
      const i = at(m.at, Math.min(token.length, other.length) + 1);
      return token.slice(0, i) + other.slice(i);
    }
    case "segment-from": {
      const donor = pool[m.other % pool.length] as string;
      used.push(donor);
      const other = donor.split(".");
      if (other[m.segment] === undefined || m.segment >= parts.length) return token;
      parts[m.segment] = other[m.segment] as string;
      return parts.join(".");
    }
    case "drop-char": {
      const i = at(m.at, token.length);
      return token.slice(0, i) + token.slice(i + 1);
    }
    case "non-canonical": {
      // Sets the unused low bits of the last character: decoders ignore them, the codec must not.
      const segment = parts[m.segment];
      if (!segment || segment.length % 4 === 0) return token;
      const last = B64URL.indexOf(segment.charAt(segment.length - 1));
      const mask = segment.length % 4 === 2 ? 0b1111 : 0b11;
      parts[m.segment] =
        segment.slice(0, -1) + B64URL.charAt((last & ~mask) | (last & mask ? 0 : 1));
      return parts.join(".");
    }
    case "repeat":
      return token.repeat(m.times).slice(0, 70_000);
  }
}

function describeMutation(m: Mutation): string {
  return JSON.stringify(m);
}

// ---------------------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------------------

function shorten(text: string | undefined, max = 160): string {
  if (text === undefined) return "(none)";
  return text.length <= max
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, max))}... (${text.length} chars)`;
}

function describeCase(c: Case): string {
  return `[${c.property} on ${c.target.name}] ${c.note}; cookie=${shorten(c.cookie)}; header=${shorten(c.header)}`;
}

/** The token that reaches the codec, as the transport reads it; undefined when none does. */
function arrivingToken(c: Case): string | undefined {
  if (c.header !== undefined) {
    const trimmed = c.header.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "").trim();
    return trimmed === "" ? undefined : trimmed;
  }
  return readCookieToken(parseCookies(c.cookie), COOKIE, MAX_SIZE).token;
}

/** Values of our cookie name a load may try, at most this many (a stale cookie before ours). */
const SAME_NAME_TRIES = 4;

/**
 * Every token a load may open, in the order it tries them: the one that arrives, then, when the plain
 * cookie came (not chunks, not the header), the later values of its name and any chunks beside it. The
 * oracle's own reading of the header: pairs split at ";" and the first "=", spaces and tabs trimmed,
 * percent-decoded.
 */
function candidateTokens(c: Case): { tokens: string[]; tried: number } {
  const first = arrivingToken(c);
  const cookies = parseCookies(c.cookie);
  const { present, oversized } = readCookieToken(cookies, COOKIE, MAX_SIZE);
  if (c.header !== undefined || cookies[COOKIE] === undefined) {
    const tokens = first === undefined ? [] : [first];
    // An oversized join is refused too (one reason), though it gives no token.
    let tried = first !== undefined || (c.header === undefined && oversized) ? 1 : 0;
    // Chunks only, one of their names sent twice (a tossed chunk): after a refusal, the join of
    // each chunk name's last value (of the first SAME_NAME_TRIES sent) is tried too.
    if (c.header === undefined && present.length > 0 && (first !== undefined || oversized)) {
      const last: Record<string, string | undefined> = {};
      let tossed = false;
      for (const name of present) {
        const later = valuesOf(c.cookie, name).slice(1, SAME_NAME_TRIES);
        tossed ||= later.length > 0;
        last[name] = later.length > 0 ? later[later.length - 1] : cookies[name];
      }
      const joined = tossed ? joinChunks(last, COOKIE, MAX_SIZE, present).token : undefined;
      if (joined !== undefined) {
        tokens.push(joined);
        tried++;
      }
    }
    return { tokens, tried };
  }
  const later = valuesOf(c.cookie, COOKIE).slice(1, SAME_NAME_TRIES);
  const chunked =
    present.length > 1 ? joinChunks(cookies, COOKIE, MAX_SIZE, present).token : undefined;
  if (chunked !== undefined) later.push(chunked);
  return { tokens: first === undefined ? later : [first, ...later], tried: 1 + later.length };
}

/** Every value of `name` in a Cookie header, in order, trimmed and decoded as the parser does. */
function valuesOf(cookie: string | undefined, name: string): string[] {
  return (cookie ?? "").split(";").flatMap((pair) => {
    const eq = pair.indexOf("=");
    if (eq === -1 || pair.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, "") !== name) return [];
    const raw = pair.slice(eq + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    try {
      return [raw.includes("%") ? decodeURIComponent(raw) : raw];
    } catch {
      return [raw];
    }
  });
}

export async function check(c: Case): Promise<Outcome> {
  const fail = (forgery: boolean, message: string): Outcome => ({
    ok: false,
    forgery,
    message: `${message}\n  ${describeCase(c)}`,
  });
  reasons = [];
  const headers = requestHeaders({ cookie: c.cookie, [HEADER]: c.header });
  let session: Awaited<ReturnType<Sessions["load"]>>;
  try {
    session = await c.target.sessions.load(headers);
  } catch (err) {
    return fail(false, `load threw: ${(err as Error)?.stack ?? String(err)}`);
  }
  const data = session.data as Data;
  const fresh = isEmpty(data);
  if (!fresh && session.isNew)
    return fail(false, `a new session came with data ${canonical(data)}`);
  if (
    Object.getPrototypeOf(data) !== Object.prototype ||
    Object.keys(Object.prototype).length > 0
  ) {
    return fail(true, "prototype pollution: the data or Object.prototype was altered");
  }

  // Forgery: data that none of the tokens sent was made with.
  if (!fresh) {
    const allowed = [
      ...c.sources.map((t) => c.target.valid.get(t)).filter((d): d is Data => d !== undefined),
      ...(c.carried ?? []),
    ];
    if (!allowed.some((d) => sameData(d, data))) {
      return fail(true, `FORGERY: loaded ${shorten(canonical(data))}, which no token sent carried`);
    }
  }

  const { tokens: candidates, tried } = candidateTokens(c);
  // One reason per refused value tried, and never more values than the bound.
  if (reasons.length > Math.max(tried, 1) || reasons.some((r) => !REASONS.has(r))) {
    return fail(false, `onInvalid reported ${JSON.stringify(reasons)}`);
  }

  // The strict oracle: what arrives opens to its original data, or to nothing.
  let expected: "fresh" | Data | "either";
  if (c.expect !== undefined) expected = c.expect;
  else {
    // The first candidate the server issued decides; one it may refuse leaves the outcome open.
    expected = "fresh";
    for (const token of candidates) {
      const original = c.target.valid.get(token);
      if (original === undefined) continue;
      expected = c.target.strict.has(token) ? original : "either";
      break;
    }
    if (c.carried !== undefined) expected = "either";
  }
  if (expected === "fresh" && !fresh) {
    return fail(false, `accepted input it must refuse: loaded ${shorten(canonical(data))}`);
  }
  if (expected !== "fresh" && expected !== "either" && !sameData(expected, data)) {
    return fail(false, `refused a token it issued: loaded ${shorten(canonical(data))}`);
  }
  if (session.isNew && arrivingTokenPresent(c) && reasons.length !== tried) {
    // Every refused cookie value tried is reported once (an empty header asking for a first token is not).
    return fail(false, `${tried} refused values reported ${reasons.length} reasons`);
  }

  // Commit of an untouched session: no throw; a refused one gets clearing lines only (a token opened
  // under the rotated key is re-sealed under the primary one, which is the one write allowed).
  const out = new Headers();
  try {
    await c.target.sessions.commit(session, out);
  } catch (err) {
    return fail(false, `commit threw: ${(err as Error)?.stack ?? String(err)}`);
  }
  for (const line of out.getSetCookie()) {
    if (session.isNew && parseSetCookie(line).maxAge !== 0) {
      return fail(false, `commit of an unchanged session wrote a cookie: ${shorten(line, 60)}`);
    }
  }
  return { ok: true, loaded: fresh ? "fresh" : "original" };
}

/** A token arrived (by the transport's own reading) and it was not accepted. */
function arrivingTokenPresent(c: Case): boolean {
  if (c.header !== undefined) return false;
  return readCookieToken(parseCookies(c.cookie), COOKIE, MAX_SIZE).token !== undefined;
}

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

function withToString(c: Case): Case {
  return Object.assign(c, { [fc.toStringMethod]: () => describeCase(c) });
}

function pick<T>(list: readonly T[], n: number): T {
  return list[n % list.length] as T;
}

export async function createFuzzSuite(): Promise<FuzzSuite> {
  const targets = [await buildTarget("e1"), await buildTarget("s1"), await buildTarget("i1")];
  // Every target's valid tokens are foreign to the others (another mode or another store).
  const everyToken = targets.flatMap((t) => t.tokens);
  for (const t of targets) {
    for (const token of everyToken) if (!t.tokens.includes(token)) t.tokens.push(token);
  }
  const { target: schemaTarget, twin } = await buildSchemaTarget();
  const targetArb = fc.nat(targets.length - 1).map((i) => targets[i] as Target);

  /** A token of the target's pool, then 1-3 mutations (or none, 1 time in 8). */
  const mutatedToken = (target: Target) =>
    fc
      .record({
        source: fc.nat(),
        mutations: fc.oneof(
          { weight: 1, arbitrary: fc.constant([] as Mutation[]) },
          { weight: 7, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) },
        ),
      })
      .map(({ source, mutations }) => {
        const original = pick(target.tokens, source);
        const used = [original];
        const token = mutations.reduce((t, m) => mutate(t, m, everyToken, used), original);
        const note = mutations.map(describeMutation).join(" then ") || "as issued";
        return { original, used, token, note };
      });

  const tokenMutations: FuzzProperty = {
    name: "token mutations (e1, s1, i1 codecs)",
    weight: 5000,
    arbitrary: targetArb.chain((target) =>
      mutatedToken(target).map(({ used, token, note }) =>
        withToString({
          property: "token mutations",
          target,
          cookie: `${COOKIE}=${token}`,
          sources: used,
          note,
        }),
      ),
    ),
  };

  const cookieName = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        "sid",
        "sid",
        "sid.0",
        "sid.1",
        "sid.2",
        "sid.3",
        "sid.63",
        "sid.64",
        "sid.999",
        "sid.1000",
        "sid.00",
        "sid.-1",
        "sid.x",
        "sid.",
        " sid",
        "SID",
        "other",
        "__proto__",
        "constructor",
        "sid.0.0",
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  );
  const cookieValue = (target: Target) =>
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .nat()
          .map((n) => ({ value: pick(target.tokens, n), source: pick(target.tokens, n) })),
      },
      {
        weight: 2,
        arbitrary: fc
          .record({ n: fc.nat(), from: fc.nat(), to: fc.nat() })
          .map(({ n, from, to }) => {
            const t = pick(target.tokens, n);
            const a = from % (t.length + 1);
            const b = to % (t.length + 1);
            return { value: t.slice(Math.min(a, b), Math.max(a, b)), source: t };
          }),
      },
      {
        weight: 1,
        arbitrary: fc.nat().map((n) => {
          const t = pick(target.tokens, n);
          return { value: `"${t}"`, source: t };
        }),
      },
      {
        weight: 1,
        arbitrary: fc.nat().map((n) => {
          const t = pick(target.tokens, n);
          const encoded = [...t]
            .map((ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, "0")}`)
            .join("");
          return { value: encoded, source: t };
        }),
      },
      { weight: 2, arbitrary: garbage.map((value) => ({ value, source: undefined })) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: 4_000, max: 70_000 })
          .map((n) => ({ value: "A".repeat(n), source: undefined })),
      },
    );
  const separator = fc.constantFrom("; ", ";", " ; ", ";;", ", ", ";\t", "; ; ");

  const cookieHeaders: FuzzProperty = {
    name: "Cookie header parsing (duplicates, fragments, encodings)",
    weight: 4000,
    arbitrary: targetArb.chain((target) =>
      fc.oneof(
        {
          weight: 4,
          arbitrary: fc
            .record({
              pairs: fc.array(fc.record({ name: cookieName, value: cookieValue(target) }), {
                maxLength: 8,
              }),
              sep: separator,
            })
            .map(({ pairs, sep }) =>
              withToString({
                property: "cookie header",
                target,
                cookie: pairs.map((p) => `${p.name}=${p.value.value}`).join(sep),
                sources: pairs.flatMap((p) => (p.value.source ? [p.value.source] : [])),
                note: `${pairs.length} pairs`,
              }),
            ),
        },
        {
          weight: 1,
          arbitrary: fc
            .array(
              fc.oneof(
                fc.string({ unit: "binary", maxLength: 20 }),
                fc.constantFrom("sid=", "sid.0=", "; ", "=", "%"),
              ),
              {
                maxLength: 12,
              },
            )
            .map((bits) =>
              withToString({
                property: "cookie header (raw)",
                target,
                cookie: bits.join(""),
                sources: [],
                note: "raw string",
              }),
            ),
        },
      ),
    ),
  };

  const chunkJoins: FuzzProperty = {
    name: "chunk joining (splits, order, gaps, duplicates, counts out of range)",
    weight: 3000,
    arbitrary: targetArb.chain((target) =>
      fc
        .record({
          source: fc.nat(),
          cuts: fc.array(fc.nat(), { maxLength: 80 }),
          shuffle: fc.array(fc.nat(), { maxLength: 8 }),
          damage: fc.option(
            fc.oneof(
              fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
              fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), text: garbage }),
              fc.record({ kind: fc.constant("swap" as const), at: fc.nat() }),
              fc.record({ kind: fc.constant("base" as const), text: garbage }),
              fc.record({
                kind: fc.constant("extra" as const),
                names: fc.array(
                  fc.constantFrom("64", "65", "99", "999", "1000", "00", "01", "-1", "1e3"),
                  {
                    minLength: 1,
                    maxLength: 4,
                  },
                ),
              }),
            ),
            { freq: 2 },
          ),
        })
        .map(({ source, cuts, shuffle, damage }) => {
          const token = pick(target.tokens, source);
          const points = [...new Set(cuts.map((n) => n % (token.length + 1)))].sort(
            (a, b) => a - b,
          );
          const bounds = [0, ...points, token.length];
          let parts: Array<[string, string]> = [];
          for (let i = 0; i + 1 < bounds.length; i++) {
            parts.push([`${COOKIE}.${i}`, token.slice(bounds[i], bounds[i + 1])]);
          }
          let note = `${parts.length} chunks`;
          if (damage) {
            note += `, ${damage.kind}`;
            const i = "at" in damage ? damage.at % parts.length : 0;
            if (damage.kind === "drop") parts.splice(i, 1);
            if (damage.kind === "duplicate") parts.push([`${COOKIE}.${i}`, damage.text]);
            if (damage.kind === "swap" && parts.length > 1) {
              const j = (i + 1) % parts.length;
              const a = parts[i]?.[1] as string;
              const b = parts[j]?.[1] as string;
              parts[i] = [`${COOKIE}.${i}`, b];
              parts[j] = [`${COOKIE}.${j}`, a];
            }
            if (damage.kind === "base") parts.unshift([COOKIE, damage.text]);
            if (damage.kind === "extra")
              for (const n of damage.names) parts.push([`${COOKIE}.${n}`, "AAAA"]);
          }
          // Header order does not matter to the reader: shuffle it.
          for (const s of shuffle) {
            if (parts.length < 2) break;
            const i = s % parts.length;
            parts = [...parts.slice(i), ...parts.slice(0, i)];
          }
          return withToString({
            property: "chunk joining",
            target,
            cookie: parts.map(([n, v]) => `${n}=${v}`).join("; "),
            sources: [token],
            note,
          });
        }),
    ),
  };

  const headerTransport: FuzzProperty = {
    name: "header transport (precedence, trimming, mutations)",
    weight: 2500,
    arbitrary: targetArb.chain((target) =>
      fc
        .record({
          value: fc.oneof(
            { weight: 4, arbitrary: mutatedToken(target) },
            {
              weight: 1,
              arbitrary: fc
                .constantFrom("", " ", "\t")
                .map((token) => ({ used: [] as string[], token, note: "empty" })),
            },
            {
              weight: 1,
              arbitrary: fc
                .record({ n: fc.nat(), pad: fc.constantFrom(" ", "\t", "  \t ") })
                .map(({ n, pad }) => {
                  const t = pick(target.tokens, n);
                  return { used: [t], token: `${pad}${t}${pad}`, note: "padded" };
                }),
            },
            {
              weight: 1,
              arbitrary: fc.integer({ min: 10_000, max: 70_000 }).map((n) => ({
                used: [] as string[],
                token: "e1.AAAAAA.".padEnd(n, "A"),
                note: "huge",
              })),
            },
          ),
          cookie: fc.option(fc.nat()),
        })
        .map(({ value, cookie }) => {
          const fromCookie = cookie === null ? undefined : pick(target.tokens, cookie);
          return withToString({
            property: "header transport",
            target,
            header: value.token,
            cookie: fromCookie && `${COOKIE}=${fromCookie}`,
            // The attacker holds both tokens; the strict oracle checks the cookie was ignored.
            sources: [...value.used, ...(fromCookie ? [fromCookie] : [])],
            note: `${value.note}${fromCookie ? " + a cookie that must be ignored" : ""}`,
          });
        }),
    ),
  };

  const keyIds: FuzzProperty = {
    name: "key ids (other secrets' ids, rotated id, odd ids)",
    weight: 1500,
    arbitrary: targetArb.chain((target) =>
      fc
        .record({
          source: fc.nat(),
          kid: fc.oneof(
            fc.nat().map((n) => pick(target.kids, n)),
            fc.constantFrom(
              "",
              "__proto__",
              "constructor",
              "hasOwnProperty",
              "toString",
              "v1",
              "0",
              "AAAAAA",
              "a".repeat(17),
            ),
            b64urlString(20),
            fc.string({ maxLength: 8 }),
          ),
        })
        .map(({ source, kid }) => {
          const original = pick([...target.valid.keys()], source);
          const parts = original.split(".");
          parts[1] = kid;
          return withToString({
            property: "key ids",
            target,
            cookie: `${COOKIE}=${parts.join(".")}`,
            sources: [original],
            note: `kid ${JSON.stringify(kid)}`,
          });
        }),
    ),
  };

  // Authenticated but hostile plaintext: what a sibling app sharing the secret, or an old version,
  // could seal. It may open only to the data it carries, and only when it is a well-formed record.
  const time = fc.oneof(
    fc.constant(clock.now()),
    fc.integer({ min: clock.now() - 40 * DAY, max: clock.now() + 40 * DAY }),
    fc.constantFrom(-1, 0, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 1e300),
    fc.constantFrom("1", null, true, [], {}),
  );
  const jsonData = fc.dictionary(
    fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom("__proto__", "constructor", "prototype")),
    fc.jsonValue({ maxDepth: 3 }),
    { maxKeys: 5 },
  );
  const record = fc.record(
    {
      i: fc.oneof(b64urlString(60), fc.string(), fc.integer(), fc.constant(null)),
      d: fc.oneof(
        { weight: 4, arbitrary: jsonData },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      ),
      c: time,
      t: time,
      r: time,
      u: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
      f: fc.oneof(
        fc.dictionary(
          fc.string({ maxLength: 4 }),
          fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
    },
    { requiredKeys: [] },
  );
  const hostilePlaintext: FuzzProperty = {
    name: "authenticated hostile plaintext (record shape, JSON, ids)",
    weight: 2500,
    arbitrary: fc
      .record({
        target: targetArb,
        text: fc.oneof(
          { weight: 5, arbitrary: record.map((r) => JSON.stringify(r)) },
          { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
          {
            weight: 1,
            arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? "null"),
          },
          { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
        ),
        storedId: fc.option(fc.nat(), { freq: 3 }),
      })
      .map(({ target, text, storedId }) => {
        let carried: Data[] = [];
        if (target.codec === "i1") {
          // An i1 payload is a session id: a random one, or (as a peer sharing the secret could) a known one.
          const ids = [...target.ids.keys()];
          const payload = storedId === null ? text : pick(ids, storedId);
          const known = target.ids.get(payload);
          carried = known ? [known] : [];
          return {
            target,
            payload,
            carried,
            // A record stamped a day ahead may be refused (clock skew): then either outcome is right.
            expect: known
              ? target.strictIds.has(payload)
                ? known
                : undefined
              : ("fresh" as const),
            note: storedId === null ? "random id" : "known id",
          };
        }
        try {
          const parsed = JSON.parse(text) as { d?: unknown } | null;
          if (parsed && typeof parsed === "object" && !Array.isArray(parsed) && parsed.d) {
            carried = [parsed.d as Data];
          }
        } catch {
          // Not JSON: it must not open at all.
        }
        return {
          target,
          payload: text,
          carried,
          expect: carried.length === 0 ? ("fresh" as const) : undefined,
          note: "plaintext",
        };
      })
      .map(({ target, payload, carried, expect, note }) =>
        withToString({
          property: "hostile plaintext",
          target,
          // Sealed in prepare(): fast-check generators are synchronous.
          sources: [],
          carried,
          expect,
          note: `${note}: ${shorten(payload, 120)}`,
          plaintext: payload,
        } as Case & { plaintext: string }),
      ),
  };

  const schemaData: FuzzProperty = {
    name: "schema validation (data the schema refuses never loads)",
    weight: 1500,
    arbitrary: fc
      .record({
        data: fc.dictionary(
          fc.oneof(
            fc.string({ maxLength: 6 }),
            fc.constantFrom("role", "__proto__", "constructor"),
          ),
          fc.oneof(
            fc.string({ maxLength: 14 }),
            fc.integer(),
            fc.constantFrom(1.5, Number.MAX_SAFE_INTEGER + 2, "user", "admin", true, null),
            fc.array(fc.integer(), { maxLength: 2 }),
            fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
          ),
          { maxKeys: 5 },
        ),
        mutations: fc.option(fc.array(mutationArb, { minLength: 1, maxLength: 2 }), { freq: 4 }),
      })
      .map(({ data, mutations }) =>
        withToString({
          property: "schema",
          target: schemaTarget,
          sources: [],
          note: `data ${shorten(canonical(data), 120)}${mutations ? `, then ${mutations.map(describeMutation).join(" then ")}` : ""}`,
          schemaData: data,
          schemaMutations: mutations ?? [],
        } as Case & { schemaData: Data; schemaMutations: Mutation[] }),
      ),
  };

  async function prepare(c: Case): Promise<Case> {
    const extra = c as Case & {
      plaintext?: string;
      schemaData?: Data;
      schemaMutations?: Mutation[];
    };
    if (extra.plaintext !== undefined) {
      const ring = c.target.keyring;
      const text = extra.plaintext;
      let token: string;
      if (c.target.codec === "e1") token = await sealToken(backend, ring, text, COOKIE);
      else if (c.target.codec === "s1") {
        token = await signToken(backend, ring, "s1", encodeSignedPayload(backend, text), COOKIE);
      } else token = await signToken(backend, ring, "i1", text, COOKIE);
      return { ...c, cookie: `${COOKIE}=${token}` };
    }
    if (extra.schemaData !== undefined) {
      const data = extra.schemaData;
      const { token } = await issue(twin, data);
      const made = JSON.parse(JSON.stringify(data)) as Data;
      // Spliced only with itself: the e1 target's tokens are valid here too (same secret and name).
      const sent = (extra.schemaMutations ?? []).reduce((t, m) => mutate(t, m, [token]), token);
      // Intact as delivered: the request's Fetch Headers trims leading and trailing whitespace of
      // the header's value (a "\n" appended to the token arrives without it).
      const delivered = requestHeaders({ cookie: `${COOKIE}=${sent}` }).get("cookie") ?? "";
      const intact = parseCookies(delivered)[COOKIE] === token;
      // The twin's own record of what it sealed: this data, and nothing else, may come back.
      const accepted = schemaAccepts(made);
      return {
        ...c,
        cookie: `${COOKIE}=${sent}`,
        carried: [made],
        expect: intact && accepted ? made : "fresh",
      };
    }
    return c;
  }

  return {
    targets: [...targets, schemaTarget],
    properties: [
      tokenMutations,
      cookieHeaders,
      chunkJoins,
      headerTransport,
      keyIds,
      hostilePlaintext,
      schemaData,
    ],
    check: async (c) => {
      const prepared = await prepare(c);
      const outcome = await check(prepared);
      if (!outcome.ok) return outcome;
      // Schema refusals must say so.
      const extra = c as Case & { schemaData?: Data };
      if (
        extra.schemaData !== undefined &&
        prepared.expect === "fresh" &&
        prepared.cookie !== undefined &&
        parseCookies(prepared.cookie)[COOKIE] !== undefined &&
        reasons.length !== 1
      ) {
        return {
          ok: false,
          forgery: false,
          message: `schema refusal reported ${JSON.stringify(reasons)}`,
        };
      }
      return outcome;
    },
  };
}

/** Splits `total` cases over the properties by weight; every property gets at least one. */
export function shareCases(properties: readonly FuzzProperty[], total: number): number[] {
  const weights = properties.reduce((sum, p) => sum + p.weight, 0);
  const shares = properties.map((p) => Math.max(1, Math.floor((total * p.weight) / weights)));
  shares[0] = (shares[0] as number) + Math.max(0, total - shares.reduce((a, b) => a + b, 0));
  return shares;
}
