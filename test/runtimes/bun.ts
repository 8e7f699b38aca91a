// @ts-nocheck -- an entry for Bun, importing dist/ (which `tsc --noEmit` may run before); the checks are typed.
// Run: node_modules/.bin/bun test/runtimes/bun.ts

import { Hono } from "hono";
import { backend } from "#crypto-backend";
import { createHandler, withSession } from "../../dist/adapters/fetch.js";
import { requireSession, sessionGuard, sessionMiddleware } from "../../dist/adapters/hono.js";
import { createSessions } from "../../dist/index.js";
import { memoryStore } from "../../dist/stores/memory.js";
import { printReport, runChecks } from "./checks.ts";

const report = await runChecks({
  createSessions,
  withSession,
  createHandler,
  backendName: backend.name,
  expectBackend: undefined,
  hono: { Hono, sessionMiddleware, sessionGuard, requireSession, memoryStore },
});
printReport(`bun ${Bun.version}`, report);
process.exit(report.failed === 0 ? 0 : 1);
