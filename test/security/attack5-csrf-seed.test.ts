/**
 * The fifth review: CSRF tokens bound to a per-session seed (`SessionMeta.csrf`) instead of the id,
 * and Hono's guard reading the form from what Hono's body readers kept on `c.req.bodyCache`.
 * Attacked as a user (does the token survive what it should, and end with what it should) and as an
 * attacker (fixation, leaks, hostile tokens and bodies). Findings are marked in a FINDING comment,
 * each with what was wrong; the other tests pin what holds.
 */
import Database from "better-sqlite3";
import { Hono, type MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import { Redis } from "ioredis";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import * as honoAdapter from "../../src/adapters/hono.js";
import { requireCsrfToken } from "../../src/csrf.js";
import {
  createSessions,
  isSessionError,
  type Session,
  type SessionEvent,
  type SessionStore,
} from "../../src/index.js";
import { closeSession, type SessionState } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { mysqlStore } from "../../src/stores/mysql.js";
import { postgresStore } from "../../src/stores/postgres.js";
import { redisStore } from "../../src/stores/redis.js";
import { sqliteStore } from "../../src/stores/sqlite.js";
import {
  DAY,
  type Harness,
  harness,
  jarToken,
  MINUTE,
  OTHER_SECRET,
  SECRET,
  storeHarness,
} from "../core/harness.js";
import { DATABASE_URL, MYSQL_URL, REDIS_URL, serviceAvailable } from "../helpers/services.js";

const HERE = "https://app.example.com/transfer";
const RENEWING = { renewInterval: "1d", absoluteTimeout: "30d", idleTimeout: "7d" } as const;

afterEach(() => {
  vi.restoreAllMocks();
});

/** The CSRF seed a session keeps in its meta (internal: no public API shows it). */
function seedOf(session: Session): string | undefined {
  return (session as SessionState).meta.csrf;
}

/** A token issued in one request of `h`, after which the session (and its seed) is saved. */
async function tokenOf(h: Harness): Promise<string> {
  let token = "";
  await h.request(async (session) => {
    token = await session.csrfToken();
  });
  return token;
}

/** Whether the next request of `h` (its jar's cookie, committed) accepts `token`. */
async function verifies(h: Harness, token: unknown): Promise<boolean> {
  let ok = false;
  await h.request(async (session) => {
    ok = await session.verifyCsrfToken(token);
  });
  return ok;
}

/** Loads `h`'s session as Next's `getSession` does: load, close, never commit. */
async function readOnly(h: Harness): Promise<Session> {
  const headers = new Headers();
  const cookie = h.jar.header();
  if (cookie !== undefined) headers.set("cookie", cookie);
  const session = await h.sessions.load(new Request(HERE, { headers }));
  closeSession(session);
  return session;
}

describe("a token asked of a session that is read-only (Next's getSession)", () => {
  // FINDING: a read-only load (Next's `getSession` closes the session and never commits it) of a
  // session due for `renewInterval` renews it in memory: the id moves, and nothing ever sends the
  // new one. A session without a seed then got a token of that new id (`this.id`), which no later
  // request brings back: the Server Component's form was refused every time. The token is now of
  // the id the client holds: the one it came with, unless a commit carries a new one.
  it.each([
    ["cookie", harness],
    ["memory store", storeHarness],
  ] as const)(
    "%s: a session without a seed, due for renewal, gets a token its next request accepts",
    async (_mode, make) => {
      const h = make(RENEWING);
      await h.request((session) => session.set("n", 1));
      h.clock.advance(DAY + MINUTE);
      const session = await readOnly(h);
      const token = await session.csrfToken();
      expect(seedOf(session)).toBeUndefined();
      // The POST the form makes: the request that renews accepts the id it came with.
      expect(await verifies(h, token)).toBe(true);
    },
  );

  it("a session with a seed gets a token of its seed, renewal or not", async () => {
    const h = harness(RENEWING);
    await tokenOf(h);
    h.clock.advance(DAY + MINUTE);
    const session = await readOnly(h);
    const token = await session.csrfToken();
    expect(await verifies(h, token)).toBe(true);
    h.clock.advance(DAY + MINUTE);
    expect(await verifies(h, token)).toBe(true);
  });

  it("once a commit has carried the renewal (the response began), the token is of the new id", async () => {
    const h = storeHarness(RENEWING);
    await h.request((session) => session.set("n", 1));
    h.clock.advance(DAY + MINUTE);
    let token = "";
    await h.request(async (session) => {
      const headers = new Headers();
      closeSession(session);
      // What commitLast does as the response begins: the commit that sends the new id.
      const committing = h.sessions.commit(session, headers);
      token = await session.csrfToken();
      await committing;
      h.jar.apply(headers.getSetCookie());
    });
    expect(await verifies(h, token)).toBe(true);
  });
});

describe("sign-in, sign-out and revocation end the seed's tokens", () => {
  it("revoke() from another device ends the revoked device's tokens", async () => {
    const h = storeHarness();
    let token = "";
    await h.request(async (session) => {
      await session.regenerate({ userId: "alice" });
      token = await session.csrfToken();
    });
    const [device] = await h.sessions.listByUser("alice");
    expect(await h.sessions.revoke("alice", device?.handle as string)).toBe(true);
    expect(await verifies(h, token)).toBe(false);
  });

  it("clear() keeps the session, its user and its tokens (it is no sign-out)", async () => {
    for (const h of [harness(), storeHarness()]) {
      let token = "";
      await h.request(async (session) => {
        await session.regenerate({ userId: "alice" });
        session.set("cart", [1, 2]);
        token = await session.csrfToken();
      });
      await h.request((session) => session.clear());
      let user: string | undefined;
      let ok = false;
      await h.request(async (session) => {
        user = session.userId;
        ok = await session.verifyCsrfToken(token);
      });
      expect([user, ok]).toEqual(["alice", true]);
    }
  });

  it("a sign-in in the request that renews ends the tokens of the seed and of both ids", async () => {
    const h = storeHarness(RENEWING);
    const seedToken = await tokenOf(h);
    // A token of the id, as versions before seeds made them: a late token of a read-only load
    // whose seed is set aside here.
    const session = (await readOnly(h)) as SessionState;
    session.meta = { ...session.meta, csrf: undefined };
    const idToken = await session.csrfToken();
    h.clock.advance(DAY + MINUTE);
    const verdicts: boolean[] = [];
    await h.request(async (s) => {
      // Renewed at load: both still pass before the sign-in...
      verdicts.push(await s.verifyCsrfToken(seedToken), await s.verifyCsrfToken(idToken));
      await s.regenerate({ userId: "alice" });
      // ...and neither after it, in the same request.
      verdicts.push(await s.verifyCsrfToken(seedToken), await s.verifyCsrfToken(idToken));
    });
    expect(verdicts).toEqual([true, true, false, false]);
    expect(await verifies(h, seedToken)).toBe(false);
    expect(await verifies(h, idToken)).toBe(false);
  });
});

describe("seed fixation: an attacker's own seed and tokens", () => {
  it("a signed cookie shows the seed, but an attacker's copy with their own seed spliced in is refused", async () => {
    const attacker = harness({ mode: "signed" });
    const attackerToken = await tokenOf(attacker);
    const victim = harness({ mode: "signed" });
    await victim.request((session) => session.set("n", 1));
    await victim.request(async (session) => {
      await session.csrfToken();
    });
    const cookie = jarToken(victim.jar) as string;
    // s1.<kid>.<base64url(JSON)>.<mac>: the JSON is readable, and carries the seed under "x".
    const [v, kid, payload, mac] = cookie.split(".");
    const json = Buffer.from(payload as string, "base64url").toString();
    const victimSeed = JSON.parse(json).x as string;
    expect(victimSeed).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const attackerSeed = JSON.parse(
      Buffer.from(
        (jarToken(attacker.jar) as string).split(".")[2] as string,
        "base64url",
      ).toString(),
    ).x as string;
    const spliced = Buffer.from(json.replace(victimSeed, attackerSeed)).toString("base64url");
    const forged = [v, kid, spliced, mac].join(".");
    const replay = await victim.request(async () => {}, { cookie: `sid=${forged}`, keepJar: true });
    expect(replay.session.isNew).toBe(true);
    expect(victim.invalid).toContain("tampered");
    // The attacker's token is nothing to the victim's own session either.
    expect(await verifies(victim, attackerToken)).toBe(false);
  });

  it("knowing a seed forges nothing: a MAC of the seed's message under any key but the server's is refused", async () => {
    const h = harness({ mode: "signed" });
    await tokenOf(h);
    let session: Session | undefined;
    await h.request((s) => {
      session = s;
    });
    const seed = seedOf(session as Session) as string;
    const { createHmac } = await import("node:crypto");
    for (const key of ["", seed, SECRET, OTHER_SECRET]) {
      const mac = createHmac("sha256", key).update(`sid\0seed\0${seed}`).digest();
      const bytes = new Uint8Array(64);
      bytes.set(mac, 32);
      const kid = (jarToken(h.jar) as string).split(".")[1];
      const forged = `c1.${kid}.${Buffer.from(bytes).toString("base64url")}`;
      expect(await (session as Session).verifyCsrfToken(forged)).toBe(false);
    }
  });

  it("an attacker's token is refused by a victim's session that has no seed yet (the id's fallback)", async () => {
    const attacker = storeHarness();
    const attackerToken = await tokenOf(attacker);
    const victim = storeHarness();
    await victim.request((session) => session.set("n", 1));
    let ok = true;
    let seed: string | undefined = "";
    await victim.request(async (session) => {
      ok = await session.verifyCsrfToken(attackerToken);
      seed = seedOf(session);
    });
    expect([ok, seed]).toEqual([false, undefined]);
  });
});

describe("verifyCsrfToken on hostile input", () => {
  it("resolves false, never throws, for non-strings, huge strings, odd key ids and near-misses", async () => {
    const h = harness({ secret: [SECRET, OTHER_SECRET] });
    const token = await tokenOf(h);
    const [, kid, masked] = token.split(".") as [string, string, string];
    const throwing = {
      toString() {
        throw new Error("toString");
      },
    };
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const candidates: unknown[] = [
      undefined,
      null,
      0,
      1n,
      Symbol("x"),
      throwing,
      revoked.proxy,
      [token],
      { toString: () => token },
      new String(token),
      "x".repeat(10_000_000),
      `c1.${kid}.${masked}${"A".repeat(1_000_000)}`,
      ...["__proto__", "constructor", "hasOwnProperty", "", ".", "🙂"].map(
        (id) => `c1.${id}.${masked}`,
      ),
      `c1.${kid}.${masked.slice(0, -1)}\u{1F642}`,
      `c1.${kid}.${masked.slice(0, -2)}\uD800`,
      `c1.${kid}.${masked.replace(/./, "+")}`,
      `c1.${kid}.${masked}\0`,
      `C1.${kid}.${masked}`,
      ` ${token}`,
      token.toUpperCase(),
    ];
    let session: Session | undefined;
    await h.request((s) => {
      session = s;
    });
    for (const candidate of candidates) {
      const verdict = await (session as Session).verifyCsrfToken(candidate);
      expect(
        verdict,
        typeof candidate === "string" ? candidate.slice(0, 40) : String(typeof candidate),
      ).toBe(false);
    }
    expect(await (session as Session).verifyCsrfToken(token)).toBe(true);
  });
});

type HonoEnv = honoAdapter.SessionEnv;

/** A Hono app with its own manager, `mount` adding routes; `token` fetches a token and cookie. */
function honoApp(mount: (app: Hono<HonoEnv>) => void) {
  const app = new Hono<HonoEnv>();
  mount(app);
  app.get("/token", async (c) => c.text(await c.get("session").csrfToken()));
  let cookie = "";
  return {
    app,
    async token(): Promise<string> {
      const res = await app.request("/token");
      cookie = (res.headers.getSetCookie()[0] ?? "").split(";")[0] as string;
      return res.text();
    },
    post(path: string, init: { headers?: Record<string, string>; body?: BodyInit } = {}) {
      return app.request(path, {
        method: "POST",
        headers: { cookie, ...init.headers },
        body: init.body ?? null,
      });
    },
  };
}

const urlencoded = (fields: Record<string, string>) => ({
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});

const readBody: MiddlewareHandler<HonoEnv> = async (c, next) => {
  await c.req.parseBody();
  await next();
};

describe("Hono: the guard's Request behind a reader of the body", () => {
  // FINDING: `sessionGuard` hands guards a Request rebuilt from what Hono kept (`guardRequest`),
  // but `sessionMiddleware`'s own `guards` (and a second mount's) were still handed the spent raw
  // Request: behind a middleware that read the body first (a logger reading `c.req.text()`, a
  // global `parseBody`), a form's valid token was refused there. It fails closed, and the page
  // says "the guard reads the form from what Hono kept". Both now get the same Request.
  it("sessionMiddleware's own guards read the form a middleware before it already read", async () => {
    const t = honoApp((app) => {
      app.use(readBody);
      app.use(
        honoAdapter.sessionMiddleware(createSessions({ secret: SECRET }), {
          guards: [requireCsrfToken()],
        }),
      );
      app.post("/", async (c) => c.text(`done ${(await c.req.parseBody()).amount}`));
    });
    const token = await t.token();
    const ok = await t.post("/", urlencoded({ amount: "5", _csrf: token }));
    expect([ok.status, await ok.text()]).toEqual([200, "done 5"]);
    const missing = await t.post("/", urlencoded({ amount: "5" }));
    expect(missing.status).toBe(403);
  });

  it("a second mount's guards read it too", async () => {
    const sessions = createSessions({ secret: SECRET });
    const t = honoApp((app) => {
      app.use(honoAdapter.sessionMiddleware(sessions));
      const sub = new Hono<HonoEnv>();
      sub.use(readBody);
      sub.use(honoAdapter.sessionMiddleware(sessions, { guards: [requireCsrfToken()] }));
      sub.post("/", async (c) => c.text(`done ${(await c.req.parseBody()).amount}`));
      app.route("/sub", sub);
    });
    const token = await t.token();
    const ok = await t.post("/sub", urlencoded({ amount: "6", _csrf: token }));
    expect([ok.status, await ok.text()]).toEqual([200, "done 6"]);
    expect((await t.post("/sub", urlencoded({ amount: "6" }))).status).toBe(403);
  });
});

describe("Hono: what the guard copies of a body Hono kept", () => {
  const BIG = 8 * 1024 * 1024;

  /** Counts copies of an ArrayBuffer of at least `BIG` bytes made between `start` and `stop`. */
  function copyCounter() {
    let counting = false;
    let copies = 0;
    const slice = ArrayBuffer.prototype.slice;
    vi.spyOn(ArrayBuffer.prototype, "slice").mockImplementation(function (
      this: ArrayBuffer,
      ...args: [number?, number?]
    ) {
      if (counting && this.byteLength >= BIG) copies++;
      return slice.apply(this, args);
    });
    const start: MiddlewareHandler<HonoEnv> = async (_c, next) => {
      counting = true;
      await next();
    };
    const stop: MiddlewareHandler<HonoEnv> = async (_c, next) => {
      counting = false;
      await next();
    };
    return { start, stop, copies: () => copies };
  }

  // FINDING: behind a reader (`parseBody`, `validator("form")`, which keep the body's bytes), the
  // guard's Request was built with those bytes as its body and no Content-Length: `new Request`
  // copies an ArrayBuffer whole (undici: `object.slice()`), before any guard ran, so every guarded
  // POST paid one more copy of its whole body (an 8 MiB upload: 8 MiB more, and the copy's time on
  // the event loop), also when the token came in the header and no guard read the body, and
  // `maxFormBytes` could not refuse it by its declared size. The Request now declares the size
  // Hono kept and copies the bytes only if a guard reads them.
  it.each(["parse-body", "form-validator"] as const)(
    "%s: a large body is not copied for the guard, and maxFormBytes refuses it by its declared size",
    async (reader) => {
      const counter = copyCounter();
      let declared: string | null = "unset";
      const capture = (_s: Session, request: Request | undefined) => {
        declared = request?.headers.get("content-length") ?? null;
        return undefined;
      };
      const t = honoApp((app) => {
        app.use(honoAdapter.sessionMiddleware(createSessions({ secret: SECRET })));
        app.post(
          "/upload",
          reader === "parse-body"
            ? readBody
            : (validator("form", (value) => value) as unknown as MiddlewareHandler<HonoEnv>),
          counter.start,
          honoAdapter.sessionGuard(capture, requireCsrfToken({ maxFormBytes: 1024 })),
          counter.stop,
          async (c) => c.text(`got ${String((await c.req.parseBody()).pad).length}`),
        );
      });
      const token = await t.token();
      const big = urlencoded({ _csrf: token, pad: "x".repeat(BIG) });
      const size = Buffer.byteLength(big.body);
      // The token in the header: no guard needs the body.
      const viaHeader = await t.post("/upload", {
        headers: { ...big.headers, "x-csrf-token": token },
        body: big.body,
      });
      expect([viaHeader.status, await viaHeader.text()]).toEqual([200, `got ${BIG}`]);
      expect(declared).toBe(String(size));
      // In the form, past maxFormBytes: refused, unread.
      const viaForm = await t.post("/upload", big);
      expect(viaForm.status).toBe(403);
      expect(counter.copies()).toBe(0);
      // A small form still passes with its field, read from the bytes Hono kept.
      const small = await t.post("/upload", urlencoded({ _csrf: token, pad: "abc" }));
      expect([small.status, await small.text()]).toEqual([200, "got 3"]);
    },
  );
});

describe("Hono: hostile bodies behind a reader", () => {
  const formDataReader: MiddlewareHandler<HonoEnv> = async (c, next) => {
    await c.req.formData().catch(() => undefined);
    await next();
  };
  const textReader: MiddlewareHandler<HonoEnv> = async (c, next) => {
    await c.req.text();
    await next();
  };
  const failingParse: MiddlewareHandler<HonoEnv> = async (c, next) => {
    await c.req.parseBody().catch(() => undefined);
    await next();
  };
  const formValidator = validator(
    "form",
    (value) => value,
  ) as unknown as MiddlewareHandler<HonoEnv>;

  function app() {
    return honoApp((a) => {
      a.use(honoAdapter.sessionMiddleware(createSessions({ secret: SECRET })));
      const guard = honoAdapter.sessionGuard(requireCsrfToken());
      a.post("/form-data", formDataReader, guard, async (c) => {
        const file = (await c.req.formData()).get("upload") as File;
        return c.text(`${file.name} ${await file.text()}`);
      });
      // A guard of the app's own that reads the whole form the guard's Request carries.
      const echo = honoAdapter.sessionGuard(
        async (_s, request) =>
          new Response(String((await request?.clone().formData())?.get("note")), { status: 299 }),
      );
      a.post("/text", textReader, guard, echo);
      a.post("/failing", failingParse, guard, (c) => c.text("ran"));
      a.post("/validated", formValidator, guard, (c) => c.text("ran"));
    });
  }

  it("a FormData Hono kept with a file part is read for its _csrf, and the handler still has the file", async () => {
    const t = app();
    const token = await t.token();
    const form = new FormData();
    form.append("upload", new File(["hello file"], "a.txt", { type: "text/plain" }));
    form.append("_csrf", token);
    const ok = await t.post("/form-data", { body: form });
    expect([ok.status, await ok.text()]).toEqual([200, "a.txt hello file"]);
    const without = new FormData();
    without.append("upload", new File(["x"], "a.txt"));
    expect((await t.post("/form-data", { body: without })).status).toBe(403);
  });

  it("text Hono kept is read whole across its chunks: a surrogate pair on a chunk's edge stays whole", async () => {
    const t = app();
    const token = await t.token();
    // Raw UTF-8 in the form (as browsers send a form's accept-charset): "note=ab" is 7 UTF-16 units,
    // so a pair starts at every odd unit and one straddles the 16 384th; the token comes after.
    const note = `ab${"\u{1F642}".repeat(10_000)}`;
    expect(`note=${note}`.charCodeAt(16_383)).toBe(0xd83d);
    const ok = await t.post("/text", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `note=${note}&_csrf=${token}`,
    });
    expect([ok.status, await ok.text()]).toEqual([299, note]);
  });

  it("a malformed multipart a reader failed on is refused (403), never a 500", async () => {
    const t = app();
    const token = await t.token();
    const reply = await t.post("/failing", {
      headers: { "content-type": "multipart/form-data; boundary=zzz" },
      body: `--zzz\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${token}\r\n--zz`,
    });
    expect(reply.status).toBe(403);
  });

  it("of two multipart _csrf fields behind validator('form'), the first counts", async () => {
    const t = app();
    const token = await t.token();
    const two = (first: string, second: string) => {
      const form = new FormData();
      form.append("_csrf", first);
      form.append("_csrf", second);
      return { body: form };
    };
    expect((await t.post("/validated", two("forged", token))).status).toBe(403);
    expect((await t.post("/validated", two(token, "forged"))).status).toBe(200);
  });

  it("a body whose Content-Type says form but a reader parsed as JSON is read as the form it is", async () => {
    const t = honoApp((a) => {
      a.use(honoAdapter.sessionMiddleware(createSessions({ secret: SECRET })));
      a.post(
        "/json",
        async (c, next) => {
          await c.req.json().catch(() => undefined);
          await next();
        },
        honoAdapter.sessionGuard(requireCsrfToken()),
        (c) => c.text("ran"),
      );
    });
    const token = await t.token();
    // The guard judges what the headers say the body is; a JSON-typed body is no form (the
    // existing hono-csrf-parsed test), and a form-typed one is one, whoever read it how.
    expect((await t.post("/json", urlencoded({ _csrf: token }))).status).toBe(200);
    expect((await t.post("/json", urlencoded({ _csrf: "forged" }))).status).toBe(403);
  });
});

const [pgUp, mysqlUp, redisUp] = await Promise.all([
  serviceAvailable("PostgreSQL", DATABASE_URL),
  serviceAvailable("MySQL", MYSQL_URL),
  serviceAvailable("Redis", REDIS_URL),
]);

describe("the seed in every store, through the manager", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  });
  const table = `attack5_seed_${process.pid}`;
  type Make = (now: () => number) => SessionStore;
  const stores: Array<[string, boolean, Make]> = [
    ["memory", true, (now) => memoryStore({ now })],
    ["sqlite", true, (now) => sqliteStore({ db: new Database(":memory:"), now })],
    [
      "postgres",
      pgUp,
      (now) => {
        const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
        cleanups.push(async () => {
          await pool.query(`DROP TABLE IF EXISTS ${table}`);
          await pool.end();
        });
        return postgresStore({ pool, table, now });
      },
    ],
    [
      "mysql",
      mysqlUp,
      (now) => {
        const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
        cleanups.push(async () => {
          await pool.query(`DROP TABLE IF EXISTS ${table}`);
          await pool.end();
        });
        return mysqlStore({ pool, table, now });
      },
    ],
    [
      "redis",
      redisUp,
      (now) => {
        const client = new Redis(REDIS_URL);
        cleanups.push(() => client.quit());
        return redisStore({ client, prefix: `attack5:${process.pid}:`, now });
      },
    ],
  ];

  it.each(stores)(
    "%s: kept by patches, a touch, rememberMe and a renewal (moved with the record); gone from the row at sign-in",
    async (_name, up, make) => {
      if (!up) return;
      // Real time, so a server that expires keys by its own clock (Redis) keeps them.
      let now = () => Date.now();
      const store = make(() => now());
      const h = harness({ store, ...RENEWING, touchInterval: "1h", now: () => now() });
      const offset = Date.now() - h.clock.now();
      now = () => offset + h.clock.now();
      const user = `alice-${process.pid}-${Math.random().toString(36).slice(2)}`;
      const keyOf = (session: Session) => (session as SessionState).origin?.key as string;
      const rowSeed = async (key: string) => (await store.get(key))?.meta.csrf;

      let token = "";
      const first = await h.request(async (s) => {
        await s.regenerate({ userId: user });
        token = await s.csrfToken();
      });
      const seed = seedOf(first.session) as string;
      const k1 = keyOf(first.session);
      expect(await rowSeed(k1)).toBe(seed);
      // A data patch, then a remember-me patch: the seed stays.
      await h.request((s) => s.set("n", 1));
      await h.request((s) => s.rememberMe(true));
      expect(await rowSeed(k1)).toBe(seed);
      // A touch (idle slide), with nothing written.
      h.clock.advance(3 * 60 * MINUTE);
      const before = (await store.get(k1))?.meta.touchedAt as number;
      const touched = await h.request();
      expect(keyOf(touched.session)).toBe(k1);
      expect((await store.get(k1))?.meta.touchedAt).toBeGreaterThan(before);
      expect(await rowSeed(k1)).toBe(seed);
      // The renewal moves the record, seed and all, and the old row is gone.
      h.clock.advance(DAY + MINUTE);
      const renewed = await h.request();
      const k2 = keyOf(renewed.session);
      expect(k2).not.toBe(k1);
      expect(await store.get(k1)).toBeUndefined();
      expect(await rowSeed(k2)).toBe(seed);
      expect(await verifies(h, token)).toBe(true);
      // Signing in again: the new row has no seed, the old one is gone, the token is refused.
      const signedIn = await h.request(async (s) => {
        await s.regenerate({ userId: user });
      });
      const k3 = keyOf(signedIn.session);
      const row = await store.get(k3);
      expect(row?.meta.userId).toBe(user);
      expect(row?.meta).not.toHaveProperty("csrf");
      expect(await store.get(k2)).toBeUndefined();
      expect(await verifies(h, token)).toBe(false);
      // listByUser shows no seed (here: none at all, the current one has none; make one).
      await h.request(async (s) => {
        await s.csrfToken();
      });
      const listed = JSON.stringify(await h.sessions.listByUser(user));
      const current = (await store.get(k3))?.meta.csrf as string;
      expect(current).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(listed).not.toContain(current);
      await h.sessions.destroyByUser(user);
    },
  );
});

describe("cookie sessions: size, chunks and rotation", () => {
  it("a session too near maxSize for its seed: csrfToken throws ERR_SESSION_TOO_LARGE and nothing changes", async () => {
    for (const mode of ["encrypted", "signed"] as const) {
      const h = harness({ mode });
      // The largest value that still fits, found by the size guard itself.
      await h.request((s) => {
        let low = 0;
        let high = 20_000;
        while (low < high) {
          const mid = Math.ceil((low + high) / 2);
          try {
            s.set("pad", "x".repeat(mid));
            low = mid;
          } catch (err) {
            if (!isSessionError(err, "ERR_SESSION_TOO_LARGE")) throw err;
            high = mid - 1;
          }
        }
        s.set("pad", "x".repeat(low));
      });
      const cookie = h.jar.header();
      let thrown: unknown;
      let seed: string | undefined = "unset";
      const asked = await h.request(async (s) => {
        thrown = await s.csrfToken().catch((err: unknown) => err);
        seed = seedOf(s);
        expect(s.isDirty).toBe(false);
      });
      expect(isSessionError(thrown, "ERR_SESSION_TOO_LARGE"), mode).toBe(true);
      expect(seed).toBeUndefined();
      expect(asked.lines).toEqual([]);
      expect(h.jar.header()).toBe(cookie);
      // The session is as it was, and makes room for a seed once it shrinks.
      let token = "";
      await h.request(async (s) => {
        expect((s.get("pad") as string).length).toBeGreaterThan(1000);
        s.set("pad", "small");
        token = await s.csrfToken();
      });
      expect(await verifies(h, token)).toBe(true);
    }
  });

  it("a chunked session keeps its seed across its chunks and a renewal", async () => {
    const h = harness({ maxSize: 16_384, ...RENEWING });
    let token = "";
    await h.request(async (s) => {
      s.set("big", "y".repeat(9000));
      token = await s.csrfToken();
    });
    expect(h.jar.cookies.has("sid.1")).toBe(true);
    expect(await verifies(h, token)).toBe(true);
    h.clock.advance(DAY + MINUTE);
    expect(await verifies(h, token)).toBe(true); // renewed
    expect(await verifies(h, token)).toBe(true); // and after it
  });

  it("a cookie re-sealed under a new secret keeps its seed: old-key tokens verify while listed, none once dropped", async () => {
    const h = harness();
    const token = await tokenOf(h);
    const rotated = harness({ secret: [OTHER_SECRET, SECRET] });
    for (const [name, value] of h.jar.cookies) rotated.jar.cookies.set(name, value);
    const before = jarToken(rotated.jar);
    let fresh = "";
    await rotated.request(async (s) => {
      expect(await s.verifyCsrfToken(token)).toBe(true);
      fresh = await s.csrfToken();
    });
    expect(jarToken(rotated.jar)).not.toBe(before); // re-sealed with the new key
    expect(await verifies(rotated, token)).toBe(true);
    const dropped = harness({ secret: OTHER_SECRET });
    for (const [name, value] of rotated.jar.cookies) dropped.jar.cookies.set(name, value);
    expect(await verifies(dropped, fresh)).toBe(true); // the same seed, re-sealed
    expect(await verifies(dropped, token)).toBe(false); // its key is gone
  });
});

describe("the seed leaks nowhere", () => {
  it("not in an event across sign-in, renewal and sign-out, an onInvalid reason, the size error, or the header transport", async () => {
    const events: SessionEvent[] = [];
    const reasons: string[] = [];
    const h = harness({
      onEvent: (event) => events.push(event),
      onInvalid: (reason) => reasons.push(reason),
      header: "x-session",
      ...RENEWING,
    });
    let seed = "";
    let token = "";
    let held = "";
    const signIn = await h.request(
      async (s) => {
        await s.regenerate({ userId: "alice" });
        token = await s.csrfToken();
        seed = seedOf(s) as string;
      },
      { headers: { "x-session": "" } },
    );
    held = signIn.headers.get("x-session") as string;
    h.clock.advance(DAY + MINUTE);
    const renewal = await h.request(() => {}, { headers: { "x-session": held } });
    held = renewal.headers.get("x-session") as string;
    const said: string[] = [held, signIn.headers.get("x-session") as string];
    await h.request(
      (s) => {
        try {
          s.set("pad", "z".repeat(100_000));
        } catch (err) {
          said.push((err as Error).message);
        }
        s.destroy();
      },
      { headers: { "x-session": held } },
    );
    // A tampered token: refused, with a reason.
    await h.request(() => {}, { headers: { "x-session": `${held.slice(0, -2)}AA` } });
    said.push(JSON.stringify(events), JSON.stringify(reasons));
    expect(seed).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(events.map((e) => e.type)).toEqual(["created", "renewed", "destroyed", "invalid"]);
    expect(reasons).toContain("tampered");
    const text = said.join("\n");
    expect(text).not.toContain(seed);
    expect(text).not.toContain(token.split(".")[2] as string);
  });
});

describe("the session object, serialized", () => {
  // FINDING: `JSON.stringify(session)` (Express's `res.json(req.session)`, Hono's
  // `c.json(c.get("session"))`, a structured logger given the session) and `console.log(session)`
  // printed the class's own fields: the id (the credential), `meta.csrf` (the seed) and
  // `transport.token` (the cookie itself). Habits from express-session, whose `req.session` is the
  // data, make this likely. The session now serializes to its data, user, isNew and createdAt.
  it("shows neither the id, the CSRF seed nor the cookie token, in JSON or console.log", async () => {
    const { inspect } = await import("node:util");
    for (const h of [harness(), harness({ mode: "signed" }), storeHarness()]) {
      await h.request(async (s) => {
        await s.regenerate({ userId: "alice" });
        s.set("theme", "dark");
        await s.csrfToken();
      });
      let shown = "";
      let secrets: string[] = [];
      await h.request((s) => {
        shown = `${JSON.stringify(s)}\n${inspect(s, { depth: 10 })}`;
        secrets = [s.id, seedOf(s) as string, jarToken(h.jar) as string];
      });
      for (const secret of secrets) expect(shown).not.toContain(secret);
      expect(JSON.parse(shown.split("\n")[0] as string)).toMatchObject({
        data: { theme: "dark" },
        userId: "alice",
        isNew: false,
      });
    }
  });
});
