/**
 * docs/migrating/fastify-session.md, walked as a user would: one small app written with
 * @fastify/session (a store) and with @fastify/secure-session (a sealed cookie) as their READMEs show
 * them (sign-in with regenerate, a counter, a flash-like message, "remember me" through
 * `session.options`, sign-out), and each migrated by the guide to sessionkit/fastify, with a store and
 * without one. One scenario runs against all four over HTTP on loopback: each migrated app keeps its
 * old app's observable behaviour. Then the guide's one-release bridges carry signed-in users over.
 */
import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { session } from "../../src/adapters/fastify.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import { redisStore } from "../../src/stores/redis.js";
import { Client, cookieLine } from "../helpers/http.js";
import { REDIS_URL, serviceAvailable } from "../helpers/services.js";

// The old plugins' types redeclare `request.session` (the guide says so): loaded untyped.
const importUntyped = (specifier: string): Promise<Record<string, any>> => import(specifier);

const SECRET = "migrating-fastify-session-secret-0123456789";
const OLD_KEY = randomBytes(32); // secure-session's 32-byte key
const THIRTY_DAYS_S = 30 * 86_400;

/** The slice of the old plugins' `request.session` the old apps use (both have get/set). */
interface OldSession {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
  options(cookie: { maxAge?: number }): void;
  regenerate(keep?: string[]): unknown;
  save?(): Promise<void>;
  destroy?(): Promise<void>;
  delete?(): void;
}
const old = (request: FastifyRequest) => request.session as unknown as OldSession;

interface Page {
  user: string | null;
  visits: number;
  flash: string | null;
}

/**
 * The routes both old apps share. They differ in sign-out, and in the unit of `session.options`'s
 * `maxAge`: seconds in secure-session, milliseconds in @fastify/session (whose README says seconds).
 */
function oldRoutes(
  app: FastifyInstance,
  rememberMaxAge: number,
  signOut: (request: FastifyRequest) => Promise<void>,
) {
  app.get("/", async (request): Promise<Page> => {
    const s = old(request);
    const visits = ((s.get("visits") as number | undefined) ?? 0) + 1;
    s.set("visits", visits);
    const flash = (s.get("flash") as string | undefined) ?? null;
    s.set("flash", undefined);
    return { user: (s.get("userId") as string | undefined) ?? null, visits, flash };
  });
  app.get("/me", async (request, reply) => {
    const user = old(request).get("userId");
    return user === undefined ? reply.code(401).send({ user: null }) : { user };
  });
  app.post<{ Querystring: { user: string; remember?: string } }>(
    "/login",
    async (request, reply) => {
      await old(request).regenerate(); // both plugins: the data starts empty
      const s = old(request);
      s.set("userId", request.query.user);
      s.set("flash", `Welcome, ${request.query.user}`);
      if (request.query.remember === "on") s.options({ maxAge: rememberMaxAge });
      await s.save?.();
      return reply.redirect("/", 303);
    },
  );
  app.post("/logout", async (request, reply) => {
    await signOut(request);
    return reply.redirect("/", 303);
  });
}

/** Before: @fastify/session with @fastify/cookie, as its README shows it. */
async function fastifySessionApp(store?: unknown) {
  const { default: fastifyCookie } = await importUntyped("@fastify/cookie");
  const { default: fastifySession } = await importUntyped("@fastify/session");
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: SECRET,
    cookie: { secure: false }, // its README: false for plain http, or no cookie at all
    saveUninitialized: false,
    ...(store ? { store } : {}),
  });
  oldRoutes(app, THIRTY_DAYS_S * 1000, async (request) => {
    await old(request).destroy?.(); // the cookie stays, pointing at nothing
  });
  return app;
}

/** Before: @fastify/secure-session, as its README shows it. */
async function secureSessionApp() {
  const { default: fastifySecureSession } = await importUntyped("@fastify/secure-session");
  const app = Fastify();
  await app.register(fastifySecureSession, { key: OLD_KEY, cookie: { path: "/", httpOnly: true } });
  oldRoutes(app, THIRTY_DAYS_S, async (request) => {
    old(request).delete?.(); // clears the cookie
  });
  return app;
}

/** After, by the guide: one app for both, with a store (@fastify/session's) or without (secure-session's). */
async function migratedApp(store: "memory" | "none") {
  const sessions = createSessions({
    secret: SECRET,
    ...(store === "memory" ? { store: memoryStore() } : {}),
    idleTimeout: "1d", // the ordinary session's lifetime
    rememberMe: { idleTimeout: "30d" }, // the remembered one's
    cookie: { persistent: false }, // neither plugin sends Max-Age by default
  });
  const app = Fastify();
  await app.register(session(sessions)); // no @fastify/cookie needed
  app.get("/", async (request): Promise<Page> => {
    const visits = ((request.session.get("visits") as number | undefined) ?? 0) + 1;
    request.session.set("visits", visits);
    const [flash] = request.session.flashes("info");
    return { user: request.session.userId ?? null, visits, flash: flash ?? null };
  });
  app.get("/me", async (request, reply) => {
    const user = request.session.userId;
    return user === undefined ? reply.code(401).send({ user: null }) : { user };
  });
  app.post<{ Querystring: { user: string; remember?: string } }>(
    "/login",
    async (request, reply) => {
      request.session.clear(); // both plugins' regenerate starts empty
      await request.session.regenerate({ userId: request.query.user });
      request.session.flash("info", `Welcome, ${request.query.user}`);
      request.session.rememberMe(request.query.remember === "on");
      return reply.redirect("/", 303); // no save(): committed in onSend
    },
  );
  app.post("/logout", async (request, reply) => {
    request.session.destroy();
    return reply.redirect("/", 303);
  });
  return app;
}

const page = async (client: Client) => JSON.parse((await client.get("/")).text) as Page;

/**
 * The old app's observable behaviour. `revocable`: a store session's old cookie opens nothing after
 * sign-in or sign-out; a cookie session's copy still opens until its deadline (both libraries).
 */
function scenario(
  name: string,
  cookieName: string,
  { revocable, clearsOnSignOut }: { revocable: boolean; clearsOnSignOut: boolean },
  start: () => Promise<FastifyInstance>,
) {
  describe(name, () => {
    let app: FastifyInstance;
    let url: string;
    beforeAll(async () => {
      app = await start();
      url = await app.listen({ port: 0, host: "127.0.0.1" });
    });
    afterAll(() => app.close());

    it("sets no cookie for a visitor who never writes", async () => {
      const reply = await new Client(url).get("/me");
      expect(reply.status).toBe(401);
      expect(reply.setCookies).toEqual([]);
    });

    it("counts visits in the session", async () => {
      const client = new Client(url);
      expect((await page(client)).visits).toBe(1);
      expect(client.jar.has(cookieName)).toBe(true);
      expect((await page(client)).visits).toBe(2);
      expect((await page(client)).visits).toBe(3);
    });

    it("signs in with a new cookie and empty data, and shows the flash once", async () => {
      const client = new Client(url);
      await page(client);
      await page(client);
      const before = client.jar.get(cookieName) as string;
      const login = await client.post("/login?user=ada");
      expect(login.status).toBe(303);
      const set = cookieLine(login.setCookies, cookieName);
      expect(set?.value).toBeTruthy();
      expect(set?.value).not.toBe(before);
      expect(set?.lifetime).toBeUndefined(); // a browser-session cookie
      expect(await page(client)).toEqual({ user: "ada", visits: 1, flash: "Welcome, ada" });
      expect(await page(client)).toEqual({ user: "ada", visits: 2, flash: null });
      const stale = new Client(url);
      stale.jar.set(cookieName, before);
      expect(JSON.parse((await stale.get("/me")).text)).toEqual({ user: null });
    });

    it('"remember me" gives a cookie that outlives the browser, for 30 days', async () => {
      const client = new Client(url);
      const login = await client.post("/login?user=ada&remember=on");
      const lifetime = cookieLine(login.setCookies, cookieName)?.lifetime ?? 0;
      expect(lifetime).toBeGreaterThan(THIRTY_DAYS_S - 60);
      expect(lifetime).toBeLessThanOrEqual(THIRTY_DAYS_S);
      expect((await client.get("/me")).status).toBe(200);
    });

    it(`signs out: the cookie is cleared, and a copy of it ${revocable ? "opens nothing" : "still opens until its deadline"}`, async () => {
      const client = new Client(url);
      await client.post("/login?user=ada");
      const signedIn = client.jar.get(cookieName) as string;
      const logout = await client.post("/logout");
      expect(logout.status).toBe(303);
      expect(client.jar.has(cookieName)).toBe(!clearsOnSignOut);
      expect((await client.get("/me")).status).toBe(401);
      const replay = new Client(url);
      replay.jar.set(cookieName, signedIn);
      expect((await replay.get("/me")).status).toBe(revocable ? 401 : 200);
    });
  });
}

const store = { revocable: true, clearsOnSignOut: true };
const cookie = { revocable: false, clearsOnSignOut: true };
scenario(
  "before: @fastify/session (its MemoryStore)",
  "sessionId",
  { ...store, clearsOnSignOut: false },
  () => fastifySessionApp(),
);
scenario("after: sessionkit/fastify with memoryStore()", "sid", store, () => migratedApp("memory"));
scenario("before: @fastify/secure-session", "session", cookie, secureSessionApp);
scenario("after: sessionkit/fastify, no store", "sid", cookie, () => migratedApp("none"));

describe("the guide's one-release bridge from @fastify/secure-session", () => {
  it("carries a signed-in user over once and clears the old cookie", async () => {
    const before = await secureSessionApp();
    const beforeUrl = await before.listen({ port: 0, host: "127.0.0.1" });
    const oldKey = OLD_KEY;

    // The bridge, as the guide writes it (the module augmentation lives at the end of this file).
    const { createRequire } = await import("node:module");
    const secureSession = createRequire(import.meta.url)("@fastify/secure-session");
    const sessions = createSessions({ secret: SECRET });
    const app = Fastify();
    await app.register(session(sessions)); // its cookie is "sid"
    await app.register(secureSession, {
      sessionName: "legacy",
      cookieName: "session",
      key: oldKey,
    });
    app.addHook("preHandler", async (request) => {
      const legacy = request.legacy;
      const userId = legacy?.get("userId");
      if (!legacy || Object.keys(legacy.data() ?? {}).length === 0) return;
      legacy.delete(); // the old cookie is cleared on this reply
      if (typeof userId === "string" && request.session.userId === undefined) {
        await request.session.regenerate({ userId });
      }
    });
    app.get("/me", async (request, reply) =>
      request.session.userId === undefined
        ? reply.code(401).send({ user: null })
        : { user: request.session.userId },
    );
    const afterUrl = await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const browser = new Client(beforeUrl);
      await browser.post("/login?user=grace");
      const oldCookie = browser.jar.get("session") as string;
      const switched = new Client(afterUrl);
      switched.jar.set("session", oldCookie);
      const first = await switched.get("/me");
      expect(JSON.parse(first.text)).toEqual({ user: "grace" });
      expect(switched.jar.has("session")).toBe(false);
      expect(switched.jar.has("sid")).toBe(true);
      expect((await switched.get("/me")).status).toBe(200);
    } finally {
      await before.close();
      await app.close();
    }
  });
});

declare module "fastify" {
  interface FastifyRequest {
    legacy: { get(key: string): unknown; data(): object | undefined; delete(): void } | null;
  }
}

const redisUp = await serviceAvailable("Redis", REDIS_URL);

describe.skipIf(!redisUp)(
  "the guide's one-release bridge from @fastify/session + connect-redis",
  () => {
    it("carries a signed-in user over once, deletes the old row and clears the old cookie", async () => {
      const client = createClient({ url: REDIS_URL });
      await client.connect();
      const { RedisStore } = await importUntyped("connect-redis");
      const before = await fastifySessionApp(new RedisStore({ client }));
      const beforeUrl = await before.listen({ port: 0, host: "127.0.0.1" });

      // The bridge, as the guide writes it.
      const { signerFactory } = await importUntyped("@fastify/cookie");
      const { parse } = await import("cookie");
      const oldSecret = SECRET;
      const sessions = createSessions({
        secret: SECRET,
        store: redisStore({ client, prefix: "sk-migrating-fastify:" }),
      });
      const app = Fastify();
      await app.register(session(sessions));
      const oldSigner = signerFactory(oldSecret); // @fastify/session's `secret`
      app.addHook("preHandler", async (request, reply) => {
        const raw = parse(request.headers.cookie ?? "").sessionId;
        if (raw === undefined) return;
        reply.header("set-cookie", "sessionId=; Path=/; Max-Age=0");
        const { valid, value } = oldSigner.unsign(raw);
        const old = valid && value ? await client.getDel(`sess:${value}`) : null;
        const userId = old ? (JSON.parse(old).userId as string | undefined) : undefined;
        if (userId && request.session.userId === undefined)
          await request.session.regenerate({ userId });
      });
      app.get("/me", async (request, reply) =>
        request.session.userId === undefined
          ? reply.code(401).send({ user: null })
          : { user: request.session.userId },
      );
      const afterUrl = await app.listen({ port: 0, host: "127.0.0.1" });
      try {
        const browser = new Client(beforeUrl);
        await browser.post("/login?user=grace");
        const oldCookie = browser.jar.get("sessionId") as string;
        const sid = decodeURIComponent(oldCookie).split(".")[0];
        expect(await client.exists(`sess:${sid}`)).toBe(1);

        const switched = new Client(afterUrl);
        switched.jar.set("sessionId", oldCookie);
        const first = await switched.get("/me");
        expect(JSON.parse(first.text)).toEqual({ user: "grace" });
        expect(switched.jar.has("sessionId")).toBe(false);
        expect(switched.jar.has("sid")).toBe(true);
        expect(await client.exists(`sess:${sid}`)).toBe(0);
      } finally {
        await before.close();
        await app.close();
        for (const key of await client.keys("sk-migrating-fastify:*")) await client.del(key);
        await client.quit();
      }
    });
  },
);
