import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { ConfigError, isSessionError } from "../../src/errors.js";
import { type SqliteDatabase, sqliteStore } from "../../src/stores/sqlite.js";
import type { StoredSession } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";
import { deleteRows, dumpRows, TABLE, tableExists } from "./sqlite-rows.js";

const HOUR_MS = 3_600_000;
const KEY = "k".repeat(43);
const session = (at: number): StoredSession => ({
  data: { a: 1 },
  meta: { createdAt: at, touchedAt: at, renewedAt: at },
});

const shared = new Database(":memory:");
afterAll(() => shared.close());

testStore("sqlite (better-sqlite3)", (ctx) => sqliteStore({ db: shared, now: ctx.now }), {
  clock: "injected",
  dumpRaw: () => dumpRows(shared),
  reset: () => deleteRows(shared),
  extra() {
    it("creates its table and indexes on first use, not in the factory", async () => {
      const db = new Database(":memory:");
      const store = sqliteStore({ db, table: "lazy_sessions" });
      expect(tableExists(db, "lazy_sessions")).toBe(false);
      expect(await store.get(KEY)).toBeUndefined();
      expect(tableExists(db, "lazy_sessions")).toBe(true);
      const indexes = db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'lazy_sessions' AND sql IS NOT NULL",
        )
        .all()
        .map((row) => (row as { name: string }).name)
        .sort();
      expect(indexes).toEqual(["lazy_sessions_expires_at", "lazy_sessions_user_id"]);
      db.close();
    });

    it("migrate() is idempotent and keeps existing rows", async () => {
      const db = new Database(":memory:");
      const store = sqliteStore({ db, now: () => 1000 });
      await store.migrate();
      await store.set(KEY, session(1000), 1000 + HOUR_MS);
      await store.migrate();
      await sqliteStore({ db, now: () => 1000 }).migrate();
      expect(await store.get(KEY)).toEqual(session(1000));
      db.close();
    });

    it("a WAL file database keeps its sessions when the Database is reopened", async () => {
      const dir = mkdtempSync(join(tmpdir(), "sessionkit-sqlite-"));
      try {
        const file = join(dir, "sessions.db");
        const first = new Database(file);
        expect(first.pragma("journal_mode = WAL", { simple: true })).toBe("wal");
        await sqliteStore({ db: first, now: () => 1000 }).set(KEY, session(1000), 1000 + HOUR_MS);
        first.close();
        const second = new Database(file);
        expect(second.pragma("journal_mode", { simple: true })).toBe("wal");
        expect(await sqliteStore({ db: second, now: () => 2000 }).get(KEY)).toEqual(session(1000));
        second.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("lock: two connections to one file exclude each other, and sweep clears an abandoned lease", async () => {
      const dir = mkdtempSync(join(tmpdir(), "sessionkit-sqlite-"));
      const file = join(dir, "sessions.db");
      const first = new Database(file);
      const second = new Database(file);
      try {
        const a = sqliteStore({ db: first });
        const b = sqliteStore({ db: second });
        const release = await a.lock(KEY, 60_000, 0);
        expect(release).toBeTypeOf("function");
        expect(await b.lock(KEY, 60_000, 0)).toBeNull();
        const waiting = b.lock(KEY, 60_000, 5000);
        await release?.();
        const next = await waiting;
        expect(next).toBeTypeOf("function");
        // A holder that never releases: its lease row stays until it expires and a sweep takes it.
        const abandoned = await a.lock("z".repeat(43), 1, 0);
        expect(abandoned).toBeTypeOf("function");
        await new Promise((resolve) => setTimeout(resolve, 5));
        await b.sweep(Date.now());
        const rows = first.prepare(`SELECT key FROM ${TABLE}_locks`).all() as { key: string }[];
        expect(rows.map((row) => row.key)).toEqual([KEY]);
        await next?.();
        expect(first.prepare(`SELECT count(*) AS n FROM ${TABLE}_locks`).get()).toEqual({ n: 0 });
      } finally {
        first.close();
        second.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("a closed database rejects with StoreUnavailableError carrying the driver's error", async () => {
      const db = new Database(":memory:");
      const store = sqliteStore({ db });
      await store.set(KEY, session(Date.now()), Date.now() + HOUR_MS);
      db.close();
      const calls = [
        store.get(KEY),
        store.set(KEY, session(1), Date.now() + HOUR_MS),
        store.patch(KEY, { set: { b: 2 }, delete: [] }, Date.now() + HOUR_MS),
        store.touch(KEY, 1, Date.now() + HOUR_MS),
        store.delete(KEY),
        store.sweep(Date.now()),
      ];
      for (const call of calls) {
        const err = await call.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isSessionError(err, "ERR_STORE_UNAVAILABLE")).toBe(true);
        expect((err as Error).message).toMatch(/^sessionkit: /);
        expect((err as Error).message).not.toContain(KEY);
        expect((err as Error).cause).toBeInstanceOf(Error);
      }
    });

    it("a store whose first use failed creates its table once the database works", async () => {
      let broken = true;
      const db = new Database(":memory:");
      const flaky: SqliteDatabase = {
        prepare: (sql) => db.prepare(sql),
        exec: (sql) => {
          if (broken) throw new Error("disk I/O error");
          return db.exec(sql);
        },
      };
      const store = sqliteStore({ db: flaky });
      await expect(store.get(KEY)).rejects.toMatchObject({ code: "ERR_STORE_UNAVAILABLE" });
      broken = false;
      expect(await store.get(KEY)).toBeUndefined();
      expect(tableExists(db)).toBe(true);
      db.close();
    });

    it("an unreadable row is not found", async () => {
      const db = new Database(":memory:");
      const store = sqliteStore({ db, now: () => 1000 });
      await store.set(KEY, session(1000), 1000 + HOUR_MS);
      db.prepare(`UPDATE ${TABLE} SET data = '{broken' WHERE key = ?`).run(KEY);
      expect(await store.get(KEY)).toBeUndefined();
      expect(await store.patch(KEY, { set: { b: 1 }, delete: [] }, 1000 + HOUR_MS)).toBe(false);
      db.close();
    });

    it("refuses a table name that is not a plain identifier, and a db without prepare", () => {
      expect(() => sqliteStore({ db: shared, table: 'x"; DROP TABLE y; --' })).toThrow(ConfigError);
      expect(() => sqliteStore({ db: {} as SqliteDatabase })).toThrow(/^sessionkit: /);
    });
  },
});
