// sessionkit/next on the real Next.js: the fixture app (test/fixtures/next-app) built with
// `next build`, served by `next start` on loopback and driven over HTTP as the browser drives it:
// pages (Server Components), Server Actions through Next's RSC action fetch and through a form post
// without JavaScript, a Route Handler, and the Proxy. Never skipped: without Next.js this fails.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createVisitSessions } from "../conformance/visit-app.js";
import { runVisits } from "../conformance/visits.js";
import { Client, cookieLine } from "../helpers/http.js";
import {
  actionResult,
  callAction,
  formFields,
  type NextApp,
  renderedText,
  shown,
  startNextApp,
} from "./next-app.js";

const MINUTE = 60_000;
let app: NextApp;

beforeAll(async () => {
  app = await startNextApp();
  console.log(
    `next build ${Math.round(app.buildMs)} ms, next start ${Math.round(app.startMs)} ms to first answer`,
  );
}, 240_000);

afterAll(async () => {
  await app?.stop();
});

async function control(body: {
  offsetMs?: number;
  storeDown?: boolean;
  visits?: { clockMs?: number; fresh?: boolean };
}): Promise<void> {
  const response = await fetch(`${app.url}/api/control`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
}

/** What an after() task of the fixture (lib/later.js) did: its value, or its error's code or name. */
interface AfterOutcome {
  tag: string;
  outcome: string;
  value?: unknown;
  message?: string;
}

async function report(): Promise<{ invalid: string[]; storeSize: number; after: AfterOutcome[] }> {
  return (await fetch(`${app.url}/api/control`)).json();
}

beforeEach(async () => {
  await control({ offsetMs: 0, storeDown: false });
  await report(); // empties the onInvalid log
});

describe.each([
  { mode: "cookie", name: "sid" },
  { mode: "store", name: "ssid" },
] as const)("$mode sessions", ({ mode, name }) => {
  const page = `/${mode}`;
  const client = () => new Client(app.url);

  async function signIn(c: Client, user = "alice", remember = false) {
    const reply = await callAction(c, app, page, "login", [mode, user, remember]);
    expect(reply.status).toBe(200);
    expect(reply.headers.get("x-action-redirect")).toBe(`${page};push`);
    return reply;
  }

  it("gives a visitor who only reads no cookie, and one load per render", async () => {
    const reply = await client().get(page);
    expect(reply.status).toBe(200);
    expect(reply.setCookies).toEqual([]);
    expect(shown(reply.text, "user")).toBe("anonymous");
    expect(shown(reply.text, "count")).toBe("0"); // the schema's default
    expect(shown(reply.text, "shared")).toBe("true");
  });

  it("commits a Server Action through cookies(), and the page rendered with it reads the change", async () => {
    const c = client();
    const first = await callAction(c, app, page, "increment", [mode]);
    expect(first.status).toBe(200);
    expect(actionResult(first)).toBe(1);
    expect(shown(first.text, "count")).toBe("1");
    const line = cookieLine(first.setCookies, name);
    expect(line?.line).toMatch(/; Path=\/;/);
    expect(line?.line).toMatch(/; HttpOnly/);
    expect(line?.line).toMatch(/; SameSite=lax/i);
    expect(line?.line).not.toMatch(/Secure/); // plain http to 127.0.0.1
    expect(line?.lifetime).toBe(30 * 60); // the idle timeout
    expect(first.headers.get("cache-control")).toMatch(/no-store/);

    const second = await callAction(c, app, page, "increment", [mode]);
    expect(actionResult(second)).toBe(2);
    const read = await c.get(page);
    expect(shown(read.text, "count")).toBe("2");
    expect(read.setCookies).toEqual([]); // nothing due: nothing written
  });

  it("marks the cookie Secure when the client's side is https", async () => {
    const reply = await callAction(new Client(app.url), app, page, "increment", [mode], {
      "x-forwarded-proto": "https",
    });
    expect(cookieLine(reply.setCookies, name)?.line).toMatch(/; Secure/);
  });

  it("signs in with regenerate, redirects with the cookie, and reads the flash once", async () => {
    const c = client();
    await callAction(c, app, page, "increment", [mode]);
    const before = c.jar.get(name);
    const { storeSize } = await report();
    const reply = await signIn(c, "bob");
    expect(c.jar.get(name)).not.toBe(before);
    // Next renders the redirect target in the same answer: it reads the new session.
    expect(shown(reply.text, "user")).toBe("bob");
    expect(shown(reply.text, "count")).toBe("1");
    if (mode === "store") expect((await report()).storeSize).toBe(storeSize); // old record gone
    const flashes = await callAction(c, app, page, "takeFlashes", [mode]);
    expect(actionResult(flashes)).toEqual([{ level: "success", message: "Welcome, bob" }]);
    expect(actionResult(await callAction(c, app, page, "takeFlashes", [mode]))).toEqual([]);
  });

  it("gives a remembered session a lasting cookie, and an unremembered one a browser-session cookie", async () => {
    const remembered = await signIn(client(), "carol", true);
    expect(cookieLine(remembered.setCookies, name)?.lifetime).toBe(30 * 86_400);
    const once = await signIn(client(), "dave", false);
    const line = cookieLine(once.setCookies, name);
    expect(line?.lifetime).toBeUndefined();
    expect(line?.line).not.toMatch(/Expires|Max-Age/i);
  });

  it("signs in through a form posted without JavaScript: a 303 carrying the cookie", async () => {
    const c = client();
    const form = formFields((await c.get(page)).text, 0);
    form.set("user", "erin");
    const reply = await c.post(page, { body: form });
    expect(reply.status).toBe(303);
    expect(reply.headers.get("location")).toBe(page);
    expect(c.jar.has(name)).toBe(true);
    expect(shown((await c.get(page)).text, "user")).toBe("erin");
  });

  it("destroys on sign-out: the cookie is deleted and the page rendered with it is anonymous", async () => {
    const c = client();
    await signIn(c, "frank");
    const { storeSize } = await report();
    const reply = await callAction(c, app, page, "logout", [mode]);
    const line = cookieLine(reply.setCookies, name);
    expect(line?.value).toBe("");
    expect(line?.lifetime).toBeLessThanOrEqual(0);
    expect(c.jar.has(name)).toBe(false);
    expect(shown(reply.text, "user")).toBe("anonymous");
    if (mode === "store") expect((await report()).storeSize).toBe(storeSize - 1);
  });

  it("refuses data the schema refuses: the action fails and nothing is written", async () => {
    const c = client();
    await callAction(c, app, page, "increment", [mode]);
    const reply = await callAction(c, app, page, "corrupt", [mode]);
    expect(reply.status).toBe(500);
    expect(reply.setCookies).toEqual([]);
    expect(shown((await c.get(page)).text, "count")).toBe("1");
  });

  it("turns a tampered cookie into a fresh session, cleared by the proxy, reported once", async () => {
    const c = client();
    await callAction(c, app, page, "increment", [mode]);
    const token = c.jar.get(name) as string;
    c.jar.set(name, `${token.slice(0, -4)}${token.endsWith("AAAA") ? "BBBB" : "AAAA"}`);
    const reply = await c.get(page);
    expect(reply.status).toBe(200);
    expect(shown(reply.text, "new")).toBe("true");
    expect(shown(reply.text, "count")).toBe("0");
    expect(cookieLine(reply.setCookies, name)?.lifetime).toBeLessThanOrEqual(0);
    // The page read the jar the proxy cleared, not the refused cookie a second time.
    expect((await report()).invalid).toHaveLength(1);
  });

  it("refuses a Server Component's write and flash read (they would be lost), and writes nothing", async () => {
    const c = client();
    await signIn(c, "gina");
    const write = await c.get(`${page}?attempt=write`);
    expect(shown(write.text, "refused")).toBe("ERR_SESSION_STATE");
    const flash = await c.get(`${page}?attempt=flash`);
    expect(shown(flash.text, "refused")).toBe("ERR_SESSION_STATE");
    expect([...write.setCookies, ...flash.setCookies]).toEqual([]);
    // The flash is still there for a context that can write.
    expect(actionResult(await callAction(c, app, page, "takeFlashes", [mode]))).toHaveLength(1);
  });

  it("slides the idle deadline in the proxy for pages that only read; a page without it writes nothing", async () => {
    const c = client();
    await signIn(c, "hana");
    await control({ offsetMs: 20 * MINUTE }); // past the touch interval (7.5 min)
    const bare = await c.get(`${page}/bare`);
    expect(shown(bare.text, "user")).toBe("hana");
    expect(bare.setCookies).toEqual([]);
    const touched = await c.get(page);
    expect(shown(touched.text, "user")).toBe("hana");
    const slid = cookieLine(touched.setCookies, name);
    expect(slid?.line).toMatch(/; HttpOnly/);
    expect(slid?.lifetime).toBeUndefined(); // not remembered: still a browser-session cookie
    await control({ offsetMs: 45 * MINUTE }); // 45 min after sign-in, 25 after the touch
    expect(shown((await c.get(`${page}/bare`)).text, "user")).toBe("hana");
    // An action's POST passes the proxy too: with a slide due again, one writer, the action.
    await control({ offsetMs: 46 * MINUTE });
    const acted = await callAction(c, app, page, "increment", [mode]);
    // (A store session's browser-session cookie holds only the id: the write needs no new one.)
    const ours = acted.setCookies.filter((line) => line.startsWith(`${name}=`));
    expect(ours).toHaveLength(mode === "cookie" ? 1 : 0);
    expect(shown((await c.get(`${page}/bare`)).text, "count")).toBe("1");
    await control({ offsetMs: 80 * MINUTE }); // 34 min after the action's write
    const expired = await c.get(`${page}/bare`);
    expect(shown(expired.text, "user")).toBe("anonymous");
    // The store hides the record at its deadline and still tells why (expiredMeta), as a cookie does.
    expect((await report()).invalid).toEqual(["expired-idle"]);
  });

  it("guards a page in the proxy: a visitor is redirected with a flash, a signed-in user served", async () => {
    const c = client();
    const denied = await c.get(`${page}/private`);
    expect(denied.status).toBe(303);
    expect(new URL(denied.headers.get("location") ?? "", app.url).href).toBe(`${app.url}${page}`);
    expect(c.jar.has(name)).toBe(true); // the flash travels with the redirect
    expect(actionResult(await callAction(c, app, page, "takeFlashes", [mode]))).toEqual([
      { level: "info", message: "Sign in first" },
    ]);
    await signIn(c, "ivan");
    const served = await c.get(`${page}/private`);
    expect(served.status).toBe(200);
    expect(served.text).toContain("private page of <!-- -->ivan");
  });

  it("guards a Server Action's POST to a guarded page, and a request that only claims to be one", async () => {
    const c = client();
    const claimed = await c.get(`${page}/private`, { headers: { "next-action": "0".repeat(42) } });
    expect(claimed.status).toBe(303);
    expect(claimed.text).not.toContain("private page");
    // A real action id, posted to the guarded page: Next would render that page after the action.
    const posted = await callAction(c, app, `${page}/private`, "takeFlashes", [mode]);
    expect(posted.status).toBe(303);
    expect(posted.text).not.toContain("private page");
  });

  it("shares the session with a Route Handler (withSession) both ways", async () => {
    const c = client();
    await signIn(c, "judy");
    const read = await c.get(`/api/${mode}`);
    expect(JSON.parse(read.text)).toEqual({
      user: "judy",
      count: 0,
      flashes: [{ level: "success", message: "Welcome, judy" }],
    });
    expect(JSON.parse((await c.post(`/api/${mode}`)).text)).toEqual({ count: 1 });
    expect(actionResult(await callAction(c, app, page, "increment", [mode]))).toBe(2);
  });
});

describe("cookie sessions", () => {
  it("run an action exported as sessionAction's result, as the docs show", async () => {
    const c = new Client(app.url);
    expect(actionResult(await callAction(c, app, "/cookie", "add", [5]))).toBe(5);
    expect(actionResult(await callAction(c, app, "/cookie", "add", [2]))).toBe(7);
  });
});

describe("cookie sessions past the browser's cookie size", () => {
  it("chunks a large session, reads it back in the same request and later, and shrinks it again", async () => {
    const c = new Client(app.url);
    const big = await callAction(c, app, "/cookie", "note", ["cookie", "x".repeat(6000)]);
    expect(big.status).toBe(200);
    const chunks = [...c.jar.keys()];
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((chunk, i) => chunk === `sid.${i}`)).toBe(true);
    for (const line of big.setCookies) expect(line.length).toBeLessThan(4096);
    expect(shown(big.text, "note-length")).toBe("6000");
    expect(shown((await c.get("/cookie/bare")).text, "note-length")).toBe("6000");
    expect(shown((await c.get("/cookie")).text, "note-length")).toBe("6000");
    const small = await callAction(c, app, "/cookie", "note", ["cookie", "short"]);
    expect([...c.jar.keys()]).toEqual(["sid"]); // the chunks deleted, the plain cookie written
    expect(shown(small.text, "note-length")).toBe("5");
  });
});

describe("store sessions", () => {
  it("answers 503 in the proxy and the Route Handler while the store is down; an action can map it", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "increment", ["store"]);
    await control({ storeDown: true });
    const proxied = await c.get("/store");
    expect(proxied.status).toBe(503);
    expect(proxied.headers.get("retry-after")).not.toBeNull();
    expect((await c.post("/api/store")).status).toBe(503);
    // The proxy loads for a Server Action's POST too, so an outage answers 503 before the action.
    expect((await callAction(c, app, "/store", "increment", ["store"])).status).toBe(503);
    // Where no proxy runs, the action meets the outage and maps it to an answer of its own.
    const mapped = await callAction(c, app, "/store/bare", "safeIncrement", ["store"]);
    expect(actionResult(mapped)).toBe("try again shortly");
    expect(mapped.setCookies).toEqual([]);
    await control({ storeDown: false });
    expect(shown((await c.get("/store")).text, "count")).toBe("1");
  });

  it("lets go of the session lock after a Server Component's read", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "increment", ["store"]);
    await c.get("/store/bare"); // loads under the lock and never commits
    // A lock left held (ttl 30 s) would fail this after lock.wait (2 s) with ERR_LOCK_TIMEOUT.
    const reply = await callAction(c, app, "/store", "increment", ["store"]);
    expect(reply.status).toBe(200);
    expect(actionResult(reply)).toBe(2);
  });

  it("writes nothing in the proxy for Next's own fetch of an action's redirect target", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "login", ["store", "kim", true]);
    await control({ offsetMs: 3 * 60 * MINUTE }); // past renewInterval (2h), within the remembered 30d
    // The action leaves the session alone and redirects: Next fetches /store itself, through the
    // proxy, and drops that answer's Set-Cookie. A renewal written there would sign kim out.
    const reply = await callAction(c, app, "/store", "visit", ["store"]);
    expect(reply.headers.get("x-action-redirect")).toBe("/store;push");
    expect(shown(reply.text, "user")).toBe("kim");
    const after = await c.get("/store");
    expect(shown(after.text, "user")).toBe("kim");
  });
});

// The random visits every adapter runs (test/conformance/visits.ts), through Next: in a Route
// Handler with withSession (by cookie and by header); with sessionAction, whose cookies go through
// Next's cookies(), in a Route Handler and in a Server Action (by cookie only: neither can answer
// a header), where the page Next renders into the answer reads the cookies just set (getSession).
describe("random visits", () => {
  it.each([
    ["cookie", "withSession in a Route Handler"],
    ["store", "withSession in a Route Handler"],
    ["cookie", "sessionAction in a Route Handler"],
    ["store", "sessionAction in a Route Handler"],
    ["cookie", "sessionAction in a Server Action"],
    ["store", "sessionAction in a Server Action"],
  ] as const)("read as they do through the core manager (%s sessions, %s)", async (world, via) => {
    // The fixture's visits read an absolute clock the test sets: the answers carry deadlines,
    // which must be the core's to the millisecond.
    let clock = Date.now();
    await control({ visits: { clockMs: clock, fresh: true } });
    const send = async (c: Client, encoded: string, headers: Record<string, string>) => {
      if (via === "sessionAction in a Server Action") {
        const reply = await callAction(c, app, `/visits/${world}`, "runVisit", [world, encoded]);
        const answer = actionResult(reply) as string;
        return { reply, answer, rendered: renderedText(reply, "after") };
      }
      const path = via === "withSession in a Route Handler" ? "" : "/action";
      const reply = await c.post(`/api/visits/${world}${path}`, {
        headers: { "x-actions": encoded, ...headers },
      });
      return { reply, answer: reply.text };
    };
    const { rendered } = await runVisits({
      url: app.url,
      send,
      core: createVisitSessions(world, () => clock),
      advance: async (ms) => {
        clock += ms;
        await control({ visits: { clockMs: clock } });
      },
      byHeader: via === "withSession in a Route Handler",
    });
    // Next renders the page into an action's answer whenever the action set a cookie.
    if (via === "sessionAction in a Server Action") expect(rendered).toBeGreaterThan(0);
  });
});

// The fourth review (docs/SECURITY.md): the adapter attacked as a Next.js user and as an attacker
// would, over the same build. Each fixed finding's test failed before its fix.
describe("review: caching, prefetches and client-controlled headers", () => {
  it("answers no-store whenever the proxy writes, also on pages Next caches (static, ISR)", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/cookie", "increment", ["cookie"]);
    for (const path of ["/static", "/isr"]) {
      const quiet = await c.get(path);
      expect(quiet.setCookies).toEqual([]); // nothing due: the cached page goes out as it is
    }
    await control({ offsetMs: 20 * MINUTE }); // a slide is due
    for (const path of ["/static", "/isr"]) {
      const slid = await c.get(path);
      expect(cookieLine(slid.setCookies, "sid")).toBeDefined();
      expect(slid.headers.get("cache-control")).toBe("no-store");
      await control({ offsetMs: 40 * MINUTE }); // due again for the second page
    }
  });

  it("runs guards for RSC fetches, prefetches and Next's other spellings of a guarded page", async () => {
    const c = new Client(app.url);
    const spellings = [
      "/cookie/private",
      "/cookie/private.rsc",
      "/cookie/private?_rsc=x",
      "/_next/data/build-id/cookie/private.json",
    ];
    const rsc: Record<string, string>[] = [
      {},
      { rsc: "1" },
      { rsc: "1", "next-router-prefetch": "1" },
      { rsc: "1", "next-router-segment-prefetch": "/_tree" },
    ];
    for (const path of spellings) {
      for (const headers of rsc) {
        const reply = await c.get(path, { headers });
        expect(reply.status, `${path} ${JSON.stringify(headers)}`).toBe(303);
        expect(reply.text).not.toContain("private page");
      }
    }
    // Spellings Next routes nowhere near the page: never the page either.
    for (const path of ["/cookie/%70rivate", "/cookie/private/..;/private"]) {
      const reply = await c.get(path);
      expect(reply.status).toBe(404);
      expect(reply.text).not.toContain("private page");
    }
  });

  it("runs guards whatever internal header a client sends (x-middleware-*, x-action-redirect, next-action)", async () => {
    const forged: Record<string, string>[] = [
      { "x-middleware-subrequest": "proxy:proxy:proxy:proxy:proxy" },
      { "x-middleware-subrequest": "src/proxy:src/proxy:src/proxy:src/proxy:src/proxy" },
      { "x-middleware-skip": "1", "x-middleware-next": "1" },
      { "x-middleware-override-headers": "cookie", "x-middleware-request-cookie": "sid=x" },
      { "x-action-redirect": "/cookie/private;push" },
    ];
    for (const headers of forged) {
      const reply = await new Client(app.url).get("/cookie/private", { headers });
      expect(reply.status, JSON.stringify(headers)).toBe(303);
      expect(reply.text).not.toContain("private page");
    }
  });

  it("keeps a guard's redirect on this origin whatever Host or X-Forwarded-Host a client sends", async () => {
    const forged: Record<string, string>[] = [
      { host: "evil.example" },
      { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" },
    ];
    for (const headers of forged) {
      const reply = await new Client(app.url).get("/cookie/private", { headers });
      expect(reply.status).toBe(303);
      expect(reply.headers.get("location")).toBe("/cookie");
      expect(reply.headers.get("cache-control")).toBe("no-store");
    }
  });

  it("leaves a cross-origin Server Action to Next's own Origin check: refused, nothing written", async () => {
    for (const origin of ["http://evil.example", "null", `${app.url.replace(/:\d+$/, ":1")}`]) {
      const reply = await callAction(new Client(app.url), app, "/cookie", "increment", ["cookie"], {
        origin,
      });
      expect(reply.status, origin).toBe(500);
      expect(reply.setCookies).toEqual([]);
    }
  });
});

describe("review: cookies through Next's jar", () => {
  it("keeps every attribute through cookies() and the proxy: __Host-, SameSite=None, Partitioned, Priority", async () => {
    const c = new Client(app.url);
    const https = { "x-forwarded-proto": "https" };
    const set = await callAction(c, app, "/attrs", "increment", ["attrs"], https);
    await control({ offsetMs: 20 * MINUTE });
    const slid = await c.get("/attrs", { headers: https });
    const token = c.jar.get("__Host-asid") as string;
    c.jar.set("__Host-asid", `${token.slice(0, -4)}${token.endsWith("AAAA") ? "BBBB" : "AAAA"}`);
    const cleared = await c.get("/attrs", { headers: https });
    for (const reply of [set, slid, cleared]) {
      const line = cookieLine(reply.setCookies, "__Host-asid")?.line ?? "";
      expect(line).toMatch(/; Path=\/(;|$)/);
      expect(line).not.toMatch(/Domain=/i);
      for (const attribute of [/; Secure/, /; HttpOnly/, /; SameSite=none/i, /; Partitioned/]) {
        expect(line).toMatch(attribute);
      }
      expect(line).toMatch(/; Priority=high/i);
    }
    expect(cookieLine(cleared.setCookies, "__Host-asid")?.value).toBe("");
  });
});

describe("review: findings", () => {
  const lockWaitMs = 2000; // the fixture's lock.wait

  it("lets go of the session lock when a guard in the proxy throws", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "increment", ["store"]);
    expect((await c.get("/store/private?fail")).status).toBe(500);
    const started = performance.now();
    const reply = await callAction(c, app, "/store/bare", "increment", ["store"]);
    expect(actionResult(reply)).toBe(2);
    expect(performance.now() - started).toBeLessThan(lockWaitMs);
  });

  it("lets go of the session lock when a Route Handler in withSession throws", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "increment", ["store"]);
    expect((await c.post("/api/store?fail")).status).toBe(500);
    const reply = await callAction(c, app, "/store/bare", "increment", ["store"]);
    expect(actionResult(reply)).toBe(2);
  });

  it("writes nothing in the proxy for a Server Action a form posts without JavaScript", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/cookie", "increment", ["cookie"]);
    const form = formFields((await c.get("/cookie")).text, 1); // the +1 form
    await control({ offsetMs: 20 * MINUTE }); // a slide is due in the proxy
    const reply = await c.post("/cookie", { body: form });
    // One writer, the action: two lines for one cookie leave the browser the later one.
    expect(reply.setCookies.filter((line) => line.startsWith("sid="))).toHaveLength(1);
    expect(shown((await c.get("/cookie/bare")).text, "count")).toBe("2");
  });

  it("refuses a sessionAction called during a render before the store or the cookie changes", async () => {
    const c = new Client(app.url);
    await signInTo(c, "store", "lena");
    for (const op of ["set", "regenerate"]) {
      const reply = await c.get(`/store/render-write?op=${op}`);
      expect(shown(reply.text, "outcome"), op).toBe("ERR_SESSION_STATE");
      expect(reply.setCookies).toEqual([]);
    }
    const after = await c.get("/store/bare");
    expect(shown(after.text, "user")).toBe("lena"); // regenerate did not delete the record
    expect(shown(after.text, "count")).toBe("0"); // nor did the set reach the store
    const cookie = await new Client(app.url).get("/cookie/render-write?op=set");
    expect(shown(cookie.text, "outcome")).toBe("ERR_SESSION_STATE");
  });

  it("serves a Route Handler the proxy also matches with the cookie the proxy renewed", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "login", ["store", "milo", true]);
    await control({ offsetMs: 3 * 60 * MINUTE }); // past renewInterval (2h): the proxy renews
    const reply = await c.post("/api/store/proxied");
    expect(JSON.parse(reply.text)).toEqual({ count: 1 });
    const after = await c.get("/store/bare");
    expect(shown(after.text, "user")).toBe("milo");
    expect(shown(after.text, "count")).toBe("1");
  });

  it("marks a Route Handler's cookie no-store through withSession; sessionAction there cannot (Next's limit)", async () => {
    const wrapped = await new Client(app.url).post("/api/cookie");
    expect(cookieLine(wrapped.setCookies, "sid")).toBeDefined();
    expect(wrapped.headers.get("cache-control")).toBe("no-store");
    // cookies().set carries no other header: pinned, documented in docs/adapters/next.md.
    const action = await new Client(app.url).get("/api/cookie/act");
    expect(cookieLine(action.setCookies, "sid")).toBeDefined();
    expect(action.headers.get("cache-control")).toBeNull();
  });
});

describe("review: holding", () => {
  it("runs a guard for a prefetch as for a visit, flash included (pinned: Next strips the prefetch headers)", async () => {
    // Next prefetches the links in view; the proxy cannot tell, so a guard's flash is queued by a
    // link to a guarded page. Documented in docs/adapters/next.md (The Proxy).
    const c = new Client(app.url);
    const reply = await c.get("/cookie/private", {
      headers: { rsc: "1", "next-router-prefetch": "1", "next-router-segment-prefetch": "/_tree" },
    });
    expect(reply.status).toBe(303);
    expect(cookieLine(reply.setCookies, "sid")).toBeDefined();
    expect(actionResult(await callAction(c, app, "/cookie", "takeFlashes", ["cookie"]))).toEqual([
      { level: "info", message: "Sign in first" },
    ]);
  });

  it("skips a guard for anyone who sends the header a matcher's `missing` names (pinned: a trap)", async () => {
    // The fixture matches /store/private unless Next-Router-Prefetch is sent, as Next's docs show
    // for sparing prefetches the proxy: a client sends it on a plain GET, and the page renders.
    const reply = await new Client(app.url).get("/store/private", {
      headers: { "next-router-prefetch": "1" },
    });
    expect(reply.status).toBe(200);
    expect(reply.text).toContain("private page of");
    expect((await new Client(app.url).get("/store/private")).status).toBe(303);
  });

  it("runs an action posted to a page without it, whose cookie Next drops (pinned: Next's forwarding)", async () => {
    // /cookie/bare imports no action: Next forwards the POST to a page that has it, and copies that
    // answer's headers back without Set-Cookie (actionsForbiddenHeaders). The action still ran.
    const c = new Client(app.url);
    await callAction(c, app, "/cookie", "increment", ["cookie"]);
    const forwarded = await callAction(c, app, "/cookie/bare", "increment", ["cookie"]);
    expect(actionResult(forwarded)).toBe(2);
    expect(forwarded.setCookies).toEqual([]);
    expect(shown((await c.get("/cookie/bare")).text, "count")).toBe("1");
  });

  it("sends the new cookie of an action that throws after regenerate, and the old id opens nothing", async () => {
    for (const [mode, name] of [
      ["store", "ssid"],
      ["cookie", "sid"],
    ] as const) {
      const c = new Client(app.url);
      await callAction(c, app, `/${mode}`, "increment", [mode]);
      const old = c.jar.get(name) as string;
      const reply = await callAction(c, app, `/${mode}`, "failAfterSignIn", [mode, "nina"]);
      expect(reply.status).toBe(500);
      expect(reply.text).not.toContain("failed after sign-in"); // Next answers a digest only
      expect(c.jar.get(name)).not.toBe(old);
      expect(shown((await c.get(`/${mode}/bare`)).text, "user")).toBe("nina");
      const replayed = new Client(app.url);
      replayed.jar.set(name, old);
      const stale = await replayed.get(`/${mode}/bare`);
      // A store forgets the old id; a cookie session cannot revoke it (SECURITY.md, Limits 2).
      expect(shown(stale.text, "count")).toBe(mode === "store" ? "0" : "1");
      expect(shown(stale.text, "user")).toBe("anonymous");
    }
  });

  it("hands a chunked session the proxy slid on to the page of the same request", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/cookie", "note", ["cookie", "y".repeat(6000)]);
    await control({ offsetMs: 20 * MINUTE });
    const slid = await c.get("/cookie");
    expect(slid.setCookies.filter((line) => line.startsWith("sid.")).length).toBeGreaterThan(1);
    expect(shown(slid.text, "note-length")).toBe("6000");
    expect((await report()).invalid).toEqual([]);
  });

  it("serialises one user's concurrent actions with the lock option: no update is lost", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "increment", ["store"]);
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => callAction(c, app, "/store/bare", "increment", ["store"])),
    );
    expect(replies.map((reply) => reply.status)).toEqual(Array(6).fill(200));
    expect(shown((await c.get("/store/bare")).text, "count")).toBe("7");
  });

  it("shows no store error text in any answer while the store is down", async () => {
    const c = new Client(app.url);
    await callAction(c, app, "/store", "increment", ["store"]);
    await control({ storeDown: true });
    const replies = [
      await c.get("/store"),
      await c.get("/store/bare"),
      await c.post("/api/store"),
      await callAction(c, app, "/store/bare", "increment", ["store"]),
    ];
    expect(replies.map((reply) => reply.status)).toEqual([503, 500, 503, 200]);
    for (const reply of replies) {
      expect(reply.text).not.toMatch(/ECONNREFUSED|6379|at .+\.js:\d+/);
      expect(reply.setCookies).toEqual([]);
    }
  });
});

describe("review: after()", () => {
  const modes = [
    ["store", "ssid"],
    ["cookie", "sid"],
  ] as const;

  it("refuses a sessionAction in after() of a Server Action or a Route Handler before anything changes", async () => {
    for (const [mode, name] of modes) {
      const c = new Client(app.url);
      await signInTo(c, mode, "lena");
      const { storeSize } = await report();
      for (const where of ["action", "route"] as const) {
        for (const task of ["set", "regenerate"] as const) {
          const done = await runAfter(c, mode, where, task, "callback");
          expect(done.outcome, done.tag).toBe("ERR_SESSION_STATE");
          // It says where to write instead (before, it blamed a render).
          expect(done.message).toMatch(
            /in an after\(\) callback.*Server Action or Route Handler itself/,
          );
          expect(cookieLine(done.reply.setCookies, name)).toBeUndefined();
        }
      }
      const page = await c.get(`/${mode}/bare`);
      expect(shown(page.text, "user"), mode).toBe("lena");
      expect(shown(page.text, "count"), mode).toBe("0");
      expect((await report()).storeSize).toBe(storeSize);
    }
  });

  it("saves nothing for a sessionAction whose promise after() holds past the response, and lets go of its lock", async () => {
    // The action loads while Next can still set cookies and commits once the response is sent
    // (lib/later.js's `promise` form). Before, the store took the write (a regenerate deleted
    // the record: signed out) and Next then refused the cookie.
    for (const [mode, name] of modes) {
      const c = new Client(app.url);
      await signInTo(c, mode, "lena");
      for (const where of ["action", "route"] as const) {
        for (const task of ["set", "regenerate"] as const) {
          const done = await runAfter(c, mode, where, task, "promise");
          expect(done.outcome, done.tag).toBe("ERR_SESSION_STATE");
          expect(done.message).toMatch(/nothing was saved.*not in after\(\)/);
          expect(cookieLine(done.reply.setCookies, name)).toBeUndefined();
        }
      }
      const page = await c.get(`/${mode}/bare`);
      expect(shown(page.text, "user"), mode).toBe("lena");
      expect(shown(page.text, "count"), mode).toBe("0");
      const started = performance.now();
      expect(actionResult(await callAction(c, app, `/${mode}`, "increment", [mode]))).toBe(1);
      expect(performance.now() - started).toBeLessThan(2000); // the fixture's lock.wait
    }
  });

  it("leaves after() of a render to Next, which refuses cookies() there before anything loads (pinned)", async () => {
    const c = new Client(app.url);
    await signInTo(c, "store", "lena");
    for (const task of ["set", "regenerate", "read"] as const) {
      const done = await runAfter(c, "store", "render", task, "callback");
      expect(done.outcome, done.tag).toBe("Error");
      expect(done.message).toMatch(/used `cookies\(\)` inside `after\(\)` while rendering/);
    }
    // Started by the render itself, it meets the render's refusal.
    for (const task of ["set", "regenerate"] as const) {
      expect((await runAfter(c, "store", "render", task, "promise")).outcome).toBe(
        "ERR_SESSION_STATE",
      );
    }
    const page = await c.get("/store/bare");
    expect(shown(page.text, "user")).toBe("lena");
    expect(shown(page.text, "count")).toBe("0");
  });

  it("reads with getSession in after() of a Server Action or a Route Handler", async () => {
    for (const [mode] of modes) {
      const c = new Client(app.url);
      await signInTo(c, mode, "lena");
      for (const where of ["action", "route"] as const) {
        for (const form of ["callback", "promise"] as const) {
          const done = await runAfter(c, mode, where, "read", form);
          expect({ outcome: done.outcome, value: done.value }, done.tag).toEqual({
            outcome: "ok",
            value: "lena",
          });
        }
      }
    }
  });

  /**
   * Has the fixture schedule session work with after() (lib/later.js) from a Server Action, a Route
   * Handler or a render, and waits for what it did: Next runs it once the response is sent.
   */
  async function runAfter(
    c: Client,
    mode: "cookie" | "store",
    where: "action" | "route" | "render",
    task: "set" | "regenerate" | "read",
    form: "callback" | "promise",
  ) {
    const query = `task=${task}&form=${form}`;
    const reply =
      where === "action"
        ? await callAction(c, app, `/${mode}`, "later", [mode, task, form])
        : where === "route"
          ? await c.post(`/api/${mode}/after?${query}`)
          : await c.get(`/${mode}/render-after?${query}`);
    expect(reply.status).toBe(200);
    for (let attempt = 0; attempt < 200; attempt++) {
      const [done] = (await report()).after;
      if (done) {
        expect(done.tag).toBe(`${where} ${form} ${task}`);
        return { ...done, reply };
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`the after() task of ${where} (${form}, ${task}) did not end in time`);
  }
});

async function signInTo(c: Client, mode: "cookie" | "store", user: string) {
  const reply = await callAction(c, app, `/${mode}`, "login", [mode, user, false]);
  expect(reply.headers.get("x-action-redirect")).toBe(`/${mode};push`);
}
