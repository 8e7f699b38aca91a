import type { IncomingMessage } from "node:http";
import { requestUrl, UNSOUND_HOST } from "../../internal/node-input.js";

/**
 * The Fetch `Request` a guard receives in the node-based adapters: the method, `url` (from
 * `guardUrl`, or `nodeRequestUrl` where no proxy is trusted) and the headers. The body stays the
 * framework's to read; what its parser already read (`parsed`: Express's `req.body`, Koa's
 * `ctx.request.body`, Fastify's `request.body`) is handed on when it is a form (see `parsedForm`),
 * so a guard can read a form field as it does on the fetch-based adapters (`requireCsrfToken`).
 * Made only when a guard runs, and built only once one reads more than its method and URL.
 * `undefined` only for a method a Fetch `Request` cannot carry (CONNECT, TRACE, TRACK), never for
 * anything in the URL.
 */
export function guardRequest(
  req: IncomingMessage,
  url: string,
  parsed?: unknown,
): Request | undefined {
  const method = req.method ?? "GET";
  // What `new Request` refuses (RFC 9110 / Fetch "forbidden methods"): no Request, as before.
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) return undefined;
  let built: Request | undefined;
  let href: string | undefined;
  const real = () => {
    built ??= buildRequest(req, url, method, parsed);
    return built;
  };
  // Built on first use but for `method` and `url` (the URL serialized as a Request's is): the
  // usual guards (`requireSameOrigin`, `requireCsrfToken`) read only those of a GET and pass it, and
  // an undici Request per request (a copy of the headers, an AbortSignal) halved a guarded Koa read's
  // requests per second and kept each request alive through scavenges (2.1 ms against 0.4 under
  // `--trace-gc`). Everything else, `instanceof Request` and undici's own internals included,
  // answers as the Request it stands for.
  return new Proxy(Object.create(Request.prototype) as Request, {
    get(_target, name) {
      if (name === "method") return method;
      if (name === "url") {
        href ??= built ? built.url : new URL(parsable(url)).href;
        return href;
      }
      const request = real();
      const value = Reflect.get(request, name, request);
      return typeof value === "function" ? value.bind(request) : value;
    },
    has: (_target, name) => name in real(),
    // A property a guard sets (a note for the next guard) lands on the Request it reads back from.
    set: (_target, name, value) => Reflect.set(real(), name, value),
  });
}

/** Methods a Fetch `Request` cannot carry: `new Request` throws for them. */
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);

function buildRequest(req: IncomingMessage, url: string, method: string, parsed: unknown): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i] as string, raw[i + 1] as string);
    } catch {
      // A name Fetch refuses (an HTTP/2 pseudo-header through the compatibility API): not a header.
    }
  }
  const body =
    parsed === undefined || method === "GET" || method === "HEAD"
      ? undefined
      : parsedForm(headers, parsed);
  return new Request(parsable(url), { method, headers, body });
}

const URLENCODED = "application/x-www-form-urlencoded";

/**
 * A form body the framework's parser already read, as the guard's Request can carry it (the stream
 * itself is spent): a string or bytes as they came (a raw parser: express.text, express.raw,
 * Fastify's `parseAs`), or the fields of an object, the string values and lists of them
 * (express.urlencoded, Koa's body parsers, @fastify/formbody, multer's text fields), urlencoded,
 * with the Request's Content-Type saying so. Only for a request that says it sends a form: a JSON
 * body parsed to an object is no form.
 */
function parsedForm(headers: Headers, parsed: unknown): BodyInit | undefined {
  const type = headers.get("content-type")?.split(";", 1)[0]?.trim().toLowerCase();
  if (type !== URLENCODED && type !== "multipart/form-data") return undefined;
  // The raw body's length is not the form's: a multipart upload's text fields (multer) are small
  // beside its files, and `maxFormBytes` would refuse them by a Content-Length that counted both.
  headers.delete("content-length");
  if (typeof parsed === "string") return parsed;
  if (parsed instanceof Uint8Array) return parsed as Uint8Array<ArrayBuffer>; // a Buffer: never shared memory
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return undefined;
  if (ArrayBuffer.isView(parsed)) return undefined;
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(parsed)) {
    for (const item of Array.isArray(value) ? value : [value])
      if (typeof item === "string") form.append(name, item);
  }
  headers.set("content-type", URLENCODED);
  return form.toString();
}

/**
 * A guard's URL from the scheme and host the framework resolved, which follow X-Forwarded-Proto and
 * X-Forwarded-Host only behind a proxy it trusts (Express's `trust proxy`, Koa's `proxy`, Fastify's
 * `trustProxy`), and the request target the client sent (Express's `originalUrl`: a mounted router
 * cuts `req.url`). The host must be one (see `requestUrl`): a forged `X-Forwarded-Host: evil/x?`
 * from a trusted peer shows guards the routed path under `UNSOUND_HOST`. A header the framework did
 * not read plays no part. The scheme is http or https, whatever a forwarded header said.
 */
export function guardUrl(protocol: string | undefined, host: string | undefined, target: string) {
  return requestUrl(protocol?.toLowerCase() === "https" ? "https" : "http", host ?? "", target);
}

/**
 * `requestUrl`'s URL, or the same path under `UNSOUND_HOST` when its host has a host's characters
 * and still does not parse (`1.2.3.256`). Such a host holds no "/", so the path starts at the first
 * one after the scheme.
 */
function parsable(url: string): string {
  if (URL.canParse(url)) return url;
  const authority = url.indexOf("://") + 3;
  const path = url.indexOf("/", authority);
  return `${url.slice(0, authority)}${UNSOUND_HOST}${path < 0 ? "/" : url.slice(path)}`;
}
