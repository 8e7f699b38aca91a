// @ts-nocheck -- the Worker the workerd program bundles, importing dist/ (which `tsc --noEmit` may run before).

import { Hono } from "hono";
import { backend } from "#crypto-backend";
import { createHandler, withSession } from "../../dist/adapters/fetch.js";
import { requireSession, sessionGuard, sessionMiddleware } from "../../dist/adapters/hono.js";
import { createSessions } from "../../dist/index.js";
import { memoryStore } from "../../dist/stores/memory.js";
import { runChecks } from "./checks.ts";

export default {
  async fetch() {
    // workerd has no "node" condition: the bundle must carry the Web Crypto backend.
    const report = await runChecks({
      createSessions,
      withSession,
      createHandler,
      backendName: backend.name,
      expectBackend: "web",
      hono: { Hono, sessionMiddleware, sessionGuard, requireSession, memoryStore },
    });
    return Response.json(report);
  },
};
