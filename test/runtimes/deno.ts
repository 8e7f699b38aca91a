// @ts-nocheck -- an entry for Deno, importing dist/ (which `tsc --noEmit` may run before); the checks are typed.
// Run: node_modules/.bin/deno run -A test/runtimes/deno.ts

import { Hono } from "hono";
import { backend } from "#crypto-backend";
import { createHandler, withSession } from "../../dist/adapters/fetch.js";
import { requireSession, sessionGuard, sessionMiddleware } from "../../dist/adapters/hono.js";
import { createSessions } from "../../dist/index.js";
import { memoryStore } from "../../dist/stores/memory.js";
import { printReport, runChecks } from "./checks.ts";

// Deno resolves package.json conditions with "node" set, so dist gets the node:crypto backend (Deno's
// node compat); the check reports which one rather than insisting.
const report = await runChecks({
  createSessions,
  withSession,
  createHandler,
  backendName: backend.name,
  expectBackend: undefined,
  hono: { Hono, sessionMiddleware, sessionGuard, requireSession, memoryStore },
});
printReport(`deno ${Deno.version.deno}`, report);
Deno.exit(report.failed === 0 ? 0 : 1);
