import { ConfigError } from "../errors.js";
import type { BackendKey, CryptoBackend } from "./backend.js";

/**
 * A secret: a string of at least 32 characters; a list (the first seals and signs, all open and
 * verify); or `{ keyId: secret }` (the first entry seals). Rotate by putting the new secret first and
 * keeping the old one until every token sealed with it has expired. A map of several secrets refuses
 * whole-number ids (`{ 2: next, 1: previous }`): JavaScript lists them in ascending order, so the
 * entry that seals would not be the first written. Use ids such as "v2".
 */
export type SecretInput = string | readonly string[] | Readonly<Record<string, string>>;

export const MIN_SECRET_LENGTH = 32;
/** Length of a key id derived from a secret (36 bits of base64url). */
export const DERIVED_KEY_ID_CHARS = 6;
const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;
const encoder = new TextEncoder();

export interface NamedSecret {
  /** Explicit key id, or undefined to derive one from the secret. */
  id: string | undefined;
  secret: string;
}

export interface KeyEntry {
  id: string;
  aes: BackendKey;
  hmac: BackendKey;
  /** Signs CSRF tokens (`session.csrfToken()`): a key of its own, so no token of one kind is one of the other. */
  csrf: BackendKey;
}

export interface Keyring {
  /** Seals and signs new tokens. */
  primary: KeyEntry;
  /** Every key that may open a token, by key id. */
  byId: ReadonlyMap<string, KeyEntry>;
}

/** Validates the `secret` option synchronously, so a bad one fails at start-up. */
export function normalizeSecrets(input: unknown): NamedSecret[] {
  const hint = `generate one with "npx sessionkit secret" or: node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`;
  if (input === undefined || input === null || input === "") {
    throw new ConfigError(`the "secret" option is required; ${hint}`);
  }
  let list: NamedSecret[];
  if (typeof input === "string") list = [{ id: undefined, secret: input }];
  else if (Array.isArray(input)) list = input.map((secret) => ({ id: undefined, secret }));
  else if (typeof input === "object") {
    list = Object.entries(input as Record<string, unknown>).map(([id, secret]) => {
      if (!KEY_ID.test(id)) {
        // The id is not echoed: a map written the wrong way round ({ [secret]: "v1" }) has the secret here.
        throw new ConfigError(
          `every key id in "secret" must be 1-16 characters of A-Z, a-z, 0-9, "_" or "-"; the form is { keyId: secret }, the id as key and the secret as value`,
        );
      }
      return { id, secret: secret as string };
    });
  } else {
    throw new ConfigError(`"secret" must be a string, a list of strings or { keyId: secret }`);
  }
  if (list.length === 0) throw new ConfigError(`"secret" must hold at least one secret; ${hint}`);
  const numeric = list.length > 1 && list.find(({ id }) => id !== undefined && isArrayIndex(id));
  if (numeric) {
    // The first entry seals, but JavaScript enumerates whole-number keys first and ascending, so
    // { 2: next, 1: previous } would silently seal with the previous secret.
    throw new ConfigError(
      `key id "${numeric.id}" in "secret" is a whole number: JavaScript lists such keys in ascending order, whatever order they are written in, so the entry that seals would not be the first one written; use ids that are not whole numbers, newest first, e.g. { v2: next, v1: previous }`,
    );
  }
  const seen = new Set<string>();
  list.forEach(({ secret }, index) => {
    const where = list.length > 1 ? `secret #${index + 1}` : "the secret";
    if (typeof secret !== "string") throw new ConfigError(`${where} must be a string`);
    // Length is measured, never echoed: the message must not help reconstruct the secret.
    if (secret.length < MIN_SECRET_LENGTH) {
      throw new ConfigError(
        `${where} is shorter than ${MIN_SECRET_LENGTH} characters; use a random secret of at least 32 bytes; ${hint}`,
      );
    }
    if (seen.has(secret)) throw new ConfigError(`${where} is listed twice; remove the duplicate`);
    seen.add(secret);
  });
  return list;
}

/**
 * Derives every key once per secret (HKDF-SHA256, one key per purpose) so that no request pays for
 * key derivation: per-message derivation is what makes iron-style sealing milliseconds slow.
 */
export async function createKeyring(
  secrets: readonly NamedSecret[],
  backend: CryptoBackend,
): Promise<Keyring> {
  const entries = await Promise.all(
    secrets.map(async ({ id, secret }) => {
      const ikm = encoder.encode(secret);
      const [aes, hmac, csrf, kid] = await Promise.all([
        backend.deriveAesKey(ikm, "sessionkit/v1 seal"),
        backend.deriveHmacKey(ikm, "sessionkit/v1 sign"),
        backend.deriveHmacKey(ikm, "sessionkit/v1 csrf"),
        id ?? deriveKeyId(ikm, backend),
      ]);
      return { id: kid, aes, hmac, csrf } satisfies KeyEntry;
    }),
  );
  const byId = new Map<string, KeyEntry>();
  for (const entry of entries) if (!byId.has(entry.id)) byId.set(entry.id, entry);
  return { primary: entries[0] as KeyEntry, byId };
}

/** A short public label for a secret: 36 bits of a hash, enough to pick the key, useless to an attacker. */
async function deriveKeyId(ikm: Uint8Array, backend: CryptoBackend): Promise<string> {
  const label = encoder.encode("sessionkit/v1 key-id\0");
  const input = new Uint8Array(label.length + ikm.length);
  input.set(label);
  input.set(ikm, label.length);
  return backend.encodeBase64Url(await backend.sha256(input)).slice(0, DERIVED_KEY_ID_CHARS);
}

/** A key JavaScript orders as an array index (ascending, before every other key). */
function isArrayIndex(id: string): boolean {
  return /^(?:0|[1-9][0-9]*)$/.test(id) && Number(id) < 2 ** 32 - 1;
}
