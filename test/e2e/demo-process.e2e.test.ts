// The demo as a process, no browser: what a newcomer meets on the command line, and the upkeep of
// its SQLite file.

import { mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, expect, test } from "vitest";
import { sqliteStore } from "../../src/stores/sqlite.js";
import { DemoProcess, freePort } from "./demo-process.js";

const running: DemoProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sessionkit-demo-"));
  dirs.push(dir);
  return dir;
}

test("a second demo on a taken port says so and how to pick another, without a stack trace", async () => {
  const port = await freePort();
  const first = new DemoProcess(port, join(await dataDir(), "data"));
  running.push(first);
  await first.start();

  const second = new DemoProcess(port, join(await dataDir(), "data"));
  running.push(second);
  const failure = await second.start().then(
    () => undefined,
    (err: Error) => err.message,
  );
  expect(failure).toMatch(/port \d+ is in use/);
  expect(failure).toContain(`--port ${port + 1}`);
  expect(failure).not.toMatch(/Unhandled 'error' event|at Server\.listen/);
});

test("the demo deletes expired sessions from its SQLite file when it starts", async () => {
  const dir = join(await dataDir(), "data");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "demo.db");
  const db = new Database(file);
  const store = sqliteStore({ db });
  const meta = { createdAt: 0, touchedAt: 0, renewedAt: 0 };
  await store.set("expired-row", { data: { visits: 1 }, meta }, Date.now() - 60_000);
  const count = () =>
    db
      .prepare("SELECT count(*) AS n FROM sessionkit_sessions WHERE key = ?")
      .get("expired-row") as {
      n: number;
    };
  expect(count().n).toBe(1);

  const demo = new DemoProcess(await freePort(), dir);
  running.push(demo);
  await demo.start();
  await expect.poll(() => count().n, { timeout: 10_000 }).toBe(0);
  db.close();
});
