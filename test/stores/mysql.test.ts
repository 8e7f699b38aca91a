import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, isSessionError, StoreUnavailableError } from "../../src/errors.js";
import { createSessions } from "../../src/manager.js";
import { type MysqlStore, mysqlStore } from "../../src/stores/mysql.js";
import type { SessionMeta, StoredSession } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";
import { MYSQL_URL, serviceAvailable } from "../helpers/services.js";

const available = await serviceAvailable("MySQL", MYSQL_URL);

// Per-file and per-process names: parallel test files, and a second test run started by someone
// else on the same servers, never share (or truncate) each other's rows.
const TABLE = `sessionkit_test_mysql_${process.pid}`;
const MIGRATE_TABLE = `sessionkit_test_mysql_migrate_${process.pid}`;
const HOUR_MS = 3_600_000;
// A password that must never show up in an error message.
const PASSWORD = "hunter2-mysql-never-print";
const SECRET = "x".repeat(32);

const metaAt = (at: number): SessionMeta => ({ createdAt: at, touchedAt: at, renewedAt: at });
/** Distinct keys of the real shape (43 base64url characters), readable in a failing test. */
let keySeq = 0;
const newKey = () => `mytestkey${String(++keySeq).padStart(4, "0")}`.padEnd(43, "A");

/** Polls a condition by querying, never by sleeping; each round trip gives the event loop a turn. */
async function until(check: () => Promise<boolean>, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) if (await check()) return;
  throw new Error(`condition not met after ${rounds} rounds`);
}

/** A pool that records the server thread id of every connection it opens, so a test can KILL them. */
function trackedPool(limit: number): { pool: mysql.Pool; threadIds: Set<number> } {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: limit });
  const threadIds = new Set<number>();
  pool.on("connection", (connection: { threadId: number }) => threadIds.add(connection.threadId));
  return { pool, threadIds };
}

describe.skipIf(!available)("mysqlStore", () => {
  let pool: mysql.Pool;
  let threadIds: Set<number>;
  let admin: mysql.Connection;
  const clock = Date.now();
  const now = () => clock;

  beforeAll(async () => {
    ({ pool, threadIds } = trackedPool(12));
    admin = await mysql.createConnection({ uri: MYSQL_URL });
    await admin.query(`DROP TABLE IF EXISTS ${TABLE}`);
  });
  afterAll(async () => {
    for (const name of [TABLE, MIGRATE_TABLE]) {
      await admin?.query(`DROP TABLE IF EXISTS ${name}`);
      await admin?.query(`DROP TABLE IF EXISTS ${name}_locks`);
    }
    await admin?.end();
    await pool?.end();
  });

  testStore("mysql", (ctx) => mysqlStore({ pool, table: TABLE, now: ctx.now }), {
    clock: "injected",
    async dumpRaw() {
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT CONCAT_WS('|', \`key\`, \`data\`, \`meta\`, IFNULL(\`user_id\`, ''), \`expires_at\`) AS r FROM ${TABLE} ORDER BY \`key\``,
      );
      return rows.map((row) => String(row.r)).join("\n");
    },
    async reset() {
      await admin.query(`TRUNCATE TABLE ${TABLE}`);
    },
    extra() {
      describe("mysql specifics", () => {
        it("creates the table with its indexes and a JSON_VALID check on first use, once per store", async () => {
          await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
          const statements: string[] = [];
          const spy = {
            query: (sql: string, values?: unknown[]) => {
              statements.push(sql);
              return pool.query(sql, values);
            },
          } as unknown as mysql.Pool;
          const s = mysqlStore({ pool: spy, table: MIGRATE_TABLE, now });
          const got = await Promise.all(Array.from({ length: 5 }, () => s.get(newKey())));
          expect(got).toEqual([undefined, undefined, undefined, undefined, undefined]);
          // The sessions table and the lock leases' table, each once.
          const created = statements.filter((sql) => sql.includes("CREATE TABLE"));
          expect(created.map((sql) => sql.split("`")[1])).toEqual([
            MIGRATE_TABLE,
            `${MIGRATE_TABLE}_locks`,
          ]);
          const [indexes] = await admin.query<mysql.RowDataPacket[]>(
            `SHOW INDEX FROM ${MIGRATE_TABLE}`,
          );
          const columns = indexes.map((row) => `${row.Key_name}:${row.Column_name}`).sort();
          expect(columns).toEqual([
            "PRIMARY:key",
            "expires_at_idx:expires_at",
            "user_id_idx:user_id",
          ]);
          // MariaDB's JSON is LONGTEXT with a JSON_VALID check, MySQL's a native type: both refuse bad JSON.
          const bad = admin.query(
            `INSERT INTO ${MIGRATE_TABLE} (\`key\`, \`data\`, \`meta\`, \`expires_at\`) VALUES ('k', 'not json', '{}', 1)`,
          );
          await expect(bad).rejects.toThrow();
        });

        it("creates one table when several store instances start at once, and each then works", async () => {
          for (let round = 0; round < 5; round++) {
            await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
            const stores = Array.from({ length: 6 }, () =>
              mysqlStore({ pool, table: MIGRATE_TABLE, now }),
            );
            const key = newKey();
            await Promise.all(stores.map((s) => s.migrate()));
            await stores[0]?.set(key, record({ round }), clock + HOUR_MS);
            for (const s of stores) expect((await s.get(key))?.data).toEqual({ round });
          }
          await mysqlStore({ pool, table: MIGRATE_TABLE, now }).migrate();
          const [count] = await admin.query<mysql.RowDataPacket[]>(
            `SELECT COUNT(*) AS n FROM ${MIGRATE_TABLE}`,
          );
          expect(Number(count[0]?.n)).toBe(1);
        });

        it("lock: a lease another pool holds blocks, and sweep deletes an abandoned one by the server's clock", async () => {
          const other = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
          try {
            const a = mysqlStore({ pool, table: TABLE, now });
            const b = mysqlStore({ pool: other, table: TABLE, now });
            const key = newKey();
            const release = await a.lock(key, 60_000, 0);
            expect(release).toBeTypeOf("function");
            expect(await b.lock(key, 60_000, 0)).toBeNull();
            await release?.();
            const abandoned = newKey();
            expect(await b.lock(abandoned, 1, 0)).toBeTypeOf("function");
            await new Promise((resolve) => setTimeout(resolve, 20));
            await a.sweep(now());
            const [rows] = await admin.query<mysql.RowDataPacket[]>(
              `SELECT \`key\` FROM ${TABLE}_locks WHERE \`key\` IN (?, ?)`,
              [key, abandoned],
            );
            expect(rows).toEqual([]);
          } finally {
            await other.end();
          }
        });

        it("lock: 200 parallel waiters on one key each get it in turn (InnoDB deadlocks between them are retried)", async () => {
          const s = mysqlStore({ pool, table: TABLE, now });
          const key = newKey();
          let holders = 0;
          let most = 0;
          const got = await Promise.all(
            Array.from({ length: 200 }, async () => {
              const release = await s.lock(key, 30_000, 20_000);
              if (!release) return false;
              most = Math.max(most, ++holders);
              await new Promise((resolve) => setTimeout(resolve, 1));
              holders--;
              await release();
              return true;
            }),
          );
          expect(got.filter(Boolean)).toHaveLength(200);
          expect(most).toBe(1);
        }, 30_000);

        it("with createTable: false and no lease table yet (migrate not rerun), sweep still sweeps sessions", async () => {
          await mysqlStore({ pool, table: MIGRATE_TABLE, now }).migrate();
          await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}_locks`);
          const s = mysqlStore({ pool, table: MIGRATE_TABLE, createTable: false, now });
          const key = newKey();
          await s.set(key, record({ a: 1 }), clock - 1);
          expect(await s.sweep(now())).toBeGreaterThanOrEqual(1);
          // The lock itself needs the table: it reports the missing table as the store being unavailable.
          const err = await s.lock(newKey(), 1000, 0).catch((e: unknown) => e);
          expect(isSessionError(err, "ERR_STORE_UNAVAILABLE")).toBe(true);
        });

        it("with createTable: false issues no DDL and reports a missing table as unavailable", async () => {
          await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
          const s = mysqlStore({ pool, table: MIGRATE_TABLE, createTable: false, now });
          const key = newKey();
          const err = await s.get(key).catch((e: unknown) => e);
          expect(isSessionError(err, "ERR_STORE_UNAVAILABLE")).toBe(true);
          expect((err as Error).message).toContain("during get (ER_NO_SUCH_TABLE)");
          // mysql2 puts the statement with its values interpolated on the cause: only the shape stays.
          const causeSql = String(((err as Error).cause as { sql?: unknown }).sql);
          expect(causeSql).toContain("SELECT");
          expect(causeSql).not.toContain(key);
          await s.migrate();
          expect(await s.get(newKey())).toBeUndefined();
        });

        it("applies 50 concurrent patches of different keys to one row through many connections", async () => {
          const s = store();
          const key = newKey();
          const seed: Record<string, unknown> = {};
          for (let i = 0; i < 50; i++) seed[`old${i}`] = i;
          await s.set(key, record(seed), clock + HOUR_MS);
          const before = threadIds.size;
          const applied = await Promise.all(
            Array.from({ length: 50 }, (_, i) =>
              s.patch(key, { set: { [`new${i}`]: { i } }, delete: [`old${i}`] }, clock + HOUR_MS),
            ),
          );
          expect(applied.every(Boolean)).toBe(true);
          // More than one connection ran them, so the row really was updated concurrently.
          expect(Math.max(before, threadIds.size)).toBeGreaterThan(1);
          const expected: Record<string, unknown> = {};
          for (let i = 0; i < 50; i++) expected[`new${i}`] = { i };
          expect((await s.get(key))?.data).toEqual(expected);
        });

        it("patch replaces a nested object whole instead of merging into it", async () => {
          const s = store();
          const key = newKey();
          await s.set(
            key,
            record({ prefs: { theme: "dark", layout: { cols: 2, rows: 3 } } }),
            clock + HOUR_MS,
          );
          const patch = { set: { prefs: { layout: { cols: 4 } } }, delete: [] };
          expect(await s.patch(key, patch, clock + HOUR_MS)).toBe(true);
          expect((await s.get(key))?.data).toEqual({ prefs: { layout: { cols: 4 } } });
        });

        it("round-trips JSON null values, scalars and arrays through set and patch", async () => {
          const s = store();
          const key = newKey();
          await s.set(key, record({ a: null, keep: 1 }), clock + HOUR_MS);
          const set = {
            b: null,
            nested: { n: null, list: [null, 1] },
            keep: null,
            text: 'say "hi" \\ ok',
            num: 12.5,
            big: 9_007_199_254_740_991,
            yes: true,
            no: false,
            empty: "",
            list: [],
            obj: {},
            numeric: "42",
          };
          expect(await s.patch(key, { set, delete: [] }, clock + HOUR_MS)).toBe(true);
          expect((await s.get(key))?.data).toEqual({ a: null, ...set });
        });

        it("sets and deletes data keys with dots, quotes, spaces, backslashes and emoji", async () => {
          const s = store();
          const key = newKey();
          const names = [
            "a.b",
            'q"uote',
            "it's",
            "sp ace",
            "back\\slash",
            "😀",
            "$",
            "[0]",
            "",
            "tab\there",
            "é",
            "*",
          ];
          await s.set(key, record({ plain: 1, "a.b": "old" }), clock + HOUR_MS);
          const set = Object.fromEntries(names.map((name, i) => [name, { i }]));
          expect(await s.patch(key, { set, delete: [] }, clock + HOUR_MS)).toBe(true);
          expect((await s.get(key))?.data).toEqual({ plain: 1, ...set });
          const gone = names.slice(0, 6);
          expect(await s.patch(key, { set: {}, delete: gone }, clock + HOUR_MS)).toBe(true);
          const kept = Object.fromEntries(
            Object.entries(set).filter(([name]) => !gone.includes(name)),
          );
          expect((await s.get(key))?.data).toEqual({ plain: 1, ...kept });
        });

        it("a key both set and deleted in one patch ends deleted, as applyPatch does", async () => {
          const s = store();
          const key = newKey();
          await s.set(key, record({ x: 1 }), clock + HOUR_MS);
          expect(await s.patch(key, { set: { x: 2, y: 3 }, delete: ["x"] }, clock + HOUR_MS)).toBe(
            true,
          );
          expect((await s.get(key))?.data).toEqual({ y: 3 });
        });

        it("keeps user_id in step with meta.userId through set and patch", async () => {
          const s = store();
          const key = newKey();
          const user = `my-user-${keySeq}`;
          await s.set(key, record({}), clock + HOUR_MS);
          expect(await s.listByUser(user)).toEqual([]);
          await s.patch(key, { set: {}, delete: [], meta: { userId: user } }, clock + HOUR_MS);
          expect((await s.listByUser(user)).map((e) => e.key)).toEqual([key]);
          await s.patch(key, { set: {}, delete: [], meta: { label: "phone" } }, clock + HOUR_MS);
          expect((await s.listByUser(user)).map((e) => e.key)).toEqual([key]);
          await s.patch(key, { set: {}, delete: [], meta: { userId: null } }, clock + HOUR_MS);
          expect(await s.listByUser(user)).toEqual([]);
          const [rows] = await admin.query<mysql.RowDataPacket[]>(
            `SELECT user_id, meta FROM ${TABLE} WHERE \`key\` = ?`,
            [key],
          );
          expect(rows[0]?.user_id).toBeNull();
          expect(parse(rows[0]?.meta)).not.toHaveProperty("userId");
        });

        it("patch reports a match even when nothing changes (FOUND_ROWS)", async () => {
          const s = store();
          const key = newKey();
          await s.set(key, record({ same: 1 }), clock + HOUR_MS);
          expect(await s.patch(key, { set: { same: 1 }, delete: [] }, clock + HOUR_MS)).toBe(true);
          expect(await s.touch(key, clock, clock + HOUR_MS)).toBe(true);
        });

        it("applies a 200 KB patch in one statement and stores the deadline as epoch ms", async () => {
          const [packet] = await admin.query<mysql.RowDataPacket[]>(
            "SELECT @@max_allowed_packet AS bytes",
          );
          expect(Number(packet[0]?.bytes)).toBeGreaterThanOrEqual(1024 * 1024);
          const s = store();
          const key = newKey();
          const deadline = clock + HOUR_MS;
          await s.set(key, record({ small: 1 }), deadline);
          const big = "é€x\"\\'".repeat(35_000);
          expect(await s.patch(key, { set: { big }, delete: [] }, deadline + 1)).toBe(true);
          expect((await s.get(key))?.data).toEqual({ small: 1, big });
          const [rows] = await admin.query<mysql.RowDataPacket[]>(
            `SELECT CAST(expires_at AS CHAR) AS e FROM ${TABLE} WHERE \`key\` = ?`,
            [key],
          );
          expect(rows[0]?.e).toBe(String(deadline + 1));
        });

        it("compares keys byte for byte: a key differing only in case is another session", async () => {
          const s = store();
          const key = newKey();
          await s.set(key, record({ a: 1 }), clock + HOUR_MS);
          expect(await s.get(key.toLowerCase())).toBeUndefined();
        });

        it("reads a row that is not a well-formed record as not found", async () => {
          const s = store();
          const key = newKey();
          await s.get(key); // the table exists from here
          await admin.query(
            `INSERT INTO ${TABLE} (\`key\`, \`data\`, \`meta\`, \`expires_at\`) VALUES (?, '[1,2]', '{"createdAt":1}', ?)`,
            [key, clock + HOUR_MS],
          );
          expect(await s.get(key)).toBeUndefined();
        });

        it("refuses a table name that is not a plain identifier", () => {
          for (const table of ["x`; DROP TABLE y; --", "a b", "1abc", "a.b.c", ""]) {
            expect(() => mysqlStore({ pool, table })).toThrow(ConfigError);
          }
          expect(() => mysqlStore({ pool: undefined as unknown as mysql.Pool })).toThrow(
            ConfigError,
          );
        });
      });

      describe("mysql outages", () => {
        it("fails a call in flight when its connection is killed, then recovers with nothing acknowledged lost", async () => {
          const tracked = trackedPool(4);
          const blocker = await mysql.createConnection({ uri: MYSQL_URL });
          try {
            const s = mysqlStore({ pool: tracked.pool, table: TABLE, now });
            const key = newKey();
            await s.set(key, record({ acknowledged: 1 }), clock + HOUR_MS);
            expect(await s.patch(key, { set: { second: 2 }, delete: [] }, clock + HOUR_MS)).toBe(
              true,
            );

            // Hold the row lock so the next patch waits on the server, then KILL its connection.
            await blocker.query("START TRANSACTION");
            await blocker.query(`SELECT 1 FROM ${TABLE} WHERE \`key\` = ? FOR UPDATE`, [key]);
            // Settled into a value at once, so the rejection is handled before the kill lands.
            const inFlight = s
              .patch(key, { set: { lost: true }, delete: [] }, clock + HOUR_MS)
              .then(
                () => undefined,
                (e: unknown) => e,
              );
            let waiting: number | undefined;
            await until(async () => {
              const [rows] = await admin.query<mysql.RowDataPacket[]>(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?) AND INFO LIKE 'UPDATE%'",
                [[0, ...tracked.threadIds]],
              );
              waiting = rows[0]?.ID as number | undefined;
              return waiting !== undefined;
            });
            await admin.query(`KILL ${Number(waiting)}`);
            const err = await inFlight;
            expect(err).toBeInstanceOf(StoreUnavailableError);
            expect((err as StoreUnavailableError).code).toBe("ERR_STORE_UNAVAILABLE");
            expect((err as Error).message).toMatch(
              /^sessionkit: the mysql store failed during patch/,
            );
            expect((err as Error).message).not.toContain(key);
            await blocker.query("ROLLBACK");

            expect((await s.get(key))?.data).toEqual({ acknowledged: 1, second: 2 });
            expect(await s.patch(key, { set: { third: 3 }, delete: [] }, clock + HOUR_MS)).toBe(
              true,
            );
            expect((await s.get(key))?.data).toEqual({ acknowledged: 1, second: 2, third: 3 });
          } finally {
            await blocker.end();
            await tracked.pool.end();
          }
        });

        it("survives its idle connections being killed: the next call fails cleanly or reconnects", async () => {
          const tracked = trackedPool(6);
          try {
            const s = mysqlStore({ pool: tracked.pool, table: TABLE, now });
            const key = newKey();
            await s.set(key, record({ acknowledged: 1 }), clock + HOUR_MS);
            await Promise.all(Array.from({ length: 6 }, () => s.get(key))); // several idle connections
            const ids = [...tracked.threadIds];
            expect(ids.length).toBeGreaterThan(0);
            for (const id of ids) await admin.query(`KILL ${Number(id)}`);
            await until(async () => {
              const [rows] = await admin.query<mysql.RowDataPacket[]>(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?)",
                [ids],
              );
              return rows.length === 0;
            });

            const next = await s.get(key).then(
              (value) => ({ value }),
              (error: unknown) => ({ error }),
            );
            if ("error" in next) expect(next.error).toBeInstanceOf(StoreUnavailableError);
            else expect(next.value?.data).toEqual({ acknowledged: 1 });
            expect((await s.get(key))?.data).toEqual({ acknowledged: 1 });
            expect(await s.patch(key, { set: { after: 1 }, delete: [] }, clock + HOUR_MS)).toBe(
              true,
            );
            expect((await s.get(key))?.data).toEqual({ acknowledged: 1, after: 1 });
          } finally {
            await tracked.pool.end();
          }
        });

        it("rejects with StoreUnavailableError on a closed port within the connect timeout, naming no password", async () => {
          const url = new URL(MYSQL_URL);
          url.port = "1";
          url.password = PASSWORD;
          const CONNECT_TIMEOUT_MS = 2000;
          const dead = mysql.createPool({ uri: url.href, connectTimeout: CONNECT_TIMEOUT_MS });
          try {
            const s = mysqlStore({ pool: dead, table: TABLE, now });
            const key = newKey();
            for (const call of [
              () => s.get(key),
              () => s.patch(key, { set: { a: 1 }, delete: [] }, clock + HOUR_MS),
            ]) {
              const started = performance.now();
              const err = await call().then(
                () => undefined,
                (e: unknown) => e,
              );
              expect(performance.now() - started).toBeLessThan(CONNECT_TIMEOUT_MS + 1000);
              expect(err).toBeInstanceOf(StoreUnavailableError);
              expect((err as StoreUnavailableError).code).toBe("ERR_STORE_UNAVAILABLE");
              expect(((err as Error).cause as { code?: string }).code).toBe("ECONNREFUSED");
              const text = `${(err as Error).message}\n${String(err)}`;
              expect(text).toMatch(/^sessionkit: /);
              expect(text).not.toContain(PASSWORD);
              expect(text).not.toContain(key);
              expect(text).not.toContain(url.href);
            }
          } finally {
            await dead.end();
          }
        });
      });

      describe("mysql through createSessions", () => {
        it("loads, writes, commits a cookie and reads the session back from the table", async () => {
          const sessions = createSessions({ secret: SECRET, store: store() });
          const first = await sessions.load(new Request("http://localhost/"));
          first.set("user", { name: "ada", roles: ["admin"] });
          const headers = new Headers();
          await sessions.commit(first, headers);
          const [setCookie] = headers.getSetCookie();
          expect(setCookie).toMatch(/^sid=[^;]+;/);
          const cookie = (setCookie as string).split(";")[0] as string;

          const second = await sessions.load(
            new Request("http://localhost/", { headers: { cookie } }),
          );
          expect(second.get("user")).toEqual({ name: "ada", roles: ["admin"] });
          second.set("visits", 2);
          await sessions.commit(second, new Headers());

          const third = await sessions.load(
            new Request("http://localhost/", { headers: { cookie } }),
          );
          expect(third.get("user")).toEqual({ name: "ada", roles: ["admin"] });
          expect(third.get("visits")).toBe(2);
          const [rows] = await admin.query<mysql.RowDataPacket[]>(
            `SELECT \`data\` FROM ${TABLE} WHERE JSON_CONTAINS_PATH(\`data\`, 'one', '$.visits')`,
          );
          expect(rows.map((row) => parse(row.data))).toEqual([
            { user: { name: "ada", roles: ["admin"] }, visits: 2 },
          ]);
        });
      });

      function store(): MysqlStore {
        return mysqlStore({ pool, table: TABLE, now });
      }
      function record(data: Record<string, unknown>): StoredSession {
        return { data, meta: metaAt(clock) };
      }
      function parse(value: unknown): unknown {
        return typeof value === "string" ? JSON.parse(value) : value;
      }
    },
  });
});
