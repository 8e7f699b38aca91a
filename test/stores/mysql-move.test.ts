import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/errors.js";
import { type MysqlStore, mysqlStore } from "../../src/stores/mysql.js";
import type { SessionPatch, StoredSession } from "../../src/stores/store.js";
import { MYSQL_URL, serviceAvailable } from "../helpers/services.js";
import { testTables, until } from "./sql-cases.js";
import { HOUR_MS, keyMaker, metaAt } from "./support.js";

const available = await serviceAvailable("MySQL", MYSQL_URL);

const { table: TABLE } = testTables("mysql_move");
const newKey = keyMaker("mymovekey");
const ROUNDS = 200;

describe.skipIf(!available)("mysqlStore move", () => {
  let pool: mysql.Pool;
  let admin: mysql.Connection;
  let store: MysqlStore;
  const clock = Date.now();
  const deadline = clock + HOUR_MS;
  const later = clock + 2 * HOUR_MS;
  const record = (data: Record<string, unknown>, userId?: string): StoredSession => ({
    data,
    meta: userId === undefined ? metaAt(clock) : { ...metaAt(clock), userId },
  });
  const renew: SessionPatch = { set: {}, delete: [], meta: { renewedAt: clock + 1 } };

  beforeAll(async () => {
    pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 8 });
    admin = await mysql.createConnection({ uri: MYSQL_URL });
    await admin.query(`DROP TABLE IF EXISTS ${TABLE}`);
    store = mysqlStore({ pool, table: TABLE, now: () => clock });
    await store.migrate();
  });
  afterAll(async () => {
    await admin?.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await admin?.query(`DROP TABLE IF EXISTS ${TABLE}_locks`);
    await admin?.end();
    await pool?.end();
  });

  /**
   * Waits `trips` round trips to the server before resolving, so that a call started after it meets
   * a move at its first, second, ... statement rather than always before it begins.
   */
  async function after(trips: number): Promise<void> {
    for (let i = 0; i < trips; i++) await admin.query("SELECT 1");
  }

  /** The row under `key` as the server holds it, expired or not: what `get` would hide. */
  async function row(key: string): Promise<mysql.RowDataPacket | undefined> {
    const [rows] = await admin.query<mysql.RowDataPacket[]>(
      `SELECT \`user_id\`, \`expires_at\` FROM ${TABLE} WHERE \`key\` = ?`,
      [key],
    );
    return rows[0];
  }

  it("carries data and meta changes to the new key, with the new deadline, and removes the old", async () => {
    const [a, b] = [newKey(), newKey()];
    await store.set(
      a,
      { data: { keep: 1, change: "old", drop: true }, meta: { ...metaAt(clock), label: "x" } },
      deadline,
    );
    const moved = await store.move(
      a,
      b,
      { set: { change: "new", added: [1] }, delete: ["drop"], meta: { renewedAt: 7, label: null } },
      later,
    );
    const expected = {
      data: { keep: 1, change: "new", added: [1] },
      meta: { createdAt: clock, touchedAt: clock, renewedAt: 7 },
    };
    expect(moved).toEqual(expected);
    expect(await store.get(b)).toEqual(expected);
    expect(await store.get(a)).toBeUndefined();
    expect(await row(a)).toBeUndefined();
    expect(Number((await row(b))?.expires_at)).toBe(later);
  });

  it("replaces an entry already under the new key", async () => {
    const [a, b] = [newKey(), newKey()];
    await store.set(a, record({ from: "a" }), deadline);
    await store.set(b, record({ stale: "b" }, "someone"), deadline);
    expect((await store.move(a, b, renew, deadline))?.data).toEqual({ from: "a" });
    expect((await store.get(b))?.data).toEqual({ from: "a" });
    expect((await row(b))?.user_id).toBeNull();
  });

  it("moves the entry in the user index with the patched userId", async () => {
    const [a, b, c, d] = [newKey(), newKey(), newKey(), newKey()];
    const [alice, bob] = [`alice-${process.pid}`, `bob-${process.pid}`];
    await store.set(a, record({ n: 1 }, alice), deadline);
    await store.move(a, b, { set: {}, delete: [], meta: { userId: bob } }, deadline);
    expect(await store.listByUser(alice)).toEqual([]);
    expect((await store.listByUser(bob)).map((entry) => entry.key)).toEqual([b]);

    // Unchanged by the patch, the user stays with the record.
    await store.move(b, c, renew, deadline);
    expect((await store.listByUser(bob)).map((entry) => entry.key)).toEqual([c]);
    expect(await store.deleteByUser(bob)).toBe(1);
    expect(await store.get(c)).toBeUndefined();

    // Removed by the patch, the user leaves the index.
    await store.set(a, record({ n: 2 }, alice), deadline);
    await store.move(a, d, { set: {}, delete: [], meta: { userId: null } }, deadline);
    expect(await store.listByUser(alice)).toEqual([]);
    expect((await row(d))?.user_id).toBeNull();
    expect((await store.get(d))?.meta.userId).toBeUndefined();
  });

  it("resolves undefined and writes nothing when the old key is missing or expired", async () => {
    const [missing, expired, b, c] = [newKey(), newKey(), newKey(), newKey()];
    expect(await store.move(missing, b, renew, deadline)).toBeUndefined();
    expect(await row(b)).toBeUndefined();

    await store.set(expired, record({ old: 1 }), clock); // expiresAt <= now: expired
    expect(await store.move(expired, c, renew, deadline)).toBeUndefined();
    expect(await row(c)).toBeUndefined();
    // Left for sweep and expiredMeta, as any expired row.
    expect(await row(expired)).toBeDefined();
  });

  it("keeps awkward data keys and meta field names", async () => {
    const [a, b] = [newKey(), newKey()];
    const data = JSON.parse('{"__proto__": {"polluted": 1}, "é": "café", "😀": "🎉", "a.b": 1}');
    await store.set(
      a,
      { data, meta: { ...metaAt(clock), "flash:0mjabc12300x1a2b3c": ["info", "hé 😀"] } },
      deadline,
    );
    const moved = await store.move(
      a,
      b,
      {
        set: JSON.parse('{"__proto__": {"again": 2}, "ü": "new 😀"}'),
        delete: ["é"],
        meta: { "flash:0mjabc12300x1a2b3c": null, "flash:0mjabc12400x1a2b3d": ["warn", "ñ"] },
      },
      deadline,
    );
    const stored = await store.get(b);
    expect(stored).toEqual(moved);
    const got = stored as StoredSession;
    expect(Object.hasOwn(got.data, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(got.data, "__proto__")?.value).toEqual({ again: 2 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(got.data).sort()).toEqual(["__proto__", "a.b", "ü", "😀"].sort());
    expect(got.data["😀"]).toBe("🎉");
    expect(got.data.ü).toBe("new 😀");
    expect(got.meta).toEqual({ ...metaAt(clock), "flash:0mjabc12400x1a2b3d": ["warn", "ñ"] });
  });

  it("lets a concurrent patch of the old key land before (carried) or answer false, never lost", async () => {
    let carried = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b] = [newKey(), newKey()];
      await store.set(a, record({ base: i }), deadline);
      const [moved, patched] = await Promise.all([
        store.move(a, b, renew, deadline),
        after(i % 6).then(() => store.patch(a, { set: { k: i }, delete: [] }, deadline)),
      ]);
      const atB = await store.get(b);
      expect(atB, `round ${i}`).toBeDefined();
      expect(moved, `round ${i}`).toEqual(atB);
      if (patched) {
        carried++;
        expect(atB?.data, `round ${i}: patch answered true`).toEqual({ base: i, k: i });
      } else {
        expect(atB?.data, `round ${i}: patch answered false`).toEqual({ base: i });
      }
      expect(await row(a), `round ${i}`).toBeUndefined();
    }
    // Both orders must have happened, or the race never raced.
    console.info(`move vs patch: ${carried}/${ROUNDS} patches landed before the move`);
    expect(carried).toBeGreaterThan(0);
    expect(carried).toBeLessThan(ROUNDS);
  });

  it("lets exactly one of a move and a delete of the old key win", async () => {
    let deletedFirst = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b] = [newKey(), newKey()];
      await store.set(a, record({ base: i }), deadline);
      const [moved, deleted] = await Promise.all([
        store.move(a, b, renew, deadline),
        after(i % 6).then(() => store.delete(a)),
      ]);
      if (deleted) {
        deletedFirst++;
        expect(moved, `round ${i}: delete won`).toBeUndefined();
        expect(await row(b), `round ${i}: delete won`).toBeUndefined();
      } else {
        expect(moved?.data, `round ${i}: move won`).toEqual({ base: i });
        expect((await store.get(b))?.data, `round ${i}: move won`).toEqual({ base: i });
      }
      expect(await row(a), `round ${i}`).toBeUndefined();
    }
    console.info(`move vs delete: ${deletedFirst}/${ROUNDS} deletes came first`);
    expect(deletedFirst).toBeGreaterThan(0);
    expect(deletedFirst).toBeLessThan(ROUNDS);
  });

  describe("a statement killed mid-transaction", () => {
    /** A one-connection pool, so a connection left in it with an open transaction would be reused. */
    async function withSingleConnection(
      body: (store: MysqlStore, threadIds: Set<number>) => Promise<void>,
    ): Promise<void> {
      const single = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 });
      const threadIds = new Set<number>();
      single.on("connection", (connection: { threadId: number }) =>
        threadIds.add(connection.threadId),
      );
      try {
        await body(mysqlStore({ pool: single, table: TABLE, now: () => clock }), threadIds);
      } finally {
        await single.end();
      }
    }

    /** Holds the row lock of `key` from another connection until the returned function runs. */
    async function holdRowLock(key: string): Promise<() => Promise<void>> {
      const blocker = await mysql.createConnection({ uri: MYSQL_URL });
      await blocker.query("START TRANSACTION");
      await blocker.query(`SELECT 1 FROM ${TABLE} WHERE \`key\` = ? FOR UPDATE`, [key]);
      return async () => {
        await blocker.query("ROLLBACK");
        await blocker.end();
      };
    }

    /** The thread id of the move waiting on the row lock. */
    async function waitingMove(threadIds: Set<number>): Promise<number> {
      let waiting: number | undefined;
      await until(async () => {
        const [found] = await admin.query<mysql.RowDataPacket[]>(
          "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?) AND INFO LIKE 'SELECT%FOR UPDATE'",
          [[0, ...threadIds]],
        );
        waiting = found[0]?.ID as number | undefined;
        return waiting !== undefined;
      });
      return Number(waiting);
    }

    for (const kill of ["KILL QUERY", "KILL"] as const) {
      it(`${kill}: rejects as an outage, writes nothing, and leaves no open transaction in the pool`, async () => {
        await withSingleConnection(async (single, threadIds) => {
          const [a, b, c] = [newKey(), newKey(), newKey()];
          await single.set(a, record({ n: 1 }), deadline);
          const release = await holdRowLock(a);
          const inFlight = single.move(a, b, renew, deadline).then(
            () => undefined,
            (err: unknown) => err,
          );
          await admin.query(`${kill} ${await waitingMove(threadIds)}`);
          expect(await inFlight).toBeInstanceOf(StoreUnavailableError);
          await release();
          expect(await row(b)).toBeUndefined();

          // The pool's one connection (the same, rolled back, or a new one) holds no transaction.
          const [trx] = await admin.query<mysql.RowDataPacket[]>(
            "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id IN (?)",
            [[0, ...threadIds]],
          );
          expect(trx).toEqual([]);
          expect((await single.move(a, c, renew, deadline))?.data).toEqual({ n: 1 });
          expect(await row(a)).toBeUndefined();
        });
      });
    }
  });
});
