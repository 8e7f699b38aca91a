/**
 * docs/migrating/koa-session.md, walked as a user would. koa-session is not among this repository's
 * packages, so the old app cannot run here: the app below is the guide's migration of a typical
 * koa-session app (a counter on `ctx.session.visits`, sign-in with `ctx.session.regenerate()` and a
 * flash-like message, "remember me" through `ctx.session.maxAge`, sign-out with `ctx.session = null`),
 * and the scenario asserts what that app did for its users under koa-session. The guide's
 * one-release bridge is run against a cookie written the way koa-session writes one (base64 JSON with
 * `_expire` and `_maxAge`, signed with `app.keys` by Koa's own `ctx.cookies`).
 */
import { createServer } from "node:http";
import Koa from "koa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { session } from "../../src/adapters/koa.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import { Client, cookieLine } from "../helpers/http.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";

const SECRET = "migrating-koa-session-secret-0123456789abc";
const ONE_DAY_S = 86_400;
const THIRTY_DAYS_S = 30 * ONE_DAY_S;

interface Page {
  user: string | null;
  visits: number;
  flash: string | null;
}

/** The app after, by the guide; `store` for koa-session with an external store, none for its cookie. */
function migratedApp(store: boolean) {
  const sessions = createSessions({
    secret: SECRET, // was app.keys
    ...(store ? { store: memoryStore() } : {}),
    idleTimeout: "30d", // the longest a session lived: the remembered one
    cookie: { persistent: false }, // the old app set maxAge: "session", and a number to remember
  });
  const app = new Koa();
  app.use(session(sessions));
  app.use(async (ctx) => {
    if (ctx.path === "/") {
      const visits = ((ctx.session.get("visits") as number | undefined) ?? 0) + 1; // ctx.session.visits
      ctx.session.set("visits", visits);
      const [flash] = ctx.session.flashes("info");
      ctx.body = { user: ctx.session.userId ?? null, visits, flash: flash ?? null } satisfies Page;
    } else if (ctx.path === "/me") {
      ctx.status = ctx.session.userId === undefined ? 401 : 200;
      ctx.body = { user: ctx.session.userId ?? null };
    } else if (ctx.path === "/login" && ctx.method === "POST") {
      const user = String(ctx.query.user);
      await ctx.session.regenerate({ userId: user }); // was regenerate(), then ctx.session.userId = user
      ctx.session.flash("info", `Welcome, ${user}`);
      ctx.session.rememberMe(ctx.query.remember === "on"); // was ctx.session.maxAge = 30 days or "session"
      ctx.status = 303;
      ctx.redirect("/");
    } else if (ctx.path === "/logout" && ctx.method === "POST") {
      ctx.session.destroy(); // was ctx.session = null
      ctx.status = 303;
      ctx.redirect("/");
    }
  });
  return app;
}

const page = async (client: Client) => JSON.parse((await client.get("/")).text) as Page;

for (const store of [false, true]) {
  describe(`after: sessionkit/koa ${store ? "with memoryStore() (koa-session's store)" : "cookie sessions (koa-session's default)"}`, () => {
    let server: Listening;
    beforeAll(async () => {
      server = await listenLoopback(createServer(migratedApp(store).callback()));
    });
    afterAll(() => server.close());

    it("sets no cookie for a visitor who never writes (koa-session: not populated, not saved)", async () => {
      const reply = await new Client(server.url).get("/me");
      expect(reply.status).toBe(401);
      expect(reply.setCookies).toEqual([]);
    });

    it("counts visits in the session", async () => {
      const client = new Client(server.url);
      expect((await page(client)).visits).toBe(1);
      expect(client.jar.has("sid")).toBe(true);
      expect((await page(client)).visits).toBe(2);
      expect((await page(client)).visits).toBe(3);
    });

    it("signs in under a new cookie keeping the data, as koa-session's regenerate, and shows the flash once", async () => {
      const client = new Client(server.url);
      await page(client);
      await page(client);
      const before = client.jar.get("sid") as string;
      const login = await client.post("/login?user=ada");
      expect(login.status).toBe(303);
      const set = cookieLine(login.setCookies, "sid");
      expect(set?.value).toBeTruthy();
      expect(set?.value).not.toBe(before);
      expect(set?.lifetime).toBeUndefined(); // maxAge "session": a browser-session cookie
      expect(await page(client)).toEqual({ user: "ada", visits: 3, flash: "Welcome, ada" });
      expect(await page(client)).toEqual({ user: "ada", visits: 4, flash: null });
      // koa-session's regenerate removes the old store row; a cookie session's copy stays readable.
      const stale = new Client(server.url);
      stale.jar.set("sid", before);
      expect((await stale.get("/")).text).toContain(store ? '"visits":1' : '"visits":3');
    });

    it('"remember me" gives a cookie that outlives the browser, for 30 days', async () => {
      const client = new Client(server.url);
      const login = await client.post("/login?user=ada&remember=on");
      const lifetime = cookieLine(login.setCookies, "sid")?.lifetime ?? 0;
      expect(lifetime).toBeGreaterThan(THIRTY_DAYS_S - 60);
      expect(lifetime).toBeLessThanOrEqual(THIRTY_DAYS_S);
      expect((await client.get("/me")).status).toBe(200);
    });

    it(`signs out: the cookie is cleared${store ? " and a copy of it opens nothing" : ""}`, async () => {
      const client = new Client(server.url);
      await client.post("/login?user=ada");
      const signedIn = client.jar.get("sid") as string;
      const logout = await client.post("/logout");
      expect(logout.status).toBe(303);
      expect(client.jar.has("sid")).toBe(false);
      expect((await client.get("/me")).status).toBe(401);
      const replay = new Client(server.url);
      replay.jar.set("sid", signedIn);
      expect((await replay.get("/me")).status).toBe(store ? 401 : 200);
    });
  });
}

describe("the guide's one-release bridge from koa-session cookies", () => {
  const oldKeys = ["the-old-app-keys-entry"];

  /** A cookie as koa-session writes it: base64 JSON with `_expire` and `_maxAge`, signed by `ctx.cookies`. */
  async function oldCookies(data: Record<string, unknown>): Promise<Map<string, string>> {
    const writer = new Koa();
    writer.keys = oldKeys;
    writer.use((ctx) => {
      const body = { ...data, _maxAge: ONE_DAY_S * 1000 };
      const encoded = Buffer.from(JSON.stringify(body)).toString("base64");
      ctx.cookies.set("koa.sess", encoded, { signed: true, httpOnly: true });
      ctx.body = "ok";
    });
    const server = await listenLoopback(createServer(writer.callback()));
    try {
      const client = new Client(server.url);
      await client.get("/");
      return client.jar;
    } finally {
      await server.close();
    }
  }

  async function bridgedApp() {
    const sessions = createSessions({ secret: SECRET });
    const app = new Koa();
    // The bridge, as the guide writes it.
    app.keys = oldKeys; // the old app.keys, kept only to verify the old cookie
    app.use(session(sessions));
    app.use(async (ctx, next) => {
      const raw = ctx.cookies.get("koa.sess", { signed: true });
      if (raw !== undefined) {
        ctx.cookies.set("koa.sess", null, { signed: true }); // clears the cookie and its .sig
        let old: { userId?: unknown; _expire?: number } | undefined;
        try {
          old = JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
        } catch {}
        const live = old !== undefined && (old._expire === undefined || old._expire > Date.now());
        if (live && typeof old?.userId === "string" && ctx.session.userId === undefined) {
          await ctx.session.regenerate({ userId: old.userId });
        }
      }
      await next();
    });
    app.use((ctx) => {
      ctx.status = ctx.session.userId === undefined ? 401 : 200;
      ctx.body = { user: ctx.session.userId ?? null };
    });
    return listenLoopback(createServer(app.callback()));
  }

  it("carries a signed-in user over once and clears both old cookies", async () => {
    const jar = await oldCookies({ userId: "grace", _expire: Date.now() + 3_600_000 });
    expect([...jar.keys()].sort()).toEqual(["koa.sess", "koa.sess.sig"]);
    const server = await bridgedApp();
    try {
      const client = new Client(server.url);
      for (const [name, value] of jar) client.jar.set(name, value);
      const first = await client.get("/me");
      expect(JSON.parse(first.text)).toEqual({ user: "grace" });
      // Koa's cookies clear by an Expires in the past (the .sig keeps a value): a browser drops both.
      for (const name of ["koa.sess", "koa.sess.sig"]) {
        const line = first.setCookies.find((l) => l.startsWith(`${name}=`)) ?? "";
        expect(line).toMatch(/expires=Thu, 01 Jan 1970 00:00:00 GMT/i);
      }
      expect(client.jar.has("sid")).toBe(true);
      expect((await client.get("/me")).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("refuses an expired or forged old cookie", async () => {
    const expired = await oldCookies({ userId: "grace", _expire: Date.now() - 1000 });
    const forged = await oldCookies({ userId: "grace", _expire: Date.now() + 3_600_000 });
    forged.set(
      "koa.sess",
      Buffer.from(JSON.stringify({ userId: "mallory", _expire: Date.now() + 3_600_000 })).toString(
        "base64",
      ),
    );
    const server = await bridgedApp();
    try {
      for (const jar of [expired, forged]) {
        const client = new Client(server.url);
        for (const [name, value] of jar) client.jar.set(name, value);
        const reply = await client.get("/me");
        expect(reply.status).toBe(401);
        expect(client.jar.has("sid")).toBe(false);
      }
    } finally {
      await server.close();
    }
  });
});
