/**
 * Builds `dist/` when it is missing or older than `src/`, for the tests that run the built package
 * (the seed examples import `sessionkit/oak`; the Deno, Bun and workerd programs import dist). CI
 * builds before `npm test` (`npm run check:exports`), so there this only checks the timestamps.
 * Two test files may ask at once: a lock directory makes the second wait for the first build.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MARKER = join(ROOT, "dist/index.js");
const LOCK = join(ROOT, "node_modules/.cache/sessionkit-dist.lock");
const BUILD_TIMEOUT_MS = 240_000;

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export function distIsStale(): boolean {
  return !existsSync(MARKER) || statSync(MARKER).mtimeMs < newestSource(join(ROOT, "src"));
}

async function withLock<T>(run: () => Promise<T>): Promise<T> {
  mkdirSync(join(ROOT, "node_modules/.cache"), { recursive: true });
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // A lock older than a build can take was left by a killed run.
      if (existsSync(LOCK) && Date.now() - statSync(LOCK).mtimeMs > BUILD_TIMEOUT_MS)
        rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline)
        throw new Error("timed out waiting for another test's build of dist/");
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await run();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Builds dist/ with `tsc -p tsconfig.build.json` if stale. Type errors elsewhere do not stop the emit. */
export async function ensureDist(): Promise<void> {
  if (!distIsStale()) return;
  await withLock(async () => {
    if (!distIsStale()) return;
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    await new Promise<void>((resolve) => {
      execFile(
        process.execPath,
        [tsc, "-p", "tsconfig.build.json"],
        { cwd: ROOT, timeout: BUILD_TIMEOUT_MS },
        () => resolve(),
      );
    });
    if (!existsSync(MARKER))
      throw new Error("tsc -p tsconfig.build.json produced no dist/index.js");
  });
}
