/**
 * docs/migrating/hono-sessions.md, walked as a user would: one small app written with hono-sessions
 * as its README shows it (CookieStore, and MemoryStore with `session_key_rotation` at sign-in; a
 * counter, a flash read once, sign-out with `deleteSession`), and the same app migrated by the guide
 * to sessionkit/hono, without a store and with one. One scenario runs against all four over HTTP on
 * loopback; then the switch-over itself: an old cookie under the kept name `session`, and the guide's
 * one-release bridge.
 */

import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { Hono } from "hono";
import { deleteCookie, getCookie } from "hono/cookie";
import {
  CookieStore,
  decrypt,
  MemoryStore,
  type Session as OldSession,
  sessionMiddleware as oldSessionMiddleware,
} from "hono-sessions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SessionEnv, sessionMiddleware } from "../../src/adapters/hono.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import { Client, cookieLine } from "../helpers/http.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";

const SECRET = "migrating-hono-sessions-secret-0123456789ab";

type Data = { userId: string; visits: number; notice: string };
interface Page {
  user: string | null;
  visits: number;
  flash: string | null;
}

const serve = (app: { fetch: (request: Request) => Response | Promise<Response> }) =>
  listenLoopback(createAdaptorServer({ fetch: app.fetch, hostname: "127.0.0.1" }) as Server);

/** Before: hono-sessions, as its README shows it. */
function oldApp(store: "cookie" | "memory") {
  const app = new Hono<{
    Variables: { session: OldSession<Data>; session_key_rotation: boolean };
  }>();
  app.use(
    oldSessionMiddleware({
      store: store === "cookie" ? new CookieStore() : new MemoryStore(),
      encryptionKey: SECRET,
      expireAfterSeconds: 900,
      autoExtendExpiration: true,
      cookieOptions: { sameSite: "Lax", path: "/", httpOnly: true },
    }),
  );
  app.get("/", (c) => {
    const session = c.get("session");
    const visits = (session.get("visits") ?? 0) + 1;
    session.set("visits", visits);
    const flash = session.get("notice"); // a flash: read once
    return c.json({ user: session.get("userId"), visits, flash } satisfies Page);
  });
  app.get("/me", (c) => {
    const user = c.get("session").get("userId");
    return c.json({ user }, user === null ? 401 : 200);
  });
  app.post("/login", (c) => {
    const user = c.req.query("user") as string;
    c.set("session_key_rotation", true); // a new id (MemoryStore only)
    c.get("session").set("userId", user);
    c.get("session").flash("notice", `Welcome, ${user}`);
    return c.redirect("/", 303);
  });
  app.post("/logout", (c) => {
    c.get("session").deleteSession();
    return c.redirect("/", 303);
  });
  return app;
}

/** After, by the guide. */
function newApp(store: "cookie" | "memory") {
  const sessions = createSessions({
    secret: SECRET, // >= 32 characters
    ...(store === "memory" ? { store: memoryStore() } : {}),
    idleTimeout: 900, // was expireAfterSeconds with autoExtendExpiration
    cookie: { name: "session", persistent: false }, // hono-sessions sent no Max-Age
  });
  const app = new Hono<SessionEnv<typeof sessions>>();
  app.use(sessionMiddleware(sessions));
  app.get("/", (c) => {
    const session = c.get("session");
    const visits = ((session.get("visits") as number | undefined) ?? 0) + 1;
    session.set("visits", visits);
    const [flash] = session.flashes("info");
    return c.json({ user: session.userId ?? null, visits, flash: flash ?? null } satisfies Page);
  });
  app.get("/me", (c) => {
    const user = c.get("session").userId ?? null;
    return c.json({ user }, user === null ? 401 : 200);
  });
  app.post("/login", async (c) => {
    const user = c.req.query("user") as string;
    await c.get("session").regenerate({ userId: user }); // was session_key_rotation
    c.get("session").flash("info", `Welcome, ${user}`);
    c.get("session").rememberMe(c.req.query("remember") === "on"); // new: hono-sessions had none
    return c.redirect("/", 303);
  });
  app.post("/logout", (c) => {
    c.get("session").destroy(); // was deleteSession()
    return c.redirect("/", 303);
  });
  return app;
}

const page = async (client: Client) => JSON.parse((await client.get("/")).text) as Page;

function scenario(
  name: string,
  { revocable, old }: { revocable: boolean; old: boolean },
  start: () => Promise<Listening>,
) {
  describe(name, () => {
    let server: Listening;
    beforeAll(async () => {
      server = await start();
    });
    afterAll(() => server.close());

    it(
      old
        ? "sets a cookie on a first visit, though nothing was written"
        : "sets no cookie for a visitor who never writes (a difference the guide states)",
      async () => {
        const reply = await new Client(server.url).get("/me");
        expect(reply.status).toBe(401);
        expect(cookieLine(reply.setCookies, "session") !== undefined).toBe(old);
      },
    );

    it("counts visits in the session", async () => {
      const client = new Client(server.url);
      expect((await page(client)).visits).toBe(1);
      expect(client.jar.has("session")).toBe(true);
      expect((await page(client)).visits).toBe(2);
      expect((await page(client)).visits).toBe(3);
    });

    it("signs in keeping the data, shows the flash once; the cookie has no Max-Age", async () => {
      const client = new Client(server.url);
      await page(client);
      await page(client);
      const before = client.jar.get("session") as string;
      const login = await client.post("/login?user=ada");
      expect(login.status).toBe(303);
      const set = cookieLine(login.setCookies, "session");
      expect(set?.value).toBeTruthy();
      expect(set?.value).not.toBe(before);
      expect(set?.lifetime).toBeUndefined();
      expect(await page(client)).toEqual({ user: "ada", visits: 3, flash: "Welcome, ada" });
      expect(await page(client)).toEqual({ user: "ada", visits: 4, flash: null });
      // Rotation kills the old id of a store session; a cookie session's copy stays readable.
      const stale = new Client(server.url);
      stale.jar.set("session", before);
      expect((await stale.get("/")).text).toContain(revocable ? '"visits":1' : '"visits":3');
    });

    it("signs out: the session ends, and a copy of the cookie opens it no more with a store", async () => {
      const client = new Client(server.url);
      await client.post("/login?user=ada");
      const signedIn = client.jar.get("session") as string;
      expect((await client.post("/logout")).status).toBe(303);
      expect((await client.get("/me")).status).toBe(401);
      const replay = new Client(server.url);
      replay.jar.set("session", signedIn);
      expect((await replay.get("/me")).status).toBe(revocable ? 401 : 200);
    });

    if (!old) {
      it('"remember me" (new here) gives a cookie that outlives the browser until the idle deadline', async () => {
        const client = new Client(server.url);
        const login = await client.post("/login?user=ada&remember=on");
        expect(cookieLine(login.setCookies, "session")?.lifetime).toBe(900);
      });
    }
  });
}

scenario("before: hono-sessions CookieStore", { revocable: false, old: true }, () =>
  serve(oldApp("cookie")),
);
scenario("after: sessionkit/hono, no store", { revocable: false, old: false }, () =>
  serve(newApp("cookie")),
);
scenario("before: hono-sessions MemoryStore", { revocable: true, old: true }, () =>
  serve(oldApp("memory")),
);
scenario("after: sessionkit/hono with memoryStore()", { revocable: true, old: false }, () =>
  serve(newApp("memory")),
);

describe("the switch-over", () => {
  let before: Listening;
  let oldCookie: string;
  beforeAll(async () => {
    before = await serve(oldApp("cookie"));
    const browser = new Client(before.url);
    await browser.post("/login?user=grace");
    expect((await browser.get("/me")).status).toBe(200);
    oldCookie = browser.jar.get("session") as string;
  });
  afterAll(() => before.close());

  it("keeping the cookie name `session`, the old cookie is refused and cleared on the first response", async () => {
    const after = await serve(newApp("cookie"));
    try {
      const client = new Client(after.url);
      client.jar.set("session", oldCookie);
      const reply = await client.get("/me");
      expect(reply.status).toBe(401);
      expect(cookieLine(reply.setCookies, "session")?.lifetime).toBe(0);
      expect(client.jar.has("session")).toBe(false);
    } finally {
      await after.close();
    }
  });

  it("the guide's bridge carries a signed-in user over once and clears the old cookie", async () => {
    const oldKey = SECRET;
    const sessions = createSessions({ secret: SECRET });
    const app = new Hono<SessionEnv<typeof sessions>>();
    // The bridge, as the guide writes it.
    app.use(sessionMiddleware(sessions)); // its cookie is "sid"
    app.use(async (c, next) => {
      const raw = getCookie(c, "session");
      if (raw !== undefined) {
        deleteCookie(c, "session", { path: "/" });
        const old = await decrypt(oldKey, raw)
          .then((json) => JSON.parse(json as string))
          .catch(() => undefined);
        const live = old && (old._expire === null || Date.parse(old._expire) > Date.now());
        const userId = live ? old._data?.userId?.value : undefined;
        const session = c.get("session");
        if (typeof userId === "string" && session.userId === undefined) {
          await session.regenerate({ userId });
        }
      }
      await next();
    });
    app.get("/me", (c) => {
      const user = c.get("session").userId ?? null;
      return c.json({ user }, user === null ? 401 : 200);
    });
    const after = await serve(app);
    try {
      const client = new Client(after.url);
      client.jar.set("session", oldCookie);
      const first = await client.get("/me");
      expect(JSON.parse(first.text)).toEqual({ user: "grace" });
      expect(client.jar.has("session")).toBe(false);
      expect(client.jar.has("sid")).toBe(true);
      expect((await client.get("/me")).status).toBe(200);
    } finally {
      await after.close();
    }
  });
});
