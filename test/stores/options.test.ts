/**
 * Every store refuses an option it does not know when it is created, naming the nearest known one:
 * a misspelt `tableName` or `maxSession` would otherwise be ignored without a word, and the store
 * would run on its defaults. No server is needed: options are checked before any connection.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { memoryStore } from "../../src/stores/memory.js";
import { mysqlStore } from "../../src/stores/mysql.js";
import { postgresStore } from "../../src/stores/postgres.js";
import { redisStore } from "../../src/stores/redis.js";
import { sqliteStore } from "../../src/stores/sqlite.js";

const pool = { query: async () => [[], []], connect: async () => undefined } as never;

const cases: Array<[string, () => unknown, string]> = [
  ["memoryStore", () => memoryStore({ maxSession: 10 } as never), "maxSessions"],
  [
    "sqliteStore",
    () => sqliteStore({ db: new Database(":memory:"), tabel: "s" } as never),
    "table",
  ],
  ["postgresStore", () => postgresStore({ pool, tableName: "s" } as never), "table"],
  ["mysqlStore", () => mysqlStore({ pool, createTables: false } as never), "createTable"],
  ["redisStore", () => redisStore({ client: {} as never, prefx: "app:" } as never), "prefix"],
];

describe("store options", () => {
  for (const [name, create, meant] of cases) {
    it(`${name} refuses an unknown option at creation, with a did-you-mean`, () => {
      expect(create).toThrow(ConfigError);
      expect(create).toThrow(`unknown ${name} option`);
      expect(create).toThrow(`did you mean "${meant}"?`);
    });
  }
});
