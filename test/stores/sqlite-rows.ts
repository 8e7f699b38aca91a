import type { SqliteDatabase } from "../../src/stores/sqlite.js";

/** The sqlite store's default table, read directly by the tests. */
export const TABLE = "sessionkit_sessions";

export const tableExists = (db: SqliteDatabase, name = TABLE) =>
  db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
  undefined;

/** Every row, as the suite's check that no raw session id reaches storage reads it. */
export const dumpRows = async (db: SqliteDatabase) =>
  tableExists(db) ? JSON.stringify(db.prepare(`SELECT * FROM ${TABLE}`).all()) : "";

export const deleteRows = async (db: SqliteDatabase) => {
  if (tableExists(db)) db.exec(`DELETE FROM ${TABLE}`);
};
