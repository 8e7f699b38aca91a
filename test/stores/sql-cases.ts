/**
 * The tests the SQL stores (PostgreSQL, MySQL) share beyond the conformance suite: the table they
 * create, what a patch does to a row's JSON, the user_id column, and outages and recovery. Each store's test
 * file calls these inside its `extra()` with hooks that read its own table and kill its own
 * connections; what only one server has stays in that file.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, isSessionError, StoreUnavailableError } from "../../src/errors.js";
import type { SessionStore, StoredSession, StoredSessionEntry } from "../../src/stores/store.js";
import { HOUR_MS, metaAt } from "./support.js";

/** What the tests need of `postgresStore` and `mysqlStore`. */
export interface SqlStore extends SessionStore {
  listByUser(userId: string): Promise<StoredSessionEntry[]>;
  migrate(): Promise<void>;
  sweep(now: number): Promise<number>;
  lock(key: string, ttlMs: number, waitMs: number): Promise<(() => Promise<void>) | null>;
}

/** Options a test sets on top of the file's pool, table and clock. */
export interface SqlStoreOverrides {
  pool?: unknown;
  table?: string;
  createTable?: boolean;
  now?: () => number;
}

export interface SqlStoreHooks<S extends SqlStore> {
  /** As in the store's error messages: "postgres", "mysql". */
  name: string;
  /** The instant every record's meta and deadline count from (the stores' injected `now`). */
  clock: number;
  newKey(): string;
  /** A store over the file's pool and table; `overrides` replace either (`pool: undefined` too). */
  open(overrides?: SqlStoreOverrides): S;
  /** The file's pool: its `query(sql, values)` runs a statement. */
  pool(): { query(sql: string, values?: unknown[]): unknown };
  /** A table of the file's own that the migration tests drop and create. */
  migrateTable: string;
  /** Drops `migrateTable` (and whatever the store creates beside it) if it exists. */
  dropMigrateTable(): Promise<void>;
  /** After a first migration with the statements the store sent: its tables and indexes. */
  checkFirstMigration(statements: readonly string[]): Promise<void>;
  countRows(table: string): Promise<number>;
  /** The server's code for a missing table, as the unavailable error names it. */
  missingTableCode: string;
  /** More checks of the error a missing table gave a `get` of `key`. */
  checkMissingTableError?(err: unknown, key: string): void;
  /** How many connections the file's pool has opened so far. */
  connectionCount(): number;
  /** The row of `key` as stored: its user_id column and its meta, parsed. */
  userRow(key: string): Promise<{ userId: unknown; meta: unknown }>;
  /** The row of `key`'s expires_at column as decimal text. */
  expiresAtText(key: string): Promise<string>;
  /** Inserts a row as given, past the store's own checks. */
  insertRow(key: string, data: string, meta: string, expiresAt: number): Promise<void>;
  outage: SqlOutageHooks<S>;
}

export interface SqlOutageHooks<S extends SqlStore> {
  /** The server's URL; the closed-port test moves it to port 1 and sets a password. */
  url: string;
  /** A password that must never show up in an error message. */
  password: string;
  /** A store on a pool of `size` connections of its own, and the means to kill them. */
  open(size: number, purpose: "in-flight" | "idle"): Promise<OutageRig<S>>;
  /** A store whose pool connects to `url` and gives up after `timeoutMs`. */
  openUnreachable(url: string, timeoutMs: number): { store: S; close(): Promise<void> };
}

export interface OutageRig<S extends SqlStore> {
  store: S;
  /** Takes the row lock of `key` on another connection; resolves to its release. */
  holdRowLock(key: string): Promise<() => Promise<void>>;
  /** Waits until one of the store's statements waits on a lock, then kills its connection. */
  killWaiting(): Promise<void>;
  /** Kills every connection of the store's pool and waits until the server has let them go. */
  killAll(): Promise<void>;
  /** Checks once the store has recovered from `killAll`. */
  afterRecovery?(): void;
  close(): Promise<void>;
}

/**
 * The file's table and the one its migration tests drop and create. Per file and per process:
 * parallel test files, and a second test run started by someone else on the same servers, never
 * share (or truncate) each other's rows.
 */
export function testTables(label: string): { table: string; migrateTable: string } {
  return {
    table: `sessionkit_test_${label}_${process.pid}`,
    migrateTable: `sessionkit_test_${label}_migrate_${process.pid}`,
  };
}

/** Polls a condition by querying, never by sleeping; each round trip gives the event loop a turn. */
export async function until(check: () => Promise<boolean>, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) if (await check()) return;
  throw new Error(`condition not met after ${rounds} rounds`);
}

/** Settles a call into its rejection, or undefined if it resolved. */
const rejectionOf = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => undefined,
    (e: unknown) => e,
  );

/** The shared tests of the table, the JSON of a row and the user_id column (no outage). */
export function sqlStoreCases<S extends SqlStore>(hooks: SqlStoreHooks<S>): void {
  const { clock, newKey } = hooks;
  const deadline = clock + HOUR_MS;
  const record = (data: Record<string, unknown>): StoredSession => ({ data, meta: metaAt(clock) });

  it("creates the table with its indexes on first use, once per store however many calls race", async () => {
    await hooks.dropMigrateTable();
    const statements: string[] = [];
    const spy = {
      query: (sql: string, values?: unknown[]) => {
        statements.push(sql);
        return hooks.pool().query(sql, values);
      },
    };
    const s = hooks.open({ pool: spy, table: hooks.migrateTable });
    const got = await Promise.all(Array.from({ length: 5 }, () => s.get(newKey())));
    expect(got).toEqual([undefined, undefined, undefined, undefined, undefined]);
    await hooks.checkFirstMigration(statements);
  });

  it("creates one table when several store instances start at once, and each then works", async () => {
    // Without serialising, racing CREATE TABLE IF NOT EXISTS can fail with a unique violation.
    for (let round = 0; round < 5; round++) {
      await hooks.dropMigrateTable();
      const stores = Array.from({ length: 6 }, () => hooks.open({ table: hooks.migrateTable }));
      const key = newKey();
      await Promise.all(stores.map((s) => s.migrate()));
      await stores[0]?.set(key, record({ round }), deadline);
      for (const s of stores) expect((await s.get(key))?.data).toEqual({ round });
    }
    // And migrate() on an existing table with rows keeps them.
    await hooks.open({ table: hooks.migrateTable }).migrate();
    expect(await hooks.countRows(hooks.migrateTable)).toBe(1);
  });

  it("with createTable: false issues no DDL and reports a missing table as unavailable", async () => {
    await hooks.dropMigrateTable();
    const s = hooks.open({ table: hooks.migrateTable, createTable: false });
    const key = newKey();
    const err = await s.get(key).catch((e: unknown) => e);
    expect(isSessionError(err, "ERR_STORE_UNAVAILABLE")).toBe(true);
    expect((err as Error).message).toContain(`during get (${hooks.missingTableCode})`);
    hooks.checkMissingTableError?.(err, key);
    await s.migrate();
    expect(await s.get(newKey())).toBeUndefined();
  });

  it("applies 50 concurrent patches of different keys to one row through many connections", async () => {
    const s = hooks.open();
    const key = newKey();
    const seed: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) seed[`old${i}`] = i;
    await s.set(key, record(seed), deadline);
    const applied = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        s.patch(key, { set: { [`new${i}`]: { i } }, delete: [`old${i}`] }, deadline),
      ),
    );
    expect(applied.every(Boolean)).toBe(true);
    // More than one connection ran them, so the row really was updated concurrently.
    expect(hooks.connectionCount()).toBeGreaterThan(1);
    const expected: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) expected[`new${i}`] = { i };
    expect((await s.get(key))?.data).toEqual(expected);
  });

  it("patch replaces a nested object whole instead of merging into it", async () => {
    const s = hooks.open();
    const key = newKey();
    await s.set(key, record({ prefs: { theme: "dark", layout: { cols: 2, rows: 3 } } }), deadline);
    const patch = { set: { prefs: { layout: { cols: 4 } } }, delete: [] };
    expect(await s.patch(key, patch, deadline)).toBe(true);
    expect((await s.get(key))?.data).toEqual({ prefs: { layout: { cols: 4 } } });
  });

  it("round-trips JSON null values, scalars and arrays through set and patch", async () => {
    const s = hooks.open();
    const key = newKey();
    await s.set(key, record({ a: null, keep: 1 }), deadline);
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
    expect(await s.patch(key, { set, delete: [] }, deadline)).toBe(true);
    expect((await s.get(key))?.data).toEqual({ a: null, ...set });
  });

  it("with createTable: false and no lease table (a hand-made table, or migrate not rerun), sweep still sweeps", async () => {
    await hooks.open({ table: hooks.migrateTable }).migrate();
    await hooks.pool().query(`DROP TABLE IF EXISTS ${hooks.migrateTable}_locks`);
    const s = hooks.open({ table: hooks.migrateTable, createTable: false });
    await s.set(newKey(), record({ a: 1 }), clock - 1);
    expect(await s.sweep(clock)).toBeGreaterThanOrEqual(1);
    // The lock itself needs the table: it reports the missing table as the store being unavailable.
    const err = await s.lock(newKey(), 1000, 0).catch((e: unknown) => e);
    expect(isSessionError(err, "ERR_STORE_UNAVAILABLE")).toBe(true);
  });

  it("works on a clock with fractional milliseconds (performance.timeOrigin + performance.now())", async () => {
    const s = hooks.open({ now: () => clock + 0.25 });
    const key = newKey();
    await s.set(key, record({ a: 1 }), clock + 1000.5);
    expect(await s.patch(key, { set: { b: 2 }, delete: [] }, clock + 2000.5)).toBe(true);
    expect(await s.touch(key, clock + 0.75, clock + 3000.5)).toBe(true);
    expect((await s.get(key))?.data).toEqual({ a: 1, b: 2 });
    const gone = newKey();
    await s.set(gone, record({}), clock + 0.5);
    expect(await s.sweep(clock + 1.5)).toBeGreaterThanOrEqual(1);
    expect(await s.get(gone)).toBeUndefined();
  });

  it("sets and deletes data keys with dots, quotes, spaces, backslashes and emoji", async () => {
    const s = hooks.open();
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
      "*",
    ];
    await s.set(key, record({ plain: 1, "a.b": "old" }), deadline);
    const set = Object.fromEntries(names.map((name, i) => [name, { i }]));
    expect(await s.patch(key, { set, delete: [] }, deadline)).toBe(true);
    expect((await s.get(key))?.data).toEqual({ plain: 1, ...set });
    const gone = names.slice(0, 6);
    expect(await s.patch(key, { set: {}, delete: gone }, deadline)).toBe(true);
    const kept = Object.fromEntries(Object.entries(set).filter(([name]) => !gone.includes(name)));
    expect((await s.get(key))?.data).toEqual({ plain: 1, ...kept });
  });

  it("keeps user_id in step with meta.userId through set and patch", async () => {
    const s = hooks.open();
    const key = newKey();
    const user = `${hooks.name}-user-${key}`;
    await s.set(key, record({}), deadline);
    expect(await s.listByUser(user)).toEqual([]);
    await s.patch(key, { set: {}, delete: [], meta: { userId: user } }, deadline);
    expect((await s.listByUser(user)).map((e) => e.key)).toEqual([key]);
    await s.patch(key, { set: {}, delete: [], meta: { label: "phone" } }, deadline);
    expect((await s.listByUser(user)).map((e) => e.key)).toEqual([key]);
    await s.patch(key, { set: {}, delete: [], meta: { userId: null } }, deadline);
    expect(await s.listByUser(user)).toEqual([]);
    const row = await hooks.userRow(key);
    expect(row.userId).toBeNull();
    expect(row.meta).not.toHaveProperty("userId");
  });

  it("applies a 200 KB patch in one statement and stores the deadline as epoch ms", async () => {
    const s = hooks.open();
    const key = newKey();
    await s.set(key, record({ small: 1 }), deadline);
    const big = "é€x\"\\'".repeat(35_000);
    expect(await s.patch(key, { set: { big }, delete: [] }, deadline + 1)).toBe(true);
    expect((await s.get(key))?.data).toEqual({ small: 1, big });
    expect(await hooks.expiresAtText(key)).toBe(String(deadline + 1));
  });

  it("reads a row that is not a well-formed record as not found", async () => {
    const s = hooks.open();
    const key = newKey();
    await s.get(key); // the table exists from here
    await hooks.insertRow(key, "[1,2]", '{"createdAt":1}', deadline);
    expect(await s.get(key)).toBeUndefined();
  });

  it("refuses a table name that is not a plain identifier", () => {
    for (const table of [
      'x"; DROP TABLE y; --',
      "x`; DROP TABLE y; --",
      "a b",
      "1abc",
      "a.b.c",
      "",
    ]) {
      expect(() => hooks.open({ table })).toThrow(ConfigError);
    }
    expect(() => hooks.open({ pool: undefined })).toThrow(ConfigError);
  });
}

/** The shared outage tests: a killed call in flight, killed idle connections, a closed port. */
export function sqlOutageCases<S extends SqlStore>(hooks: SqlStoreHooks<S>): void {
  const { clock, newKey, name, outage } = hooks;
  const deadline = clock + HOUR_MS;
  const record = (data: Record<string, unknown>): StoredSession => ({ data, meta: metaAt(clock) });
  /** Runs `body` on a rig of its own with one acknowledged record written, then closes the rig. */
  async function withRig(
    size: number,
    purpose: "in-flight" | "idle",
    body: (rig: OutageRig<S>, key: string) => Promise<void>,
  ): Promise<void> {
    const rig = await outage.open(size, purpose);
    try {
      const key = newKey();
      await rig.store.set(key, record({ acknowledged: 1 }), deadline);
      await body(rig, key);
    } finally {
      await rig.close();
    }
  }

  describe(`${name} outages`, () => {
    it("fails a call in flight when its connection is killed, then recovers with nothing acknowledged lost", async () => {
      await withRig(4, "in-flight", async (rig, key) => {
        const s = rig.store;
        expect(await s.patch(key, { set: { second: 2 }, delete: [] }, deadline)).toBe(true);

        // Hold the row lock so the next patch waits on the server, then kill it mid-flight.
        const release = await rig.holdRowLock(key);
        // Settled into a value at once, so the rejection is handled before the kill lands.
        const inFlight = rejectionOf(s.patch(key, { set: { lost: true }, delete: [] }, deadline));
        await rig.killWaiting();
        const err = await inFlight;
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect((err as StoreUnavailableError).code).toBe("ERR_STORE_UNAVAILABLE");
        expect((err as Error).message).toMatch(
          new RegExp(`^sessionkit: the ${name} store failed during patch`),
        );
        expect((err as Error).message).not.toContain(key);
        await release();

        expect((await s.get(key))?.data).toEqual({ acknowledged: 1, second: 2 });
        expect(await s.patch(key, { set: { third: 3 }, delete: [] }, deadline)).toBe(true);
        expect((await s.get(key))?.data).toEqual({ acknowledged: 1, second: 2, third: 3 });
      });
    });

    it("survives its idle connections being killed: the next call fails cleanly or reconnects", async () => {
      await withRig(6, "idle", async (rig, key) => {
        const s = rig.store;
        const IDLE = 6;
        await Promise.all(Array.from({ length: IDLE }, () => s.get(key))); // several idle connections
        await rig.killAll();

        // A killed idle connection the driver has not yet noticed fails the one call that takes it,
        // cleanly; so at most one call per killed connection fails, and then calls work by themselves.
        let recovered: StoredSession | undefined;
        for (let attempt = 0; attempt <= IDLE && recovered === undefined; attempt++) {
          const next = await s.get(key).then(
            (value) => ({ value }),
            (error: unknown) => ({ error }),
          );
          if ("error" in next) expect(next.error).toBeInstanceOf(StoreUnavailableError);
          else recovered = next.value;
        }
        expect(recovered?.data).toEqual({ acknowledged: 1 });
        expect(await s.patch(key, { set: { after: 1 }, delete: [] }, deadline)).toBe(true);
        expect((await s.get(key))?.data).toEqual({ acknowledged: 1, after: 1 });
        rig.afterRecovery?.();
      });
    });

    it("rejects with StoreUnavailableError on a closed port within the connect timeout, naming no password", async () => {
      const url = new URL(outage.url);
      url.port = "1";
      url.password = outage.password;
      const CONNECT_TIMEOUT_MS = 2000;
      const dead = outage.openUnreachable(url.href, CONNECT_TIMEOUT_MS);
      try {
        const s = dead.store;
        const key = newKey();
        for (const call of [
          () => s.get(key),
          () => s.patch(key, { set: { a: 1 }, delete: [] }, deadline),
        ]) {
          const started = performance.now();
          const err = await rejectionOf(call());
          expect(performance.now() - started).toBeLessThan(CONNECT_TIMEOUT_MS + 1000);
          expect(err).toBeInstanceOf(StoreUnavailableError);
          expect((err as StoreUnavailableError).code).toBe("ERR_STORE_UNAVAILABLE");
          expect(((err as Error).cause as { code?: string }).code).toBe("ECONNREFUSED");
          const text = `${(err as Error).message}\n${String(err)}`;
          expect(text).toMatch(/^sessionkit: /);
          expect(text).not.toContain(outage.password);
          expect(text).not.toContain(key);
          expect(text).not.toContain(url.href);
        }
      } finally {
        await dead.close();
      }
    });
  });
}
