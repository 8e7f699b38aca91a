/**
 * Benchmark child processes: TypeScript children with IPC, pinned to a core with taskset when the
 * machine has it, so that a measured process and what it talks to do not trade places on the cores.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const NODE_ARGS = ["--import", "tsx"];

/** True when `taskset` can pin a process here (Linux with util-linux). */
export const hasTaskset = spawnSync("taskset", ["-c", "0", "true"]).status === 0;

/** Starts a TypeScript child with IPC, on `core` when taskset exists. */
export function startChild(script: string, args: string[], core: number): ChildProcess {
  const command = hasTaskset ? "taskset" : process.execPath;
  const argv = hasTaskset
    ? ["-c", String(core), process.execPath, ...NODE_ARGS, script, ...args]
    : [...NODE_ARGS, script, ...args];
  return spawn(command, argv, {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, NODE_ENV: "production" },
  });
}

/** The next IPC message of `child`, or an error when it exits or stays silent for `timeoutMs`. */
export function nextMessage<T>(child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: T) => {
      cleanup();
      resolve(message);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what}: process exited (${code})`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}
