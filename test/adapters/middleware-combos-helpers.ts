/**
 * Helpers for the middleware-combination tests: a loopback client that keeps the raw bytes (to tell a
 * compressed body from a plain one) and a cookie jar, the two session modes, and a static folder.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { createSessions, type Sessions } from "../../src/manager.js";
import { type MemoryStore, memoryStore } from "../../src/stores/memory.js";
import { SECRET } from "../conformance/adapter.js";
import { keepCookies } from "../helpers/http.js";

/** A session manager under test, and its memory store when it has one. */
export interface Mode {
  name: string;
  make(): { sessions: Sessions; store: MemoryStore | undefined };
}

/** Cookie sessions (the data sealed in the cookie) and memory-store sessions (an id in the cookie). */
export const MODES: readonly Mode[] = [
  {
    name: "cookie",
    make: () => ({ sessions: createSessions({ secret: SECRET }), store: undefined }),
  },
  {
    name: "memory store",
    make: () => {
      const store = memoryStore();
      return { sessions: createSessions({ secret: SECRET, store }), store };
    },
  },
];

export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  /** The Set-Cookie lines, each as sent. */
  setCookies: string[];
  /** The body as it crossed the wire (compressed when `content-encoding` says so). */
  raw: Buffer;
  /** The body decoded by its `content-encoding`. */
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

const REPLY_TIMEOUT_MS = 3000;

/** A client on node:http that keeps the session cookies it is given, as a browser would. */
export class RawClient {
  readonly jar = new Map<string, string>();
  constructor(readonly base: string) {}

  request(path: string, options: RequestOptions = {}): Promise<RawReply> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.jar.size > 0 && headers.cookie === undefined) {
      headers.cookie = [...this.jar].map(([name, value]) => `${name}=${value}`).join("; ");
    }
    if (options.body !== undefined)
      headers["content-length"] = String(Buffer.byteLength(options.body));
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        new URL(path, this.base),
        { method: options.method ?? "GET", headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => {
            const raw = Buffer.concat(chunks);
            const setCookies = res.headers["set-cookie"] ?? [];
            this.keep(setCookies);
            try {
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                setCookies,
                raw,
                text: decode(raw, res.headers["content-encoding"]).toString("utf8"),
              });
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      // A held response that never leaves fails the test here rather than at the test's timeout.
      req.setTimeout(REPLY_TIMEOUT_MS, () => req.destroy(new Error("no complete reply in time")));
      req.on("error", reject);
      req.end(options.body);
    });
  }

  get(path: string, headers?: Record<string, string>): Promise<RawReply> {
    return this.request(path, headers ? { headers } : {});
  }

  private keep(lines: string[]): void {
    keepCookies(this.jar, lines);
  }
}

function decode(raw: Buffer, encoding: string | undefined): Buffer {
  if (raw.length === 0) return raw;
  if (encoding === "gzip") return gunzipSync(raw);
  if (encoding === "br") return brotliDecompressSync(raw);
  if (encoding === "deflate") return inflateSync(raw);
  return raw;
}

/** The Set-Cookie lines of the session cookie (default name "sid"). */
export function sessionCookies(reply: RawReply, name = "sid"): string[] {
  return reply.setCookies.filter((line) => line.startsWith(`${name}=`));
}

/** Text large enough for every compressor's threshold, and compressible. */
export const LARGE_TEXT = "sessionkit middleware combination ".repeat(2000);

/** A folder of static files, removed by `remove`. */
export function staticFolder(): { dir: string; files: Record<string, string>; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "middleware-combos-"));
  mkdirSync(join(dir, "assets"));
  const files: Record<string, string> = {
    "assets/app.css": "body { color: teal }\n",
    "assets/big.txt": LARGE_TEXT,
    "index.html": "<!doctype html><title>home</title>\n",
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { dir, files, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
