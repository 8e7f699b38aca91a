import { backend } from "#crypto-backend";
import { HMAC_BYTES, type MaybePromise } from "./crypto/backend.js";
import type { KeyEntry, Keyring } from "./crypto/keyring.js";
import { ConfigError } from "./errors.js";
import { type Denial, denialResponse, type Guard, prepareDenial } from "./guard.js";
import { CSRF_SEED_BYTES } from "./internal/record.js";
import { rejectUnknown } from "./internal/unknown-options.js";
import { type SessionData, SessionState } from "./session.js";

/*
 * CSRF tokens, OWASP CSRF Prevention Cheat Sheet, "Synchronizer Token Pattern" in its HMAC form: a
 * token is HMAC-SHA256(key, cookie name NUL "seed" NUL seed), the key derived by HKDF for this
 * purpose alone ("sessionkit/v1 csrf"). The seed is 16 bytes the session keeps in its meta
 * (`SessionMeta.csrf`), made by its first `csrfToken()`: not the id, because `renewInterval` moves
 * the id on its own, and a form open in one tab must survive a renewal another tab's request made.
 * Rails and Django keep such a per-session secret too, and replace it at sign-in. What ends tokens
 * is what drops the seed: `regenerate` (sign-in, any privilege change), `destroy`, a user switch.
 * Tokens of the id (cookie name NUL id), as versions before the seed made them and as a saved
 * session without one still gets once its response has begun, verify while the id holds, so pages
 * served before the seed existed keep working. An id has no NUL: no id message is a seed's, so a
 * seed that happens to spell some session's id signs nothing for it.
 *
 * The seed is derived from the id it is first made under (HMAC of cookie name NUL "seed-of" NUL id
 * under the same key, cut to 16 bytes), not drawn at random: two requests of one session that ask
 * for a first token at once (two tabs opened together) make the same seed, so whichever write lands
 * last keeps both tabs' forms valid; and a token made while the seed was lost (a cookie re-sealed by
 * a request that loaded before the seed existed) still verifies while the id holds, as the id's own
 * tokens do. It is as unguessable as a token: only the key makes it. A renewal keeps the seed, and
 * one that finds none takes its old id's (a renewing request's first token is of that seed too), so
 * a token another request made of it survives a move that request never saw; a check derives the
 * seed again under the key the token names, so it survives a change of primary secret as well.
 *
 * Each token handed out is that MAC masked with a fresh 32-byte pad (pad || mac XOR pad), as Rails
 * and Django do: a token in a compressed HTML page then never repeats, which is what a BREACH-style
 * compression oracle needs to read it byte by byte.
 *
 * Format: `c1.<key id>.<base64url(pad || mac XOR pad)>`, led by a version and a key id as every
 * token of ours is: the key id says which secret signed it, so tokens made before a rotation verify
 * while their secret is still in the keyring.
 */

/** Bytes of the one-time pad, and of the masked MAC after it. */
const PAD_BYTES = HMAC_BYTES;
/** pad || masked MAC, in unpadded base64url. */
const MASKED_CHARS = Math.ceil(((PAD_BYTES + HMAC_BYTES) * 4) / 3);
const PREFIX = "c1.";
/** A key id is at most 16 characters; anything longer is not a token of ours, unread. */
const TOKEN_MAX_CHARS = PREFIX.length + 16 + 1 + MASKED_CHARS;

/**
 * What a token is bound to: the session's seed (`SessionMeta.csrf`), or its id for the tokens made
 * before seeds. @internal
 */
export type CsrfBinding = { readonly seed: string } | { readonly id: string };

/**
 * What `verify` may check a token against: a binding, or the seed an id derives (`seedOf`), made
 * only if the bindings before it did not match. @internal
 */
export type CsrfCandidate = CsrfBinding | { readonly seedOf: string };

/** What a session needs to make and check its tokens; one per manager. @internal */
export interface CsrfSigner {
  /** The seed a session of `id` takes at its first token: `CSRF_SEED_BYTES` bytes, base64url. */
  seedOf(id: string): Promise<string>;
  issue(binding: CsrfBinding): Promise<string>;
  /**
   * Whether `token` is a token of one of `bindings`, tried in order. False for anything malformed;
   * never throws on it.
   */
  verify(token: unknown, candidates: readonly CsrfCandidate[]): Promise<boolean>;
}

/**
 * The signer of one manager: `keys` are its keyring (derived on first use), `name` its cookie name,
 * so two managers sharing a secret do not accept each other's tokens. @internal
 */
export function createCsrfSigner(keys: () => MaybePromise<Keyring>, name: string): CsrfSigner {
  const message = (binding: CsrfBinding) =>
    "seed" in binding ? `${name}\0seed\0${binding.seed}` : `${name}\0${binding.id}`;
  const seedUnder = async (key: KeyEntry, id: string) => {
    const mac = backend.decodeBase64Url(await backend.sign(key.csrf, `${name}\0seed-of\0${id}`));
    return backend.encodeBase64Url((mac as Uint8Array).subarray(0, CSRF_SEED_BYTES));
  };
  return {
    async seedOf(id) {
      return seedUnder((await keys()).primary, id);
    },
    async issue(binding) {
      const key = (await keys()).primary;
      const mac = backend.decodeBase64Url(await backend.sign(key.csrf, message(binding)), true);
      const pad = backend.randomBytes(PAD_BYTES);
      const out = new Uint8Array(PAD_BYTES + HMAC_BYTES);
      out.set(pad);
      for (let i = 0; i < HMAC_BYTES; i++) {
        out[PAD_BYTES + i] = ((mac as Uint8Array)[i] as number) ^ (pad[i] as number);
      }
      return `${PREFIX}${key.id}.${backend.encodeBase64Url(out)}`;
    },
    async verify(token, candidates) {
      const parsed = parse(await keys(), token);
      if (!parsed) return false;
      for (const candidate of candidates) {
        // A derived seed costs an HMAC of its own: made only when what came before did not match.
        // It is derived under the key the token names, as the seed it was made for was: a seed
        // lost before a change of primary secret (or made by a server still on the old one while
        // a rotation rolls out) keeps its tokens while that secret is in the keyring.
        const binding =
          "seedOf" in candidate
            ? { seed: await seedUnder(parsed.key, candidate.seedOf) }
            : candidate;
        // The backend's verify compares in constant time (timingSafeEqual, subtle.verify).
        if (await backend.verify(parsed.key.csrf, message(binding), parsed.mac)) return true;
      }
      return false;
    },
  };
}

/** The key a token names and its unmasked MAC as base64url, or undefined for anything else. */
function parse(keys: Keyring, token: unknown): { key: KeyEntry; mac: string } | undefined {
  if (typeof token !== "string" || token.length > TOKEN_MAX_CHARS) return undefined;
  if (!token.startsWith(PREFIX)) return undefined;
  const dot = token.indexOf(".", PREFIX.length);
  if (dot <= PREFIX.length || token.length - dot - 1 !== MASKED_CHARS) return undefined;
  const key = keys.byId.get(token.slice(PREFIX.length, dot));
  if (!key) return undefined;
  // Canonical base64url only, so each token has one spelling.
  const bytes = backend.decodeBase64Url(token.slice(dot + 1));
  if (!bytes || bytes.length !== PAD_BYTES + HMAC_BYTES) return undefined;
  const mac = new Uint8Array(HMAC_BYTES);
  for (let i = 0; i < HMAC_BYTES; i++) {
    mac[i] = (bytes[PAD_BYTES + i] as number) ^ (bytes[i] as number);
  }
  return { key, mac: backend.encodeBase64Url(mac) };
}

/** Options of `requireCsrfToken`. */
export interface CsrfTokenOptions {
  /**
   * The request header that carries the token, for `fetch()` and XHR callers. Default
   * `"x-csrf-token"`. Read first: when present, the form field is not read.
   */
  header?: string;
  /**
   * The form field that carries the token in an `application/x-www-form-urlencoded` or
   * `multipart/form-data` body (an HTML form's hidden input). Default `"_csrf"`; `false` reads no
   * body. Read where the guard's Request carries the body: on the fetch-based adapters (fetch, Hono,
   * h3, Oak on a fetch server) from a clone, so the handler still reads the body; on node, Express,
   * Koa and Fastify the fields a body parser read before the guard ran (`req.body`,
   * `ctx.request.body`, `request.body`). Where no parser ran first (and on Oak's own Node server)
   * the handler checks a form's token itself with `session.verifyCsrfToken`.
   */
  field?: string | false;
  /**
   * Bytes of body read at most to find the form field: a larger body (by `Content-Length`, or as it
   * streams) is not read and, without the header, is refused. Default 1 MiB (1 048 576). Reading
   * tees the body, so up to this much is held in memory until the handler reads it. On the
   * node-based adapters it bounds the form the parser gave, whatever the raw body's length (an
   * upload's files, which multer keeps apart, do not count).
   */
  maxFormBytes?: number;
  /** How a request without a valid token is refused. Default `{ status: 403 }`, plain text. */
  deny?: Denial;
}

const DEFAULTS = Object.freeze({
  header: "x-csrf-token",
  field: "_csrf",
  maxFormBytes: 1_048_576,
});

// RFC 9110 section 9.2.1: these do not change state, so they need no token (keep them free of side
// effects). TRACE never reaches a Fetch Request; listed for completeness.
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FORM_TYPES = new Set(["application/x-www-form-urlencoded", "multipart/form-data"]);

/**
 * A guard that refuses state-changing requests (every method but GET, HEAD, OPTIONS and TRACE)
 * that carry no valid CSRF token of the request's session: 403, `no-store`, plain text. The token
 * comes from `session.csrfToken()`, put in the page; it comes back in the `x-csrf-token` header or,
 * on the fetch-based adapters (fetch, Hono, h3, Oak on a fetch server), in the `_csrf` form field.
 * On node, Express, Koa and Fastify the guard sees a form's fields once a body parser mounted before
 * it has read them (`express.urlencoded()`, a Koa body parser, `@fastify/formbody` with a route's
 * `guard`); otherwise the handler checks the field with `session.verifyCsrfToken`.
 *
 * A session carried by the header transport (the `header` option of `createSessions`) passes: no
 * browser attaches that header to a request another site makes. A request the node-based adapters
 * cannot hand on as a Fetch Request (CONNECT, TRACE, TRACK) is refused. This is OWASP's synchronizer
 * token pattern; use it with `SameSite=Lax` and `requireSameOrigin()`, which cover current browsers
 * without a token: the token adds older browsers, and a defence that does not rest on headers.
 *
 * @example
 * ```ts
 * import { requireCsrfToken, session } from "sessionkit/express";
 * app.use(session(sessions, { guards: [requireCsrfToken()] }));
 * // The page: <input type="hidden" name="_csrf" value="..."> with `await req.session.csrfToken()`,
 * // or fetch(url, { method: "POST", headers: { "x-csrf-token": token } }) from a script.
 * requireCsrfToken({ header: "x-xsrf-token", field: "authenticity_token" });
 * ```
 */
export function requireCsrfToken<T extends SessionData = SessionData>(
  options: CsrfTokenOptions = {},
): Guard<T> {
  rejectUnknown(options, ["header", "field", "maxFormBytes", "deny"], "requireCsrfToken option");
  const { header, field, maxFormBytes } = { ...DEFAULTS, ...options };
  if (typeof header !== "string" || !HEADER_NAME.test(header)) {
    throw new ConfigError(
      `requireCsrfToken: "header" must be a header name such as "x-csrf-token"`,
    );
  }
  if (field !== false && (typeof field !== "string" || field === "")) {
    throw new ConfigError(`requireCsrfToken: "field" must be a form field name, or false`);
  }
  if (!Number.isSafeInteger(maxFormBytes) || maxFormBytes < 0) {
    throw new ConfigError(`requireCsrfToken: "maxFormBytes" must be a whole number of bytes`);
  }
  const deny = prepareDenial(
    options.deny ?? { status: 403, body: "Forbidden: missing or invalid CSRF token" },
  );
  return async (session, request) => {
    if (request) {
      if (SAFE_METHODS.has(request.method)) return undefined;
      if (session instanceof SessionState && session.hooks.viaHeader(session)) return undefined;
      const token =
        request.headers.get(header) ??
        (field === false ? undefined : await formField(request, field, maxFormBytes));
      if (token !== undefined && (await session.verifyCsrfToken(token))) return undefined;
    }
    return denialResponse(deny);
  };
}

/** The first value of `field` in a form body, read from a clone; undefined if there is none. */
async function formField(
  request: Request,
  field: string,
  maxBytes: number,
): Promise<string | undefined> {
  const type = request.headers.get("content-type") ?? "";
  const essence = type.split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (!FORM_TYPES.has(essence) || request.body === null || request.bodyUsed) return undefined;
  const declared = request.headers.get("content-length");
  if (declared !== null && !(Number(declared) <= maxBytes)) return undefined;
  try {
    const bytes = await readAtMost(request.clone().body, maxBytes);
    if (!bytes) return undefined;
    // Both forms parsed by the platform: a malformed body throws, here, and is "no token".
    const form = await new Response(bytes as BodyInit, { headers: { "content-type": type } })
      .formData()
      .catch(() => undefined);
    const value = form?.get(field);
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The whole of a body of at most `maxBytes`, or undefined (and the read cancelled) past that. */
async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  if (!body) return undefined;
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      // Not awaited: a tee branch's cancel settles only once the other branch (the handler's) is
      // cancelled or read to the end too.
      reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
