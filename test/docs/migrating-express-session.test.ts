/**
 * docs/migrating/express-session.md, walked as a user would: one small app written with
 * express-session as its README shows it (sign-in with regenerate and an explicit save, a counter, a
 * flash-like message, "remember me", sign-out with destroy), and the same app migrated by the guide to
 * sessionkit/express. One scenario runs against both over HTTP on loopback, so the migrated app is held
 * to the old one's observable behaviour; then the guide's one-release bridge carries a user signed in
 * under express-session + connect-redis over to sessionkit.
 */

import { createServer, request } from "node:http";
import express from "express";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { session } from "../../src/adapters/express.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import { redisStore } from "../../src/stores/redis.js";
import { Client, cookieLine } from "../helpers/http.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";
import { REDIS_URL, serviceAvailable } from "../helpers/services.js";

// express-session's types redeclare `req.session` (the guide says to remove them): loaded untyped.
const importUntyped = (specifier: string): Promise<Record<string, any>> => import(specifier);

const SECRET = "migrating-express-session-secret-0123456789";
const THIRTY_DAYS_MS = 30 * 86_400_000;

/** What express-session puts on `req`, as far as the old app uses it. */
interface OldSession {
  userId?: string;
  visits?: number;
  flash?: string;
  cookie: { maxAge: number | null; expires: Date | false | null };
  regenerate(cb: (err?: unknown) => void): void;
  save(cb: (err?: unknown) => void): void;
  destroy(cb: (err?: unknown) => void): void;
}
const old = (req: express.Request) => (req as unknown as { session: OldSession }).session;

/** The app before: express-session as its README shows it. */
async function oldApp(store?: unknown) {
  const { default: expressSession } = await importUntyped("express-session");
  const app = express();
  app.use(
    expressSession({
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      ...(store ? { store } : {}),
    }),
  );
  app.get("/", (req, res) => {
    const s = old(req);
    s.visits = (s.visits ?? 0) + 1;
    const flash = s.flash;
    delete s.flash;
    res.json({ user: s.userId ?? null, visits: s.visits, flash: flash ?? null });
  });
  app.get("/me", (req, res) => {
    const s = old(req);
    if (s.userId === undefined) res.status(401).json({ user: null });
    else res.json({ user: s.userId });
  });
  app.post("/login", (req, res, next) => {
    const user = String(req.query.user);
    const remember = req.query.remember === "on";
    // As express-session's README: regenerate, then populate, then save before redirecting.
    old(req).regenerate((err) => {
      if (err) return next(err);
      const s = old(req);
      s.userId = user;
      s.flash = `Welcome, ${user}`;
      if (remember) s.cookie.maxAge = THIRTY_DAYS_MS;
      s.save((err2) => (err2 ? next(err2) : res.redirect(303, "/")));
    });
  });
  app.post("/logout", (req, res, next) => {
    old(req).destroy((err) => {
      if (err) return next(err);
      res.clearCookie("connect.sid");
      res.redirect(303, "/");
    });
  });
  return app;
}

/** The app after, migrated by the guide's text alone. */
function newApp() {
  const sessions = createSessions({
    secret: SECRET,
    store: memoryStore(),
    idleTimeout: "1d", // the ordinary session's store TTL
    rememberMe: { idleTimeout: "30d" }, // remember-me's cookie.maxAge, server-side too
    cookie: { persistent: false }, // express-session's default cookie has no maxAge: a browser-session cookie
  });
  const app = express();
  app.use(session(sessions));
  app.get("/", (req, res) => {
    const visits = ((req.session.get("visits") as number | undefined) ?? 0) + 1;
    req.session.set("visits", visits);
    const [flash] = req.session.flashes("info");
    res.json({ user: req.session.userId ?? null, visits, flash: flash ?? null });
  });
  app.get("/me", (req, res) => {
    if (req.session.userId === undefined) res.status(401).json({ user: null });
    else res.json({ user: req.session.userId });
  });
  app.post("/login", async (req, res) => {
    const user = String(req.query.user);
    req.session.clear(); // express-session's regenerate starts empty; sessionkit's keeps the data
    await req.session.regenerate({ userId: user });
    req.session.flash("info", `Welcome, ${user}`);
    req.session.rememberMe(req.query.remember === "on");
    res.redirect(303, "/"); // no save(): committed before the headers leave
  });
  app.post("/logout", (req, res) => {
    req.session.destroy(); // deletes the row and clears the cookie
    res.redirect(303, "/");
  });
  return app;
}

interface Page {
  user: string | null;
  visits: number;
  flash: string | null;
}
const page = async (client: Client, path = "/") =>
  JSON.parse((await client.get(path)).text) as Page;

/** The old app's observable behaviour, which the migrated one must keep. */
function scenario(name: string, cookieName: string, start: () => Promise<Listening>) {
  describe(name, () => {
    let server: Listening;
    beforeAll(async () => {
      server = await start();
    });
    afterAll(() => server.close());

    it("stores nothing for a visitor who never writes: no cookie (saveUninitialized: false)", async () => {
      const reply = await new Client(server.url).get("/me");
      expect(reply.status).toBe(401);
      expect(reply.setCookies).toEqual([]);
    });

    it("counts visits in the session", async () => {
      const client = new Client(server.url);
      expect((await page(client)).visits).toBe(1);
      expect(client.jar.has(cookieName)).toBe(true);
      expect((await page(client)).visits).toBe(2);
      expect((await page(client)).visits).toBe(3);
    });

    it("signs in under a new id, kills the old one, starts the data anew and shows the flash once", async () => {
      const client = new Client(server.url);
      await page(client);
      await page(client);
      const before = client.jar.get(cookieName);
      const login = await client.post("/login?user=ada");
      expect(login.status).toBe(303);
      const set = cookieLine(login.setCookies, cookieName);
      expect(set?.value).toBeTruthy();
      expect(set?.value).not.toBe(before);
      expect(set?.lifetime).toBeUndefined(); // no "remember me": a browser-session cookie

      expect(await page(client)).toEqual({ user: "ada", visits: 1, flash: "Welcome, ada" });
      expect(await page(client)).toEqual({ user: "ada", visits: 2, flash: null });
      expect((await client.get("/me")).status).toBe(200);

      // The cookie from before the sign-in opens nothing now (session fixation).
      const stale = new Client(server.url);
      stale.jar.set(cookieName, before as string);
      expect((await stale.get("/me")).status).toBe(401);
    });

    it('"remember me" gives a cookie that outlives the browser, for 30 days', async () => {
      const client = new Client(server.url);
      const login = await client.post("/login?user=ada&remember=on");
      const lifetime = cookieLine(login.setCookies, cookieName)?.lifetime ?? 0;
      expect(lifetime).toBeGreaterThan(30 * 86_400 - 60);
      expect(lifetime).toBeLessThanOrEqual(30 * 86_400);
      expect((await client.get("/me")).status).toBe(200);
    });

    it("signs out: the cookie is cleared and the old one opens nothing", async () => {
      const client = new Client(server.url);
      await client.post("/login?user=ada");
      const signedIn = client.jar.get(cookieName) as string;
      const logout = await client.post("/logout");
      expect(logout.status).toBe(303);
      const cleared = cookieLine(logout.setCookies, cookieName);
      expect(cleared?.value ?? "").toBe("");
      expect(client.jar.has(cookieName)).toBe(false);
      expect((await client.get("/me")).status).toBe(401);
      const replay = new Client(server.url);
      replay.jar.set(cookieName, signedIn);
      expect((await replay.get("/me")).status).toBe(401);
    });
  });
}

scenario("before: express-session (MemoryStore)", "connect.sid", async () =>
  listenLoopback(createServer(await oldApp())),
);
scenario("after: sessionkit/express, migrated by the guide", "sid", () =>
  listenLoopback(createServer(newApp())),
);

describe("what the guide says changes quietly", () => {
  let server: Listening;
  beforeAll(async () => {
    const sessions = createSessions({
      secret: SECRET,
      store: memoryStore(),
      cookie: { name: "connect.sid" },
    });
    const app = express();
    app.use(session(sessions));
    app.get("/", (req, res) => {
      req.session.set("visits", 1);
      res.json({ isNew: req.session.isNew });
    });
    app.get("/me", (req, res) => {
      res.status(req.session.userId === undefined ? 401 : 200).end();
    });
    server = await listenLoopback(createServer(app));
  });
  afterAll(() => server.close());

  it('keeping the name "connect.sid", an old cookie is refused and cleared on the first response', async () => {
    const client = new Client(server.url);
    client.jar.set("connect.sid", "s%3AoldSessionId.oldSignature");
    const reply = await client.get("/me");
    expect(reply.status).toBe(401);
    expect(cookieLine(reply.setCookies, "connect.sid")?.lifetime).toBe(0);
    expect(client.jar.has("connect.sid")).toBe(false);
  });

  it('cookie.secure "auto": Secure but on plain-http localhost, where a proxy saying https keeps it', async () => {
    // node:http rather than fetch, which does not let a request name its own Host.
    const secure = (headers: Record<string, string>) =>
      new Promise<boolean>((resolve, reject) => {
        const req = request(`${server.url}/`, { headers }, (res) => {
          res.resume();
          const lines = res.headers["set-cookie"] ?? [];
          resolve(/;\s*secure/i.test(cookieLine(lines, "connect.sid")?.line ?? ""));
        });
        req.on("error", reject);
        req.end();
      });
    expect(await secure({})).toBe(false);
    expect(await secure({ "x-forwarded-proto": "https" })).toBe(true);
    // Plain http to a LAN address: Secure, which a browser drops over http (the guide's warning).
    expect(await secure({ host: "192.168.1.20:3000" })).toBe(true);
  });
});

const redisUp = await serviceAvailable("Redis", REDIS_URL);

describe.skipIf(!redisUp)(
  "the guide's one-release bridge from express-session + connect-redis",
  () => {
    it("carries a signed-in user over once, deletes the old row and clears the old cookie", async () => {
      const client = createClient({ url: REDIS_URL });
      await client.connect();
      const { RedisStore } = await importUntyped("connect-redis");
      const before = await listenLoopback(createServer(await oldApp(new RedisStore({ client }))));

      // The bridge, as the guide writes it.
      const { parse } = await import("cookie");
      const { default: signature } = await import("cookie-signature");
      const oldSecret = SECRET;
      async function takeOldUserId(req: express.Request, res: express.Response) {
        const raw = parse(req.headers.cookie ?? "")["connect.sid"];
        if (raw === undefined) return undefined;
        res.clearCookie("connect.sid");
        const sid = raw.startsWith("s:") && signature.unsign(raw.slice(2), oldSecret);
        if (!sid) return undefined;
        const old = await client.getDel(`sess:${sid}`);
        return old ? (JSON.parse(old).userId as string | undefined) : undefined;
      }
      const sessions = createSessions({
        secret: SECRET,
        store: redisStore({ client, prefix: "sk-migrating-express:" }),
      });
      const app = express();
      app.use(session(sessions));
      app.use(async (req, res, next) => {
        const userId = await takeOldUserId(req, res);
        if (userId && req.session.userId === undefined) await req.session.regenerate({ userId });
        next();
      });
      app.get("/me", (req, res) => {
        if (req.session.userId === undefined) res.status(401).end();
        else res.json({ user: req.session.userId });
      });
      app.post("/logout", (req, res) => {
        req.session.destroy();
        res.redirect(303, "/");
      });
      const after = await listenLoopback(createServer(app));
      try {
        const browser = new Client(before.url);
        await browser.post("/login?user=grace");
        const oldCookie = browser.jar.get("connect.sid") as string;
        const sid = decodeURIComponent(oldCookie).slice(2).split(".")[0];
        expect(await client.exists(`sess:${sid}`)).toBe(1);

        // The switch: the same browser (same cookies) now talks to the migrated app.
        const switched = new Client(after.url);
        switched.jar.set("connect.sid", oldCookie);
        const first = await switched.get("/me");
        expect(first.status).toBe(200);
        expect(JSON.parse(first.text)).toEqual({ user: "grace" });
        expect(switched.jar.has("connect.sid")).toBe(false);
        expect(switched.jar.has("sid")).toBe(true);
        expect(await client.exists(`sess:${sid}`)).toBe(0);

        // Signing out of the new session is not undone by the old cookie, even replayed.
        await switched.post("/logout");
        const replay = new Client(after.url);
        replay.jar.set("connect.sid", oldCookie);
        expect((await replay.get("/me")).status).toBe(401);
      } finally {
        await before.close();
        await after.close();
        for (const key of await client.keys("sk-migrating-express:*")) await client.del(key);
        await client.quit();
      }
    });
  },
);
