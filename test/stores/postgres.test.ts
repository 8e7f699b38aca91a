import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, isSessionError, StoreUnavailableError } from "../../src/errors.js";
import { createSessions } from "../../src/manager.js";
import { type PostgresStore, postgresStore } from "../../src/stores/postgres.js";
import type { SessionMeta, StoredSession } from "../../src/stores/store.js";
import { testStore } from "../../src/testing/index.js";
import { DATABASE_URL, serviceAvailable } from "../helpers/services.js";

const available = await serviceAvailable("PostgreSQL", DATABASE_URL);

// Per-file and per-process names: parallel test files, and a second test run started by someone
// else on the same servers, never share (or truncate) each other's rows.
const TABLE = `sessionkit_test_pg_${process.pid}`;
const MIGRATE_TABLE = `sessionkit_test_pg_migrate_${process.pid}`;
const APP = `sessionkit-test-pg-${process.pid}`;
const HOUR_MS = 3_600_000;
// A password that must never show up in an error message.
const PASSWORD = "hunter2-pg-never-print";
const SECRET = "x".repeat(32);

const metaAt = (at: number): SessionMeta => ({ createdAt: at, touchedAt: at, renewedAt: at });
/** Distinct keys of the real shape (43 base64url characters), readable in a failing test. */
let keySeq = 0;
const newKey = () => `pgtestkey${String(++keySeq).padStart(4, "0")}`.padEnd(43, "A");

/** Polls a condition by querying, never by sleeping; each round trip gives the event loop a turn. */
async function until(check: () => Promise<boolean>, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) if (await check()) return;
  throw new Error(`condition not met after ${rounds} rounds`);
}

describe.skipIf(!available)("postgresStore", () => {
  let pool: pg.Pool;
  let admin: pg.Client;
  const clock = Date.now();
  const now = () => clock;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, application_name: APP, max: 12 });
    pool.on("error", () => {
      // Idle clients killed by the outage test land here; the tests assert on call results.
    });
    admin = new pg.Client({ connectionString: DATABASE_URL, application_name: `${APP}-admin` });
    await admin.connect();
    await admin.query(`DROP TABLE IF EXISTS ${TABLE}`);
  });
  afterAll(async () => {
    await admin?.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await admin?.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
    await admin?.end();
    await pool?.end();
  });

  testStore("postgres", (ctx) => postgresStore({ pool, table: TABLE, now: ctx.now }), {
    clock: "injected",
    async dumpRaw() {
      const result = await admin.query<{ row: string }>(
        `SELECT (t.*)::text AS row FROM ${TABLE} t ORDER BY key`,
      );
      return result.rows.map((r) => r.row).join("\n");
    },
    async reset() {
      await admin.query(`TRUNCATE ${TABLE}`);
    },
    extra() {
      describe("postgres specifics", () => {
        it("creates the table with its indexes on first use, once per store however many calls race", async () => {
          await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
          const statements: string[] = [];
          const spy = {
            query: (text: string, values?: unknown[]) => {
              statements.push(text);
              return pool.query(text, values);
            },
          } as unknown as pg.Pool;
          const s = postgresStore({ pool: spy, table: MIGRATE_TABLE, now });
          const got = await Promise.all(Array.from({ length: 5 }, () => s.get(newKey())));
          expect(got).toEqual([undefined, undefined, undefined, undefined, undefined]);
          expect(statements.filter((text) => text.includes("CREATE TABLE"))).toHaveLength(1);
          const indexes = await admin.query<{ indexdef: string }>(
            "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
            [MIGRATE_TABLE],
          );
          const defs = indexes.rows.map((r) => r.indexdef).join("\n");
          expect(defs).toMatch(/\(expires_at\)/);
          expect(defs).toMatch(/\(user_id\)/);
          expect(defs).toMatch(/UNIQUE INDEX .*\(key\)/);
        });

        it("creates one table when several store instances start at once, and each then works", async () => {
          // Without serialising, racing CREATE TABLE IF NOT EXISTS can fail with a unique violation.
          for (let round = 0; round < 5; round++) {
            await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
            const stores = Array.from({ length: 6 }, () =>
              postgresStore({ pool, table: MIGRATE_TABLE, now }),
            );
            const key = newKey();
            await Promise.all(stores.map((s) => s.migrate()));
            await stores[0]?.set(key, record({ round }), clock + HOUR_MS);
            for (const s of stores) expect((await s.get(key))?.data).toEqual({ round });
          }
          // And migrate() on an existing table with rows keeps them.
          await postgresStore({ pool, table: MIGRATE_TABLE, now }).migrate();
          const count = await admin.query(`SELECT count(*)::int AS n FROM ${MIGRATE_TABLE}`);
          expect(count.rows[0].n).toBe(1);
        });

        it("with createTable: false issues no DDL and reports a missing table as unavailable", async () => {
          await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
          const s = postgresStore({ pool, table: MIGRATE_TABLE, createTable: false, now });
          const err = await s.get(newKey()).catch((e: unknown) => e);
          expect(isSessionError(err, "ERR_STORE_UNAVAILABLE")).toBe(true);
          expect((err as Error).message).toContain("during get (42P01)");
          await s.migrate();
          expect(await s.get(newKey())).toBeUndefined();
        });

        it("applies 50 concurrent patches of different keys to one row through many connections", async () => {
          const s = store();
          const key = newKey();
          const seed: Record<string, unknown> = {};
          for (let i = 0; i < 50; i++) seed[`old${i}`] = i;
          await s.set(key, record(seed), clock + HOUR_MS);
          const applied = await Promise.all(
            Array.from({ length: 50 }, (_, i) =>
              s.patch(key, { set: { [`new${i}`]: { i } }, delete: [`old${i}`] }, clock + HOUR_MS),
            ),
          );
          expect(applied.every(Boolean)).toBe(true);
          // More than one connection ran them, so the row really was updated concurrently.
          expect(pool.totalCount).toBeGreaterThan(1);
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
          expect(
            await s.patch(
              key,
              { set: { prefs: { layout: { cols: 4 } } }, delete: [] },
              clock + HOUR_MS,
            ),
          ).toBe(true);
          expect((await s.get(key))?.data).toEqual({ prefs: { layout: { cols: 4 } } });
        });

        it("round-trips JSON null values through set and patch", async () => {
          const s = store();
          const key = newKey();
          await s.set(key, record({ a: null, keep: 1 }), clock + HOUR_MS);
          const set = { b: null, nested: { n: null, list: [null, 1] }, keep: null };
          expect(await s.patch(key, { set, delete: [] }, clock + HOUR_MS)).toBe(true);
          expect((await s.get(key))?.data).toEqual({
            a: null,
            b: null,
            keep: null,
            nested: { n: null, list: [null, 1] },
          });
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
            "{}",
          ];
          await s.set(key, record({ plain: 1 }), clock + HOUR_MS);
          const set = Object.fromEntries(names.map((name, i) => [name, { i }]));
          expect(await s.patch(key, { set, delete: [] }, clock + HOUR_MS)).toBe(true);
          expect((await s.get(key))?.data).toEqual({ plain: 1, ...set });
          expect(await s.patch(key, { set: {}, delete: names.slice(0, 6) }, clock + HOUR_MS)).toBe(
            true,
          );
          expect((await s.get(key))?.data).toEqual({
            plain: 1,
            ...Object.fromEntries(
              Object.entries(set).filter(([n]) => !names.slice(0, 6).includes(n)),
            ),
          });
        });

        it("keeps user_id in step with meta.userId through set and patch", async () => {
          const s = store();
          const key = newKey();
          const user = `pg-user-${keySeq}`;
          await s.set(key, record({}), clock + HOUR_MS);
          expect(await s.listByUser(user)).toEqual([]);
          await s.patch(key, { set: {}, delete: [], meta: { userId: user } }, clock + HOUR_MS);
          expect((await s.listByUser(user)).map((e) => e.key)).toEqual([key]);
          await s.patch(key, { set: {}, delete: [], meta: { label: "phone" } }, clock + HOUR_MS);
          expect((await s.listByUser(user)).map((e) => e.key)).toEqual([key]);
          await s.patch(key, { set: {}, delete: [], meta: { userId: null } }, clock + HOUR_MS);
          expect(await s.listByUser(user)).toEqual([]);
          const raw = await admin.query(`SELECT user_id, meta FROM ${TABLE} WHERE key = $1`, [key]);
          expect(raw.rows[0].user_id).toBeNull();
          expect(raw.rows[0].meta).not.toHaveProperty("userId");
        });

        it("stores the deadline as epoch ms and applies a 200 KB patch in one statement", async () => {
          const s = store();
          const key = newKey();
          const deadline = clock + HOUR_MS;
          await s.set(key, record({ small: 1 }), deadline);
          const big = "é€x".repeat(70_000);
          expect(await s.patch(key, { set: { big }, delete: [] }, deadline + 1)).toBe(true);
          expect((await s.get(key))?.data.big).toBe(big);
          const raw = await admin.query(
            `SELECT expires_at::text AS e FROM ${TABLE} WHERE key = $1`,
            [key],
          );
          expect(raw.rows[0].e).toBe(String(deadline + 1));
        });

        it("reads a row that is not a well-formed record as not found", async () => {
          const s = store();
          const key = newKey();
          await s.get(key); // the table exists from here
          await admin.query(
            `INSERT INTO ${TABLE} (key, data, meta, expires_at) VALUES ($1, '[1,2]', '{"createdAt":1}', $2)`,
            [key, clock + HOUR_MS],
          );
          expect(await s.get(key)).toBeUndefined();
        });

        it("refuses a table name that is not a plain identifier", () => {
          for (const table of ['x"; DROP TABLE y; --', "a b", "1abc", "a.b.c", ""]) {
            expect(() => postgresStore({ pool, table })).toThrow(ConfigError);
          }
          expect(() => postgresStore({ pool: undefined as unknown as pg.Pool })).toThrow(
            ConfigError,
          );
        });
      });

      describe("postgres outages", () => {
        it("fails a call in flight when its connection is killed, then recovers with nothing acknowledged lost", async () => {
          const outagePool = new pg.Pool({
            connectionString: DATABASE_URL,
            application_name: `${APP}-outage`,
            max: 4,
          });
          outagePool.on("error", () => {
            // Other idle clients of this pool are killed too; the user-side listener keeps Node up.
          });
          const blocker = new pg.Client({
            connectionString: DATABASE_URL,
            application_name: `${APP}-blocker`,
          });
          await blocker.connect();
          try {
            const s = postgresStore({ pool: outagePool, table: TABLE, now });
            const key = newKey();
            await s.set(key, record({ acknowledged: 1 }), clock + HOUR_MS);
            expect(await s.patch(key, { set: { second: 2 }, delete: [] }, clock + HOUR_MS)).toBe(
              true,
            );

            // Hold the row lock so the next patch waits on the server, then kill it mid-flight.
            await blocker.query("BEGIN");
            await blocker.query(`SELECT 1 FROM ${TABLE} WHERE key = $1 FOR UPDATE`, [key]);
            // Settled into a value at once, so the rejection is handled before the kill lands.
            const inFlight = s
              .patch(key, { set: { lost: true }, delete: [] }, clock + HOUR_MS)
              .then(
                () => undefined,
                (e: unknown) => e,
              );
            await until(async () => {
              const r = await admin.query(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                [`${APP}-outage`],
              );
              return (r.rowCount ?? 0) > 0;
            });
            const killed = await admin.query(
              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
              [`${APP}-outage`],
            );
            expect(killed.rowCount).toBeGreaterThan(0);
            const err = await inFlight;
            expect(err).toBeInstanceOf(StoreUnavailableError);
            expect((err as StoreUnavailableError).code).toBe("ERR_STORE_UNAVAILABLE");
            expect((err as Error).message).toMatch(
              /^sessionkit: the postgres store failed during patch/,
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
            await outagePool.end();
          }
        });

        it("survives its idle connections being terminated: the next call fails cleanly or reconnects", async () => {
          const app = `${APP}-idle`;
          const outagePool = new pg.Pool({
            connectionString: DATABASE_URL,
            application_name: app,
            max: 6,
          });
          // What the TSDoc asks of users: pg reports a dropped idle client on the pool.
          const idleErrors: unknown[] = [];
          outagePool.on("error", (err) => idleErrors.push(err));
          try {
            const s = postgresStore({ pool: outagePool, table: TABLE, now });
            const key = newKey();
            await s.set(key, record({ acknowledged: 1 }), clock + HOUR_MS);
            await Promise.all(Array.from({ length: 6 }, () => s.get(key))); // several idle clients
            const killed = await admin.query(
              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
              [app],
            );
            expect(killed.rowCount).toBeGreaterThan(0);
            await until(async () => {
              const r = await admin.query(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = $1",
                [app],
              );
              return r.rowCount === 0;
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
            // The store did not swallow the idle-client errors: they reached the user's listener.
            expect(idleErrors.length).toBeGreaterThan(0);
          } finally {
            await outagePool.end();
          }
        });

        it("rejects with StoreUnavailableError on a closed port within the connect timeout, naming no password", async () => {
          const url = new URL(DATABASE_URL);
          url.port = "1";
          url.password = PASSWORD;
          const CONNECT_TIMEOUT_MS = 2000;
          const dead = new pg.Pool({
            connectionString: url.href,
            connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
          });
          dead.on("error", () => {});
          try {
            const s = postgresStore({ pool: dead, table: TABLE, now });
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

      describe("postgres through createSessions", () => {
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
          const rows = await admin.query(`SELECT data FROM ${TABLE} WHERE data ? 'visits'`);
          expect(rows.rows.map((r) => r.data)).toEqual([
            { user: { name: "ada", roles: ["admin"] }, visits: 2 },
          ]);
        });
      });

      function store(): PostgresStore {
        return postgresStore({ pool, table: TABLE, now });
      }
      function record(data: Record<string, unknown>): StoredSession {
        return { data, meta: metaAt(clock) };
      }
    },
  });
});
