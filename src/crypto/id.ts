import type { CryptoBackend } from "./backend.js";

/** 256 bits: OWASP asks for at least 64 bits of entropy; 256 makes guessing moot at any scale. */
export const SESSION_ID_BYTES = 32;
// Injected generators (tests) may use shorter ids; the default makes 43 characters.
const SESSION_ID = /^[A-Za-z0-9_-]{16,128}$/;
const encoder = new TextEncoder();

/** A fresh session id: 32 bytes from the platform CSPRNG, base64url (43 characters). */
export function generateSessionId(backend: CryptoBackend): string {
  return backend.encodeBase64Url(backend.randomBytes(SESSION_ID_BYTES));
}

export function isSessionId(value: unknown): value is string {
  return typeof value === "string" && SESSION_ID.test(value);
}

/**
 * The key a store sees: base64url(SHA-256(id)). A leaked table or Redis dump then holds nothing that
 * can be replayed as a cookie (OWASP Session Management Cheat Sheet, "Session ID Storage").
 */
export async function hashSessionId(backend: CryptoBackend, id: string): Promise<string> {
  return backend.encodeBase64Url(await backend.sha256(encoder.encode(id)));
}

/**
 * A moved session's lineage (`SessionMeta.lineage`), made of the store key it had before its first
 * move: a hash again, so a store keeps no key of a record it deleted, and a sign-out that loaded
 * that record can work it out.
 */
export function lineageOf(backend: CryptoBackend, key: string): Promise<string> {
  return hashSessionId(backend, `lineage:${key}`);
}
