/**
 * The checks every runtime program runs (Deno, Bun, workerd) against the BUILT package: the core,
 * `sessionkit/fetch`, and `sessionkit/hono` inside a Hono app. Each program passes in what it
 * imported from dist, so this file imports nothing at runtime and runs anywhere with Web APIs. `runChecks` resolves one line per check and the totals.
 */

import type { Hono as HonoClass } from "hono";
import type {
  createHandler as CreateHandler,
  withSession as WithSession,
} from "../../src/adapters/fetch.js";
import type {
  requireSession as RequireSession,
  SessionEnv,
  sessionGuard as SessionGuard,
  sessionMiddleware as SessionMiddleware,
} from "../../src/adapters/hono.js";
import type { createSessions as CreateSessions } from "../../src/manager.js";
import type { memoryStore as MemoryStore } from "../../src/stores/memory.js";

export interface Built {
  createSessions: typeof CreateSessions;
  withSession: typeof WithSession;
  createHandler: typeof CreateHandler;
  /** The crypto backend `#crypto-backend` resolved to in this runtime. */
  backendName: "node" | "web";
  /** The backend this runtime must get, or undefined to only report it. */
  expectBackend: "node" | "web" | undefined;
  /** Hono (the framework most used on these runtimes) with `sessionkit/hono`, driven by `app.fetch`. */
  hono: {
    Hono: typeof HonoClass;
    sessionMiddleware: typeof SessionMiddleware;
    sessionGuard: typeof SessionGuard;
    requireSession: typeof RequireSession;
    memoryStore: typeof MemoryStore;
  };
}

export interface Report {
  passed: number;
  failed: number;
  lines: string[];
}

const SECRET = "runtime-checks-secret-0123456789abcdef";
const OTHER = "runtime-checks-other-secret-0123456789ab";
const ORIGIN = "http://127.0.0.1";

/** A cookie jar over Set-Cookie lines, as a browser keeps them. */
class Jar {
  readonly cookies = new Map<string, string>();
  take(response: Response): string[] {
    const lines = response.headers.getSetCookie();
    for (const line of lines) {
      const [pair = ""] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === "" || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return lines;
  }
  request(path: string): Request {
    const cookie = [...this.cookies].map(([n, v]) => `${n}=${v}`).join("; ");
    return new Request(ORIGIN + path, { headers: cookie ? { cookie } : {} });
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

export async function runChecks(built: Built): Promise<Report> {
  const { createSessions, withSession, createHandler } = built;
  const counter = (sessions: ReturnType<typeof createSessions>) =>
    withSession(sessions, (request, { session }) => {
      const path = new URL(request.url).pathname;
      if (path === "/large") session.set("blob", "x".repeat(8000));
      if (path === "/flash") session.flash("info", "saved");
      if (path === "/flashes") return new Response(JSON.stringify(session.flashes("info")));
      if (path === "/count") session.set("count", ((session.get("count") as number) ?? 0) + 1);
      return new Response(JSON.stringify(session.data));
    });

  const checks: Array<[string, () => Promise<void>]> = [
    [
      `crypto backend: #crypto-backend resolved to "${built.backendName}"`,
      async () => {
        if (built.expectBackend)
          assert(built.backendName === built.expectBackend, `expected ${built.expectBackend}`);
      },
    ],
    [
      "encrypted cookie round trip through withSession",
      async () => {
        const fetch = counter(createSessions({ secret: SECRET }));
        const jar = new Jar();
        const first = await fetch(jar.request("/count"));
        const lines = jar.take(first);
        assert(
          lines.length === 1 && /^sid=e1\./.test(lines[0] ?? ""),
          `one e1 cookie, got ${lines.length}`,
        );
        assert(!/;\s*secure/i.test(lines[0] ?? ""), "no Secure on plain http to 127.0.0.1");
        const second = await fetch(jar.request("/count"));
        assert(JSON.parse(await second.text()).count === 2, "count 2 on the second request");
        const read = await fetch(jar.request("/read"));
        assert(read.headers.getSetCookie().length === 0, "an unchanged session sends no cookie");
      },
    ],
    [
      "signed cookie round trip through withSession",
      async () => {
        const fetch = counter(createSessions({ secret: SECRET, mode: "signed" }));
        const jar = new Jar();
        const lines = jar.take(await fetch(jar.request("/count")));
        assert(/^sid=s1\./.test(lines[0] ?? ""), "an s1 token");
        assert(
          JSON.parse(await (await fetch(jar.request("/count"))).text()).count === 2,
          "count 2",
        );
      },
    ],
    [
      "a tampered token gives a fresh session and an onInvalid report",
      async () => {
        const reasons: string[] = [];
        const fetch = counter(
          createSessions({ secret: SECRET, onInvalid: (r) => reasons.push(r) }),
        );
        const jar = new Jar();
        jar.take(await fetch(jar.request("/count")));
        const token = jar.cookies.get("sid") as string;
        const at = token.length - 10;
        jar.cookies.set(
          "sid",
          token.slice(0, at) + (token[at] === "A" ? "B" : "A") + token.slice(at + 1),
        );
        const reply = await fetch(jar.request("/read"));
        assert((await reply.text()) === "{}", "fresh session");
        assert(reasons.length === 1, `one onInvalid call, got ${reasons.join(",")}`);
      },
    ],
    [
      "secret rotation: an old-secret cookie opens under [new, old] and is re-issued; [new] alone refuses it",
      async () => {
        const jar = new Jar();
        jar.take(await counter(createSessions({ secret: SECRET }))(jar.request("/count")));
        const old = jar.cookies.get("sid");
        const rotated = counter(createSessions({ secret: [OTHER, SECRET] }));
        const reply = await rotated(jar.request("/read"));
        assert(JSON.parse(await reply.text()).count === 1, "data read with the old secret");
        jar.take(reply);
        assert(jar.cookies.get("sid") !== old, "re-issued under the new secret");
        const onlyNew = counter(createSessions({ secret: OTHER }));
        assert(
          JSON.parse(await (await onlyNew(jar.request("/read"))).text()).count === 1,
          "new token opens",
        );
        const stale = new Jar();
        stale.cookies.set("sid", old as string);
        assert(
          (await (await onlyNew(stale.request("/read"))).text()) === "{}",
          "old token refused",
        );
      },
    ],
    [
      "a large session is split into chunk cookies and joined on read",
      async () => {
        const fetch = counter(createSessions({ secret: SECRET }));
        const jar = new Jar();
        const lines = jar.take(await fetch(jar.request("/large")));
        const names = lines.map((l) => l.split("=")[0]).join(",");
        assert(names === "sid.0,sid.1,sid.2", `three chunks, got ${names}`);
        const data = JSON.parse(await (await fetch(jar.request("/read"))).text());
        assert(data.blob?.length === 8000, "joined on read");
      },
    ],
    [
      "a flash message is read once",
      async () => {
        const fetch = counter(createSessions({ secret: SECRET }));
        const jar = new Jar();
        jar.take(await fetch(jar.request("/flash")));
        const first = await fetch(jar.request("/flashes"));
        jar.take(first);
        assert((await first.text()) === '["saved"]', "read the first time");
        assert(
          (await (await fetch(jar.request("/flashes"))).text()) === "[]",
          "gone the second time",
        );
      },
    ],
    [
      "createHandler().addGuard().addPropsResolver().render() redirects with 303, then renders",
      async () => {
        const sessions = createSessions({ secret: SECRET });
        const page = createHandler(sessions)
          .addGuard(({ session }) => {
            if (session.username == null)
              return new Response(null, { status: 303, headers: { location: "/login" } });
          })
          .addPropsResolver(({ session }) => ({ username: session.username as string }))
          .render(({ username }) => new Response(`username: ${username}`));
        const jar = new Jar();
        const denied = await page(jar.request("/"));
        assert(
          denied.status === 303 && denied.headers.get("location") === "/login",
          `303, got ${denied.status}`,
        );
        const login = withSession(sessions, (_request, { session }) => {
          session.set("username", "ada");
          return new Response("ok");
        });
        jar.take(await login(jar.request("/login")));
        const allowed = await page(jar.request("/"));
        assert(
          allowed.status === 200 && (await allowed.text()) === "username: ada",
          "rendered for ada",
        );
      },
    ],
    [
      "Hono app.fetch with sessionkit/hono: a counter on a cookie session and on the memory store",
      async () => {
        const { Hono, sessionMiddleware, memoryStore } = built.hono;
        for (const store of [undefined, memoryStore()]) {
          const app = new Hono<SessionEnv>();
          app.use(sessionMiddleware(createSessions({ secret: SECRET, store })));
          app.get("/count", (c) => {
            const session = c.get("session");
            const count = ((session.get("count") as number) ?? 0) + 1;
            session.set("count", count);
            return c.text(String(count));
          });
          app.get("/read", (c) => c.text(String(c.get("session").get("count"))));
          const kind = store ? "memory" : "cookie";
          const jar = new Jar();
          const first = await app.fetch(jar.request("/count"));
          assert(jar.take(first).length === 1, `${kind}: a cookie on the first write`);
          const second = await app.fetch(jar.request("/count"));
          jar.take(second);
          assert((await second.text()) === "2", `${kind}: count 2 on the second request`);
          const read = await app.fetch(jar.request("/read"));
          assert((await read.text()) === "2", `${kind}: read 2`);
          assert(read.headers.getSetCookie().length === 0, `${kind}: no cookie when unchanged`);
        }
      },
    ],
    [
      "Hono sessionGuard(requireSession(..., { redirect })) answers 303 before the route, then lets it run",
      async () => {
        const { Hono, sessionMiddleware, sessionGuard, requireSession } = built.hono;
        const app = new Hono<SessionEnv>();
        app.use(sessionMiddleware(createSessions({ secret: SECRET })));
        const signedIn = requireSession((s) => s.get("username") !== undefined, {
          redirect: "/login",
        });
        app.get("/login", (c) => {
          c.get("session").set("username", "ada");
          return c.text("ok");
        });
        app.get("/account", sessionGuard(signedIn), (c) =>
          c.text(`account of ${c.get("session").get("username") as string}`),
        );
        const jar = new Jar();
        const denied = await app.fetch(jar.request("/account"));
        assert(
          denied.status === 303 && denied.headers.get("location") === "/login",
          `303 to /login, got ${denied.status}`,
        );
        jar.take(await app.fetch(jar.request("/login")));
        const allowed = await app.fetch(jar.request("/account"));
        assert(
          allowed.status === 200 && (await allowed.text()) === "account of ada",
          `200 for ada, got ${allowed.status}`,
        );
      },
    ],
  ];

  const report: Report = { passed: 0, failed: 0, lines: [] };
  for (const [name, check] of checks) {
    try {
      await check();
      report.passed += 1;
      report.lines.push(`ok   ${name}`);
    } catch (err) {
      report.failed += 1;
      report.lines.push(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return report;
}

/** Prints the report; the last line is "N passed, N failed". */
export function printReport(runtime: string, report: Report): void {
  for (const line of report.lines) console.log(`[${runtime}] ${line}`);
  console.log(`${report.passed} passed, ${report.failed} failed`);
}
