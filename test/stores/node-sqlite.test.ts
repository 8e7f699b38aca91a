/**
 * The sqlite store on node:sqlite's DatabaseSync (Node >= 22.5). Apart from sqlite.test.ts so it never
 * loads better-sqlite3, whose native addon is built for the Node that installed it: the runtimes
 * suite runs this file on Node 22 (`SESSIONKIT_NODE_SQLITE=required`), where a missing node:sqlite fails.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type SqliteDatabase, sqliteStore } from "../../src/stores/sqlite.js";
import { testStore } from "../../src/testing/index.js";
import { deleteRows, dumpRows, tableExists } from "./sqlite-rows.js";

// A bare specifier keeps TypeScript (with Node 20's types) out of node:sqlite.
const NODE_SQLITE = "node:sqlite";
const nodeSqlite = (await import(NODE_SQLITE).catch(() => undefined)) as
  | { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } }
  | undefined;
const required = process.env.SESSIONKIT_NODE_SQLITE === "required";

if (nodeSqlite) {
  const db = new nodeSqlite.DatabaseSync(":memory:");
  afterAll(() => db.close());
  testStore("sqlite (node:sqlite)", (ctx) => sqliteStore({ db, now: ctx.now }), {
    clock: "injected",
    dumpRaw: () => dumpRows(db),
    reset: () => deleteRows(db),
  });
  describe("sqlite (node:sqlite) specifics", () => {
    it("creates its table on a DatabaseSync on first use", async () => {
      const fresh = new nodeSqlite.DatabaseSync(":memory:");
      try {
        const store = sqliteStore({ db: fresh, table: "lazy_sessions" });
        expect(tableExists(fresh, "lazy_sessions")).toBe(false);
        await store.get("k".repeat(43));
        expect(tableExists(fresh, "lazy_sessions")).toBe(true);
      } finally {
        fresh.close();
      }
    });
  });
} else {
  describe("sqlite (node:sqlite) store conformance", () => {
    if (required) {
      it("needs node:sqlite", () => {
        throw new Error(`node:sqlite is missing on Node ${process.versions.node}`);
      });
    } else {
      // Run on Node 22 by the runtimes suite (test/runtimes/runtimes.test.ts).
      it.skip(`needs node:sqlite (Node >= 22.5); this is Node ${process.versions.node}`, () => {});
    }
  });
}
