import { existsSync } from "node:fs";
import { openSqliteFile } from "../stores/internal/sqlite-file.js";
import { type CliIo, describeError, EXIT, parseCommandArgs, UsageError } from "./io.js";

const STORE_HELP = `  --store <url>        sqlite:./path.db (or a path ending .db, .sqlite, .sqlite3),
                       postgres://user:pass@host:5432/db, or mysql://user:pass@host:3306/db
  --table <name>       the store's table; default "sessionkit_sessions"
  -h, --help           show this help

Drivers are loaded on demand: better-sqlite3, pg or mysql2 must be installed beside sessionkit.
Exit codes: 0 done; 1 the store failed (unreachable, no table, no driver); 2 bad arguments.`;

export const PURGE_USAGE = `Usage: sessionkit purge --store <url> [--table <name>]

Deletes the sessions whose deadline has passed (the store's sweep(now)) and prints how many went.
Expired sessions are never served in the meantime; purging only reclaims space. Run it from cron.

Options:
${STORE_HELP}`;

export const MIGRATE_USAGE = `Usage: sessionkit migrate --store <url> [--table <name>]

Creates the session table and its indexes if they are missing (idempotent, safe to run on every
deploy), for apps whose database role may not run DDL (createTable: false).

Options:
${STORE_HELP}`;

/** The part of every SQL store the CLI drives. */
interface SqlStore {
  migrate(): Promise<void>;
  sweep(now: number): Promise<number>;
}

interface Opened {
  kind: "sqlite" | "postgres" | "mysql";
  store: SqlStore;
  close(): Promise<void>;
}

export async function storeCommand(
  command: "purge" | "migrate",
  argv: string[],
  io: CliIo,
): Promise<number> {
  const usage = command === "purge" ? PURGE_USAGE : MIGRATE_USAGE;
  const { values, positionals } = parseCommandArgs(
    argv,
    { store: { type: "string" }, table: { type: "string" } },
    usage,
  );
  if (values.help) {
    io.stdout(`${usage}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 0) {
    throw new UsageError(`${command} takes no arguments besides its options`, usage);
  }
  const url = values.store as string | undefined;
  if (!url) throw new UsageError(`${command} needs --store <url>`, usage);
  const target = parseStoreUrl(url, usage);
  const table = values.table as string | undefined;
  // Checked before any file or connection is opened; each store then applies its own length limits.
  if (table !== undefined && !/^(?:[A-Za-z_]\w*\.)?[A-Za-z_]\w*$/.test(table)) {
    throw new UsageError(
      `--table must be letters, digits and "_" (optionally "schema.table")`,
      usage,
    );
  }
  const redact = [target.password];

  let opened: Opened | undefined;
  try {
    opened = await openStore(target, table, command);
    const shown = `${opened.kind} table ${table ?? "sessionkit_sessions"}`;
    if (command === "migrate") {
      await opened.store.migrate();
      io.stdout(`migrated: the ${shown} and its indexes exist\n`);
    } else {
      const count = await opened.store.sweep(Date.now());
      io.stdout(`purged ${count} expired session${count === 1 ? "" : "s"} from the ${shown}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_CONFIG") {
      throw new UsageError(describeError(err, redact).replace(/^sessionkit: /, ""), usage);
    }
    const missingTable =
      err instanceof MissingTableError ||
      ["42P01", "ER_NO_SUCH_TABLE"].includes(
        (err as { cause?: { code?: string } }).cause?.code ?? "",
      );
    const hint = missingTable ? `\n  the table does not exist: run "sessionkit migrate" first` : "";
    io.stderr(`sessionkit ${command} failed: ${describeError(err, redact)}${hint}\n`);
    return EXIT.failed;
  } finally {
    await opened?.close().catch(() => undefined);
  }
}

/** purge found no table to purge. */
class MissingTableError extends Error {}

interface StoreTarget {
  kind: "sqlite" | "postgres" | "mysql";
  /** The file of a SQLite store, the connection URL of a server. */
  location: string;
  password: string;
}

function parseStoreUrl(url: string, usage: string): StoreTarget {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length).replace(/^\/\/(?=\/|\.)/, "");
    if (path === "")
      throw new UsageError("--store sqlite: needs a path, e.g. sqlite:./sessions.db", usage);
    return { kind: "sqlite", location: path, password: "" };
  }
  if (/\.(?:db|sqlite3?)$/i.test(url) && !url.includes("://")) {
    return { kind: "sqlite", location: url, password: "" };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      "--store must be sqlite:<path>, a .db path, postgres://... or mysql://...",
      usage,
    );
  }
  let password: string;
  try {
    password = decodeURIComponent(parsed.password);
  } catch {
    // The drivers decode it the same way and would fail too, with a bare "URI malformed".
    throw new UsageError(
      "--store: the password is not valid percent-encoding (write % as %25)",
      usage,
    );
  }
  if (parsed.protocol === "postgres:" || parsed.protocol === "postgresql:") {
    return { kind: "postgres", location: url, password };
  }
  if (parsed.protocol === "mysql:") return { kind: "mysql", location: url, password };
  throw new UsageError(
    `--store scheme "${parsed.protocol}" is not a SQL store sessionkit knows: use sqlite:, postgres:// or mysql://`,
    usage,
  );
}

/** A clear error naming the package to install when a driver is missing; other load errors pass on. */
async function loadDriver<M>(name: string, kind: string, load: () => Promise<M>): Promise<M> {
  try {
    return await load();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
      throw new Error(
        `the ${kind} store needs the "${name}" package, which is not installed: npm install ${name}`,
      );
    }
    throw err;
  }
}

async function openStore(
  target: StoreTarget,
  table: string | undefined,
  command: "purge" | "migrate",
): Promise<Opened> {
  const tableOption = table === undefined ? {} : { table };
  if (target.kind === "sqlite") {
    // purge on a file that does not exist would create an empty database: refuse instead.
    if (command === "purge" && !existsSync(target.location)) {
      throw new Error(`no SQLite database at ${target.location}`);
    }
    // better-sqlite3, or node:sqlite where it cannot load: the CLI runs under Deno and Bun too. The
    // journal mode is the application's choice, so the CLI leaves it as it is.
    const file = await openSqliteFile(target.location, { wal: false });
    const { sqliteStore } = await import("../stores/sqlite.js");
    try {
      const store = sqliteStore({ db: file.db, ...tableOption });
      // The SQLite store creates its table on first use, so purge with a mistyped --table would make
      // an empty one and report 0 purged, every night: the server stores refuse, and so does this.
      const name = table ?? "sessionkit_sessions";
      const exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";
      if (command === "purge" && file.db.prepare(exists).get(name) === undefined) {
        throw new MissingTableError(`no table ${name} in ${target.location}`);
      }
      return {
        kind: "sqlite",
        store,
        close: async () => {
          file.close();
        },
      };
    } catch (err) {
      file.close();
      throw err;
    }
  }
  if (target.kind === "postgres") {
    const { default: pg } = await loadDriver("pg", "postgres", () => import("pg"));
    const { postgresStore } = await import("../stores/postgres.js");
    const pool = new pg.Pool({
      connectionString: target.location,
      connectionTimeoutMillis: 5000,
      max: 1,
    });
    pool.on("error", () => undefined); // an idle client dropped by the server: the command's own call reports
    return {
      kind: "postgres",
      // purge never creates a table: a missing one is worth an error ("run migrate") instead.
      store: postgresStore({ pool, createTable: false, ...tableOption }),
      close: () => pool.end(),
    };
  }
  const { default: mysql } = await loadDriver("mysql2", "mysql", () => import("mysql2/promise"));
  const { mysqlStore } = await import("../stores/mysql.js");
  const pool = mysql.createPool({ uri: target.location, connectTimeout: 5000, connectionLimit: 1 });
  return {
    kind: "mysql",
    store: mysqlStore({ pool, createTable: false, ...tableOption }),
    close: () => pool.end(),
  };
}
