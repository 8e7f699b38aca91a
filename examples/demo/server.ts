// `npm run demo`: the demo app on http://localhost:3000, SQLite store in ./.sessionkit/demo.db.
// Flags: --store memory|cookie|sqlite|postgres|mysql|redis, --port N, --data-dir DIR (default
// ./.sessionkit: the SQLite file and the secret live there).
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { SessionStore } from "../../src/index.js";
import { createDemoApp, createDemoSessions } from "./app.js";

const STORES = ["memory", "cookie", "sqlite", "postgres", "mysql", "redis"] as const;
type StoreName = (typeof STORES)[number];
const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    port: { type: "string", default: process.env.PORT ?? "3000" },
    "data-dir": { type: "string", default: ".sessionkit" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(
    `usage: npm run demo -- [--store ${STORES.join("|")}] [--port 3000] [--data-dir .sessionkit]`,
  );
  process.exit(0);
}
const storeName = values.store as StoreName;
if (!STORES.includes(storeName)) {
  console.error(`--store must be one of ${STORES.join(", ")}`);
  process.exit(2);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("--port must be a port number");
  process.exit(2);
}
const DATA_DIR = values["data-dir"] as string;
if (DATA_DIR.length === 0) {
  console.error("--data-dir must name a directory");
  process.exit(2);
}

/** SESSIONKIT_SECRET, else a secret kept in <data dir>/secret so a restart keeps everyone signed in. */
function demoSecret(): string {
  if (process.env.SESSIONKIT_SECRET) return process.env.SESSIONKIT_SECRET;
  mkdirSync(DATA_DIR, { recursive: true });
  const file = join(DATA_DIR, "secret");
  if (!existsSync(file))
    writeFileSync(file, randomBytes(32).toString("base64url"), { mode: 0o600 });
  return readFileSync(file, "utf8").trim();
}

async function openStore(
  name: StoreName,
): Promise<{ store: SessionStore | undefined; label: string }> {
  switch (name) {
    case "cookie":
      return { store: undefined, label: "cookie (AES-256-GCM)" };
    case "memory": {
      const { memoryStore } = await import("../../src/stores/memory.js");
      return { store: memoryStore(), label: "memory" };
    }
    case "sqlite": {
      const { default: Database } = await import("better-sqlite3");
      const { sqliteStore } = await import("../../src/stores/sqlite.js");
      mkdirSync(DATA_DIR, { recursive: true });
      const file = join(DATA_DIR, "demo.db");
      const db = new Database(file);
      db.pragma("journal_mode = WAL");
      const store = sqliteStore({ db });
      // Expired rows are only hidden on read: delete them now and every hour, or the file only grows.
      const sweep = () => store.sweep(Date.now()).catch(console.error);
      await sweep();
      setInterval(sweep, 3_600_000).unref();
      return { store, label: `sqlite ${file}` };
    }
    case "postgres": {
      const { default: pg } = await import("pg");
      const { postgresStore } = await import("../../src/stores/postgres.js");
      const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
      const pool = new pg.Pool({ connectionString: url });
      pool.on("error", (err) => console.error("postgres pool:", err.message));
      return { store: postgresStore({ pool }), label: "postgres" };
    }
    case "mysql": {
      const mysql = await import("mysql2/promise");
      const { mysqlStore } = await import("../../src/stores/mysql.js");
      const pool = mysql.createPool(process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test");
      return { store: mysqlStore({ pool }), label: "mysql" };
    }
    case "redis": {
      const { Redis } = await import("ioredis");
      const { redisStore } = await import("../../src/stores/redis.js");
      const client = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", {
        maxRetriesPerRequest: 1,
      });
      return { store: redisStore({ client }), label: "redis" };
    }
  }
}

const { store, label } = await openStore(storeName);
const options = { secret: demoSecret(), store, storeLabel: label };
const server = createServer(createDemoApp(createDemoSessions(options), options));
server.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EADDRINUSE") throw err;
  console.error(`port ${port} is in use (another demo?): npm run demo -- --port ${port + 1}`);
  process.exit(1);
});
server.listen(port, () => {
  console.log(`sessionkit demo on http://localhost:${port} (store: ${label}); Ctrl-C to stop`);
});
const stop = () => {
  server.close(() => process.exit(0));
  // A browser may hold a request open; don't let it keep Ctrl-C waiting.
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
