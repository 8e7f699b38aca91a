import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MysqlStore, type MysqlStoreOptions, mysqlStore } from "../../src/stores/mysql.js";
import type { StoredSession } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";
import { MYSQL_URL, serviceAvailable } from "../helpers/services.js";
import {
  type OutageRig,
  type SqlStoreHooks,
  sqlOutageCases,
  sqlStoreCases,
  testTables,
  until,
} from "./sql-cases.js";
import { HOUR_MS, itRoundTripsThroughCreateSessions, keyMaker, metaAt } from "./support.js";

const available = await serviceAvailable("MySQL", MYSQL_URL);

const { table: TABLE, migrateTable: MIGRATE_TABLE } = testTables("mysql");
// A password that must never show up in an error message.
const PASSWORD = "hunter2-mysql-never-print";

const newKey = keyMaker("mytestkey");

/** A pool that records the server thread id of every connection it opens, so a test can KILL them. */
function trackedPool(limit: number): { pool: mysql.Pool; threadIds: Set<number> } {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: limit });
  const threadIds = new Set<number>();
  pool.on("connection", (connection: { threadId: number }) => threadIds.add(connection.threadId));
  return { pool, threadIds };
}

/** mysql2 hands a JSON column over parsed from MySQL, and as text from MariaDB (LONGTEXT). */
function parse(value: unknown): unknown {
  return typeof value === "string" ? JSON.parse(value) : value;
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

  async function rows(sql: string, values?: unknown[]): Promise<mysql.RowDataPacket[]> {
    const [result] = await admin.query<mysql.RowDataPacket[]>(sql, values);
    return result;
  }

  /** A tracked pool of its own: the test KILLs the server threads of exactly its connections. */
  async function outageRig(size: number): Promise<OutageRig<MysqlStore>> {
    const tracked = trackedPool(size);
    let blocker: mysql.Connection | undefined;
    return {
      store: mysqlStore({ pool: tracked.pool, table: TABLE, now }),
      async holdRowLock(key) {
        const connection = await mysql.createConnection({ uri: MYSQL_URL });
        blocker = connection;
        await connection.query("START TRANSACTION");
        await connection.query(`SELECT 1 FROM ${TABLE} WHERE \`key\` = ? FOR UPDATE`, [key]);
        return async () => void (await connection.query("ROLLBACK"));
      },
      async killWaiting() {
        let waiting: number | undefined;
        await until(async () => {
          const found = await rows(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?) AND INFO LIKE 'UPDATE%'",
            [[0, ...tracked.threadIds]],
          );
          waiting = found[0]?.ID as number | undefined;
          return waiting !== undefined;
        });
        await admin.query(`KILL ${Number(waiting)}`);
      },
      async killAll() {
        const ids = [...tracked.threadIds];
        expect(ids.length).toBeGreaterThan(0);
        for (const id of ids) await admin.query(`KILL ${Number(id)}`);
        await until(async () => {
          const found = await rows(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?)",
            [ids],
          );
          return found.length === 0;
        });
      },
      async close() {
        await blocker?.end();
        await tracked.pool.end();
      },
    };
  }

  const hooks: SqlStoreHooks<MysqlStore> = {
    name: "mysql",
    clock,
    newKey,
    open: (overrides) => mysqlStore({ pool, table: TABLE, now, ...overrides } as MysqlStoreOptions),
    pool: () => pool,
    migrateTable: MIGRATE_TABLE,
    async dropMigrateTable() {
      await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
    },
    async checkFirstMigration(statements) {
      // The sessions table and the lock leases' table, each once.
      const created = statements.filter((sql) => sql.includes("CREATE TABLE"));
      expect(created.map((sql) => sql.split("`")[1])).toEqual([
        MIGRATE_TABLE,
        `${MIGRATE_TABLE}_locks`,
      ]);
      const indexes = await rows(`SHOW INDEX FROM ${MIGRATE_TABLE}`);
      const columns = indexes.map((row) => `${row.Key_name}:${row.Column_name}`).sort();
      expect(columns).toEqual(["PRIMARY:key", "expires_at_idx:expires_at", "user_id_idx:user_id"]);
      // MariaDB's JSON is LONGTEXT with a JSON_VALID check, MySQL's a native type: both refuse bad JSON.
      const bad = admin.query(
        `INSERT INTO ${MIGRATE_TABLE} (\`key\`, \`data\`, \`meta\`, \`expires_at\`) VALUES ('k', 'not json', '{}', 1)`,
      );
      await expect(bad).rejects.toThrow();
    },
    async countRows(table) {
      const [count] = await rows(`SELECT COUNT(*) AS n FROM ${table}`);
      return Number(count?.n);
    },
    missingTableCode: "ER_NO_SUCH_TABLE",
    checkMissingTableError(err, key) {
      // mysql2 puts the statement with its values interpolated on the cause: only the shape stays.
      const causeSql = String(((err as Error).cause as { sql?: unknown }).sql);
      expect(causeSql).toContain("SELECT");
      expect(causeSql).not.toContain(key);
    },
    connectionCount: () => threadIds.size,
    async userRow(key) {
      const [row] = await rows(`SELECT user_id, meta FROM ${TABLE} WHERE \`key\` = ?`, [key]);
      return { userId: row?.user_id, meta: parse(row?.meta) };
    },
    async expiresAtText(key) {
      const [row] = await rows(
        `SELECT CAST(expires_at AS CHAR) AS e FROM ${TABLE} WHERE \`key\` = ?`,
        [key],
      );
      return row?.e;
    },
    async insertRow(key, data, meta, expiresAt) {
      await admin.query(
        `INSERT INTO ${TABLE} (\`key\`, \`data\`, \`meta\`, \`expires_at\`) VALUES (?, ?, ?, ?)`,
        [key, data, meta, expiresAt],
      );
    },
    outage: {
      url: MYSQL_URL,
      password: PASSWORD,
      open: outageRig,
      openUnreachable(url, timeoutMs) {
        const dead = mysql.createPool({ uri: url, connectTimeout: timeoutMs });
        return {
          store: mysqlStore({ pool: dead, table: TABLE, now }),
          close: () => dead.end(),
        };
      },
    },
  };

  testStore("mysql", (ctx) => mysqlStore({ pool, table: TABLE, now: ctx.now }), {
    clock: "injected",
    async dumpRaw() {
      const dump = await rows(
        `SELECT CONCAT_WS('|', \`key\`, \`data\`, \`meta\`, IFNULL(\`user_id\`, ''), \`expires_at\`) AS r FROM ${TABLE} ORDER BY \`key\``,
      );
      return dump.map((row) => String(row.r)).join("\n");
    },
    async reset() {
      await admin.query(`TRUNCATE TABLE ${TABLE}`);
    },
    extra() {
      describe("mysql specifics", () => {
        sqlStoreCases(hooks);

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
            const left = await rows(`SELECT \`key\` FROM ${TABLE}_locks WHERE \`key\` IN (?, ?)`, [
              key,
              abandoned,
            ]);
            expect(left).toEqual([]);
          } finally {
            await other.end();
          }
        });

        it("lock: 200 parallel waiters on one key each get it in turn (InnoDB deadlocks between them are retried)", async () => {
          const s = store();
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

        it("a patch moving a session to another user, racing deleteByUser of its user, is serial: never an InnoDB deadlock answered as an outage", async () => {
          // deleteByUser walks user_id_idx and then the row; the patch locks the row and then moves
          // its user_id_idx entry: InnoDB broke the cycle by failing one of them, about 1 in 5 races.
          const s = store();
          for (let i = 0; i < 60; i++) {
            const key = newKey();
            const [from, to] = [`racer-${i}-a`, `racer-${i}-b`];
            await s.set(
              key,
              { data: {}, meta: { ...metaAt(clock), userId: from } },
              clock + HOUR_MS,
            );
            const move = { set: {}, delete: [], meta: { userId: to } };
            const [count, moved] = await Promise.all([
              s.deleteByUser(from),
              s.patch(key, move, clock + HOUR_MS),
            ]);
            // Signed out first (the patch finds nothing), or moved first (nothing of `from` left).
            expect(`${count} ${moved}`).toMatch(/^(?:1 false|0 true)$/);
            expect((await s.get(key))?.meta.userId).toBe(moved ? to : undefined);
          }
        });

        it("takes a user id of 255 characters and refuses a longer one as the caller's RangeError", async () => {
          const s = store();
          const [key, other] = [newKey(), newKey()];
          const widest = "ü".repeat(255);
          await s.set(
            key,
            { data: {}, meta: { ...metaAt(clock), userId: widest } },
            clock + HOUR_MS,
          );
          expect((await s.listByUser(widest)).map((e) => e.key)).toEqual([key]);
          const tooLong = { data: {}, meta: { ...metaAt(clock), userId: `${widest}x` } };
          await expect(s.set(other, tooLong, clock + HOUR_MS)).rejects.toBeInstanceOf(RangeError);
          const rebind = { set: {}, delete: [], meta: { userId: `${widest}x` } };
          await expect(s.patch(key, rebind, clock + HOUR_MS)).rejects.toBeInstanceOf(RangeError);
          expect((await s.get(key))?.meta.userId).toBe(widest);
          expect(await s.get(other)).toBeUndefined();
        });

        it("names a server error by its number and SQLSTATE where MySQL's and MariaDB's numbers differ", async () => {
          // A CHECK the table's owner added: MariaDB refuses with 4025, which mysql2 names from
          // MySQL's list (ER_INNODB_AUTOEXTEND_SIZE_OUT_OF_RANGE); MySQL 8 with 3819.
          const checked = `${TABLE}_chk`;
          await admin.query(`DROP TABLE IF EXISTS ${checked}`);
          try {
            const s = mysqlStore({ pool, table: checked, now });
            const key = newKey();
            await s.set(key, record({}), clock + HOUR_MS);
            await admin.query(
              `ALTER TABLE ${checked} ADD CONSTRAINT short_user CHECK (CHAR_LENGTH(user_id) < 4)`,
            );
            const bound = { data: {}, meta: { ...metaAt(clock), userId: "abcdef" } };
            const err = await s.set(newKey(), bound, clock + HOUR_MS).then(
              () => undefined,
              (e: unknown) => e as Error,
            );
            const errno = (err?.cause as { errno?: number } | undefined)?.errno ?? 0;
            expect(errno).toBeGreaterThanOrEqual(1900);
            expect(err?.message).toContain(`(server error ${errno}, SQLSTATE `);
            expect(err?.message).not.toMatch(/\(ER_/);
          } finally {
            await admin.query(`DROP TABLE IF EXISTS ${checked}`);
          }
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

        it("patch reports a match even when nothing changes (FOUND_ROWS)", async () => {
          const s = store();
          const key = newKey();
          await s.set(key, record({ same: 1 }), clock + HOUR_MS);
          expect(await s.patch(key, { set: { same: 1 }, delete: [] }, clock + HOUR_MS)).toBe(true);
          expect(await s.touch(key, clock, clock + HOUR_MS)).toBe(true);
        });

        it("accepts statements of 1 MB (max_allowed_packet), so a 200 KB patch fits in one", async () => {
          const [packet] = await rows("SELECT @@max_allowed_packet AS bytes");
          expect(Number(packet?.bytes)).toBeGreaterThanOrEqual(1024 * 1024);
        });

        it("compares keys byte for byte: a key differing only in case is another session", async () => {
          const s = store();
          const key = newKey();
          await s.set(key, record({ a: 1 }), clock + HOUR_MS);
          expect(await s.get(key.toLowerCase())).toBeUndefined();
        });
      });

      sqlOutageCases(hooks);

      describe("mysql through createSessions", () => {
        itRoundTripsThroughCreateSessions(hooks.open, async (name) => {
          const found = await rows(
            `SELECT \`data\` FROM ${TABLE} WHERE JSON_CONTAINS_PATH(\`data\`, 'one', ?)`,
            [`$.${name}`],
          );
          return found.map((row) => parse(row.data));
        });
      });

      function store(): MysqlStore {
        return hooks.open();
      }
      function record(data: Record<string, unknown>): StoredSession {
        return { data, meta: metaAt(clock) };
      }
    },
  });
});
