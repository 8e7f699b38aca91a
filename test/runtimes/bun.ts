// @ts-nocheck -- an entry for Bun, importing dist/ (which `tsc --noEmit` may run before); the checks are typed.
// Run: node_modules/.bin/bun test/runtimes/bun.ts
import { backend } from "#crypto-backend";
import { createHandler, withSession } from "../../dist/adapters/fetch.js";
import { createSessions } from "../../dist/index.js";
import { printReport, runChecks } from "./checks.ts";

const report = await runChecks({
  createSessions,
  withSession,
  createHandler,
  backendName: backend.name,
  expectBackend: undefined,
});
printReport(`bun ${Bun.version}`, report);
process.exit(report.failed === 0 ? 0 : 1);
