import { isBase64Url } from "../crypto/backend.js";
import type { SessionMeta } from "../stores/store.js";
import { FLASH_PREFIX, flashFieldsOf, isFlashField, isFlashMessage } from "./flash.js";

/** Bytes of a session's CSRF seed (`SessionMeta.csrf`): 128 bits, unguessable without the secret. */
export const CSRF_SEED_BYTES = 16;
/** The seed in unpadded base64url. */
const CSRF_SEED_CHARS = Math.ceil((CSRF_SEED_BYTES * 4) / 3);

/** The plaintext of a cookie session: short keys, because every byte rides on every request. */
interface WireRecord {
  i: string;
  d: Record<string, unknown>;
  c: number;
  t: number;
  r: number;
  u?: string;
  /** Flash messages by id (their meta field without its `flash:` prefix), oldest first. */
  f?: Record<string, [level: string, message: string]>;
  p?: boolean;
  /** The CSRF seed. */
  x?: string;
}

export interface CookieRecord {
  id: string;
  data: Record<string, unknown>;
  meta: SessionMeta;
}

export function encodeRecord(id: string, data: Record<string, unknown>, meta: SessionMeta): string {
  const wire: WireRecord = {
    i: id,
    d: data,
    c: meta.createdAt,
    t: meta.touchedAt,
    r: meta.renewedAt,
  };
  if (meta.userId !== undefined) wire.u = meta.userId;
  const flashes = flashFieldsOf(meta);
  if (flashes.length > 0) {
    const f: Record<string, [string, string]> = {};
    for (const field of flashes)
      f[field.slice(FLASH_PREFIX.length)] = meta[field] as [string, string];
    wire.f = f;
  }
  if (meta.persistent !== undefined) wire.p = meta.persistent;
  if (meta.csrf !== undefined) wire.x = meta.csrf;
  return JSON.stringify(wire);
}

/**
 * The inverse of `encodeRecord`, checking the shape: the token authenticated, but a record written by
 * another version (or another app sharing the secret) must still not reach a handler half-formed.
 */
export function decodeRecord(text: string): CookieRecord | undefined {
  let wire: unknown;
  try {
    wire = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(wire)) return undefined;
  const { i, d, c, t, r, u, f, p, x } = wire as Partial<WireRecord>;
  if (typeof i !== "string" || !isPlainObject(d) || !isTime(c) || !isTime(t) || !isTime(r)) {
    return undefined;
  }
  if (u !== undefined && typeof u !== "string") return undefined;
  if (f !== undefined && !isFlashRecord(f)) return undefined;
  if (p !== undefined && typeof p !== "boolean") return undefined;
  if (x !== undefined && !isCsrfSeed(x)) return undefined;
  const meta: SessionMeta = { createdAt: c, touchedAt: t, renewedAt: r };
  if (u !== undefined) meta.userId = u;
  if (f !== undefined) for (const id in f) meta[`${FLASH_PREFIX}${id}`] = f[id] as [string, string];
  if (p !== undefined) meta.persistent = p;
  if (x !== undefined) meta.csrf = x;
  return { id: i, data: d, meta };
}

/**
 * Whether a store record's meta has the shape this version writes: a row written by another version
 * or by hand (createdAt as a date string, userId as a number, a flash message as a string) must not reach a
 * handler, a deadline computation or a devices page half-formed, as `decodeRecord` ensures for a
 * cookie record. Lengths are the write side's (and listByUser's) to bound.
 */
export function isSessionMeta(meta: unknown): meta is SessionMeta {
  if (!isPlainObject(meta)) return false;
  const {
    createdAt,
    touchedAt,
    renewedAt,
    userId,
    persistent,
    label,
    userAgent,
    ip,
    csrf,
    lineage,
  } = meta as Partial<Record<keyof SessionMeta, unknown>>;
  return (
    isTime(createdAt) &&
    isTime(touchedAt) &&
    isTime(renewedAt) &&
    isOptional(userId, "string") &&
    isOptional(label, "string") &&
    isOptional(userAgent, "string") &&
    isOptional(ip, "string") &&
    isOptional(lineage, "string") &&
    isOptional(persistent, "boolean") &&
    (csrf === undefined || isCsrfSeed(csrf)) &&
    flashesValid(meta)
  );
}

/** Whether every flash field of a stored meta holds one message. */
function flashesValid(meta: Record<string, unknown>): boolean {
  for (const field in meta) if (isFlashField(field) && !isFlashMessage(meta[field])) return false;
  return true;
}

/**
 * Whether `value` is a seed as `csrfToken()` makes them. Any other string (a short one, one a hand
 * edit left) is refused with its record rather than trusted as a secret to sign tokens with.
 */
function isCsrfSeed(value: unknown): value is string {
  return typeof value === "string" && value.length === CSRF_SEED_CHARS && isBase64Url(value);
}

function isOptional(value: unknown, type: "string" | "boolean"): boolean {
  return value === undefined || typeof value === type;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isFlashRecord(value: unknown): value is Record<string, [string, string]> {
  if (!isPlainObject(value)) return false;
  for (const id in value) if (!isFlashMessage(value[id])) return false;
  return true;
}

/**
 * The UTF-8 length of `text`, as `TextEncoder` would encode it (a lone surrogate becomes U+FFFD, three
 * bytes), without allocating the bytes: the size guard runs on every change to a cookie session.
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      // A pair: two UTF-16 units, four bytes.
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
