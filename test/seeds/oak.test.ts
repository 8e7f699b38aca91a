/**
 * The Oak sessions seed's two examples (test/seeds/oak/*.ts), run as they are written: each in its
 * own Node process (tsx), importing "@oakserver/oak" and the built "sessionkit/oak", listening with
 * `app.listen` on the PORT given. Changes from the seed's text: the two import URLs, and the port
 * line reads `Number(process.env.PORT ?? 8000)` so parallel runs never fight over 8000.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../helpers/http.js";
import { ensureDist, ROOT } from "../runtimes/dist.js";
import { freePort, waitForPort } from "../runtimes/net.js";

const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
const EXAMPLES = join(ROOT, "test/seeds/oak");
const SECRET = "oak-seed-test-secret-0123456789abcdef";

interface Running {
  url: string;
  stderr(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();

/** Starts an example with `cwd` as its working directory (so './database.db' lands there). */
async function start(
  example: string,
  cwd: string,
  env: Record<string, string | undefined> = {},
): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", TSX, join(EXAMPLES, example)], {
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
    throw new Error(`${example} did not start: ${stderr}`, { cause: err });
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

describe("Oak sessions seed, example 1: page counter on the default MemoryStore", () => {
  it("says 'Visited page 0 times', then 1, then 2, for a client that sends its cookie back", async () => {
    const app = await start("counter.ts", dir);
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

describe("Oak sessions seed, example 2: SqliteStore('./database.db')", () => {
  it("keeps counting across a restart of the app on the same database file", async () => {
    const cwd = mkdtempSync(join(dir, "sqlite-"));
    const env = { SESSION_SECRET: SECRET };
    const first = await start("sqlite.ts", cwd, env);
    const client = new Client(first.url);
    expect(await visit(client)).toBe("Visited page 0 times");
    expect(await visit(client)).toBe("Visited page 1 times");
    expect(first.stderr()).not.toContain("SESSION_SECRET");
    await first.stop();

    const second = await start("sqlite.ts", cwd, env);
    const again = new Client(second.url);
    for (const [name, value] of client.jar) again.jar.set(name, value);
    expect(await visit(again)).toBe("Visited page 2 times");
    expect(await visit(again)).toBe("Visited page 3 times");
    await second.stop();
  });

  it("starts over after a restart without SESSION_SECRET: the random secret died with the process", async () => {
    const cwd = mkdtempSync(join(dir, "sqlite-"));
    const first = await start("sqlite.ts", cwd);
    const client = new Client(first.url);
    expect(await visit(client)).toBe("Visited page 0 times");
    expect(await visit(client)).toBe("Visited page 1 times");
    await first.stop();

    const second = await start("sqlite.ts", cwd);
    const again = new Client(second.url);
    for (const [name, value] of client.jar) again.jar.set(name, value);
    expect(await visit(again)).toBe("Visited page 0 times");
    await second.stop();
  });
});
