/**
 * Shared pieces of the load, outage, concurrency, horizontal-scale and soak scripts: the store
 * factories, one tiny app written for every adapter, a private redis-server, an HTTP client with a
 * cookie jar, and the child-process plumbing. Everything talks to 127.0.0.1 only, and every loop
 * here is bounded in count or time.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import type { Cluster, Redis } from "ioredis";
import type { Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import type { SessionStore } from "../../src/stores/store.js";
import { scanPrefix } from "../helpers/redis-keys.js";
import { DATABASE_URL, MYSQL_URL, REDIS_CLUSTER_NODES, REDIS_URL } from "../helpers/services.js";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const SECRET = "load-and-reliability-secret-0123456789abcdef";
// Where the servers are: one definition, shared with the tests, re-exported for the load scripts.
export { DATABASE_URL, MYSQL_URL, REDIS_CLUSTER_NODES, REDIS_URL };

export const ADAPTERS = ["node", "express", "fastify", "koa", "hono", "h3"] as const;
export type AdapterName = (typeof ADAPTERS)[number];
export const STORES = ["memory", "sqlite", "postgres", "mysql", "redis"] as const;
export type StoreKind = (typeof STORES)[number] | "redis-cluster";

/** A unique tag per run, for table names, key prefixes and PostgreSQL application names. */
export function runTag(label: string): string {
  return `${label}_${process.pid}_${Date.now().toString(36)}`;
}

// ---------------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------------

export interface StoreConfig {
  kind: StoreKind;
  /** Table name (sqlite, postgres, mysql) or key prefix (redis). Unique per run. */
  tag: string;
  /** Redis URL (the private server of an outage run, or the shared one). */
  redisUrl?: string;
  /** PostgreSQL application_name, so an outage can kill exactly these connections. */
  applicationName?: string;
  /** SQLite: a directory for the database file. */
  dir?: string;
}

export interface OpenStore {
  store: SessionStore;
  /** Disconnects the driver. */
  close(): Promise<void>;
  /** Removes everything this run wrote (table, keys). */
  cleanup(): Promise<void>;
}

/** Opens a store the way the docs recommend for production (bounded timeouts, error listeners). */
export async function openStore(config: StoreConfig): Promise<OpenStore> {
  const tag = config.tag.replace(/[^A-Za-z0-9_]/g, "_");
  switch (config.kind) {
    case "memory": {
      const { memoryStore } = await import("../../src/stores/memory.js");
      const store = memoryStore({ maxSessions: 100_000 });
      return { store, close: () => store.close(), cleanup: async () => {} };
    }
    case "sqlite": {
      const { default: Database } = await import("better-sqlite3");
      const { sqliteStore } = await import("../../src/stores/sqlite.js");
      const dir = config.dir ?? mkdtempSync(path.join(os.tmpdir(), "sk-load-sqlite-"));
      const db = new Database(path.join(dir, `${tag}.db`));
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      const store = sqliteStore({ db, table: tag });
      return {
        store,
        close: async () => void db.close(),
        cleanup: async () => {
          if (!config.dir) rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    case "postgres": {
      const { default: pg } = await import("pg");
      const { postgresStore } = await import("../../src/stores/postgres.js");
      const pool = new pg.Pool({
        connectionString: DATABASE_URL,
        application_name: config.applicationName ?? tag,
        connectionTimeoutMillis: 2000,
        query_timeout: 5000,
        max: 10,
      });
      // Documented as required: pg emits "error" on the pool when the server drops an idle client.
      pool.on("error", () => {});
      const store = postgresStore({ pool, table: tag });
      return {
        store,
        close: () => pool.end(),
        cleanup: async () => {
          const admin = new pg.Client({ connectionString: DATABASE_URL });
          await admin.connect();
          await admin.query(`DROP TABLE IF EXISTS "${tag}"`);
          await admin.end();
        },
      };
    }
    case "mysql": {
      const { default: mysql } = await import("mysql2/promise");
      const { mysqlStore } = await import("../../src/stores/mysql.js");
      const pool = mysql.createPool({ uri: MYSQL_URL, connectTimeout: 2000, connectionLimit: 10 });
      const store = mysqlStore({ pool, table: tag });
      return {
        store,
        close: () => pool.end(),
        cleanup: async () => {
          const admin = await mysql.createConnection({ uri: MYSQL_URL });
          await admin.query(`DROP TABLE IF EXISTS \`${tag}\``);
          await admin.end();
        },
      };
    }
    case "redis": {
      const { Redis } = await import("ioredis");
      const url = config.redisUrl ?? REDIS_URL;
      // The options the store's docs recommend for an outage: fail fast, never replay late.
      const client = new Redis(url, {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        lazyConnect: true,
        retryStrategy: (times) => Math.min(times * 50, 500),
      });
      return openRedisStore(client, tag, async (prefix) => {
        const admin = new Redis(url, { lazyConnect: true });
        admin.on("error", () => {});
        await admin.connect();
        await deleteRedisPrefix([admin], prefix);
        admin.disconnect();
      });
    }
    case "redis-cluster": {
      const { Cluster } = await import("ioredis");
      const client = new Cluster(REDIS_CLUSTER_NODES, {
        lazyConnect: true,
        redisOptions: { maxRetriesPerRequest: 1 },
      });
      return openRedisStore(client, tag, (prefix) =>
        deleteRedisPrefix(client.nodes("master"), prefix),
      );
    }
  }
}

/** Connects `client` and opens the store on it under the run's prefix, which `clear` deletes. */
async function openRedisStore(
  client: Redis | Cluster,
  tag: string,
  clear: (prefix: string) => Promise<void>,
): Promise<OpenStore> {
  const { redisStore } = await import("../../src/stores/redis.js");
  client.on("error", () => {});
  await client.connect();
  const prefix = `${tag}:`;
  return {
    store: redisStore({ client, prefix }),
    close: async () => void client.disconnect(),
    cleanup: () => clear(prefix),
  };
}

/** Deletes the run's keys, one per call: keys of different slots cannot go in one command. */
async function deleteRedisPrefix(nodes: Redis[], prefix: string): Promise<void> {
  for (const node of nodes) {
    for (const key of await scanPrefix([node], prefix)) await node.unlink(key).catch(() => 0);
  }
}

// ---------------------------------------------------------------------------------------------
// The app: three routes, written once per adapter in that framework's idiom
//   GET /inc?k=K      K += 1 (from 0), body the new value
//   GET /set?k=K&v=V  K = V (a string), body "ok"
//   GET /read         body JSON of the session data; writes nothing
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: string;
}

function route(session: Session, method: string, url: string): Reply {
  const parsed = new URL(url, "http://x");
  const k = parsed.searchParams.get("k") ?? "n";
  if (method !== "GET") return { status: 404, body: "not found" };
  switch (parsed.pathname) {
    case "/inc": {
      const value = ((session.get(k) as number | undefined) ?? 0) + 1;
      session.set(k, value);
      return { status: 200, body: String(value) };
    }
    case "/set":
      session.set(k, parsed.searchParams.get("v") ?? "");
      return { status: 200, body: "ok" };
    case "/read":
      return { status: 200, body: JSON.stringify(session.data) };
    default:
      return { status: 404, body: "not found" };
  }
}

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

function listenNode(server: Server): Promise<RunningApp> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}

/** Starts the three-route app on `adapter`, listening on a free loopback port. */
export async function startApp(adapter: AdapterName, sessions: Sessions<any>): Promise<RunningApp> {
  switch (adapter) {
    case "node": {
      const { withSession } = await import("../../src/adapters/node.js");
      const handler = withSession(sessions, (req, res) => {
        const reply = route(req.session as Session, req.method ?? "GET", req.url ?? "/");
        res.statusCode = reply.status;
        res.setHeader("content-type", "text/plain");
        res.end(reply.body);
      });
      return listenNode(createServer(handler));
    }
    case "express": {
      const { default: express } = await import("express");
      const { session, sessionErrors } = await import("../../src/adapters/express.js");
      const app = express();
      app.use(session(sessions));
      app.use((req, res) => {
        const reply = route(req.session as Session, req.method, req.originalUrl);
        res.status(reply.status).type("text").send(reply.body);
      });
      app.use(sessionErrors());
      return listenNode(createServer(app));
    }
    case "fastify": {
      const { default: Fastify } = await import("fastify");
      const { session } = await import("../../src/adapters/fastify.js");
      const app = Fastify();
      await app.register(session(sessions));
      app.get("/*", async (request, reply) => {
        const r = route(request.session as Session, request.method, request.url);
        return reply.code(r.status).type("text/plain").send(r.body);
      });
      const url = await app.listen({ port: 0, host: "127.0.0.1" });
      return { url, close: () => app.close() };
    }
    case "koa": {
      const { default: Koa } = await import("koa");
      const { session } = await import("../../src/adapters/koa.js");
      const app = new Koa();
      app.silent = true;
      app.use(session(sessions));
      app.use((ctx) => {
        const reply = route(ctx.session as Session, ctx.method, ctx.url);
        ctx.status = reply.status;
        ctx.type = "text/plain";
        ctx.body = reply.body;
      });
      return listenNode(createServer(app.callback()));
    }
    case "hono": {
      const { Hono } = await import("hono");
      const { getRequestListener } = await import("@hono/node-server");
      const { sessionMiddleware } = await import("../../src/adapters/hono.js");
      const app = new Hono<{ Variables: { session: Session<any> } }>();
      app.use(sessionMiddleware(sessions));
      app.get("*", (c) => {
        const reply = route(c.get("session") as Session, c.req.method, c.req.url);
        return c.text(reply.body, reply.status as 200);
      });
      return listenNode(createServer(getRequestListener(app.fetch)));
    }
    case "h3": {
      const { H3 } = await import("h3");
      const { toNodeHandler } = await import("h3/node");
      const { sessionMiddleware } = await import("../../src/adapters/h3.js");
      const app = new H3({ silent: true }).use(sessionMiddleware(sessions));
      app.get("/**", (event) => {
        const reply = route(event.context.session as Session, event.req.method, event.req.url);
        return new Response(reply.body, {
          status: reply.status,
          headers: { "content-type": "text/plain" },
        });
      });
      return listenNode(createServer(toNodeHandler(app)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP client with a cookie jar
// ---------------------------------------------------------------------------------------------

export interface Hit {
  /** HTTP status, or 0 when the request failed (connection error) or -1 when it timed out. */
  status: number;
  text: string;
  ms: number;
  startedAt: number;
  error?: string;
}

export class Client {
  readonly jar = new Map<string, string>();
  constructor(public base: string) {}

  async get(path: string, options: { timeoutMs?: number; base?: string } = {}): Promise<Hit> {
    const headers = new Headers();
    if (this.jar.size > 0)
      headers.set("cookie", [...this.jar].map(([n, v]) => `${n}=${v}`).join("; "));
    const startedAt = Date.now();
    const t0 = performance.now();
    try {
      const response = await fetch(new URL(path, options.base ?? this.base), {
        headers,
        redirect: "manual",
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      for (const line of response.headers.getSetCookie()) {
        const [pair = ""] = line.split(";");
        const eq = pair.indexOf("=");
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        if (value === "" || /max-age=0/i.test(line)) this.jar.delete(name);
        else this.jar.set(name, value);
      }
      const text = await response.text();
      return { status: response.status, text, ms: performance.now() - t0, startedAt };
    } catch (err) {
      const timedOut = (err as Error).name === "TimeoutError";
      return {
        status: timedOut ? -1 : 0,
        text: "",
        ms: performance.now() - t0,
        startedAt,
        error: String((err as Error).message),
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

export { answersPing, freePort, PrivateRedis } from "../helpers/redis-server.js";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What the app child reports about itself. */
export interface ChildStats {
  heapUsed: number;
  rss: number;
  /** Active handles and requests by type (sockets, timers...), after the GC. */
  resources: Record<string, number>;
  errorsLogged: number;
}

export interface AppChildConfig {
  adapters: AdapterName[];
  store: StoreConfig;
  sessionOptions?: Record<string, unknown>;
}

/**
 * An app server in its own Node process (run by tsx, with --expose-gc), so a crash, a leak or a
 * hang is the app's alone and is seen as such. Speaks over the IPC channel.
 */
export class AppChild {
  exited: { code: number | null; signal: string | null } | undefined;
  stderr = "";
  private waiters = new Map<string, (message: unknown) => void>();
  private constructor(
    private readonly child: ChildProcess,
    readonly urls: Record<string, string>,
  ) {}

  static async start(config: AppChildConfig, timeoutMs = 30_000): Promise<AppChild> {
    const child = fork(path.join(REPO, "test/load/app-child.ts"), [], {
      cwd: REPO,
      execArgv: ["--expose-gc", "--import", "tsx", "--conditions=sessionkit-source"],
      env: { ...process.env, SK_LOAD_CONFIG: JSON.stringify(config) },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      if (stderr.length < 200_000) stderr += chunk;
    });
    const ready = await new Promise<{ urls: Record<string, string> }>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`app child did not start: ${stderr}`)),
        timeoutMs,
      );
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`app child exited with ${code} before it was ready: ${stderr}`));
      });
      child.on("message", (message: { type?: string; urls?: Record<string, string> }) => {
        if (message.type === "ready") {
          clearTimeout(timer);
          resolve({ urls: message.urls ?? {} });
        }
      });
    });
    const app = new AppChild(child, ready.urls);
    app.stderr = stderr;
    child.stderr?.on("data", (chunk) => {
      if (app.stderr.length < 200_000) app.stderr += chunk;
    });
    child.removeAllListeners("exit");
    child.on("exit", (code, signal) => {
      app.exited = { code, signal };
    });
    child.on("message", (message: { type?: string; id?: string }) => {
      const waiter = message.id ? app.waiters.get(message.id) : undefined;
      if (waiter && message.id) {
        app.waiters.delete(message.id);
        waiter(message);
      }
    });
    return app;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private ask<T>(type: string, timeoutMs = 15_000): Promise<T> {
    const id = `${type}-${Math.random().toString(36).slice(2)}`;
    return new Promise<T>((resolve, reject) => {
      if (this.exited) return reject(new Error("app child has exited"));
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`app child did not answer ${type}`));
      }, timeoutMs);
      this.waiters.set(id, (message) => {
        clearTimeout(timer);
        resolve(message as T);
      });
      this.child.send({ type, id });
    });
  }

  /** Heap after a full GC, RSS, and live handles. */
  stats(): Promise<ChildStats> {
    return this.ask<ChildStats>("stats");
  }

  /** Heap and RSS as they are (no GC), for periodic sampling. */
  sample(): Promise<ChildStats> {
    return this.ask<ChildStats>("sample");
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      await this.ask("close", 10_000);
    } catch {
      // fall through to the kill below
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** A GC callable in this process (no --expose-gc needed), for in-process heap checks. */
export function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

export interface CheckResult {
  name: string;
  ok: boolean;
  /** One line of figures, printed in the summary. */
  detail: string;
  failures: string[];
  figures: Record<string, unknown>;
}

export function mb(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

export function machineLine(): string {
  const cpus = os.cpus();
  return `${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} x ${cpus[0]?.model.trim() ?? "cpu"}, ${(os.totalmem() / 1_073_741_824).toFixed(0)} GB RAM, Node ${process.version}`;
}

export function printSummary(results: CheckResult[]): number {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log("\n=== summary ===");
  for (const r of results) {
    console.log(`${r.ok ? "PASS" : "FAIL"}  ${r.name}: ${r.detail}`);
    for (const f of r.failures.slice(0, 10)) console.log(`        - ${f}`);
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  return failed;
}
