/**
 * Runs the runtime programs (Deno, Bun, workerd through miniflare) against the built package, so
 * `npm test` covers the core and `sessionkit/fetch` beyond Node. A missing runtime fails under CI=true
 * and is skipped loudly elsewhere.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureDist, ROOT } from "./dist.js";

const RUN_TIMEOUT_MS = 120_000;
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;

interface Program {
  runtime: string;
  /** What must exist for the program to run. */
  needs: string;
  command: string;
  args: string[];
}

const programs: Program[] = [
  {
    runtime: "deno",
    needs: join(ROOT, "node_modules/.bin/deno"),
    command: join(ROOT, "node_modules/.bin/deno"),
    args: ["run", "-A", "test/runtimes/deno.ts"],
  },
  {
    runtime: "bun",
    needs: join(ROOT, "node_modules/.bin/bun"),
    command: join(ROOT, "node_modules/.bin/bun"),
    args: ["test/runtimes/bun.ts"],
  },
  {
    runtime: "workerd (miniflare)",
    needs: join(ROOT, "node_modules/miniflare/package.json"),
    command: process.execPath,
    args: ["--import", TSX, "test/runtimes/workerd.ts"],
  },
];

function run(program: Program): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      program.command,
      program.args,
      { cwd: ROOT, timeout: RUN_TIMEOUT_MS, env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("the built package on other runtimes", () => {
  beforeAll(() => ensureDist(), 300_000);

  for (const program of programs) {
    const present = existsSync(program.needs);
    if (!present && process.env.CI !== "true") {
      console.warn(
        `SKIPPED: ${program.runtime} is not installed (${program.needs}); CI=true makes this a failure`,
      );
    }
    it.skipIf(!present && process.env.CI !== "true")(
      `${program.runtime}: every check passes`,
      async () => {
        expect(existsSync(program.needs), `${program.needs} is missing`).toBe(true);
        const { code, stdout, stderr } = await run(program);
        const summary = stdout.split("\n").find((line) => /^\d+ passed, \d+ failed$/.test(line));
        expect(summary, `no summary line.\nstdout:\n${stdout}\nstderr:\n${stderr}`).toBeDefined();
        expect(summary, stdout).toMatch(/^[1-9]\d* passed, 0 failed$/);
        expect(code, stderr).toBe(0);
      },
      RUN_TIMEOUT_MS + 10_000,
    );
  }
});
