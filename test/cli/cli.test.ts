import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliIo, main } from "../../src/cli/index.js";
import { createSessions, type SessionsOptions } from "../../src/index.js";
import type { SessionState } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { mysqlStore } from "../../src/stores/mysql.js";
import { postgresStore } from "../../src/stores/postgres.js";
import { sqliteStore } from "../../src/stores/sqlite.js";
import type { SessionMeta } from "../../src/stores/store.js";
import { DATABASE_URL, IN_CI, MYSQL_URL, serviceAvailable } from "../helpers/services.js";
import { ensureDist } from "../runtimes/dist.js";

const SECRET = "cli-test-secret-0123456789-abcdefghijklmnop";
const OLD_SECRET = "cli-test-old-secret-0123456789-abcdefghijkl";
const DAY_MS = 86_400_000;
const ROOT = new URL("../../", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main` in process with a recording io. */
async function cli(
  argv: string[],
  env: Record<string, string | undefined> = { SESSIONKIT_SECRET: SECRET },
  stdin = "",
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env,
    readStdin: async () => stdin,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** Runs the real program in a child process, as `npx sessionkit` would (from the sources). */
function spawnCli(argv: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--conditions=sessionkit-source", "src/cli/index.ts", ...argv],
      { cwd: ROOT, env: { ...process.env, SESSIONKIT_SECRET: "", ...env } },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
      },
    );
  });
}

/** A committed session's token (its cookie value), made through the public API. */
async function tokenOf(
  options: Partial<SessionsOptions> = {},
  write: Record<string, unknown> = { user: "ada", cart: [1, 2] },
): Promise<{ token: string; cookieHeader: string }> {
  const sessions = createSessions({ secret: SECRET, ...options });
  const session = await sessions.load(new Headers());
  for (const [key, value] of Object.entries(write)) session.set(key, value);
  await session.regenerate({ userId: "u-42" });
  const headers = new Headers();
  await sessions.commit(session, headers);
  const pairs = headers.getSetCookie().map((line) => line.split(";", 1)[0] as string);
  const token = pairs.map((pair) => pair.slice(pair.indexOf("=") + 1)).join("");
  return { token, cookieHeader: pairs.join("; ") };
}

function expectNoSecret(run: Run, ...secrets: string[]): void {
  for (const secret of secrets) {
    expect(run.stdout).not.toContain(secret);
    expect(run.stderr).not.toContain(secret);
  }
}

describe("sessionkit secret", () => {
  it("prints 43 base64url characters, different on every run (child process)", async () => {
    const [a, b] = await Promise.all([spawnCli(["secret"]), spawnCli(["secret"])]);
    for (const run of [a, b]) {
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    }
    expect(a.stdout).not.toBe(b.stdout);
  });

  it("makes a secret createSessions accepts", async () => {
    const run = await cli(["secret"], {});
    expect(() => createSessions({ secret: run.stdout.trim() })).not.toThrow();
  });
});

describe("sessionkit inspect", () => {
  it("shows the data, user and deadlines of an encrypted token, never the secret (child process)", async () => {
    const { token } = await tokenOf();
    const run = await spawnCli(["inspect", token], { SESSIONKIT_SECRET: SECRET });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("format: e1");
    expect(run.stdout).toContain('"user": "ada"');
    expect(run.stdout).toContain("userId: u-42");
    expect(run.stdout).toMatch(/idleDeadline: \d{4}-\d\d-\d\dT.*\(in 6d 23h\)/);
    expect(run.stdout).toMatch(/absoluteDeadline: .*\(in 29d 23h\)/);
    expect(run.stdout).toContain("status: live");
    expectNoSecret(run, SECRET);
  });

  it("refuses a tampered token with exit code 1 and the reason (child process)", async () => {
    const { token } = await tokenOf();
    const flipped = token.slice(0, 20) + (token[20] === "A" ? "B" : "A") + token.slice(21);
    const run = await spawnCli(["inspect", flipped], { SESSIONKIT_SECRET: SECRET });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("tampered");
    expect(run.stdout).not.toContain("ada");
    expectNoSecret(run, SECRET);
  });

  it("opens a signed token and reports it as client-readable", async () => {
    const { token } = await tokenOf({ mode: "signed" });
    const run = await cli(["inspect", token]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("format: s1");
    expect(run.stdout).toContain('"cart"');
  });

  it("shows a session's remember-me choice only when it made one", async () => {
    const plain = await cli(["inspect", (await tokenOf()).token]);
    expect(plain.stdout).not.toContain("rememberMe");
    const sessions = createSessions({ secret: SECRET, cookie: { persistent: false } });
    const session = await sessions.load(new Headers());
    session.set("user", "ada");
    session.rememberMe();
    const headers = new Headers();
    await sessions.commit(session, headers);
    const token = (headers.getSetCookie()[0] as string).split(";")[0]?.slice("sid=".length);
    const run = await cli(["inspect", token as string]);
    expect(run.stdout).toContain("rememberMe: true");
    const json = JSON.parse((await cli(["inspect", token as string, "--json"])).stdout);
    expect(json.rememberMe).toBe(true);
  });

  it("lists pending flash messages with their levels, in the order added, and none when there are none", async () => {
    expect(
      JSON.parse((await cli(["inspect", (await tokenOf()).token, "--json"])).stdout),
    ).not.toHaveProperty("flash");
    const sessions = createSessions({ secret: SECRET });
    const session = await sessions.load(new Headers());
    session.flash("success", "Saved");
    session.flash("info", "Two left");
    session.flash("success", "Synced");
    const headers = new Headers();
    await sessions.commit(session, headers);
    const token = (headers.getSetCookie()[0] as string).split(";")[0]?.slice("sid=".length);
    const json = JSON.parse((await cli(["inspect", token as string, "--json"])).stdout);
    expect(json.flash).toEqual([
      { level: "success", message: "Saved" },
      { level: "info", message: "Two left" },
      { level: "success", message: "Synced" },
    ]);
    expect((await cli(["inspect", token as string])).stdout).toContain("Two left");
  });

  it("prints one JSON object with --json, times in epoch ms", async () => {
    const { token } = await tokenOf();
    const run = await cli(["inspect", token, "--json", "--idle", "30m"]);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ ok: true, format: "e1", userId: "u-42", staleKey: false });
    expect(out.data).toEqual({ user: "ada", cart: [1, 2] });
    expect(out.idleDeadline - out.touchedAt).toBe(30 * 60_000);
    expect(out.absoluteDeadline - out.createdAt).toBe(30 * DAY_MS);
  });

  it("never prints the session's CSRF seed, in text or JSON", async () => {
    const sessions = createSessions({ secret: SECRET });
    const session = await sessions.load(new Headers());
    session.set("user", "ada");
    await session.csrfToken();
    const seed = (session as SessionState).meta.csrf as string;
    expect(seed).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const headers = new Headers();
    await sessions.commit(session, headers);
    const token = (headers.getSetCookie()[0] as string).split(";")[0]?.slice("sid=".length);
    for (const flags of [[], ["--json"]]) {
      const run = await cli(["inspect", token as string, ...flags]);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain("ada");
      expectNoSecret(run, seed);
      expect(run.stdout).not.toMatch(/csrf/i);
    }
  });

  it("reads a whole Cookie header with chunked cookies, joining the chunks", async () => {
    const { cookieHeader } = await tokenOf({}, { blob: "x".repeat(6000) });
    expect(cookieHeader).toContain("sid.1=");
    const run = await cli(["inspect", `theme=dark; ${cookieHeader}`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("xxxx");
  });

  it("reads the token from standard input with -", async () => {
    const { token } = await tokenOf();
    const run = await cli(["inspect", "-"], { SESSIONKIT_SECRET: SECRET }, `${token}\n`);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('"user": "ada"');
  });

  it("refuses a token moved to another cookie name: the name is authenticated", async () => {
    const { token } = await tokenOf();
    const run = await cli(["inspect", token, "--cookie-name", "other"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("tampered");
    const renamed = await tokenOf({ cookie: { name: "app" } });
    expect((await cli(["inspect", renamed.token, "--cookie-name", "app"])).code).toBe(0);
  });

  it("says unknown-key for another secret, naming key ids but no secret", async () => {
    const { token } = await tokenOf();
    const run = await cli(["inspect", token], { SESSIONKIT_SECRET: OLD_SECRET });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("unknown-key");
    expect(run.stdout).toMatch(/knownKeyIds: [A-Za-z0-9_-]{6}/);
    expectNoSecret(run, SECRET, OLD_SECRET);
  });

  it("opens with a rotation list (comma or newline separated) and flags the older key", async () => {
    const { token } = await tokenOf();
    const comma = await cli(["inspect", token], { SESSIONKIT_SECRET: `${OLD_SECRET},${SECRET}` });
    expect(comma.code).toBe(0);
    expect(comma.stdout).toContain("an older secret");
    const dir = mkdtempSync(join(tmpdir(), "sessionkit-cli-"));
    try {
      const file = join(dir, "secrets");
      writeFileSync(file, `${OLD_SECRET}\n${SECRET}\n`);
      const fromFile = await cli(["inspect", token, "--secret-file", file], {});
      expect(fromFile.code).toBe(0);
      expectNoSecret(fromFile, SECRET, OLD_SECRET);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes keyId=secret entries for apps with explicit key ids", async () => {
    const sessions = { secret: { v2: SECRET } };
    const { token } = await tokenOf(sessions);
    expect(token.startsWith("e1.v2.")).toBe(true);
    const run = await cli(["inspect", token], { SESSIONKIT_SECRET: `v2=${SECRET}` });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("keyId: v2");
  });

  it("judges a remembered session by --remember-idle / --remember-absolute, as the app's rememberMe option", async () => {
    // Issued two hours ago by an app with 30-minute sessions and a 30-day remember-me.
    const app = { idleTimeout: "30m", rememberMe: { idleTimeout: "30d" } } as const;
    const twoHoursAgo = Date.now() - 2 * 3_600_000;
    const sessions = createSessions({ secret: SECRET, ...app, now: () => twoHoursAgo });
    const session = await sessions.load(new Headers());
    session.set("user", "ada");
    session.rememberMe();
    const headers = new Headers();
    await sessions.commit(session, headers);
    const token = (headers.getSetCookie()[0] as string).split(";", 1)[0]?.slice("sid=".length);

    const ordinary = await cli(["inspect", token as string, "--idle", "30m", "--json"]);
    expect(ordinary.code).toBe(1);
    expect(JSON.parse(ordinary.stdout).refused).toBe("expired-idle");

    const run = await cli([
      "inspect",
      token as string,
      "--idle",
      "30m",
      "--remember-idle",
      "30d",
      "--json",
    ]);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.rememberMe).toBe(true);
    expect(out.idleDeadline - out.touchedAt).toBe(30 * DAY_MS);

    // Deadlines the app could not start with are a usage error, exit code 2.
    const bad = await cli(["inspect", token as string, "--idle", "7d", "--remember-idle", "1d"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("rememberMe.idleTimeout");
  });

  it("says expired-absolute past the absolute deadline, expired-idle past the idle one", async () => {
    const old = Date.now() - 31 * DAY_MS;
    const absolute = await tokenOf({ now: () => old });
    const run = await cli(["inspect", absolute.token]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("expired-absolute");
    expect(run.stdout).toMatch(/absoluteDeadline: .* ago\)/);
    // The same token under the app's own settings: no absolute deadline, 60 days idle.
    const lenient = await cli(["inspect", absolute.token, "--absolute", "false", "--idle", "60d"]);
    expect(lenient.code).toBe(0);
    expect(lenient.stdout).toContain("absoluteDeadline: none");

    const idle = await tokenOf({ now: () => Date.now() - 8 * DAY_MS });
    const idleRun = await cli(["inspect", idle.token]);
    expect(idleRun.code).toBe(1);
    expect(idleRun.stderr).toContain("expired-idle");
    expect((await cli(["inspect", idle.token, "--idle", String(9 * 86_400)])).code).toBe(0);
  });

  it("reports an i1 store token's signature and store key, never the session id", async () => {
    const store = memoryStore();
    const { token } = await tokenOf({ store });
    const id = token.split(".")[2] as string;
    const run = await cli(["inspect", token]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("format: i1");
    expect(run.stdout).toContain("signature: verifies");
    const [storeKey] = [...store.rawEntries()].map(([key]) => key);
    expect(run.stdout).toContain(`storeKey: ${storeKey}`);
    expect(run.stdout).not.toContain(id);
    const forged = `${token.slice(0, -2)}${token.endsWith("AA") ? "BA" : "AA"}`;
    expect((await cli(["inspect", forged])).code).toBe(1);
  });

  it("says malformed for something that is not a token", async () => {
    for (const input of ["hello", "e1.", "x1.abc.def", "sid="]) {
      const run = await cli(["inspect", input]);
      expect(run.code, input).toBe(1);
      expect(run.stderr, input).toContain("malformed");
    }
  });
});

describe("exit code 2 and usage for bad arguments", () => {
  const cases: Array<[string, string[], Record<string, string>?]> = [
    ["no command", []],
    ["an unknown command", ["bogus"]],
    ["an unknown global flag", ["--bogus"]],
    ["an unknown flag", ["inspect", "e1.x.y", "--bogus"]],
    ["a flag without its value", ["inspect", "e1.x.y", "--cookie-name"]],
    ["inspect without a token", ["inspect"]],
    ["inspect with two tokens", ["inspect", "a", "b"]],
    ["a bad --idle", ["inspect", "e1.x.y", "--idle", "soon"]],
    ["no secret", ["inspect", "e1.x.y"], {}],
    ["a short secret", ["inspect", "e1.x.y"], { SESSIONKIT_SECRET: "short" }],
    [
      "mixed keyed and plain secrets",
      ["inspect", "e1.x.y"],
      { SESSIONKIT_SECRET: `a=${SECRET},${OLD_SECRET}` },
    ],
    ["secret with an argument", ["secret", "extra"]],
    ["purge without --store", ["purge"]],
    ["migrate with a store of no SQL kind", ["migrate", "--store", "redis://localhost"]],
    [
      "purge with a bad table name",
      ["purge", "--store", "sqlite::memory:.db", "--table", "no-dashes"],
    ],
    [
      "a password that is not valid percent-encoding (never echoed)",
      ["purge", "--store", `postgres://app:${SECRET}%zz@127.0.0.1:1/db`],
    ],
    [
      "migrate with such a password",
      ["migrate", "--store", `postgres://app:${SECRET}%zz@127.0.0.1:1/db`],
    ],
  ];
  for (const [name, argv, env = { SESSIONKIT_SECRET: SECRET }] of cases) {
    it(`for ${name}`, async () => {
      const run = await cli(argv, env);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("Usage: sessionkit");
      expect(run.stdout).toBe("");
      expectNoSecret(run, SECRET, OLD_SECRET);
    });
  }

  it("in a real child process too", async () => {
    const run = await spawnCli(["purge", "--nope"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("Usage: sessionkit purge");
  });

  it("answers --help for the whole and for each command on stdout, exit 0", async () => {
    for (const argv of [
      ["--help"],
      ["-h"],
      ["help", "purge"],
      ...["secret", "inspect", "purge", "migrate"].map((c) => [c, "--help"]),
    ]) {
      const run = await cli(argv);
      expect(run.code, argv.join(" ")).toBe(0);
      expect(run.stdout).toContain("Usage: sessionkit");
    }
  });
});

const metaAt = (at: number): SessionMeta => ({ createdAt: at, touchedAt: at, renewedAt: at });
const keyOf = (n: number) => `clitestkey${String(n).padStart(4, "0")}`.padEnd(43, "A");

/** Writes `expired` rows past their deadline and `live` rows before it, through the store itself. */
async function seed(
  store: { set: ReturnType<typeof sqliteStore>["set"] },
  expired: number,
  live: number,
) {
  const now = Date.now();
  for (let i = 0; i < expired + live; i++) {
    const deadline = i < expired ? now - 60_000 - i : now + DAY_MS;
    await store.set(keyOf(i), { data: { n: i }, meta: metaAt(now - DAY_MS) }, deadline);
  }
}

describe("sessionkit purge and migrate on SQLite", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sessionkit-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("migrate creates the table; purge deletes exactly the expired rows and says how many", async () => {
    const file = join(dir, "sessions.db");
    const migrated = await cli(["migrate", "--store", `sqlite:${file}`]);
    expect(migrated.code).toBe(0);
    const db = new Database(file);
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all() as Array<{ name: string }>;
      expect(tables.map((t) => t.name)).toContain("sessionkit_sessions");
      await seed(sqliteStore({ db }), 3, 2);
      const run = await cli(["purge", "--store", `sqlite:${file}`]);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^purged 3 expired sessions /);
      const left = db.prepare("SELECT count(*) AS n FROM sessionkit_sessions").get() as {
        n: number;
      };
      expect(left.n).toBe(2);
      expect((await cli(["purge", "--store", file])).stdout).toMatch(/^purged 0 expired sessions/);
    } finally {
      db.close();
    }
  });

  it("honours --table, in a real child process", async () => {
    const file = join(dir, "custom.db");
    expect((await spawnCli(["migrate", "--store", file, "--table", "my_sessions"])).code).toBe(0);
    const db = new Database(file);
    try {
      await seed(sqliteStore({ db, table: "my_sessions" }), 1, 1);
    } finally {
      db.close();
    }
    const run = await spawnCli(["purge", "--store", `sqlite:${file}`, "--table", "my_sessions"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^purged 1 expired session from the sqlite table my_sessions/);
  });

  it("purge of a table that does not exist (a typo in --table) is exit 1, says to migrate, creates nothing", async () => {
    const file = join(dir, "typo.db");
    new Database(file).close();
    const run = await cli(["purge", "--store", `sqlite:${file}`, "--table", "sesions"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('run "sessionkit migrate" first');
    expect(run.stdout).toBe("");
    const db = new Database(file);
    try {
      expect(db.prepare("SELECT name FROM sqlite_master").all()).toEqual([]);
    } finally {
      db.close();
    }
  });

  it("fails with exit code 1 when the database file does not exist", async () => {
    const run = await cli(["purge", "--store", `sqlite:${join(dir, "missing.db")}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("no SQLite database");
  });

  // Deno and Bun cannot load better-sqlite3's addon: the CLI opens the file with node:sqlite there.
  for (const runtime of [
    { name: "Deno", command: join(ROOT, "node_modules/.bin/deno"), args: ["run", "-A"] },
    { name: "Bun", command: join(ROOT, "node_modules/.bin/bun"), args: [] },
  ]) {
    const present = existsSync(runtime.command);
    if (!present && !IN_CI) {
      console.warn(
        `SKIPPED: the CLI on ${runtime.name}: ${runtime.command} is missing (npm install)`,
      );
    }
    it.skipIf(!present && !IN_CI)(
      `migrate and purge run on ${runtime.name} (built package, node:sqlite)`,
      async () => {
        await ensureDist();
        const file = join(dir, `${runtime.name}.db`);
        const run = (argv: string[]) =>
          new Promise<Run>((resolve) => {
            execFile(
              runtime.command,
              [...runtime.args, join(ROOT, "dist/cli/index.js"), ...argv],
              { cwd: dir, env: { ...process.env, NO_COLOR: "1" } },
              (err, stdout, stderr) => {
                const code = err ? ((err as { code?: number }).code ?? 1) : 0;
                resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
              },
            );
          });
        const migrated = await run(["migrate", "--store", `sqlite:${file}`]);
        expect(migrated.code, migrated.stderr).toBe(0);
        const db = new Database(file);
        try {
          await seed(sqliteStore({ db }), 2, 1);
        } finally {
          db.close();
        }
        const purged = await run(["purge", "--store", `sqlite:${file}`]);
        expect(purged.code, purged.stderr).toBe(0);
        expect(purged.stdout).toMatch(/^purged 2 expired sessions from the sqlite table/);
      },
      120_000,
    );
  }
});

const serverCases = [
  {
    name: "PostgreSQL",
    url: DATABASE_URL,
    unreachable: "postgres://app:pw-never-shown@127.0.0.1:1/none",
    table: `sessionkit_cli_pg_${process.pid}`,
    async open(table: string) {
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
      return {
        store: postgresStore({ pool, table }),
        count: async () =>
          Number((await pool.query(`SELECT count(*) AS n FROM "${table}"`)).rows[0].n),
        drop: async () => {
          await pool.query(`DROP TABLE IF EXISTS "${table}"`);
          await pool.end();
        },
      };
    },
  },
  {
    name: "MySQL",
    url: MYSQL_URL,
    unreachable: "mysql://app:pw-never-shown@127.0.0.1:1/none",
    table: `sessionkit_cli_mysql_${process.pid}`,
    async open(table: string) {
      const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
      return {
        store: mysqlStore({ pool, table }),
        count: async () => {
          const [rows] = await pool.query(`SELECT count(*) AS n FROM \`${table}\``);
          return Number((rows as Array<{ n: number }>)[0]?.n);
        },
        drop: async () => {
          await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
          await pool.end();
        },
      };
    },
  },
];

for (const server of serverCases) {
  const available = await serviceAvailable(server.name, server.url);
  describe.skipIf(!available)(`sessionkit purge and migrate on ${server.name}`, () => {
    it("migrate creates the table; purge deletes exactly the expired rows", async () => {
      const migrated = await cli(["migrate", "--store", server.url, "--table", server.table]);
      expect(migrated.stderr).toBe("");
      expect(migrated.code).toBe(0);
      const db = await server.open(server.table);
      try {
        await seed(db.store, 4, 3);
        const run = await cli(["purge", "--store", server.url, "--table", server.table]);
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(/^purged 4 expired sessions /);
        expect(await db.count()).toBe(3);
      } finally {
        await db.drop();
      }
    });

    it("purge of a table that does not exist fails with exit 1 and says to migrate", async () => {
      const run = await cli(["purge", "--store", server.url, "--table", `${server.table}_none`]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("sessionkit migrate");
    });
  });

  it(`reports an unreachable ${server.name} with exit 1, never its password`, async () => {
    const run = await cli(["purge", "--store", server.unreachable]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("failed");
    expect(run.stderr).not.toContain("pw-never-shown");
  });
}
