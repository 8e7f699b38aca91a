// The demo's server script (examples/demo/server.ts) as `npm run demo` runs it, in child processes:
// where it listens, and the secret file it keeps in its data dir.
import { once } from "node:events";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DemoProcess, type DemoProcessOptions } from "../e2e/demo-process.js";

const POSIX = process.platform !== "win32";
// Each test starts the demo through tsx, a second or two alone and more beside the rest of the suite.
const SLOW = { timeout: 60_000 };
const SECRET_MODULE = new URL("../../examples/demo/secret.ts", import.meta.url).href;

let root: string;
const running: DemoProcess[] = [];
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sessionkit-demo-"));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((demo) => demo.stop()));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

let dirs = 0;
const freshDir = () => join(root, `data-${++dirs}`);

async function startDemo(options: DemoProcessOptions = {}, dataDir = freshDir()) {
  const demo = new DemoProcess(0, dataDir, {
    ...options,
    args: ["--store", "memory", ...(options.args ?? [])],
  });
  running.push(demo);
  await demo.start();
  return demo;
}

/** Whether a TCP connection to host:port is accepted. */
async function accepts(host: string, port: number): Promise<boolean> {
  const socket = connect({ host, port });
  try {
    await Promise.race([once(socket, "connect"), once(socket, "error").then(([err]) => err)]);
    return socket.readyState === "open";
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/** This machine's first address on a network interface other than loopback, if it has one. */
function outsideAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? [])
      if (!entry.internal && entry.family === "IPv4") return entry.address;
  }
  return undefined;
}

describe("where the demo listens", SLOW, () => {
  it("binds 127.0.0.1 by default, says so, and the printed localhost URL answers", async () => {
    const demo = await startDemo();
    const url = new URL(demo.url);
    expect(url.hostname).toBe("localhost");
    const port = Number(url.port);
    expect(port).toBeGreaterThan(0);
    expect(demo.log).toContain(`listening on 127.0.0.1:${port}`);
    expect(demo.log).toMatch(/this machine only/);
    expect((await fetch(demo.url)).status).toBe(200);
    expect(await accepts("127.0.0.1", port)).toBe(true);
    const outside = outsideAddress();
    // On a machine with no network interface but loopback there is no other address to try.
    if (outside) expect(await accepts(outside, port)).toBe(false);
  });

  it("HOST=0.0.0.0 listens on every interface, and says so", async () => {
    const demo = await startDemo({ env: { HOST: "0.0.0.0" } });
    const port = Number(new URL(demo.url).port);
    expect(demo.url).toBe(`http://localhost:${port}`);
    expect(demo.log).toContain(`listening on 0.0.0.0:${port}`);
    expect(demo.log).toMatch(/every network interface/);
    expect((await fetch(demo.url)).status).toBe(200);
    const outside = outsideAddress();
    if (outside) expect(await accepts(outside, port)).toBe(true);
  });
});

describe("the secret file", SLOW, () => {
  it("is created with mode 0600 and kept across a restart", async () => {
    const dataDir = freshDir();
    await startDemo({}, dataDir);
    const file = join(dataDir, "secret");
    const first = readFileSync(file, "utf8");
    expect(first.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    if (POSIX) expect(statSync(file).mode & 0o777).toBe(0o600);
    await running[0]?.restart();
    expect(readFileSync(file, "utf8")).toBe(first);
    // No temporary file left beside it.
    expect(await readdir(dataDir)).toEqual(["secret"]);
  });

  it.skipIf(!POSIX)(
    "an existing secret readable by others is made 0600, its value kept",
    async () => {
      const dataDir = freshDir();
      mkdirSync(dataDir, { recursive: true });
      const file = join(dataDir, "secret");
      const secret = "an-existing-secret-of-the-right-length-000";
      writeFileSync(file, `${secret}\n`);
      chmodSync(file, 0o644);
      await startDemo({}, dataDir);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file, "utf8")).toBe(`${secret}\n`);
    },
  );

  it.each([
    ["empty (a start cut short while writing it)", ""],
    ["too short", "abc123"],
    ["zero-filled (a crash before its bytes reached the disk)", "\0".repeat(43)],
  ])("%s: start-up fails, naming the file to delete", async (_case, content) => {
    const dataDir = freshDir();
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, "secret");
    writeFileSync(file, content, { mode: 0o600 });
    const demo = new DemoProcess(0, dataDir, { args: ["--store", "memory"] });
    running.push(demo);
    const failure = await demo.start().then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(failure).toMatch(/demo exited \(1\) before it was ready/);
    expect(failure).toContain(file);
    expect(failure).toMatch(/delete it/i);
    // The message never shows what the file holds.
    if (content.length > 0) expect(failure).not.toContain(content);
    // Nothing was overwritten: deleting it is the visitor's decision.
    expect(readFileSync(file, "utf8")).toBe(content);
  });

  it("demos starting together on one fresh data dir all get the one secret the file keeps", async () => {
    const WORKERS = 4;
    const ROUNDS = 300;
    const raceRoot = freshDir();
    mkdirSync(raceRoot, { recursive: true });
    const barrier = new Int32Array(new SharedArrayBuffer(8));
    const workers = Array.from(
      { length: WORKERS },
      () =>
        new Worker(new URL("./demo-secret-worker.mjs", import.meta.url), {
          workerData: {
            module: SECRET_MODULE,
            barrier: barrier.buffer,
            rounds: ROUNDS,
            root: raceRoot,
          },
        }),
    );
    const results = workers.map(
      (worker) =>
        new Promise<string[]>((resolve, reject) => {
          worker.once("message", resolve);
          worker.once("error", reject);
        }),
    );
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // Wait for every worker to arrive, then release them together.
        while (Atomics.load(barrier, 1) < WORKERS * (round + 1)) {
          await new Promise((resolve) => setImmediate(resolve));
        }
        Atomics.store(barrier, 0, round + 1);
        Atomics.notify(barrier, 0);
      }
      const secrets = await Promise.all(results);
      const disagreements: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const kept = readFileSync(join(raceRoot, String(round), "secret"), "utf8").trim();
        const got = new Set(secrets.map((s) => s[round]));
        if (got.size !== 1 || !got.has(kept) || kept.length < 32)
          disagreements.push(`round ${round}`);
      }
      expect(disagreements).toEqual([]);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});
