// `npm run demo`: the demo app on http://localhost:3000, SQLite store in ./.sessionkit/demo.db.
// Flags: --store memory|cookie|sqlite|postgres|mysql|redis, --port N (PORT; 0: any free port),
// --host ADDRESS (HOST; default 127.0.0.1, this machine only), --data-dir DIR (default
// ./.sessionkit: the SQLite file and the secret live there).
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { SessionStore } from "../../src/index.js";
import { createDemoApp, createDemoSessions } from "./app.js";
import { demoSecret } from "./secret.js";

const STORES = ["memory", "cookie", "sqlite", "postgres", "mysql", "redis"] as const;
type StoreName = (typeof STORES)[number];
const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    port: { type: "string", default: process.env.PORT ?? "3000" },
    // This machine only unless asked: a demo started on a café's Wi-Fi is nobody else's to open.
    // Not "localhost": node:http listens on the first address a lookup gives, ::1 where the hosts
    // file lists it first, and binding ::1 fails (EADDRNOTAVAIL) where IPv6 is switched off, as in
    // many containers. http://localhost reaches 127.0.0.1 anyway: browsers, curl and Node 20's
    // clients (autoSelectFamily) try each address of the name, ::1 refused then 127.0.0.1.
    host: { type: "string", default: process.env.HOST || "127.0.0.1" },
    "data-dir": { type: "string", default: ".sessionkit" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(
    `usage: npm run demo -- [--store ${STORES.join("|")}] [--port 3000] [--host 127.0.0.1] [--data-dir .sessionkit]\n` +
      "  --host 0.0.0.0 (or HOST=0.0.0.0) listens on every network interface, e.g. in a container",
  );
  process.exit(0);
}
const storeName = values.store as StoreName;
if (!STORES.includes(storeName)) {
  console.error(`--store must be one of ${STORES.join(", ")}`);
  process.exit(2);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error("--port must be a port number (0: any free port)");
  process.exit(2);
}
const host = values.host as string;
if (host.length === 0) {
  console.error("--host must name an address of this machine: 127.0.0.1, 0.0.0.0, ::");
  process.exit(2);
}
const DATA_DIR = values["data-dir"] as string;
if (DATA_DIR.length === 0) {
  console.error("--data-dir must name a directory");
  process.exit(2);
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

let secret: string;
try {
  secret = demoSecret(DATA_DIR);
} catch (err) {
  console.error(`sessionkit demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
const { store, label } = await openStore(storeName);
const options = { secret, store, storeLabel: label };
const server = createServer(createDemoApp(createDemoSessions(options), options));
server.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EADDRINUSE") {
    console.error(`port ${port} is in use (another demo?): npm run demo -- --port ${port + 1}`);
  } else if (["EADDRNOTAVAIL", "EAFNOSUPPORT", "ENOTFOUND", "EAI_AGAIN"].includes(err.code ?? "")) {
    console.error(
      `cannot listen on ${host} (${err.code}): HOST must be an address of this machine, such as 127.0.0.1 or 0.0.0.0`,
    );
  } else throw err;
  process.exit(1);
});

const isLoopback = (address: string) => address === "::1" || /^(::ffff:)?127\./.test(address);
const isEveryInterface = (address: string) => address === "0.0.0.0" || address === "::";

server.listen(port, host, () => {
  const { address, port: bound } = server.address() as AddressInfo;
  const where = address.includes(":") ? `[${address}]:${bound}` : `${address}:${bound}`;
  const reach = isLoopback(address)
    ? ", this machine only (HOST=0.0.0.0 npm run demo to listen on every interface)"
    : isEveryInterface(address)
      ? ": every network interface, so other machines can reach it"
      : ": other machines on that network can reach it";
  console.log(`sessionkit demo listening on ${where}${reach}`);
  // localhost reaches a loopback or every-interface binding; any other address must be named.
  const urlHost =
    isLoopback(address) || isEveryInterface(address)
      ? "localhost"
      : address.includes(":")
        ? `[${address}]`
        : address;
  console.log(`sessionkit demo on http://${urlHost}:${bound} (store: ${label}); Ctrl-C to stop`);
});
const stop = () => {
  server.close(() => process.exit(0));
  // A browser may hold a request open; don't let it keep Ctrl-C waiting.
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
