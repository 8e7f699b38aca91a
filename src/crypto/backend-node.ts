import { isUtf8 } from "node:buffer";
import * as nodeCrypto from "node:crypto";
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  hkdf,
  type KeyObject,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";
import { promisify } from "node:util";
import { type CryptoBackend, IV_BYTES, isBase64Url, TAG_BYTES } from "./backend.js";

const hkdfAsync = promisify(hkdf);
const oneShotHash = (
  nodeCrypto as {
    hash?: (algorithm: string, data: Uint8Array, encoding: "buffer") => Buffer;
  }
).hash;

async function derive(ikm: Uint8Array, info: string): Promise<KeyObject> {
  // Salt-less HKDF is sound for high-entropy input key material (RFC 5869 section 3.1).
  const bytes = await hkdfAsync("sha256", ikm, new Uint8Array(0), info, 32);
  return createSecretKey(new Uint8Array(bytes));
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// Small draws (12-byte IVs, 32-byte ids) come from a pool filled 4 KB at a time: each call into
// OpenSSL's CSPRNG has a fixed cost that dominated a cookie write, and a pooled byte is as random as
// a fresh one (Node's randomUUID pools the same way). No byte is handed out twice.
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function fillRandom(target: Buffer, length: number): void {
  if (length > POOL_BYTES / 4) {
    randomFillSync(target, 0, length);
    return;
  }
  if (poolOffset + length > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    poolOffset = 0;
  }
  pool.copy(target, 0, poolOffset, poolOffset + length);
  poolOffset += length;
}

/** node:crypto backend: synchronous primitives, chosen by the "node" export condition. */
export const backend: CryptoBackend = {
  name: "node",
  deriveAesKey: derive,
  deriveHmacKey: derive,
  seal(key, plaintext, aad) {
    const length = Buffer.byteLength(plaintext, "utf8");
    const out = Buffer.allocUnsafe(IV_BYTES + length + TAG_BYTES);
    fillRandom(out, IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key as KeyObject, out.subarray(0, IV_BYTES));
    cipher.setAAD(aad);
    // The cipher encodes the text itself: no intermediate UTF-8 copy.
    cipher.update(plaintext, "utf8").copy(out, IV_BYTES);
    cipher.final();
    cipher.getAuthTag().copy(out, IV_BYTES + length);
    return out;
  },
  open(key, sealed, aad) {
    if (sealed.length < IV_BYTES + TAG_BYTES) return null;
    const buf = toBuffer(sealed);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key as KeyObject, buf.subarray(0, IV_BYTES));
      decipher.setAAD(aad);
      decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
      const head = decipher.update(buf.subarray(IV_BYTES, buf.length - TAG_BYTES));
      decipher.final();
      return head;
    } catch {
      // GCM authentication failure is the only way here: the input lengths were checked above.
      return null;
    }
  },
  sign(key, data) {
    return createHmac("sha256", key as KeyObject)
      .update(data, "utf8")
      .digest("base64url");
  },
  verify(key, data, mac) {
    const expected = Buffer.from(
      createHmac("sha256", key as KeyObject)
        .update(data, "utf8")
        .digest("base64url"),
      "latin1",
    );
    // UTF-8, not latin1: a character above U+00FF then lengthens the buffer and fails the length
    // check, instead of being truncated to a byte that might match.
    const given = Buffer.from(mac, "utf8");
    return given.length === expected.length && timingSafeEqual(given, expected);
  },
  sha256(data) {
    // The one-shot crypto.hash (Node 20.12+) skips building a Hash object; older 20.x fall back.
    return oneShotHash
      ? oneShotHash("sha256", data, "buffer")
      : createHash("sha256").update(data).digest();
  },
  randomBytes(length) {
    const out = Buffer.allocUnsafe(length);
    fillRandom(out, length);
    return out;
  },
  encodeUtf8(text) {
    return Buffer.from(text, "utf8");
  },
  decodeUtf8(bytes) {
    // isUtf8 first: Buffer's decoder would substitute U+FFFD where TextDecoder's fatal mode throws.
    return isUtf8(bytes) ? toBuffer(bytes).toString("utf8") : null;
  },
  encodeBase64Url(bytes) {
    return toBuffer(bytes).toString("base64url");
  },
  decodeBase64Url(text, authenticated) {
    // Buffer's decoder skips invalid characters silently; validate first so tampering is not masked.
    if (!authenticated && !isBase64Url(text)) return null;
    return Buffer.from(text, "base64url");
  },
};
