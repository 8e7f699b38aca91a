/**
 * The primitives the codecs need, behind one seam so a runtime can use its fastest implementation.
 * `#crypto-backend` resolves to `backend-node.ts` under the "node" export condition (node:crypto,
 * synchronous, ~5x faster than Web Crypto on Node 20) and to `backend-web.ts` everywhere else.
 * Methods may answer synchronously; callers always `await`.
 */
export type MaybePromise<T> = T | Promise<T>;

/** Applies `fn` to a value at once, or when its promise settles: no promise where there was none. */
export function after<T, R>(value: MaybePromise<T>, fn: (value: T) => R): MaybePromise<R> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

/** An opaque derived key: a `CryptoKey` on Web Crypto, a `KeyObject` on node:crypto. */
export type BackendKey = unknown;

export interface CryptoBackend {
  readonly name: "node" | "web";
  /** HKDF-SHA256 from input key material to a 256-bit AES-GCM key for `info`. */
  deriveAesKey(ikm: Uint8Array, info: string): Promise<BackendKey>;
  /** HKDF-SHA256 from input key material to an HMAC-SHA256 key for `info`. */
  deriveHmacKey(ikm: Uint8Array, info: string): Promise<BackendKey>;
  /**
   * AES-256-GCM of the UTF-8 of `plaintext` with a fresh random 96-bit IV; returns
   * iv || ciphertext || tag. Text in, so node:crypto encodes it natively without a `TextEncoder` pass.
   */
  seal(key: BackendKey, plaintext: string, aad: Uint8Array): MaybePromise<Uint8Array>;
  /** The inverse of `seal`; `null` when authentication fails. Never throws on bad input. */
  open(key: BackendKey, sealed: Uint8Array, aad: Uint8Array): MaybePromise<Uint8Array | null>;
  /** HMAC-SHA256 of the UTF-8 of `data`, as unpadded base64url (`HMAC_BASE64URL_CHARS` characters). */
  sign(key: BackendKey, data: string): MaybePromise<string>;
  /**
   * Constant-time check that `mac` is exactly the text `sign(key, data)` returns. The expected MAC is
   * canonical base64url, so a non-canonical spelling of the right bytes never matches.
   */
  verify(key: BackendKey, data: string, mac: string): MaybePromise<boolean>;
  sha256(data: Uint8Array): MaybePromise<Uint8Array>;
  randomBytes(length: number): Uint8Array;
  encodeUtf8(text: string): Uint8Array;
  /** `null` for bytes that are not valid UTF-8 (never a replacement character). */
  decodeUtf8(bytes: Uint8Array): string | null;
  encodeBase64Url(bytes: Uint8Array): string;
  /**
   * `null` for anything that is not canonical unpadded base64url. `authenticated`: the text was just
   * verified by a MAC over its exact characters, so a backend may skip the alphabet check.
   */
  decodeBase64Url(text: string, authenticated?: boolean): Uint8Array | null;
}

/** AES-GCM sizes (NIST SP 800-38D): 96-bit IV, 128-bit tag. */
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const HMAC_BYTES = 32;
/** An HMAC-SHA256 in unpadded base64url: ceil(32 * 4 / 3). */
export const HMAC_BASE64URL_CHARS = 43;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Shared by both backends: true only for canonical unpadded base64url. Decoders ignore the unused
 * low bits of the last character, so without this check two different strings would open as the
 * same token and a flipped bit would go unnoticed.
 */
export function isBase64Url(text: string): boolean {
  const rest = text.length % 4;
  if (rest === 1 || !BASE64URL.test(text)) return false;
  if (rest === 0) return true;
  const last = ALPHABET.indexOf(text.charAt(text.length - 1));
  return (last & (rest === 2 ? 0b1111 : 0b11)) === 0;
}
