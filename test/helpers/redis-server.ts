/**
 * A redis-server of a test's own on a free loopback port, for tests that kill and restart it: the
 * Redis store's outage test and the load, outage and soak scripts. The shared servers are never
 * touched.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";

const START_ROUNDS = 200;
const START_ROUND_MS = 25;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (chunk) => done(chunk.toString().startsWith("+PONG")));
  });
}

/**
 * A redis-server on 127.0.0.1 in a temporary directory. With `durable`, it runs with
 * `--appendonly yes --appendfsync always`, so a write Redis acknowledged survives a kill -9 and
 * restart; without, it keeps nothing on disk, so nothing survives a kill.
 */
export class PrivateRedis {
  private child: ChildProcess | undefined;
  readonly dir: string;
  private constructor(
    readonly port: number,
    readonly durable: boolean,
  ) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), "sk-load-redis-"));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** False between `kill()` and the next `restart()`. */
  get running(): boolean {
    return this.child !== undefined;
  }

  static async start(durable = true): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort(), durable);
    await server.restart();
    return server;
  }

  async restart(): Promise<void> {
    const persistence = this.durable
      ? ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
      : ["--appendonly", "no", "--save", ""];
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, ...persistence],
      { stdio: "ignore" },
    );
    this.child = child;
    for (let i = 0; i < START_ROUNDS; i++) {
      if (await answersPing(this.port)) return;
      await new Promise((resolve) => setTimeout(resolve, START_ROUND_MS));
    }
    throw new Error("the private redis-server did not start");
  }

  /** SIGKILL: a crash, not a clean shutdown. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
