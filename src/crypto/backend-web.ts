import {
  type CryptoBackend,
  HMAC_BASE64URL_CHARS,
  HMAC_BYTES,
  IV_BYTES,
  TAG_BYTES,
} from "./backend.js";

const subtle = globalThis.crypto.subtle;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** 6-bit value to character code. */
const ENCODE = Uint8Array.from(ALPHABET, (char) => char.charCodeAt(0));
const INVALID = 0x40;
/** Character code to 6-bit value; `INVALID` for anything outside the alphabet. */
const DECODE = new Uint8Array(128).fill(INVALID);
for (let i = 0; i < ENCODE.length; i++) DECODE[ENCODE[i] as number] = i;
/** Below this many bytes, `String.fromCharCode` on a code array is cheapest; above, TextDecoder. */
const SHORT_TEXT_BYTES = 512;
const latin1 = new TextDecoder("latin1");

/**
 * One pass from bytes to base64url characters, no padding. The btoa route needs a binary string, a
 * regular-expression pass per character class and a padding strip: about 25x slower for a cookie.
 */
function encodeBase64Url(bytes: Uint8Array): string {
  const length = bytes.length;
  const out = new Uint8Array(Math.ceil((length * 4) / 3));
  let o = 0;
  let i = 0;
  for (; i + 2 < length; i += 3) {
    const n =
      ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out[o++] = ENCODE[n >> 18] as number;
    out[o++] = ENCODE[(n >> 12) & 63] as number;
    out[o++] = ENCODE[(n >> 6) & 63] as number;
    out[o++] = ENCODE[n & 63] as number;
  }
  if (i < length) {
    const n = ((bytes[i] as number) << 16) | (i + 1 < length ? (bytes[i + 1] as number) << 8 : 0);
    out[o++] = ENCODE[n >> 18] as number;
    out[o++] = ENCODE[(n >> 12) & 63] as number;
    if (i + 1 < length) out[o++] = ENCODE[(n >> 6) & 63] as number;
  }
  // ASCII only, so latin1 decoding is exact.
  return o <= SHORT_TEXT_BYTES
    ? String.fromCharCode.apply(null, out as unknown as number[])
    : latin1.decode(out);
}

/**
 * One pass from base64url to bytes; `null` for anything but canonical unpadded base64url (a
 * character outside the alphabet, an impossible length, or unused low bits set in the last
 * character), the same verdict as `isBase64Url`.
 */
function decodeBase64Url(text: string): Uint8Array | null {
  const length = text.length;
  const rest = length & 3;
  if (rest === 1) return null;
  const out = new Uint8Array((length * 3) >> 2);
  let o = 0;
  let i = 0;
  for (const end = length - rest; i < end; i += 4) {
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    const c = sextet(text, i + 2);
    const d = sextet(text, i + 3);
    // INVALID has a bit no sextet has: one test covers all four characters.
    if ((a | b | c | d) & INVALID) return null;
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 15) << 4) | (c >> 2);
    out[o++] = ((c & 3) << 6) | d;
  }
  if (rest !== 0) {
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    const c = rest === 3 ? sextet(text, i + 2) : 0;
    if ((a | b | c) & INVALID) return null;
    // The last character's unused low bits must be zero, or two texts would decode alike.
    if (rest === 2 ? (b & 15) !== 0 : (c & 3) !== 0) return null;
    out[o++] = (a << 2) | (b >> 4);
    if (rest === 3) out[o] = ((b & 15) << 4) | (c >> 2);
  }
  return out;
}

/** The 6-bit value of one character, or `INVALID`. */
function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < 128 ? (DECODE[code] as number) : INVALID;
}

async function importIkm(ikm: Uint8Array): Promise<CryptoKey> {
  return subtle.importKey("raw", ikm as BufferSource, "HKDF", false, ["deriveKey"]);
}

function hkdfParams(info: string): HkdfParams {
  // Salt-less HKDF is sound for high-entropy input key material (RFC 5869 section 3.1).
  return { name: "HKDF", hash: "SHA-256", salt: EMPTY, info: encoder.encode(info) };
}

/** Web Crypto backend: runs unchanged on Deno, Bun, Cloudflare Workers, browsers and Node. */
export const backend: CryptoBackend = {
  name: "web",
  async deriveAesKey(ikm, info) {
    return subtle.deriveKey(
      hkdfParams(info),
      await importIkm(ikm),
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
  },
  async deriveHmacKey(ikm, info) {
    return subtle.deriveKey(
      hkdfParams(info),
      await importIkm(ikm),
      { name: "HMAC", hash: "SHA-256", length: 256 },
      false,
      ["sign", "verify"],
    );
  },
  async seal(key, plaintext, aad) {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const ct = await subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: aad as BufferSource },
      key as CryptoKey,
      encoder.encode(plaintext),
    );
    const out = new Uint8Array(IV_BYTES + ct.byteLength);
    out.set(iv);
    out.set(new Uint8Array(ct), IV_BYTES);
    return out;
  },
  async open(key, sealed, aad) {
    if (sealed.length < IV_BYTES + TAG_BYTES) return null;
    try {
      const pt = await subtle.decrypt(
        {
          name: "AES-GCM",
          iv: sealed.subarray(0, IV_BYTES) as BufferSource,
          additionalData: aad as BufferSource,
        },
        key as CryptoKey,
        sealed.subarray(IV_BYTES) as BufferSource,
      );
      return new Uint8Array(pt);
    } catch {
      // OperationError: the tag did not authenticate.
      return null;
    }
  },
  async sign(key, data) {
    return encodeBase64Url(
      new Uint8Array(await subtle.sign("HMAC", key as CryptoKey, encoder.encode(data))),
    );
  },
  async verify(key, data, mac) {
    if (mac.length !== HMAC_BASE64URL_CHARS) return false;
    // Canonical text only: otherwise two spellings of one MAC would both verify.
    const bytes = decodeBase64Url(mac);
    if (!bytes || bytes.length !== HMAC_BYTES) return false;
    // subtle.verify compares in constant time.
    return subtle.verify("HMAC", key as CryptoKey, bytes as BufferSource, encoder.encode(data));
  },
  async sha256(data) {
    return new Uint8Array(await subtle.digest("SHA-256", data as BufferSource));
  },
  randomBytes(length) {
    return globalThis.crypto.getRandomValues(new Uint8Array(length));
  },
  encodeUtf8(text) {
    return encoder.encode(text);
  },
  decodeUtf8(bytes) {
    try {
      return decoder.decode(bytes);
    } catch {
      return null;
    }
  },
  encodeBase64Url,
  decodeBase64Url,
};
