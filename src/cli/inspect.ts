import { readFile } from "node:fs/promises";
import { backend } from "#crypto-backend";
import { hashSessionId } from "../crypto/id.js";
import { createKeyring, normalizeSecrets, type SecretInput } from "../crypto/keyring.js";
import { openToken } from "../crypto/token.js";
import { isSessionError } from "../errors.js";
import { parseDurationMs } from "../internal/duration.js";
import { flashEntriesOf } from "../internal/flash.js";
import { decodeRecord } from "../internal/record.js";
import { createSessions } from "../manager.js";
import { DEFAULTS, type InvalidReason, type SessionsOptions } from "../options.js";
import {
  CHUNK_VALUE_BYTES,
  MAX_CHUNKS,
  parseCookies,
  readCookieToken,
} from "../transport/cookie.js";
import { type CliIo, EXIT, parseCommandArgs, UsageError } from "./io.js";

export const INSPECT_USAGE = `Usage: sessionkit inspect <token | cookie header | -> [options]

Opens a session token with your secret and prints what it holds: the data, the user, the created and
touched times and the idle and absolute deadlines; or why it does not open (malformed, unknown key,
tampered, expired), with exit code 1. The secret is never printed.

  <token>              an e1 (encrypted) or s1 (signed) cookie token, or an i1 store session id token;
                       a whole Cookie header ("sid=...; other=...") also works, chunks included;
                       "-" reads it from standard input (keeps it out of your shell history)

Options:
  --secret-file <path> read the secret(s) from a file instead of $SESSIONKIT_SECRET
  --cookie-name <name> the cookie name the token was issued for (it is authenticated); default "sid"
  --idle <duration>    the app's idleTimeout ("30m", "7d", seconds, or "false"); default "${DEFAULTS.idleTimeout}"
  --absolute <duration> the app's absoluteTimeout; default "${DEFAULTS.absoluteTimeout}"
  --remember-idle <duration>, --remember-absolute <duration>
                       the app's rememberMe option: the deadlines of a remembered session (one that
                       called rememberMe()); unset, a remembered session is judged by --idle/--absolute
  --json               print one JSON object instead of text
  -h, --help           show this help

Secrets: SESSIONKIT_SECRET (or the file) holds one secret, or several separated by newlines or commas
(the rotation list: the first is the current one, all may open). Write "keyId=secret" entries when the
app gives explicit key ids ({ keyId: secret }).

Exit codes: 0 the token opens and is live; 1 it does not open or has expired; 2 bad arguments.`;

/** The largest token the core ever accepts: the chunk ceiling. */
const MAX_TOKEN_CHARS = MAX_CHUNKS * CHUNK_VALUE_BYTES;
const KEYED_SECRET = /^([A-Za-z0-9_-]{1,16})=(.+)$/;
const FORMATS = Object.freeze({
  e1: "e1 (encrypted cookie session, AES-256-GCM)",
  s1: "s1 (signed cookie session, HMAC-SHA256: the client can read the data)",
  i1: "i1 (store session id, HMAC-SHA256 signed)",
});
const REASONS: Readonly<Record<InvalidReason, string>> = Object.freeze({
  malformed: "malformed: not a sessionkit token, or cut short",
  "unknown-key": "unknown-key: none of the given secrets has this token's key id",
  tampered:
    "tampered: the authentication check failed (changed token, wrong secret or wrong cookie name)",
  oversized: `oversized: longer than ${MAX_TOKEN_CHARS} characters`,
  "expired-idle": "expired-idle: the idle deadline has passed",
  "expired-absolute": "expired-absolute: the absolute deadline has passed",
  schema: "schema: the data fails the schema",
  "unknown-session": "unknown-session: the store has no such session",
});

export async function inspectCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      "secret-file": { type: "string" },
      "cookie-name": { type: "string", default: DEFAULTS.cookieName },
      idle: { type: "string", default: DEFAULTS.idleTimeout },
      absolute: { type: "string", default: DEFAULTS.absoluteTimeout },
      "remember-idle": { type: "string" },
      "remember-absolute": { type: "string" },
      json: { type: "boolean", default: false },
    },
    INSPECT_USAGE,
  );
  if (values.help) {
    io.stdout(`${INSPECT_USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      "inspect takes exactly one token (or - to read it from stdin)",
      INSPECT_USAGE,
    );
  }
  const cookieName = values["cookie-name"] as string;
  const rememberIdle = values["remember-idle"] as string | undefined;
  const rememberAbsolute = values["remember-absolute"] as string | undefined;
  const ordinary = {
    idle: durationFlag("--idle", values.idle as string),
    absolute: durationFlag("--absolute", values.absolute as string),
  };
  const remembered = {
    idle:
      rememberIdle === undefined ? ordinary.idle : durationFlag("--remember-idle", rememberIdle),
    absolute:
      rememberAbsolute === undefined
        ? ordinary.absolute
        : durationFlag("--remember-absolute", rememberAbsolute),
  };
  const secret = await readSecrets(io, values["secret-file"] as string | undefined);
  const raw = positionals[0] === "-" ? (await io.readStdin()).trim() : (positionals[0] as string);
  const token = tokenFrom(raw, cookieName);

  // Every check below is the core's own: the same parser, key ring, token opener and record decoder.
  let secrets: ReturnType<typeof normalizeSecrets>;
  try {
    secrets = normalizeSecrets(secret);
  } catch (err) {
    if (isSessionError(err, "ERR_CONFIG"))
      throw new UsageError(err.message.replace(/^sessionkit: /, ""), INSPECT_USAGE);
    throw err;
  }
  const keyring = await createKeyring(secrets, backend);
  const report = (lines: Record<string, unknown>, exit: number, json = lines): number => {
    if (values.json) io.stdout(`${JSON.stringify({ ok: exit === EXIT.ok, ...json }, null, 2)}\n`);
    else {
      for (const [label, value] of Object.entries(lines)) {
        if (value === undefined) continue;
        const text =
          typeof value === "object" && value !== null
            ? `\n${JSON.stringify(value, null, 2)}`
            : ` ${printable(String(value))}`;
        (label === "refused" ? io.stderr : io.stdout)(`${label}:${text}\n`);
      }
    }
    return exit;
  };

  if (token === undefined) return report({ refused: REASONS.malformed }, EXIT.failed);
  if (token.length > MAX_TOKEN_CHARS) return report({ refused: REASONS.oversized }, EXIT.failed);
  const keyId = keyIdOf(token);
  const opened = await openToken(backend, keyring, token, cookieName);
  if (typeof opened === "string") {
    return report(
      {
        refused: REASONS[opened],
        ...(opened === "unknown-key"
          ? { keyId, knownKeyIds: [...keyring.byId.keys()].join(", ") }
          : {}),
        ...(opened === "tampered" ? { cookieName } : {}),
      },
      EXIT.failed,
    );
  }
  const keyNote = opened.stale
    ? "an older secret (re-sealed with the current one on next use)"
    : "the current secret";
  const head = { format: FORMATS[opened.version], keyId: `${keyId}, ${keyNote}`, cookieName };

  if (opened.version === "i1") {
    // The id itself is a credential: show only the key the store files it under (its SHA-256).
    return report(
      {
        ...head,
        signature: "verifies",
        storeKey: await hashSessionId(backend, opened.text),
        note: "the data, user and deadlines of a store session live in the store, under this key",
      },
      EXIT.ok,
    );
  }

  const record = decodeRecord(opened.text);
  if (!record) return report({ ...head, refused: REASONS.malformed }, EXIT.failed);
  const { meta } = record;
  const entries = flashEntriesOf(meta);
  const flashes = entries.length > 0 ? entries : undefined;
  // The verdict comes from the manager itself, so the CLI and the app agree on what has expired.
  const verdict = await verdictOf(secret, token, cookieName, opened.version, {
    idleTimeout: asOption(values.idle as string),
    absoluteTimeout: asOption(values.absolute as string),
    ...(rememberIdle === undefined && rememberAbsolute === undefined
      ? {}
      : {
          rememberMe: {
            ...(rememberIdle === undefined ? {} : { idleTimeout: asOption(rememberIdle) }),
            ...(rememberAbsolute === undefined
              ? {}
              : { absoluteTimeout: asOption(rememberAbsolute) }),
          },
        }),
  });
  const now = Date.now();
  // A remembered session lives by the rememberMe deadlines, as the manager judged it above.
  const { idle, absolute } = meta.persistent === true ? remembered : ordinary;
  const idleDeadline = idle === undefined ? undefined : meta.touchedAt + idle;
  const absoluteDeadline = absolute === undefined ? undefined : meta.createdAt + absolute;
  const refused = verdict === undefined ? undefined : REASONS[verdict];
  return report(
    {
      ...head,
      status: verdict === undefined ? "live" : undefined,
      refused,
      userId: meta.userId ?? "(none)",
      createdAt: when(meta.createdAt, now),
      touchedAt: when(meta.touchedAt, now),
      renewedAt: when(meta.renewedAt, now),
      idleDeadline: idleDeadline === undefined ? "none" : when(idleDeadline, now),
      absoluteDeadline: absoluteDeadline === undefined ? "none" : when(absoluteDeadline, now),
      rememberMe: meta.persistent,
      data: record.data,
      flash: flashes,
    },
    verdict === undefined ? EXIT.ok : EXIT.failed,
    {
      format: opened.version,
      keyId,
      staleKey: opened.stale,
      cookieName,
      refused: verdict,
      userId: meta.userId,
      createdAt: meta.createdAt,
      touchedAt: meta.touchedAt,
      renewedAt: meta.renewedAt,
      idleDeadline,
      absoluteDeadline,
      rememberMe: meta.persistent,
      data: record.data,
      flash: flashes,
    },
  );
}

/** Loads the token through a manager configured like the app; resolves the refusal, if any. */
async function verdictOf(
  secret: SecretInput,
  token: string,
  cookieName: string,
  version: "e1" | "s1",
  deadlines: Pick<SessionsOptions, "idleTimeout" | "absoluteTimeout" | "rememberMe">,
): Promise<InvalidReason | undefined> {
  let reason: InvalidReason | undefined;
  let sessions: ReturnType<typeof createSessions>;
  try {
    sessions = createSessions({
      secret,
      mode: version === "s1" ? "signed" : "encrypted",
      cookie: { name: cookieName },
      ...deadlines,
      maxSize: MAX_TOKEN_CHARS,
      onInvalid: (r) => {
        reason = r;
      },
    });
  } catch (err) {
    // Deadlines the app itself could not start with (idle past absolute, a remembered one shorter).
    if (isSessionError(err, "ERR_CONFIG"))
      throw new UsageError(err.message.replace(/^sessionkit: /, ""), INSPECT_USAGE);
    throw err;
  }
  await sessions.load(new Headers({ cookie: `${cookieName}=${token}` }));
  return reason;
}

/** A flag's duration in ms, `undefined` for "false"; a bad one is a usage error. */
function durationFlag(flag: string, text: string): number | undefined {
  const option = asOption(text);
  if (option === false) return undefined;
  const ms = parseDurationMs(option);
  if (ms === undefined || ms <= 0) {
    throw new UsageError(
      `${flag} must be a duration such as "30m", "12h" or "7d", a number of seconds, or "false"`,
      INSPECT_USAGE,
    );
  }
  return ms;
}

/** The flag as `createSessions` takes it: a bare number is seconds, "false" switches it off. */
function asOption(text: string): string | number | false {
  if (text === "false" || text === "none") return false;
  return /^\d+(?:\.\d+)?$/.test(text.trim()) ? Number(text) : text;
}

async function readSecrets(io: CliIo, file: string | undefined): Promise<SecretInput> {
  let text: string | undefined;
  if (file !== undefined) {
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new UsageError(
        `cannot read --secret-file (${(err as { code?: string }).code ?? "error"})`,
        INSPECT_USAGE,
      );
    }
  } else text = io.env.SESSIONKIT_SECRET;
  const entries = (text ?? "")
    .split(/[\n,]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) {
    throw new UsageError(
      "no secret: set SESSIONKIT_SECRET or pass --secret-file (the app's secret, or its rotation list)",
      INSPECT_USAGE,
    );
  }
  const keyed = entries.map((entry) => KEYED_SECRET.exec(entry));
  if (keyed.every((match) => match === null))
    return entries.length === 1 ? (entries[0] as string) : entries;
  if (keyed.some((match) => match === null)) {
    throw new UsageError(
      'either every secret is "keyId=secret" or none is; the app uses one form for all',
      INSPECT_USAGE,
    );
  }
  return Object.fromEntries(keyed.map((match) => [match?.[1], match?.[2]]));
}

/** The token itself, or the one a Cookie header carries under the name (chunks joined). */
function tokenFrom(input: string, cookieName: string): string | undefined {
  const text = input.trim().replace(/^cookie:\s*/i, "");
  if (!text.includes("=")) return text === "" ? undefined : text;
  return readCookieToken(parseCookies(text), cookieName, Number.POSITIVE_INFINITY).token;
}

/** The key id between the first two dots: public, a label of the secret and never the secret. */
function keyIdOf(token: string): string {
  const [, kid = ""] = token.split(".", 2);
  return /^[A-Za-z0-9_-]{1,16}$/.test(kid) ? kid : "?";
}

function when(at: number, now: number): string {
  const delta = at - now;
  const span = humanSpan(Math.abs(delta));
  return `${new Date(at).toISOString()} (${delta >= 0 ? `in ${span}` : `${span} ago`})`;
}

function humanSpan(ms: number): string {
  const units: Array<[string, number]> = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ];
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of units) {
    const count = Math.floor(rest / size);
    if (count > 0 && parts.length < 2) parts.push(`${count}${unit}`);
    rest -= count * size;
  }
  return parts.length > 0 ? parts.join(" ") : "0s";
}

// C0 and C1 controls, and the bidi overrides and isolates that reorder what a terminal shows.
const UNPRINTABLE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

/**
 * A field for the operator's terminal: as it is, or JSON-escaped when it holds a control or bidi
 * character. A user id is often user-chosen, and raw escape sequences would retitle the window,
 * clear the screen and print a fake status line.
 */
function printable(text: string): string {
  return UNPRINTABLE.test(text) ? JSON.stringify(text) : text;
}
