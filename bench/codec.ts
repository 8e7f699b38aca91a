/**
 * Cookie codec benchmark: µs per round trip (encode + decode) of one 134-byte JSON session, for
 * sessionkit (public API and bare codecs, node:crypto and Web Crypto backends), its peers, and the
 * raw primitives that bound what any codec can do on this runtime. See bench/README.md.
 *
 * Run: npm run bench:codec [-- --json]
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";
import { fileURLToPath } from "node:url";
import fastifySecureSession from "@fastify/secure-session";
import { sign as cookieSign, unsign as cookieUnsign } from "cookie-signature";
import Fastify from "fastify";
import { defaults as ironDefaults, seal as ironSeal, unseal as ironUnseal } from "iron-webcrypto";
import { backend as nodeBackend } from "#crypto-backend";
import type { CryptoBackend } from "../dist/crypto/backend.js";
import { backend as webBackend } from "../dist/crypto/backend-web.js";
import { createKeyring, normalizeSecrets } from "../dist/crypto/keyring.js";
import { encodeSignedPayload, openToken, sealToken, signToken } from "../dist/crypto/token.js";
import { createSessions, type Sessions } from "../dist/index.js";
import { type Case, measure, type Samples } from "./lib/measure.js";
import {
  type Check,
  commandLine,
  formatCheck,
  formatNumber,
  formatRange,
  formatRate,
  formatRatio,
  loadLine,
  machineInfo,
  machineLine,
  markdownTable,
  median,
  type Summary,
  summarize,
  writeJson,
} from "./lib/report.js";

const SAMPLES = 101;
const SAMPLE_MS = 8;
const WARMUP_MS = 300;
const SESSION_BYTES = 134;
const COOKIE = "sid";
const SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz"; // fixed: derived keys only, never printed
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// The session: a record as sessionkit stores it in a cookie ({ i, d, c, t, r }), 134 bytes.

function makeSession(): { json: string; object: Record<string, unknown> } {
  const now = Date.now();
  const id = randomBytes(32).toString("base64url"); // 43 characters, like a real session id
  const build = (user: string) =>
    JSON.stringify({ i: id, d: { u: user, theme: "dark" }, c: now, t: now, r: now });
  // The record's own fields take 110 bytes; the data fills the rest.
  const json = build("7".repeat(Math.max(1, SESSION_BYTES - build("").length)));
  if (encoder.encode(json).length !== SESSION_BYTES)
    throw new Error(`session is not ${SESSION_BYTES} bytes`);
  return { json, object: JSON.parse(json) };
}

const { json: SESSION_JSON, object: SESSION_OBJECT } = makeSession();

// ---------------------------------------------------------------------------------------------
// Cases. Each `fn` is one full round trip and returns what it decoded, checked once before timing.

type Kind = "encrypted" | "signed" | "web";
type Group = "sessionkit" | "peer" | "raw";

interface CodecCase extends Case {
  group: Group;
  /** Which raw limit this row is compared with. */
  kind: Kind;
  /** Length of the cookie value (token) it produces. */
  tokenChars: number;
  /** Plaintext bytes actually encoded, when not the 134-byte session. */
  plaintextBytes: number;
  note?: string;
  /** Throws unless one call round-trips the session. */
  verify(): Promise<void>;
}

function assertEqual(actual: unknown, expected: unknown, name: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${name}: round trip did not return the session`);
  }
}

async function publicApiCase(
  mode: "encrypted" | "signed",
  tokenCache: "off" | "default" = "off",
): Promise<CodecCase> {
  const name =
    tokenCache === "off"
      ? `sessionkit public API, ${mode} (load+set+commit+load)`
      : `sessionkit public API, ${mode}, default token cache (load+set+commit+load)`;
  // The targets' rows run without the token cache: with it (the default) both loads of a round trip
  // are cache hits and no token is opened, which is not a round trip of the codec. The extra row shows
  // what the default gives.
  const sessions: Sessions = createSessions({
    secret: SECRET,
    mode,
    ...(tokenCache === "off" ? { tokenCache: false } : {}),
  });
  // The first cookie: the same record, issued with the same secret (keys derive deterministically).
  const ring = await createKeyring(normalizeSecrets(SECRET), nodeBackend);
  let cookie = `${COOKIE}=${
    mode === "encrypted"
      ? await sealToken(nodeBackend, ring, SESSION_JSON, COOKIE)
      : await signToken(
          nodeBackend,
          ring,
          "s1",
          encodeSignedPayload(nodeBackend, SESSION_JSON),
          COOKIE,
        )
  }`;
  let flip = false;
  const roundTrip = async () => {
    const session = await sessions.load(new Headers({ cookie }));
    flip = !flip;
    session.set("theme", flip ? "lite" : "dark"); // same length: the record stays 134 bytes
    const headers = new Headers();
    await sessions.commit(session, headers);
    const line = headers.getSetCookie()[0] as string;
    cookie = line.slice(0, line.indexOf(";"));
    return sessions.load(new Headers({ cookie }));
  };
  const verify = async () => {
    const before = await sessions.load(new Headers({ cookie }));
    if (before.isNew) throw new Error(`${name}: the cookie did not load`);
    assertEqual(before.get("u"), (SESSION_OBJECT.d as Record<string, unknown>).u, name);
    const after = await roundTrip();
    if (after.isNew || after.get("theme") !== (flip ? "lite" : "dark")) {
      throw new Error(`${name}: the committed cookie did not load back`);
    }
    const opened = await openToken(nodeBackend, ring, cookie.slice(COOKIE.length + 1), COOKIE);
    if (typeof opened === "string" || encoder.encode(opened.text).length !== SESSION_BYTES) {
      throw new Error(`${name}: the committed record is not ${SESSION_BYTES} bytes`);
    }
  };
  return {
    name,
    group: "sessionkit",
    kind: mode,
    fn: roundTrip,
    async: true,
    tokenChars: cookie.length - COOKIE.length - 1,
    plaintextBytes: SESSION_BYTES,
    note:
      tokenCache === "off"
        ? "two opens, one seal, Headers and cookie parsing/serialising (tokenCache: false)"
        : "one seal; both loads are token-cache hits (what an app gets by default when a cookie comes back)",
    verify,
  };
}

async function bareCodecCase(
  mode: "encrypted" | "signed",
  backend: CryptoBackend,
  name: string,
): Promise<CodecCase> {
  const ring = await createKeyring(normalizeSecrets(SECRET), backend);
  const issue = () =>
    mode === "encrypted"
      ? sealToken(backend, ring, SESSION_JSON, COOKIE)
      : signToken(backend, ring, "s1", encodeSignedPayload(backend, SESSION_JSON), COOKIE);
  // With a synchronous backend (node:crypto) the token functions return plain values and are called
  // bare, as the raw rows are; the Web Crypto backend's promises are awaited.
  const sync = backend.name === "node";
  const fn = sync
    ? () => openToken(backend, ring, issue() as string, COOKIE)
    : async () => openToken(backend, ring, await issue(), COOKIE);
  const sample = await issue();
  return {
    name,
    group: "sessionkit",
    kind: backend.name === "web" ? "web" : mode,
    fn,
    async: !sync,
    tokenChars: sample.length,
    plaintextBytes: SESSION_BYTES,
    verify: async () => {
      const result = fn();
      // A promise here would mean the bare call measured only its creation, never its work.
      if (sync && result instanceof Promise)
        throw new Error(`${name}: the node backend answered with a promise`);
      const opened = await result;
      assertEqual(typeof opened === "string" ? opened : opened.text, SESSION_JSON, name);
    },
  };
}

async function ironCase(): Promise<CodecCase> {
  const name = "iron-webcrypto seal+unseal (defaults)";
  const fn = async () =>
    ironUnseal(await ironSeal(SESSION_OBJECT, SECRET, ironDefaults), SECRET, ironDefaults);
  const sample = await ironSeal(SESSION_OBJECT, SECRET, ironDefaults);
  return {
    name,
    group: "peer",
    kind: "web",
    fn,
    async: true,
    tokenChars: sample.length,
    plaintextBytes: SESSION_BYTES,
    note: "AES-256-CBC + HMAC-SHA256, PBKDF2 (1 iteration) key derivation on every seal and unseal",
    verify: async () => assertEqual(await fn(), SESSION_OBJECT, name),
  };
}

function cookieSignatureCase(): CodecCase {
  const name = "cookie-signature sign+unsign";
  const fn = () => cookieUnsign(cookieSign(SESSION_JSON, SECRET), SECRET);
  return {
    name,
    group: "peer",
    kind: "signed",
    fn,
    async: false,
    tokenChars: cookieSign(SESSION_JSON, SECRET).length,
    plaintextBytes: SESSION_BYTES,
    note: "signs the raw string: no payload encoding, no key id, string secret (HMAC key set up per call)",
    verify: async () => assertEqual(fn(), SESSION_JSON, name),
  };
}

async function fastifySecureSessionCase(): Promise<CodecCase> {
  const name = "@fastify/secure-session encode+decode (libsodium)";
  // The plugin's own encode/decode decorators, on a Fastify instance that never listens.
  const app = Fastify({ logger: false });
  await app.register(fastifySecureSession, { key: randomBytes(32) });
  await app.ready();
  const session = app.createSecureSession({ ...SESSION_OBJECT }); // the plugin adds __ts
  const fn = () => app.decodeSecureSession(app.encodeSecureSession(session));
  const plaintextBytes = encoder.encode(
    JSON.stringify({ ...SESSION_OBJECT, __ts: session.get("__ts") }),
  ).length;
  return {
    name,
    group: "peer",
    kind: "encrypted",
    fn,
    async: false,
    tokenChars: app.encodeSecureSession(session).length,
    plaintextBytes,
    note: "XSalsa20-Poly1305 via sodium-native; the plugin adds __ts to the plaintext; base64 (not url-safe)",
    verify: async () => {
      const decoded = fn();
      if (!decoded) throw new Error(`${name}: did not decode`);
      assertEqual(decoded.data(), SESSION_OBJECT, name);
    },
  };
}

// Raw limits: the least work that turns the JSON into a cookie-safe token and back.

function rawAesCase(): CodecCase {
  const name = "raw node:crypto AES-256-GCM seal+open";
  const key = createSecretKey(randomBytes(32));
  const seal = (text: string) => {
    const iv = randomFillSync(Buffer.allocUnsafe(12));
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    const body = cipher.update(text, "utf8");
    cipher.final();
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  };
  const open = (token: string) => {
    const bytes = Buffer.from(token, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    const body = decipher.update(bytes.subarray(12, bytes.length - 16));
    decipher.final();
    return body.toString("utf8");
  };
  const fn = () => open(seal(SESSION_JSON));
  return {
    name,
    group: "raw",
    kind: "encrypted",
    fn,
    async: false,
    tokenChars: seal(SESSION_JSON).length,
    plaintextBytes: SESSION_BYTES,
    note: "fresh 96-bit IV, KeyObject made once, base64url; no version, key id or AAD",
    verify: async () => assertEqual(fn(), SESSION_JSON, name),
  };
}

function rawHmacCase(): CodecCase {
  const name = "raw node:crypto HMAC-SHA256 sign+verify";
  const key = createSecretKey(randomBytes(32));
  const sign = (text: string) => {
    const payload = Buffer.from(text, "utf8").toString("base64url");
    return `${payload}.${createHmac("sha256", key).update(payload).digest("base64url")}`;
  };
  const verify = (token: string) => {
    const dot = token.lastIndexOf(".");
    const payload = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1), "base64url");
    const expected = createHmac("sha256", key).update(payload).digest();
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    return Buffer.from(payload, "base64url").toString("utf8");
  };
  const fn = () => verify(sign(SESSION_JSON));
  return {
    name,
    group: "raw",
    kind: "signed",
    fn,
    async: false,
    tokenChars: sign(SESSION_JSON).length,
    plaintextBytes: SESSION_BYTES,
    note: "base64url(json).base64url(mac), KeyObject made once, constant-time compare",
    verify: async () => assertEqual(fn(), SESSION_JSON, name),
  };
}

async function rawWebCryptoCase(): Promise<CodecCase> {
  const name = "raw Web Crypto AES-256-GCM seal+open";
  const { subtle } = globalThis.crypto;
  const key = await subtle.importKey("raw", randomBytes(32), "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  const seal = async (text: string) => {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
    const body = await subtle.encrypt({ name: "AES-GCM", iv }, key, encoder.encode(text));
    return Buffer.concat([iv, new Uint8Array(body)]).toString("base64url");
  };
  const open = async (token: string) => {
    const bytes = Buffer.from(token, "base64url");
    const body = await subtle.decrypt(
      { name: "AES-GCM", iv: bytes.subarray(0, 12) },
      key,
      bytes.subarray(12),
    );
    return decoder.decode(body);
  };
  const fn = async () => open(await seal(SESSION_JSON));
  return {
    name,
    group: "raw",
    kind: "web",
    fn,
    async: true,
    tokenChars: (await seal(SESSION_JSON)).length,
    plaintextBytes: SESSION_BYTES,
    note: "crypto.subtle, CryptoKey imported once, fresh IV, base64url via Buffer",
    verify: async () => assertEqual(await fn(), SESSION_JSON, name),
  };
}

// ---------------------------------------------------------------------------------------------

const NAMES = {
  apiEncrypted: "sessionkit public API, encrypted (load+set+commit+load)",
  apiSigned: "sessionkit public API, signed (load+set+commit+load)",
  bareEncrypted: "sessionkit bare codec, encrypted (sealToken+openToken)",
  bareSigned: "sessionkit bare codec, signed (signToken+openToken)",
  bareWeb: "sessionkit bare codec, encrypted, Web Crypto backend",
  iron: "iron-webcrypto seal+unseal (defaults)",
  rawAes: "raw node:crypto AES-256-GCM seal+open",
  rawHmac: "raw node:crypto HMAC-SHA256 sign+verify",
  rawWeb: "raw Web Crypto AES-256-GCM seal+open",
} as const;

const RAW_OF: Record<Kind, string> = {
  encrypted: NAMES.rawAes,
  signed: NAMES.rawHmac,
  web: NAMES.rawWeb,
};

interface Row {
  name: string;
  group: Group;
  kind: Kind;
  comparedWith: string;
  /** Wall time per op, µs: the latency a caller sees. Ratios and targets use this. */
  summary: Summary;
  /** Process CPU time per op, µs: the cost of the work, robust to other processes on the machine. */
  cpu: Summary;
  opsPerSecond: number;
  /** This row's median over its raw limit's median: 1.2 means 20% slower than the limit. */
  vsRaw: number | undefined;
  /** The same ratio on CPU time. */
  vsRawCpu: number | undefined;
  /** iron's median over this row's median: 40 means 40x faster than iron. */
  vsIron: number | undefined;
  vsIronCpu: number | undefined;
  tokenChars: number;
  plaintextBytes: number;
  note: string | undefined;
  samples: Samples;
}

async function main(): Promise<void> {
  const wantJson = process.argv.includes("--json");
  if (nodeBackend.name !== "node") {
    throw new Error(
      '#crypto-backend resolved to the web backend: run "npm run bench:codec" under Node',
    );
  }
  const started = performance.now();
  const machine = machineInfo();
  const loadBefore = loadLine("start");

  const filterArg = process.argv.find((arg) => arg.startsWith("--filter="));
  const filter = filterArg ? new RegExp(filterArg.slice("--filter=".length), "i") : undefined;
  const allCases: CodecCase[] = [
    await publicApiCase("encrypted"),
    await publicApiCase("signed"),
    await publicApiCase("encrypted", "default"),
    await bareCodecCase("encrypted", nodeBackend, NAMES.bareEncrypted),
    await bareCodecCase("signed", nodeBackend, NAMES.bareSigned),
    await bareCodecCase("encrypted", webBackend, NAMES.bareWeb),
    await ironCase(),
    cookieSignatureCase(),
    await fastifySecureSessionCase(),
    rawAesCase(),
    rawHmacCase(),
    await rawWebCryptoCase(),
  ];
  const cases = allCases.filter((item) => !filter || filter.test(item.name));
  for (const item of cases) await item.verify();

  process.stderr.write(`measuring ${cases.length} cases, ${SAMPLES} interleaved samples each\n`);
  const results = await measure(cases, {
    samples: SAMPLES,
    sampleMs: SAMPLE_MS,
    warmupMs: WARMUP_MS,
    onRound: (round, rounds) => process.stderr.write(`\rround ${round}/${rounds}`),
  });
  process.stderr.write("\n");

  const wallOf = (name: string) => median(results.get(name)?.wall ?? []);
  const cpuOf = (name: string) => median(results.get(name)?.cpu ?? []);
  const rows: Row[] = cases.map((item) => {
    const samples = results.get(item.name) as Samples;
    const summary = summarize(samples.wall);
    const cpu = summarize(samples.cpu);
    const comparedWith = RAW_OF[item.kind];
    const hasRaw = results.has(comparedWith);
    const hasIron = results.has(NAMES.iron);
    return {
      name: item.name,
      group: item.group,
      kind: item.kind,
      comparedWith,
      summary,
      cpu,
      opsPerSecond: 1e6 / summary.median,
      vsRaw: hasRaw ? summary.median / wallOf(comparedWith) : undefined,
      vsRawCpu: hasRaw ? cpu.median / cpuOf(comparedWith) : undefined,
      vsIron: hasIron ? wallOf(NAMES.iron) / summary.median : undefined,
      vsIronCpu: hasIron ? cpuOf(NAMES.iron) / cpu.median : undefined,
      tokenChars: item.tokenChars,
      plaintextBytes: item.plaintextBytes,
      note: item.note,
      samples,
    };
  });
  const row = (name: string) => rows.find((r) => r.name === name);

  const rawLabel: Record<Kind, string> = { encrypted: "AES-GCM", signed: "HMAC", web: "WebCrypto" };
  const table = markdownTable(
    [
      "name",
      "µs/op (median)",
      "min-max µs",
      "ops/s",
      "vs raw (row/raw)",
      "vs iron (iron/row)",
      "CPU µs/op",
      "token chars",
    ],
    rows.map((r) => [
      r.name,
      formatNumber(r.summary.median),
      formatRange(r.summary),
      formatRate(r.opsPerSecond),
      `${formatRatio(r.vsRaw)} ${rawLabel[r.kind]}`,
      formatRatio(r.vsIron),
      formatNumber(r.cpu.median),
      String(r.tokenChars),
    ]),
    ["left", "right", "right", "right", "right", "right", "right", "right"],
  );

  const pick = (name: string, key: "vsRaw" | "vsIron") => {
    const r = row(name);
    return r && { wall: r[key], cpu: key === "vsRaw" ? r.vsRawCpu : r.vsIronCpu };
  };
  const checks: Check[] = [
    within(
      "encrypted bare codec within 1.3x of raw AES-256-GCM",
      pick(NAMES.bareEncrypted, "vsRaw"),
      1.3,
    ),
    atLeast(
      "encrypted bare codec at least 40x faster than iron-webcrypto",
      pick(NAMES.bareEncrypted, "vsIron"),
      40,
    ),
    within(
      "signed bare codec within 1.3x of raw HMAC-SHA256",
      pick(NAMES.bareSigned, "vsRaw"),
      1.3,
    ),
    atLeast(
      "public-API round trip (encrypted, token cache off) at least 30x faster than iron",
      pick(NAMES.apiEncrypted, "vsIron"),
      30,
    ),
    atLeast(
      "public-API round trip (signed, token cache off) at least 30x faster than iron",
      pick(NAMES.apiSigned, "vsIron"),
      30,
    ),
    within(
      "Web Crypto backend within 1.5x of raw Web Crypto AES-GCM",
      pick(NAMES.bareWeb, "vsRaw"),
      1.5,
    ),
  ].filter((check): check is Check => check !== undefined);

  const seconds = (performance.now() - started) / 1000;
  const lines = [
    "# sessionkit codec benchmark",
    "",
    machineLine(machine),
    `Command: ${commandLine()}`,
    loadBefore,
    loadLine("end"),
    `Method: one round trip (encode + decode) of a ${SESSION_BYTES}-byte JSON session per op; ${SAMPLES} interleaved timed batches of ~${SAMPLE_MS} ms per case after ${WARMUP_MS} ms warm-up; median and min-max of the batch means (wall time; CPU µs/op is process CPU time, all threads). Run took ${seconds.toFixed(1)} s.`,
    "",
    table,
    "",
    ...checks.map(formatCheck),
    "",
    "Notes:",
    ...rows.filter((r) => r.note).map((r) => `- ${r.name}: ${r.note}.`),
    ...rows
      .filter((r) => r.plaintextBytes !== SESSION_BYTES)
      .map(
        (r) =>
          `- ${r.name}: encodes ${r.plaintextBytes} plaintext bytes (the same session plus its own fields).`,
      ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);

  if (wantJson) {
    const file = fileURLToPath(new URL("./results/codec.json", import.meta.url));
    await writeJson(file, {
      benchmark: "codec",
      machine,
      command: commandLine(),
      method: {
        samples: SAMPLES,
        sampleMs: SAMPLE_MS,
        warmupMs: WARMUP_MS,
        sessionBytes: SESSION_BYTES,
        unit: "µs/op",
      },
      rows,
      checks,
      load: { start: loadBefore, end: loadLine("end") },
      seconds,
    });
    process.stderr.write(`wrote ${file}\n`);
  }
}

type Ratios = { wall: number | undefined; cpu: number | undefined } | undefined;

/** Verdicts use wall-time medians; the CPU-time ratio is shown beside them as a noise check. */
function within(label: string, ratios: Ratios, limit: number): Check | undefined {
  if (ratios?.wall === undefined) return undefined; // a --filter left a side of the comparison out
  return {
    label,
    pass: ratios.wall <= limit,
    detail: `${formatRatio(ratios.wall)} (CPU time ${formatRatio(ratios.cpu)}; target <= ${limit}x)`,
  };
}

function atLeast(label: string, ratios: Ratios, limit: number): Check | undefined {
  if (ratios?.wall === undefined) return undefined;
  return {
    label,
    pass: ratios.wall >= limit,
    detail: `${formatRatio(ratios.wall)} faster (CPU time ${formatRatio(ratios.cpu)}; target >= ${limit}x)`,
  };
}

await main();
