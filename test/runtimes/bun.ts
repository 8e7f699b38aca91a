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

// Bun answers a WebSocket upgrade itself: after `server.upgrade(request)` the fetch handler returns
// undefined. A handler that only reads the session to authorise the socket must still work when the
// commit has something to send (here the idle deadline's touch is due), though no response is left
// to carry it.
async function upgradeCheck(): Promise<void> {
  let now = Date.now();
  const sessions = createSessions({
    secret: "bun-upgrade-secret-0123456789abcdef",
    now: () => now,
  });
  const errors: string[] = [];
  const onRejection = (err: unknown) => errors.push(String(err));
  process.on("unhandledRejection", onRejection);
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: withSession(sessions, (request, { session }, bun) => {
      if (new URL(request.url).pathname === "/login") {
        session.set("user", "ada");
        return new Response("signed in");
      }
      if (session.get("user") !== "ada") return new Response("sign in first", { status: 401 });
      if (bun.upgrade(request)) return undefined;
      return new Response("not a WebSocket request", { status: 400 });
    }),
    websocket: { open: (ws) => ws.send("hello"), message() {} },
    error(err) {
      errors.push(String(err));
      return new Response("error", { status: 500 });
    },
  });
  try {
    const login = await fetch(`http://127.0.0.1:${server.port}/login`);
    const cookie = (login.headers.getSetCookie()[0] ?? "").split(";")[0];
    now += 2 * 60 * 60_000; // past the default touch interval (an hour): the commit re-seals
    const reply = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket`, { headers: { cookie } });
      const timer = setTimeout(() => resolve("timeout"), 3000);
      ws.onmessage = (event) => {
        clearTimeout(timer);
        ws.close();
        resolve(String(event.data));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        resolve("error");
      };
    });
    await new Promise((r) => setTimeout(r, 50)); // let a rejected handler promise surface
    if (reply !== "hello") throw new Error(`the socket opened and said hello, got ${reply}`);
    if (errors.length > 0) throw new Error(`withSession failed after the upgrade: ${errors[0]}`);
  } finally {
    process.off("unhandledRejection", onRejection);
    server.stop(true);
  }
}
const upgradeName =
  "Bun.serve: a handler that returns undefined after server.upgrade() (touch due) does not throw";
try {
  await upgradeCheck();
  report.passed += 1;
  report.lines.push(`ok   ${upgradeName}`);
} catch (err) {
  report.failed += 1;
  report.lines.push(`FAIL ${upgradeName}: ${err instanceof Error ? err.message : String(err)}`);
}

printReport(`bun ${Bun.version}`, report);
process.exit(report.failed === 0 ? 0 : 1);
