/**
 * Opening a SQLite file by path (the Oak seed's `SqliteStore`, the CLI): the first driver that loads
 * wins, a driver that cannot load is skipped, and an error opening the file itself is not mistaken
 * for a missing driver. The node:sqlite path itself runs in the Oak seed's suite on Deno and Bun.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { openSqliteFile, type SqliteDriver } from "../../src/stores/internal/sqlite-file.js";

const dir = mkdtempSync(join(tmpdir(), "sessionkit-sqlite-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const working = (name: SqliteDriver["name"], loads: string[]): SqliteDriver => ({
  name,
  load: async () => {
    loads.push(name);
    return Database as unknown as Awaited<ReturnType<SqliteDriver["load"]>>;
  },
});
const broken = (name: SqliteDriver["name"], message: string, code?: string): SqliteDriver => ({
  name,
  load: async () => {
    throw Object.assign(new Error(`${message}\nsecond line of a long addon message`), { code });
  },
});

function journalMode(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma("journal_mode", { simple: true }) as string;
  } finally {
    db.close();
  }
}

describe("openSqliteFile", () => {
  it("opens with better-sqlite3 on Node by default, and sets WAL only when asked", async () => {
    const walFile = join(dir, "wal.db");
    const opened = await openSqliteFile(walFile, { wal: true });
    expect(opened.driver).toBe("better-sqlite3");
    opened.db.exec("CREATE TABLE t (x)");
    opened.close();
    expect(journalMode(walFile)).toBe("wal");

    const plainFile = join(dir, "plain.db");
    const plain = await openSqliteFile(plainFile, { wal: false });
    plain.db.exec("CREATE TABLE t (x)");
    plain.close();
    expect(journalMode(plainFile)).toBe("delete");
  });

  it("skips a driver that cannot load and opens with the next", async () => {
    const loads: string[] = [];
    const file = join(dir, "fallback.db");
    const opened = await openSqliteFile(file, { wal: true }, [
      broken("better-sqlite3", "Cannot load native addon"),
      working("node:sqlite", loads),
    ]);
    expect(opened.driver).toBe("node:sqlite");
    expect(loads).toEqual(["node:sqlite"]);
    opened.db.exec("CREATE TABLE t (x)");
    opened.close();
    expect(journalMode(file)).toBe("wal");
  });

  it("fails naming every driver's reason and what to do when none loads", async () => {
    const failure = openSqliteFile(join(dir, "none.db"), { wal: true }, [
      broken("better-sqlite3", "Cannot find package 'better-sqlite3'", "ERR_MODULE_NOT_FOUND"),
      broken("node:sqlite", "No such built-in module: node:sqlite", "ERR_UNKNOWN_BUILTIN_MODULE"),
    ]);
    await expect(failure).rejects.toThrow(
      "no SQLite driver could load (better-sqlite3: not installed; node:sqlite: not in this runtime): npm install better-sqlite3, or run on a runtime with node:sqlite (Node 22.5+, Deno, Bun)",
    );
    const addon = openSqliteFile(join(dir, "none.db"), { wal: true }, [
      broken("better-sqlite3", "Cannot load native addon"),
    ]);
    // The first line of a loader's message, not the whole of it.
    await expect(addon).rejects.toThrow(/\(better-sqlite3: Cannot load native addon\):/);
  });

  it("reports a file that cannot be opened as it is, without trying another driver", async () => {
    const loads: string[] = [];
    const failure = openSqliteFile(join(dir, "missing-dir", "x.db"), { wal: true }, [
      working("better-sqlite3", loads),
      working("node:sqlite", loads),
    ]);
    await expect(failure).rejects.toThrow(/directory does not exist|unable to open/i);
    expect(loads).toEqual(["better-sqlite3"]);
  });
});
