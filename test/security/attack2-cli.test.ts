/**
 * `sessionkit inspect` and `purge` under hostile input: can they print a raw id, a token or a
 * secret, or let a session's content drive the operator's terminal? Findings are `it.fails`, each
 * with the problem and the fix.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { backend } from "#crypto-backend";
import { type CliIo, main } from "../../src/cli/index.js";
import { hashSessionId } from "../../src/crypto/id.js";
import { createSessions, type SessionsOptions } from "../../src/index.js";
import { sqliteStore } from "../../src/stores/sqlite.js";

const SECRET = "attack2-cli-secret-0123456789-abcdefghijklmn";
const dir = mkdtempSync(join(tmpdir(), "sessionkit-attack2-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[], env: Record<string, string | undefined> = {}) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env: { SESSIONKIT_SECRET: SECRET, ...env },
    readStdin: async () => "",
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

async function signedIn(userId: string, options: Partial<SessionsOptions> = {}) {
  const sessions = createSessions({ secret: SECRET, ...options });
  const session = await sessions.load(new Headers());
  await session.regenerate({ userId });
  session.set("note", "\u001b[31mred\u001b[0m");
  const headers = new Headers();
  await sessions.commit(session, headers);
  const token = (headers.getSetCookie()[0] as string).split(";")[0]?.slice("sid=".length) as string;
  return { token, id: session.id, sessions };
}

/** C0 controls but tab and newline, DEL and C1: ESC starts a terminal sequence, U+009B is CSI alone. */
function hasTerminalControl(text: string): boolean {
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a) || (code >= 0x7f && code <= 0x9f)) {
      return true;
    }
  }
  return false;
}

describe("sessionkit inspect and terminal control sequences", () => {
  // FINDING: the text report prints scalar fields with `String(value)` (inspect.ts, `report`), so a
  // user id holding ESC sequences reaches the operator's terminal raw: it can retitle the window
  // (OSC 0), clear the screen and print a fake "status: live", or, in terminals that honour them,
  // write to the clipboard (OSC 52). User ids are often user-chosen (a username). Data and flash go
  // through JSON.stringify, which escapes C0 controls, so only the scalars are open.
  // Fix: in `report`, print every string field escaped: `JSON.stringify(value)` when it contains
  // a character of /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/ (controls and bidi
  // overrides), as it is, quoted, otherwise.
  it("a user id with escape sequences is printed escaped, not raw", async () => {
    const { token } = await signedIn("mallory\u001b]0;owned\u0007\u001b[2J\u001b[Hstatus: live");
    const run = await cli(["inspect", token]);
    expect(run.code).toBe(0);
    expect(hasTerminalControl(run.stdout)).toBe(false);
  });

  it("data with escape sequences is printed JSON-escaped (holds)", async () => {
    const { token } = await signedIn("plain");
    const run = await cli(["inspect", token]);
    expect(run.stdout).toContain("\\u001b[31mred");
    expect(hasTerminalControl(run.stdout)).toBe(false);
  });
});

describe("what inspect and purge print (holds)", () => {
  it("inspect of a store token shows the store key, never the id or the token", async () => {
    const db = new Database(":memory:");
    const { token, id } = await signedIn("alice", { store: sqliteStore({ db }) });
    for (const argv of [
      ["inspect", token],
      ["inspect", token, "--json"],
      ["inspect", `sid=${token}`],
    ]) {
      const run = await cli(argv);
      expect(run.code).toBe(0);
      expect(run.stdout + run.stderr).not.toContain(id);
      expect(run.stdout + run.stderr).not.toContain(token);
      expect(run.stdout).toContain(await hashSessionId(backend, id));
    }
  });

  it("inspect with a secret it refuses (short, duplicated) does not print it", async () => {
    const short = "short-secret-xyz";
    const file = join(dir, "secrets");
    for (const content of [short, `${SECRET}\n${SECRET}`]) {
      writeFileSync(file, content);
      const { token } = await signedIn("alice");
      const run = await cli(["inspect", token, "--secret-file", file], { SESSIONKIT_SECRET: "" });
      expect(run.code).not.toBe(0);
      expect(run.stdout + run.stderr).not.toContain(short);
      expect(run.stdout + run.stderr).not.toContain(SECRET);
    }
  });

  it("purge over rows of the wrong shape deletes the expired ones and prints only a count", async () => {
    const file = join(dir, "sessions.db");
    const db = new Database(file);
    const store = sqliteStore({ db });
    await signedIn("alice", { store }); // one live row, which purge keeps
    const insert = db.prepare(
      "INSERT INTO sessionkit_sessions (key, data, meta, user_id, expires_at) VALUES (?, ?, ?, ?, ?)",
    );
    insert.run("k-expired-bad-json", "{", "not json", "\u001b[2J", 1);
    insert.run("k-expired-huge", "{}", JSON.stringify({ label: "x".repeat(100_000) }), null, 2);
    db.close();
    const run = await cli(["purge", "--store", `sqlite:${file}`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      "purged 2 expired sessions from the sqlite table sessionkit_sessions\n",
    );
    expect(run.stderr).toBe("");
  });
});
