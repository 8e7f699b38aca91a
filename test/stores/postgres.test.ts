import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessions } from "../../src/manager.js";
import {
  type PostgresStore,
  type PostgresStoreOptions,
  postgresStore,
} from "../../src/stores/postgres.js";
import { testStore } from "../../src/testing/index.js";
import { storeKeyOf } from "../../src/testing/store-model.js";
import { DATABASE_URL, serviceAvailable } from "../helpers/services.js";
import {
  type OutageRig,
  type SqlStoreHooks,
  sqlOutageCases,
  sqlStoreCases,
  testTables,
  until,
} from "./sql-cases.js";
import { itRoundTripsThroughCreateSessions, keyMaker } from "./support.js";

const available = await serviceAvailable("PostgreSQL", DATABASE_URL);

const { table: TABLE, migrateTable: MIGRATE_TABLE } = testTables("pg");
const APP = `sessionkit-test-pg-${process.pid}`;
// A password that must never show up in an error message.
const PASSWORD = "hunter2-pg-never-print";

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

  /** Kills every backend of `app`, the application_name of one test's own pool. */
  async function terminate(app: string): Promise<void> {
    const killed = await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
      [app],
    );
    expect(killed.rowCount).toBeGreaterThan(0);
  }

  /** A pool of its own, named so that pg_stat_activity finds exactly its backends. */
  async function outageRig(
    size: number,
    purpose: "in-flight" | "idle",
  ): Promise<OutageRig<PostgresStore>> {
    const app = `${APP}-${purpose === "in-flight" ? "outage" : "idle"}`;
    const outagePool = new pg.Pool({
      connectionString: DATABASE_URL,
      application_name: app,
      max: size,
    });
    // What the TSDoc asks of users: pg reports a dropped idle client on the pool. Without this
    // listener Node would crash; with it, the test can check the errors were not swallowed.
    const idleErrors: unknown[] = [];
    outagePool.on("error", (err) => idleErrors.push(err));
    let blocker: pg.Client | undefined;
    return {
      store: postgresStore({ pool: outagePool, table: TABLE, now }),
      async holdRowLock(key) {
        const client = new pg.Client({
          connectionString: DATABASE_URL,
          application_name: `${APP}-blocker`,
        });
        blocker = client;
        await client.connect();
        await client.query("BEGIN");
        await client.query(`SELECT 1 FROM ${TABLE} WHERE key = $1 FOR UPDATE`, [key]);
        return async () => void (await client.query("ROLLBACK"));
      },
      async killWaiting() {
        await until(async () => {
          const r = await admin.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [app],
          );
          return (r.rowCount ?? 0) > 0;
        });
        await terminate(app);
      },
      async killAll() {
        await terminate(app);
        await until(async () => {
          const r = await admin.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = $1",
            [app],
          );
          return r.rowCount === 0;
        });
      },
      afterRecovery() {
        // The store did not swallow the idle-client errors: they reached the user's listener.
        expect(idleErrors.length).toBeGreaterThan(0);
      },
      async close() {
        await blocker?.end();
        await outagePool.end();
      },
    };
  }

  const hooks: SqlStoreHooks<PostgresStore> = {
    name: "postgres",
    clock,
    newKey: keyMaker("pgtestkey"),
    open: (overrides) =>
      postgresStore({ pool, table: TABLE, now, ...overrides } as PostgresStoreOptions),
    pool: () => pool,
    migrateTable: MIGRATE_TABLE,
    async dropMigrateTable() {
      await admin.query(`DROP TABLE IF EXISTS ${MIGRATE_TABLE}`);
    },
    async checkFirstMigration(statements) {
      expect(statements.filter((text) => text.includes("CREATE TABLE"))).toHaveLength(1);
      const indexes = await admin.query<{ indexdef: string }>(
        "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
        [MIGRATE_TABLE],
      );
      const defs = indexes.rows.map((r) => r.indexdef).join("\n");
      expect(defs).toMatch(/\(expires_at\)/);
      expect(defs).toMatch(/\(user_id\)/);
      expect(defs).toMatch(/UNIQUE INDEX .*\(key\)/);
    },
    async countRows(table) {
      const count = await admin.query(`SELECT count(*)::int AS n FROM ${table}`);
      return count.rows[0].n;
    },
    missingTableCode: "42P01",
    connectionCount: () => pool.totalCount,
    async userRow(key) {
      const raw = await admin.query(`SELECT user_id, meta FROM ${TABLE} WHERE key = $1`, [key]);
      return { userId: raw.rows[0].user_id, meta: raw.rows[0].meta };
    },
    async expiresAtText(key) {
      const raw = await admin.query(`SELECT expires_at::text AS e FROM ${TABLE} WHERE key = $1`, [
        key,
      ]);
      return raw.rows[0].e;
    },
    async insertRow(key, data, meta, expiresAt) {
      await admin.query(
        `INSERT INTO ${TABLE} (key, data, meta, expires_at) VALUES ($1, $2, $3, $4)`,
        [key, data, meta, expiresAt],
      );
    },
    outage: {
      url: DATABASE_URL,
      password: PASSWORD,
      open: outageRig,
      openUnreachable(url, timeoutMs) {
        const dead = new pg.Pool({ connectionString: url, connectionTimeoutMillis: timeoutMs });
        dead.on("error", () => {});
        return {
          store: postgresStore({ pool: dead, table: TABLE, now }),
          close: () => dead.end(),
        };
      },
    },
  };

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
      // Every postgres specific runs in the shared SQL cases, through the hooks above.
      describe("postgres specifics", () => sqlStoreCases(hooks));
      sqlOutageCases(hooks);
      describe("postgres through createSessions", () => {
        itRoundTripsThroughCreateSessions(hooks.open, async (name) => {
          const rows = await admin.query(`SELECT data FROM ${TABLE} WHERE data ? $1`, [name]);
          return rows.rows.map((r) => r.data);
        });

        it("destroyByUser held up by a row lock still ends a session moved to a new id meanwhile", async () => {
          // One DELETE sees its snapshot: a regenerate committing while it waited on another row of
          // the user wrote a row it could not see and deleted one it then skipped (count 1, one left).
          const sessions = createSessions({
            secret: "postgres-race-test-secret-0123456789-abcdef",
            store: postgresStore({ pool, table: TABLE, now }),
            now,
          });
          const signIn = async () => {
            const session = await sessions.load(new Headers());
            await session.regenerate({ userId: "ada" });
            const headers = new Headers();
            await sessions.commit(session, headers);
            const cookie = (headers.getSetCookie()[0] as string).split(";")[0] as string;
            return { cookie, key: await storeKeyOf(session.id) };
          };
          const held = await signIn(); // a device whose row an in-flight write holds
          const moving = await signIn(); // a device that renews meanwhile
          const blocker = new pg.Client({ connectionString: DATABASE_URL });
          await blocker.connect();
          try {
            await blocker.query("BEGIN");
            await blocker.query(`SELECT 1 FROM ${TABLE} WHERE key = $1 FOR UPDATE`, [held.key]);
            const signOut = sessions.destroyByUser("ada");
            await until(async () => {
              const r = await admin.query(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%DELETE FROM%'",
              );
              return (r.rowCount ?? 0) > 0;
            });
            const other = await sessions.load(new Headers({ cookie: moving.cookie }));
            await other.regenerate();
            await sessions.commit(other, new Headers());
            await blocker.query("ROLLBACK");
            expect(await signOut).toBe(2);
            expect(await sessions.listByUser("ada")).toEqual([]);
          } finally {
            await blocker.end();
          }
        });
      });
    },
  });
});
