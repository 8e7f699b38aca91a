import type { CryptoBackend, MaybePromise } from "./backend.js";
import { after, HMAC_BASE64URL_CHARS, IV_BYTES, TAG_BYTES } from "./backend.js";
import type { KeyEntry, Keyring } from "./keyring.js";

/**
 * Token formats. Every token starts with a format version and a key id, so formats and secrets can
 * rotate independently:
 * - `e1.<kid>.<base64url(iv || ciphertext || tag)>`: AES-256-GCM, cookie sessions (default).
 * - `s1.<kid>.<base64url(json)>.<base64url(hmac)>`: HMAC-SHA256, readable cookie sessions.
 * - `i1.<kid>.<session id>.<base64url(hmac)>`: HMAC-SHA256 of a session id, store sessions.
 * The binding (the cookie name) is authenticated too, so a token cannot move to another cookie.
 */
export type TokenVersion = "e1" | "s1" | "i1";

/** Why a token did not open. Never carries the token itself. */
export type TokenFailure = "malformed" | "unknown-key" | "tampered";

/** The e1 associated data per key and binding: a few byte strings that serve every request. */
const aadCache = new WeakMap<KeyEntry, Map<string, Uint8Array>>();

/**
 * The associated data of an e1 token: its prefix (`e1.<kid>.`) and the binding. NUL cannot appear in
 * a token or a cookie name, so the encoding is unambiguous. Keyed by the key entry, not by text from
 * the token: client input can neither grow the cache nor pay for hashing a fresh string.
 */
function aadOf(backend: CryptoBackend, key: KeyEntry, binding: string): Uint8Array {
  let byBinding = aadCache.get(key);
  if (byBinding === undefined) {
    byBinding = new Map();
    aadCache.set(key, byBinding);
  }
  let bytes = byBinding.get(binding);
  if (bytes === undefined) {
    // Bindings are cookie names from configuration; the cap is a backstop for odd callers.
    if (byBinding.size >= AAD_BINDINGS_MAX) byBinding.clear();
    bytes = backend.encodeUtf8(`e1.${key.id}.\0${binding}`);
    byBinding.set(binding, bytes);
  }
  return bytes;
}

const AAD_BINDINGS_MAX = 16;

export function sealToken(
  backend: CryptoBackend,
  keyring: Keyring,
  plaintext: string,
  binding: string,
): MaybePromise<string> {
  const key = keyring.primary;
  // Not `async`, like openToken: no promise when the backend seals synchronously.
  return after(
    backend.seal(key.aes, plaintext, aadOf(backend, key, binding)),
    (sealed) => `e1.${key.id}.${backend.encodeBase64Url(sealed)}`,
  );
}

export function signToken(
  backend: CryptoBackend,
  keyring: Keyring,
  version: "s1" | "i1",
  payload: string,
  binding: string,
): MaybePromise<string> {
  const body = `${version}.${keyring.primary.id}.${payload}`;
  // One string, not parts: node:crypto hashes a string in one call, and each extra update() costs more
  // than the concatenation (the binding is a few bytes).
  // Not `async`, like openToken: no promise when the backend signs synchronously.
  return after(
    backend.sign(keyring.primary.hmac, `${body}\0${binding}`),
    (mac) => `${body}.${mac}`,
  );
}

/** Text encoded in a signed-cookie payload. */
export function encodeSignedPayload(backend: CryptoBackend, text: string): string {
  return backend.encodeBase64Url(backend.encodeUtf8(text));
}

export interface OpenedToken {
  version: TokenVersion;
  /** The plaintext: JSON for e1 and s1, the session id for i1. */
  text: string;
  /** True when a key other than the primary opened it: re-seal to rotate. */
  stale: boolean;
}

/**
 * Opens any token format; a failure is a reason, never a throw. Not `async`: with a synchronous
 * backend (node:crypto) the answer comes back without a promise, which saves a microtask per request
 * on the hot path; `await` works on either.
 */
export function openToken(
  backend: CryptoBackend,
  keyring: Keyring,
  token: string,
  binding: string,
): MaybePromise<OpenedToken | TokenFailure> {
  const firstDot = token.indexOf(".");
  const secondDot = token.indexOf(".", firstDot + 1);
  if (firstDot !== 2 || secondDot < 0) return "malformed";
  const version = token.slice(0, 2);
  if (version !== "e1" && version !== "s1" && version !== "i1") return "malformed";
  const key = keyring.byId.get(token.slice(3, secondDot));
  if (!key) return "unknown-key";
  const stale = key !== keyring.primary;

  if (version === "e1") {
    const sealed = backend.decodeBase64Url(token.slice(secondDot + 1));
    // Too short to hold an IV and a tag is a format error, not a failed authentication.
    if (!sealed || sealed.length < IV_BYTES + TAG_BYTES) return "malformed";
    // The key id in the token is the entry's id (the map is keyed by it), so this is its prefix.
    return after(
      backend.open(key.aes, sealed, aadOf(backend, key, binding)),
      (plain): OpenedToken | TokenFailure => {
        if (!plain) return "tampered";
        const text = backend.decodeUtf8(plain);
        return text === null ? "malformed" : { version, text, stale };
      },
    );
  }

  const lastDot = token.lastIndexOf(".");
  if (lastDot <= secondDot) return "malformed";
  const mac = token.slice(lastDot + 1);
  if (mac.length !== HMAC_BASE64URL_CHARS) return "malformed";
  const verified = backend.verify(key.hmac, `${token.slice(0, lastDot)}\0${binding}`, mac);
  return after(verified, (valid): OpenedToken | TokenFailure => {
    // Classified on the failure path only, so a valid token pays for no extra parse.
    if (!valid) return backend.decodeBase64Url(mac) ? "tampered" : "malformed";
    const payload = token.slice(secondDot + 1, lastDot);
    if (version === "i1") return { version, text: payload, stale };
    // The MAC covers this exact text, so it needs no second alphabet check: the lenient decode of
    // authenticated text is safe, and what it yields is still checked as UTF-8, JSON and a record.
    const bytes = backend.decodeBase64Url(payload, true);
    const text = bytes && backend.decodeUtf8(bytes);
    return text === null ? "malformed" : { version, text, stale };
  });
}
