// Starts and stops the demo app (examples/demo/server.ts) as a child process for the browser tests.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const READY = /sessionkit demo on (http:\/\/\S+)/;

/** A TCP port free right now on this machine. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface DemoProcessOptions {
  /** Extra environment variables (HOST, SESSIONKIT_SECRET, ...). */
  env?: Record<string, string>;
  /** Extra command-line arguments (--store memory, ...). */
  args?: readonly string[];
}

export class DemoProcess {
  private child: ChildProcess | undefined;
  private output = "";
  private printedUrl: string | undefined;

  constructor(
    readonly port: number,
    readonly dataDir: string,
    readonly options: DemoProcessOptions = {},
  ) {}

  /** The URL the demo printed (on port 0, with the port it was given), else localhost:port. */
  get url(): string {
    return this.printedUrl ?? `http://localhost:${this.port}`;
  }

  /** Everything the demo printed, for failure messages. */
  get log(): string {
    return this.output;
  }

  /** Spawns the demo and resolves once it prints its "sessionkit demo on" line. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.child) throw new Error("demo already running");
    const env = { ...process.env };
    // The demo must keep its secret in the data dir, so a restart finds the same one.
    delete env.SESSIONKIT_SECRET;
    delete env.PORT;
    delete env.HOST;
    Object.assign(env, this.options.env);
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--conditions=sessionkit-source",
        "examples/demo/server.ts",
        "--port",
        String(this.port),
        "--data-dir",
        this.dataDir,
        ...(this.options.args ?? []),
      ],
      { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`demo did not start within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const onData = (chunk: Buffer) => {
        this.output += chunk.toString();
        const ready = READY.exec(this.output);
        if (ready) {
          this.printedUrl = ready[1];
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", (chunk: Buffer) => {
        this.output += chunk.toString();
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`demo exited (${code ?? signal}) before it was ready:\n${this.output}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    this.output = "";
    await this.start();
  }
}
