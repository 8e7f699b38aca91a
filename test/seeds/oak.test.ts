/**
 * The Oak sessions seed's two examples (test/seeds/oak/*.ts), run as they are written: each in its
 * own process, importing "@oakserver/oak" and the built "sessionkit/oak", listening with
 * `app.listen` on the PORT given. Changes from the seed's text: the two import URLs, and the port
 * line reads `Number(process.env.PORT ?? 8000)` so parallel runs never fight over 8000.
 *
 * The seed is a Deno program, so both examples run on Deno as well as on Node (tsx), and on Bun.
 * Deno and Bun cannot load better-sqlite3's addon: there `SqliteStore` opens its file with node:sqlite.
 * A missing runtime fails under CI=true and is skipped loudly elsewhere.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../helpers/http.js";
import { ensureDist, ROOT } from "../runtimes/dist.js";
import { freePort, waitForPort } from "../runtimes/net.js";

const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
const EXAMPLES = join(ROOT, "test/seeds/oak");
const SECRET = "oak-seed-test-secret-0123456789abcdef";
const IN_CI = process.env.CI === "true";

interface Runtime {
  name: string;
  command: string;
  /** Arguments before the example's path. */
  args: string[];
}

const RUNTIMES: Runtime[] = [
  { name: "Node", command: process.execPath, args: ["--import", TSX] },
  { name: "Deno", command: join(ROOT, "node_modules/.bin/deno"), args: ["run", "-A"] },
  { name: "Bun", command: join(ROOT, "node_modules/.bin/bun"), args: [] },
];

interface Running {
  url: string;
  stderr(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();

/** Starts an example with `cwd` as its working directory (so './database.db' lands there). */
async function start(
  runtime: Runtime,
  example: string,
  cwd: string,
  env: Record<string, string | undefined> = {},
): Promise<Running> {
  const port = await freePort();
  const child = spawn(runtime.command, [...runtime.args, join(EXAMPLES, example)], {
    cwd,
    env: { ...process.env, SESSION_SECRET: undefined, ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  child.stdout?.resume();
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForPort(url, 20_000);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`${example} did not start on ${runtime.name}: ${stderr}`, { cause: err });
  }
  return {
    url,
    stderr: () => stderr,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }).then(() => void children.delete(child)),
  };
}

/** Sessions in the example's database file, read here with better-sqlite3. */
function sessionRows(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM sessionkit_sessions").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function visit(client: Client): Promise<string> {
  const reply = await client.get("/");
  expect(reply.status).toBe(200);
  return reply.text;
}

let dir: string;
beforeAll(async () => {
  await ensureDist();
  dir = mkdtempSync(join(tmpdir(), "sessionkit-oak-seed-"));
}, 300_000);
afterEach(async () => {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const runtime of RUNTIMES) {
  const present = existsSync(runtime.command);
  if (!present && !IN_CI) {
    console.warn(
      `SKIPPED: the Oak seed on ${runtime.name}: ${runtime.command} is missing (npm install); CI=true makes this a failure`,
    );
  }
  const suite = present || IN_CI ? describe : describe.skip;
  suite(`Oak sessions seed on ${runtime.name}, example 1: page counter on the default MemoryStore`, () => {
    it("says 'Visited page 0 times', then 1, then 2, for a client that sends its cookie back", async () => {
      const app = await start(runtime, "counter.ts", dir);
      const client = new Client(app.url);
      expect(await visit(client)).toBe("Visited page 0 times");
      expect(client.jar.has("sid")).toBe(true);
      expect(await visit(client)).toBe("Visited page 1 times");
      expect(await visit(client)).toBe("Visited page 2 times");
      // Another browser starts its own count.
      expect(await visit(new Client(app.url))).toBe("Visited page 0 times");
      // No SESSION_SECRET: a random one, and the process says so (without printing it).
      expect(app.stderr()).toContain("SESSION_SECRET is not set");
      await app.stop();
    });
  });

  suite(`Oak sessions seed on ${runtime.name}, example 2: SqliteStore('./database.db')`, () => {
    it("keeps counting across a restart of the app on the same database file", async () => {
      const cwd = mkdtempSync(join(dir, "sqlite-"));
      const env = { SESSION_SECRET: SECRET };
      const first = await start(runtime, "sqlite.ts", cwd, env);
      const client = new Client(first.url);
      expect(await visit(client)).toBe("Visited page 0 times");
      expect(await visit(client)).toBe("Visited page 1 times");
      expect(first.stderr()).not.toContain("SESSION_SECRET");
      await first.stop();
      // The count lives in ./database.db, whichever driver opened it (the start-up probe's visit
      // made a session row too).
      expect(sessionRows(join(cwd, "database.db"))).toBeGreaterThanOrEqual(1);

      const second = await start(runtime, "sqlite.ts", cwd, env);
      const again = new Client(second.url);
      for (const [name, value] of client.jar) again.jar.set(name, value);
      expect(await visit(again)).toBe("Visited page 2 times");
      expect(await visit(again)).toBe("Visited page 3 times");
      await second.stop();
    });

    it("starts over after a restart without SESSION_SECRET: the random secret died with the process", async () => {
      const cwd = mkdtempSync(join(dir, "sqlite-"));
      const first = await start(runtime, "sqlite.ts", cwd);
      const client = new Client(first.url);
      expect(await visit(client)).toBe("Visited page 0 times");
      expect(await visit(client)).toBe("Visited page 1 times");
      await first.stop();

      const second = await start(runtime, "sqlite.ts", cwd);
      const again = new Client(second.url);
      for (const [name, value] of client.jar) again.jar.set(name, value);
      expect(await visit(again)).toBe("Visited page 0 times");
      await second.stop();
    });
  });
}
