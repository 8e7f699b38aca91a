/**
 * Session rows the application did not write as it writes them now: an older version's, another
 * app's sharing the table, or one edited by hand. A cookie record of the wrong shape is refused
 * (`decodeRecord` checks every field); a store row should be too, not reach the handler or a
 * "your devices" page half-formed. Findings are `it.fails`, each with the problem and the fix.
 */
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { postgresStore } from "../../src/stores/postgres.js";
import { sqliteStore } from "../../src/stores/sqlite.js";
import { DAY, harness, jarToken } from "../core/harness.js";
import { DATABASE_URL, serviceAvailable } from "../helpers/services.js";

function setup() {
  let clock = () => 0;
  const db = new Database(":memory:");
  const h = harness({ store: sqliteStore({ db, now: () => clock() }) });
  clock = h.clock.now;
  /** Signs alice in and returns her token; `edit` then rewrites her row's meta JSON in SQL. */
  async function aliceWith(edit: string, ...params: unknown[]): Promise<string> {
    h.jar.cookies.clear();
    await h.request(async (s) => {
      await s.regenerate({ userId: "alice" });
      s.set("n", 1);
    });
    db.prepare(`UPDATE sessionkit_sessions SET meta = ${edit}`).run(...params);
    return jarToken(h.jar) as string;
  }
  const replay = (token: string) => h.request(() => {}, { cookie: `sid=${token}`, keepJar: true });
  return { ...h, db, aliceWith, replay };
}

describe("a store row whose meta has the wrong types", () => {
  // FINDING: sessionFromToken (manager.ts) checks a store record's deadlines with number
  // comparisons only. A `createdAt` kept as an ISO string (an older version that stored dates as
  // text) compares as NaN: never "in the future", never past the absolute deadline. The session
  // would outlive absoluteTimeout, and `session.createdAt` hands the handler a string typed as a
  // number. Worse, the deadline commit computes from it is NaN: at the first idle slide SQLite
  // refuses the touch (NOT NULL on expires_at) and every request of that session fails with
  // StoreUnavailableError, a 503 that store-down alerting counts as an outage (the memory store
  // instead keeps a NaN deadline: the entry never expires and listByUser hides it). The SQLite store checks nothing (`parse`), the SQL stores only that the three times are
  // numbers (toSession), the memory store nothing.
  // Fix: check the record's shape in the core, once for every store, as `decodeRecord` does for a
  // cookie record: createdAt/touchedAt/renewedAt safe non-negative integers, userId/label/userAgent/
  // ip strings (label <= 100, userAgent <= 256 characters), each flash field a [level, message],
  // persistent a boolean; anything else is refused as "malformed" (the row deleted like an expired
  // one), and `listByUser` leaves such entries out. Exporting a `isSessionMeta` from
  // internal/record.ts beside `decodeRecord` keeps the two rules one.
  it("createdAt stored as a date string is refused, not a 503 or an immortal session", async () => {
    const h = setup();
    const token = await h.aliceWith("json_set(meta, '$.createdAt', ?)", new Date().toISOString());
    h.clock.advance(5 * DAY); // the idle slide is due: commit touches the row
    const result = await h.replay(token).catch((err: unknown) => err);
    expect(result).not.toBeInstanceOf(Error);
    expect((result as Awaited<ReturnType<typeof h.replay>>).session.isNew).toBe(true);
    expect(h.invalid).toContain("malformed");
  });

  // FINDING (same check): a userId stored as a number (an older version's integer ids) reaches the
  // handler as a number: `session.userId === user.id` with string ids is then false, and code that
  // trusts the declared `string` type (`userId.startsWith`) throws on every request of that user.
  it("a numeric userId is refused rather than handed to the handler as a string-typed number", async () => {
    const h = setup();
    const token = await h.aliceWith("json_set(meta, '$.userId', 42)");
    const { session } = await h.replay(token);
    expect(session.userId === undefined || typeof session.userId === "string").toBe(true);
  });

  // FINDING (same check): a flash message kept as a string (hand-edited, or another library's flash
  // format) makes `flashEntries()` throw a TypeError in every request of that session that renders
  // its messages: the user sees a 500 until the row goes.
  it("a flash of the wrong shape does not make flashEntries throw", async () => {
    const h = setup();
    const token = await h.aliceWith(`json_set(meta, '$."flash:0mjabc12300x1a2b3c"', 'hello')`);
    const { session } = await h.replay(token);
    expect(() => session.flashEntries()).not.toThrow();
  });
});

describe("a devices page fed by rows written elsewhere", () => {
  // FINDING: `listByUser` passes label, userAgent and ip through unchecked. The write side bounds them
  // (label 100, user agent 256 characters), but a row from another writer puts a 100 KB label (or
  // an object) on the page the application renders for every device of the user.
  // Fix: the meta check above, applied to each entry in `listByUser` (leave out, or cut and drop
  // non-strings).
  it("a 100 KB label and an object user agent reach listByUser bounded and as strings", async () => {
    const h = setup();
    await h.aliceWith(
      "json_set(json_set(meta, '$.label', ?), '$.userAgent', json('{\"x\":1}'))",
      "A".repeat(100_000),
    );
    const devices = await h.sessions.listByUser("alice");
    for (const device of devices) {
      expect((device.label ?? "").length).toBeLessThanOrEqual(100);
      expect(device.userAgent === undefined || typeof device.userAgent === "string").toBe(true);
    }
  });

  it("a row whose meta is not JSON at all is not found, and not listed (holds)", async () => {
    const h = setup();
    const token = await h.aliceWith("'not json'");
    const { session } = await h.replay(token);
    expect(session.isNew).toBe(true);
    expect(await h.sessions.listByUser("alice")).toEqual([]);
  });
});

const pgUp = await serviceAvailable("postgres", DATABASE_URL);

describe.skipIf(!pgUp)(
  "the same rows in PostgreSQL (its toSession checks only the three times)",
  () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const table = `attack2_rows_${process.pid}`;
    afterAll(async () => {
      await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await pool.end();
    });

    // FINDING (the meta check above): userId as a number and a flash message as a string pass the
    // PostgreSQL store's row check, so the handler gets a numeric userId and flashEntries() throws.
    it("a numeric userId and a string flash are refused as malformed", async () => {
      let clock = () => 0;
      const h = harness({ store: postgresStore({ pool, table, now: () => clock() }) });
      clock = h.clock.now;
      await h.request(async (s) => {
        await s.regenerate({ userId: "alice" });
      });
      await pool.query(
        `UPDATE ${table} SET meta = meta || '{"userId": 42, "flash:0mjabc12300x1a2b3c": "hello"}'::jsonb`,
      );
      const { session } = await h.request(() => {}, { keepJar: true });
      expect(session.isNew).toBe(true);
      expect(h.invalid).toContain("malformed");
    });
  },
);
