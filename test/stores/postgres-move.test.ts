/**
 * `move` of the PostgreSQL store: the patch it applies, the user index, and above all its atomicity
 * against a `patch`, `delete` or `deleteByUser` of the old key sent at the same moment on another
 * connection of the pool.
 */
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type PostgresStore, postgresStore } from "../../src/stores/postgres.js";
import type { SessionPatch, StoredSession } from "../../src/stores/store.js";
import { DATABASE_URL, serviceAvailable } from "../helpers/services.js";
import { testTables, until } from "./sql-cases.js";
import { HOUR_MS, keyMaker, metaAt } from "./support.js";

const available = await serviceAvailable("PostgreSQL", DATABASE_URL);

const { table: TABLE } = testTables("pgmove");
const APP = `sessionkit-test-pgmove-${process.pid}`;
const ROUNDS = 200;
const FLASH = "flash:0mjabc12300x1a2b3c";

describe.skipIf(!available)("postgresStore move", () => {
  let pool: pg.Pool;
  let admin: pg.Client;
  let store: PostgresStore;
  let clock = Date.now();
  const now = () => clock;
  const newKey = keyMaker("pgmovekey");
  const deadline = () => clock + HOUR_MS;
  const noChange = (): SessionPatch => ({ set: {}, delete: [] });

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, application_name: APP, max: 12 });
    pool.on("error", () => {
      // Nothing here kills backends; a report would still fail the calls the tests assert on.
    });
    admin = new pg.Client({ connectionString: DATABASE_URL, application_name: `${APP}-admin` });
    await admin.connect();
    await admin.query(`DROP TABLE IF EXISTS ${TABLE}`);
    store = postgresStore({ pool, table: TABLE, now });
    await store.migrate();
  });
  afterAll(async () => {
    await admin?.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await admin?.end();
    await pool?.end();
  });
  beforeEach(() => {
    clock = Date.now();
  });

  /** The row as the server holds it, expired or not, bypassing the store. */
  async function rawRow(
    key: string,
  ): Promise<{ data: unknown; meta: unknown; user_id: string | null; expires_at: string } | null> {
    const result = await admin.query(
      `SELECT data, meta, user_id, expires_at::text FROM ${TABLE} WHERE key = $1`,
      [key],
    );
    return result.rows[0] ?? null;
  }

  async function seed(data: Record<string, unknown>, meta = {}): Promise<string> {
    const key = newKey();
    await store.set(key, { data, meta: { ...metaAt(clock), ...meta } }, deadline());
    return key;
  }

  it("carries the data and meta changes to the new key, with the new deadline, and removes the old", async () => {
    const a = await seed(
      { keep: 1, gone: 2, nested: { x: 1 } },
      { label: "laptop", ip: "10.0.0.1" },
    );
    const b = newKey();
    const expiresAt = clock + 2 * HOUR_MS;
    const moved = await store.move(
      a,
      b,
      {
        set: { added: [1, null], nested: { y: 2 } },
        delete: ["gone"],
        meta: { renewedAt: clock + 5, ip: null },
      },
      expiresAt,
    );
    const expected: StoredSession = {
      data: { keep: 1, added: [1, null], nested: { y: 2 } },
      meta: { createdAt: clock, touchedAt: clock, renewedAt: clock + 5, label: "laptop" },
    };
    expect(moved).toEqual(expected);
    expect(await store.get(b)).toEqual(expected);
    expect(await store.get(a)).toBeUndefined();
    expect(await rawRow(a)).toBeNull();
    expect((await rawRow(b))?.expires_at).toBe(String(expiresAt));
  });

  it("an empty patch moves the record as it is", async () => {
    const a = await seed({ k: "v" }, { userId: "eve" });
    const b = newKey();
    const moved = await store.move(a, b, noChange(), deadline());
    expect(moved).toEqual({ data: { k: "v" }, meta: { ...metaAt(clock), userId: "eve" } });
    expect(await store.get(b)).toEqual(moved);
    expect(await rawRow(a)).toBeNull();
  });

  it("resolves undefined and writes nothing when the old key is missing or expired", async () => {
    const missing = newKey();
    const b1 = newKey();
    expect(
      await store.move(missing, b1, { set: { k: 1 }, delete: [] }, deadline()),
    ).toBeUndefined();
    expect(await rawRow(b1)).toBeNull();

    const expired = newKey();
    // Due exactly now: `expiresAt <= now` is expired, as get and patch decide.
    await store.set(expired, { data: { k: 0 }, meta: metaAt(clock) }, clock);
    const b2 = newKey();
    expect(
      await store.move(expired, b2, { set: { k: 1 }, delete: [] }, deadline()),
    ).toBeUndefined();
    expect(await rawRow(b2)).toBeNull();
    // Left for sweep and expiredMeta, untouched.
    expect((await rawRow(expired))?.data).toEqual({ k: 0 });
    expect(await store.expiredMeta(expired)).toEqual(metaAt(clock));
  });

  it("replaces an entry already at the new key", async () => {
    const a = await seed({ from: "a" }, { userId: "ada" });
    const b = await seed({ stale: true }, { userId: "mallory" });
    const moved = await store.move(a, b, noChange(), deadline());
    expect(moved?.data).toEqual({ from: "a" });
    expect(await store.get(b)).toEqual(moved);
    expect((await rawRow(b))?.user_id).toBe("ada");
    expect(await store.listByUser("mallory")).toEqual([]);
  });

  it("the user index follows the patched meta.userId", async () => {
    const user = `ada-${clock}`;
    const other = `bob-${clock}`;
    const a = await seed({}, { userId: user });

    // Untouched userId: the new key is listed under the same user, the old one no more.
    const b = newKey();
    await store.move(a, b, { set: {}, delete: [], meta: { label: "x" } }, deadline());
    expect((await store.listByUser(user)).map((e) => e.key)).toEqual([b]);

    // Switched user.
    const c = newKey();
    await store.move(b, c, { set: {}, delete: [], meta: { userId: other } }, deadline());
    expect(await store.listByUser(user)).toEqual([]);
    const listed = await store.listByUser(other);
    expect(listed.map((e) => e.key)).toEqual([c]);
    expect(listed[0]?.meta.userId).toBe(other);

    // deleteByUser finds the moved entry.
    expect(await store.deleteByUser(other)).toBe(1);
    expect(await rawRow(c)).toBeNull();

    // userId removed (null): out of the index altogether.
    const d = await seed({}, { userId: user });
    const e = newKey();
    const moved = await store.move(
      d,
      e,
      { set: {}, delete: [], meta: { userId: null } },
      deadline(),
    );
    expect(moved?.meta).toEqual(metaAt(clock));
    expect((await rawRow(e))?.user_id).toBeNull();
    expect(await store.listByUser(user)).toEqual([]);
  });

  it("keeps __proto__ keys, unicode, NUL and colon meta fields as they were", async () => {
    // JSON.parse makes __proto__ an own data key, as a request body would.
    const data = JSON.parse(
      '{"__proto__": {"polluted": true}, "ключ": "値 😀", "nul": "a\\u0000b"}',
    );
    const a = await seed(data, { "flash:0mjabc00000x0a0b0c": ["info", "old"] });
    const b = newKey();
    const set = JSON.parse('{"__proto__": {"again": 1}, "😀": "\\ufdd0 mark", "k\\u0000ey": 1}');
    const moved = await store.move(
      a,
      b,
      {
        set,
        delete: ["nul"],
        meta: {
          [FLASH]: ["success", "Grüße ✓"],
          "flash:0mjabc00000x0a0b0c": null,
          userId: "ü\u0000",
        },
      },
      deadline(),
    );
    expect(moved).toBeDefined();
    const session = moved as StoredSession;
    expect(Object.hasOwn(session.data, "__proto__")).toBe(true);
    // Entries, not objects: a __proto__ key is a prototype in an object literal, and jsonb orders
    // keys its own way.
    expect(Object.entries(session.data).sort()).toEqual(
      [
        ["__proto__", { again: 1 }],
        ["ключ", "値 😀"],
        ["😀", "\ufdd0 mark"],
        ["k\u0000ey", 1],
      ].sort(),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(session.meta[FLASH]).toEqual(["success", "Grüße ✓"]);
    expect("flash:0mjabc00000x0a0b0c" in session.meta).toBe(false);
    expect(session.meta.userId).toBe("ü\u0000");
    const read = await store.get(b);
    expect(read).toEqual(moved);
    expect((await store.listByUser("ü\u0000")).map((e) => e.key)).toEqual([b]);
  });

  it("works the same without prepared statements", async () => {
    const plain = postgresStore({ pool, table: TABLE, now, prepare: false });
    const a = await seed({ k: 1 });
    const b = newKey();
    expect(await plain.move(a, b, { set: { k: 2 }, delete: [] }, deadline())).toEqual({
      data: { k: 2 },
      meta: metaAt(clock),
    });
    expect(await rawRow(a)).toBeNull();
  });

  describe("against a row lock, in a known order", () => {
    /** Waits until `count` statements of the store's pool wait on a lock. */
    async function waiting(count: number): Promise<void> {
      await until(async () => {
        const r = await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [APP],
        );
        return (r.rowCount ?? 0) >= count;
      }, 2000);
    }

    /** Runs `first`, then `second`, both queued behind a lock on `key` taken by another client. */
    async function queued<A, B>(
      key: string,
      first: () => Promise<A>,
      second: () => Promise<B>,
    ): Promise<[A, B]> {
      const blocker = new pg.Client({ connectionString: DATABASE_URL });
      await blocker.connect();
      try {
        await blocker.query("BEGIN");
        await blocker.query(`SELECT 1 FROM ${TABLE} WHERE key = $1 FOR UPDATE`, [key]);
        const one = first();
        await waiting(1);
        const two = second();
        await waiting(2);
        await blocker.query("ROLLBACK");
        return [await one, await two];
      } finally {
        await blocker.end();
      }
    }

    it("a patch that gets the row first is carried to the new key", async () => {
      const a = await seed({ k: 0, other: "x" });
      const b = newKey();
      const [patched, moved] = await queued(
        a,
        () => store.patch(a, { set: { k: 1 }, delete: [] }, deadline()),
        () => store.move(a, b, { set: { m: 1 }, delete: [] }, deadline()),
      );
      expect(patched).toBe(true);
      expect(moved?.data).toEqual({ k: 1, other: "x", m: 1 });
      expect((await store.get(b))?.data).toEqual({ k: 1, other: "x", m: 1 });
      expect(await rawRow(a)).toBeNull();
    });

    it("a patch that comes after the move answers false", async () => {
      const a = await seed({ k: 0 });
      const b = newKey();
      const [moved, patched] = await queued(
        a,
        () => store.move(a, b, { set: { m: 1 }, delete: [] }, deadline()),
        () => store.patch(a, { set: { k: 1 }, delete: [] }, deadline()),
      );
      expect(moved?.data).toEqual({ k: 0, m: 1 });
      expect(patched).toBe(false);
      expect((await store.get(b))?.data).toEqual({ k: 0, m: 1 });
      expect(await rawRow(a)).toBeNull();
    });
  });

  describe(`races, ${ROUNDS} rounds on separate connections`, () => {
    it("a patch of the old key is carried or answers false, never lost", async () => {
      const outcomes = { carried: 0, refused: 0 };
      for (let i = 0; i < ROUNDS; i++) {
        const a = await seed({ k: -1, base: i });
        const b = newKey();
        const [moved, patched] = await Promise.all([
          store.move(a, b, { set: { moved: true }, delete: [] }, deadline()),
          store.patch(a, { set: { k: i }, delete: [] }, deadline()),
        ]);
        const atB = await store.get(b);
        expect(moved, `round ${i}`).toEqual(atB);
        expect(atB?.data.moved, `round ${i}`).toBe(true);
        expect(atB?.data.base, `round ${i}`).toBe(i);
        if (patched) {
          expect(atB?.data.k, `round ${i}: patch answered true`).toBe(i);
          outcomes.carried++;
        } else {
          expect(atB?.data.k, `round ${i}: patch answered false`).toBe(-1);
          outcomes.refused++;
        }
        expect(await rawRow(a), `round ${i}`).toBeNull();
      }
      // Which one wins is up to the scheduler; shown so that a one-sided run is visible.
      console.info(`move vs patch over ${ROUNDS} rounds:`, outcomes);
    });

    it("exactly one of move and delete of the old key wins", async () => {
      const outcomes = { moved: 0, deleted: 0 };
      for (let i = 0; i < ROUNDS; i++) {
        const a = await seed({ base: i });
        const b = newKey();
        const [moved, deleted] = await Promise.all([
          store.move(a, b, { set: { moved: true }, delete: [] }, deadline()),
          store.delete(a),
        ]);
        // A move first leaves the delete nothing (false); a delete first leaves the move nothing.
        expect(deleted, `round ${i}`).toBeTypeOf("boolean");
        expect(moved !== undefined, `round ${i}`).toBe(deleted === false);
        if (moved) {
          expect(await store.get(b), `round ${i}`).toEqual(moved);
          outcomes.moved++;
        } else {
          expect(await rawRow(b), `round ${i}: nothing written`).toBeNull();
          outcomes.deleted++;
        }
        expect(await rawRow(a), `round ${i}`).toBeNull();
      }
      console.info(`move vs delete over ${ROUNDS} rounds:`, outcomes);
    });

    it("deleteByUser ends the session whether it runs before, during or after the move", async () => {
      const outcomes = { moved: 0, notMoved: 0 };
      for (let i = 0; i < ROUNDS; i++) {
        const user = `race-${clock}-${i}`;
        const a = await seed({ base: i }, { userId: user });
        const b = newKey();
        const [moved, count] = await Promise.all([
          store.move(a, b, { set: { moved: true }, delete: [] }, deadline()),
          store.deleteByUser(user),
        ]);
        // One session, wherever it was: deleted once, and nothing left of it at either key.
        expect(count, `round ${i}`).toBe(1);
        expect(await rawRow(a), `round ${i}`).toBeNull();
        expect(await rawRow(b), `round ${i}`).toBeNull();
        expect(await store.listByUser(user), `round ${i}`).toEqual([]);
        if (moved) outcomes.moved++;
        else outcomes.notMoved++;
      }
      console.info(`move vs deleteByUser over ${ROUNDS} rounds:`, outcomes);
    });
  });
});
