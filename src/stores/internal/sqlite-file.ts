/**
 * Opens a SQLite database file by path with whichever driver the runtime can load, for the callers
 * that take a path instead of an open database (the Oak seed's `SqliteStore`, the CLI).
 *
 * better-sqlite3 first: it is the documented default on Node. `node:sqlite` second: Deno refuses
 * better-sqlite3's addon (it loads only Node-API addons) and Bun does not support it, while both, like
 * Node 22.5+, have `node:sqlite`. The Oak seed is a Deno program, so without the second driver its
 * `new SqliteStore("./database.db")` could never open there.
 */
import type { SqliteDatabase } from "../sqlite.js";

export interface OpenedSqliteFile {
  db: SqliteDatabase;
  driver: "better-sqlite3" | "node:sqlite";
  close(): void;
}

type Constructor = new (path: string) => SqliteDatabase & { close(): void };

/** A driver to try, in order. */
export interface SqliteDriver {
  name: OpenedSqliteFile["driver"];
  /** Resolves a constructor that has shown it can open a database, or rejects with why not. */
  load(): Promise<Constructor>;
}

// A specifier TypeScript does not resolve: Node 20's type declarations have no node:sqlite.
const NODE_SQLITE = "node:sqlite";

const DRIVERS: readonly SqliteDriver[] = [
  {
    name: "better-sqlite3",
    async load() {
      const Database = (await import("better-sqlite3")).default as unknown as Constructor;
      // The addon loads when the first database opens; an in-memory one proves it loads here.
      new Database(":memory:").close();
      return Database;
    },
  },
  {
    name: "node:sqlite",
    async load() {
      const { DatabaseSync } = (await import(NODE_SQLITE)) as { DatabaseSync: Constructor };
      return DatabaseSync;
    },
  },
];

/**
 * Opens `path` (created if missing), switching it to WAL when `wal` is set. A driver that cannot load
 * here is skipped; an error opening the file itself is thrown as it is. Fails, naming each driver's
 * reason, when none loads.
 */
export async function openSqliteFile(
  path: string,
  { wal }: { wal: boolean },
  drivers: readonly SqliteDriver[] = DRIVERS,
): Promise<OpenedSqliteFile> {
  const reasons: string[] = [];
  for (const driver of drivers) {
    let Database: Constructor;
    try {
      Database = await driver.load();
    } catch (err) {
      reasons.push(`${driver.name}: ${reasonOf(err)}`);
      continue;
    }
    const db = new Database(path);
    try {
      // WAL: readers never wait for the writer. It stays set in the file, so only an owner asks.
      if (wal) db.exec("PRAGMA journal_mode = WAL");
    } catch (err) {
      db.close();
      throw err;
    }
    return { db, driver: driver.name, close: () => db.close() };
  }
  throw new Error(
    `no SQLite driver could load (${reasons.join("; ")}): npm install better-sqlite3, or run on a runtime with node:sqlite (Node 22.5+, Deno, Bun)`,
  );
}

function reasonOf(err: unknown): string {
  const code = (err as { code?: string } | undefined)?.code;
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") return "not installed";
  if (code === "ERR_UNKNOWN_BUILTIN_MODULE") return "not in this runtime";
  const message = err instanceof Error ? err.message : String(err);
  // Addon loaders explain at length; the first line says what failed.
  return message.split("\n")[0] as string;
}
