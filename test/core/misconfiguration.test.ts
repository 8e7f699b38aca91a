/**
 * A user who gets the configuration wrong: every mistake fails when the app starts (createSessions,
 * an adapter's factory, a store's factory), never as a 500, a 503 or a silent default on the first
 * request, with a message that says what to change and holds no secret. No server is needed: the
 * drivers' clients below are made but never connected.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import express from "express";
import Fastify from "fastify";
import mysqlCallback from "mysql2";
import pg from "pg";
import { createClient } from "redis";
import { afterAll, describe, expect, it } from "vitest";
import * as expressAdapter from "../../src/adapters/express.js";
import * as fastifyAdapter from "../../src/adapters/fastify.js";
import * as fetchAdapter from "../../src/adapters/fetch.js";
import * as h3Adapter from "../../src/adapters/h3.js";
import * as honoAdapter from "../../src/adapters/hono.js";
import * as koaAdapter from "../../src/adapters/koa.js";
import * as nodeAdapter from "../../src/adapters/node.js";
import * as oakAdapter from "../../src/adapters/oak.js";
import { ConfigError, createSessions, isSessionError } from "../../src/index.js";
import type { SessionsOptions } from "../../src/options.js";
import { memoryStore } from "../../src/stores/memory.js";
import { mysqlStore } from "../../src/stores/mysql.js";
import { postgresStore } from "../../src/stores/postgres.js";
import { redisStore } from "../../src/stores/redis.js";
import { sqliteStore } from "../../src/stores/sqlite.js";
import { OTHER_SECRET, SECRET } from "./harness.js";

/** The ConfigError `make` throws; fails the test if it throws nothing or something else. */
function configError(make: () => unknown): ConfigError {
  try {
    make();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect(isSessionError(err, "ERR_CONFIG")).toBe(true);
    expect((err as Error).message.startsWith("sessionkit: ")).toBe(true);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError, but nothing was thrown");
}

const create = (options: Record<string, unknown>) =>
  createSessions({ secret: SECRET, ...options } as unknown as SessionsOptions);

describe("createSessions: the secret", () => {
  it("says an undefined secret most likely comes from an unset environment variable", () => {
    const err = configError(() => createSessions({ secret: process.env.SK_UNSET_FOR_TEST! }));
    expect(err.message).toMatch(/"secret" option is required but is undefined/);
    expect(err.message).toMatch(/environment variable/);
  });

  it("says an empty secret most likely comes from an environment variable set to nothing", () => {
    const err = configError(() => createSessions({ secret: "" }));
    expect(err.message).toMatch(/empty/);
    expect(err.message).toMatch(/environment variable/);
  });

  it("names the undefined entry of a secret list, and prints none of the others", () => {
    const err = configError(() => createSessions({ secret: [SECRET, undefined as never] }));
    expect(err.message).toMatch(/secret #2 is undefined/);
    expect(err.message).toMatch(/environment variable/);
    expect(err.message).not.toContain(SECRET);
  });

  it("names the undefined entry of a secret map by its key id, and prints none of the others", () => {
    const err = configError(() =>
      createSessions({ secret: { v2: undefined as never, v1: OTHER_SECRET } }),
    );
    expect(err.message).toMatch(/secret "v2" is undefined/);
    expect(err.message).not.toContain(OTHER_SECRET);
  });

  it("refuses a Buffer secret, saying to pass it as a string (not as a list of whole-number key ids)", () => {
    const err = configError(() => createSessions({ secret: Buffer.from(SECRET) as never }));
    expect(err.message).toMatch(/"secret" must be a string, not bytes/);
    expect(err.message).toMatch(/base64url/);
    expect(err.message).not.toMatch(/key id/);
  });

  it("refuses a Uint8Array secret the same way", () => {
    const err = configError(() => createSessions({ secret: new Uint8Array(48) as never }));
    expect(err.message).toMatch(/not bytes/);
  });
});

describe("createSessions: durations", () => {
  it("refuses an idleTimeout longer than the absoluteTimeout, which could then never apply", () => {
    const err = configError(() => create({ idleTimeout: "30d", absoluteTimeout: "1d" }));
    expect(err.message).toMatch(/"idleTimeout" \(30d\) is longer than "absoluteTimeout" \(1d\)/);
  });

  it("refuses an idleTimeout longer than the default absoluteTimeout, naming that default", () => {
    const err = configError(() => create({ idleTimeout: "60d" }));
    expect(err.message).toMatch(/"absoluteTimeout" \(default 30d\)/);
  });

  it("accepts an absoluteTimeout shorter than the default idleTimeout: the user chose only that one", () => {
    expect(() => create({ absoluteTimeout: "1d" })).not.toThrow();
    expect(() => create({ idleTimeout: "1d", absoluteTimeout: "1d" })).not.toThrow();
  });

  it("refuses a renewInterval no shorter than the absoluteTimeout, under which nothing would renew", () => {
    const err = configError(() => create({ renewInterval: "60d" }));
    expect(err.message).toMatch(/"renewInterval" \(60d\)/);
    expect(err.message).toMatch(/"absoluteTimeout" \(default 30d\)/);
    expect(() => create({ renewInterval: "60d", absoluteTimeout: false })).not.toThrow();
  });

  it("refuses a number of seconds past 400 days, asking whether it was milliseconds", () => {
    // 7 days in milliseconds, as express-session's cookie.maxAge takes it: 19 years in seconds.
    const err = configError(() => create({ idleTimeout: 604_800_000 }));
    expect(err.message).toMatch(/"idleTimeout"/);
    expect(err.message).toMatch(/seconds, not milliseconds/);
    expect(err.message).toMatch(/400 days/);
  });

  it("refuses whole minutes in milliseconds that fall short of 400 days as seconds", () => {
    // 30 minutes as express-session's cookie.maxAge: 1 800 000 seconds, 20.8 days.
    const err = configError(() => create({ idleTimeout: 30 * 60 * 1000 }));
    expect(err.message).toMatch(/"idleTimeout" is 1800000 seconds \(20.8 days\)/);
    expect(err.message).toMatch(/"30m" for 30 minutes, or "1800000s"/);
    expect(() => create({ touchInterval: 60_000, idleTimeout: "30d" })).toThrow(ConfigError);
    expect(() => create({ store: memoryStore(), lock: { wait: 120_000 } })).toThrow(
      /"lock.wait" is 120000 seconds/,
    );
    // Seconds as people write them (whole days among them, though 100 days is 144 000 minutes),
    // and the same deadline with its unit, pass.
    for (const seconds of [3_600, 86_400, 604_800, 1_209_600, 2_592_000, 30_000, 100 * 86_400]) {
      expect(() => create({ idleTimeout: seconds, absoluteTimeout: false })).not.toThrow();
    }
    expect(() => create({ idleTimeout: "1800000s", absoluteTimeout: false })).not.toThrow();
  });

  it("takes a duration past 400 days written with its unit (the header transport has no cookie to outlive)", () => {
    expect(() => create({ absoluteTimeout: "800d", idleTimeout: "500d" })).not.toThrow();
    expect(() => create({ absoluteTimeout: 400 * 86_400 })).not.toThrow();
  });

  it("says a string of digits (an environment variable) must be a number or carry a unit", () => {
    const err = configError(() => create({ idleTimeout: "3600" }));
    expect(err.message).toMatch(/"idleTimeout" is a string of digits/);
    expect(err.message).toMatch(/Number\(/);
  });

  it("names the accepted forms for a duration written out in words", () => {
    const err = configError(() => create({ idleTimeout: "30 minutes" }));
    expect(err.message).toMatch(/"30m"/);
  });
});

describe("createSessions: the rememberMe option (remembered sessions' deadlines)", () => {
  it("refuses an unknown key with a did-you-mean", () => {
    const err = configError(() => create({ rememberMe: { idleTimout: "30d" } }));
    expect(err.message).toMatch(
      /unknown rememberMe option "idleTimout"; did you mean "idleTimeout"\?/,
    );
  });

  it("refuses true and other shapes, saying that session.rememberMe() marks a session", () => {
    for (const value of [true, "30d", 2_592_000, null]) {
      const err = configError(() => create({ rememberMe: value }));
      expect(err.message).toMatch(
        /"rememberMe" must be \{ idleTimeout\?, absoluteTimeout\? \} or false/,
      );
      expect(err.message).toMatch(/session\.rememberMe\(\)/);
    }
  });

  it("checks its durations as the top-level ones, naming the nested option", () => {
    const ms = configError(() => create({ rememberMe: { idleTimeout: 30 * 86_400_000 } }));
    expect(ms.message).toMatch(/"rememberMe.idleTimeout" is 30000 days/);
    expect(ms.message).toMatch(/seconds, not milliseconds/);
    const digits = configError(() => create({ rememberMe: { absoluteTimeout: "7776000" } }));
    expect(digits.message).toMatch(/"rememberMe.absoluteTimeout" is a string of digits/);
    const words = configError(() => create({ rememberMe: { idleTimeout: "a month" } }));
    expect(words.message).toMatch(/"rememberMe.idleTimeout" must be a positive number of seconds/);
  });

  it("refuses a remembered idle timeout longer than the remembered absolute one, given or inherited", () => {
    const given = configError(() =>
      create({ rememberMe: { idleTimeout: "60d", absoluteTimeout: "45d" } }),
    );
    expect(given.message).toMatch(
      /"rememberMe.idleTimeout" \(60d\) is longer than "rememberMe.absoluteTimeout" \(45d\)/,
    );
    const inherited = configError(() =>
      create({ idleTimeout: "30m", absoluteTimeout: "12h", rememberMe: { idleTimeout: "30d" } }),
    );
    expect(inherited.message).toMatch(/unset, so "absoluteTimeout"'s 12h/);
    expect(inherited.message).toMatch(/set rememberMe.absoluteTimeout/);
  });

  it("refuses remembered deadlines that would end a remembered session before an ordinary one", () => {
    const idle = configError(() =>
      create({ idleTimeout: "1d", rememberMe: { idleTimeout: "1h" } }),
    );
    expect(idle.message).toMatch(
      /"rememberMe.idleTimeout" \(1h\) is shorter than "idleTimeout" \(1d\)/,
    );
    const absolute = configError(() => create({ rememberMe: { absoluteTimeout: "7d" } }));
    expect(absolute.message).toMatch(
      /"rememberMe.absoluteTimeout" \(7d\) is shorter than "absoluteTimeout" \(default 30d\)/,
    );
    // Ordinary sessions without an absolute deadline: a remembered one with one could end first.
    const none = configError(() =>
      create({
        idleTimeout: "30m",
        absoluteTimeout: false,
        rememberMe: { absoluteTimeout: "90d" },
      }),
    );
    expect(none.message).toMatch(/"absoluteTimeout" \(false\)/);
  });

  it("takes an idle shorter than the base idle when the base absolute ends sessions first", () => {
    // Ordinary sessions end at 30d whatever their idle; remembered ones last at least as long.
    expect(() =>
      create({
        idleTimeout: false,
        absoluteTimeout: "30d",
        rememberMe: { idleTimeout: "30d", absoluteTimeout: "90d" },
      }),
    ).not.toThrow();
  });

  it("refuses a touchInterval no shorter than the remembered idle timeout", () => {
    const err = configError(() =>
      create({ absoluteTimeout: "1d", touchInterval: "2d", rememberMe: { idleTimeout: "1d" } }),
    );
    expect(err.message).toMatch(/"touchInterval" must be shorter than "rememberMe.idleTimeout"/);
  });

  it("accepts false, an empty object, and remembered sessions without timeouts", () => {
    expect(() => create({ rememberMe: false })).not.toThrow();
    expect(() => create({ rememberMe: {} })).not.toThrow();
    expect(() =>
      create({ idleTimeout: "30m", absoluteTimeout: false, rememberMe: { idleTimeout: false } }),
    ).not.toThrow();
    expect(() =>
      create({ idleTimeout: "30m", rememberMe: { idleTimeout: "30d", absoluteTimeout: false } }),
    ).not.toThrow();
  });
});

describe("createSessions: the header option", () => {
  it.each([
    "Cookie",
    "authorization",
    "origin",
    "accept",
    "Accept-Language",
    "content-language",
    "range",
  ])("refuses %s, which HTTP or browsers give another meaning (or any page may set)", (name) => {
    expect(configError(() => create({ header: name })).message).toMatch(
      new RegExp(`"header" cannot be "${name}".*such as "x-session"`),
    );
  });

  it("takes a name of the app's own", () => {
    expect(createSessions({ secret: SECRET, header: "X-Session" }).headerName).toBe("x-session");
  });
});

describe("createSessions: nested options and flags", () => {
  it("refuses an unknown track option, instead of recording the IP anyway", () => {
    const err = configError(() => create({ store: memoryStore(), track: { ipAddress: false } }));
    expect(err.message).toMatch(/unknown track option "ipAddress"; known: userAgent, ip/);
    const typo = configError(() => create({ store: memoryStore(), track: { userAgnet: false } }));
    expect(typo.message).toMatch(/did you mean "userAgent"\?/);
  });

  it("refuses a track flag that is not a boolean", () => {
    const err = configError(() => create({ store: memoryStore(), track: { ip: "no" } }));
    expect(err.message).toMatch(/track\.ip must be true or false/);
  });

  it("refuses an unknown lock option with a did-you-mean", () => {
    const err = configError(() => create({ store: memoryStore(), lock: { timeout: "5s" } }));
    expect(err.message).toMatch(/unknown lock option "timeout"/);
  });

  it("refuses a lock wait longer than its ttl", () => {
    const err = configError(() =>
      create({ store: memoryStore(), lock: { wait: "60s", ttl: "10s" } }),
    );
    expect(err.message).toMatch(/"lock\.wait" \(60s\) is longer than "lock\.ttl" \(10s\)/);
  });

  it("refuses a lock ttl under the default wait, naming that default", () => {
    const err = configError(() => create({ store: memoryStore(), lock: { ttl: "2s" } }));
    expect(err.message).toMatch(/"lock\.wait" \(default 5s\)/);
    expect(() => create({ store: memoryStore(), lock: { ttl: "2s", wait: "1s" } })).not.toThrow();
  });

  it.each([
    ["clearSiteData", { clearSiteData: "true" }, /"clearSiteData" must be true or false/],
    [
      "cookie.httpOnly",
      { cookie: { httpOnly: "false" } },
      /cookie\.httpOnly must be true or false/,
    ],
    [
      "cookie.partitioned",
      { cookie: { partitioned: "yes" } },
      /cookie\.partitioned must be true or false/,
    ],
  ])("refuses a %s that is a string, not a boolean", (_name, options, message) => {
    expect(configError(() => create(options)).message).toMatch(message);
  });
});

describe("createSessions: no secret in any message", () => {
  // Every mistake the user can make, each with the secret option set to something recognisable.
  const mistakes: Array<Record<string, unknown>> = [
    { secret: [SECRET, SECRET] },
    { secret: [SECRET, "short-one"] },
    { secret: [SECRET, undefined] },
    { secret: { v1: SECRET, v2: undefined } },
    { secret: { [SECRET]: "v1" } },
    { secret: Buffer.from(SECRET) },
    { secret: SECRET, secrets: [OTHER_SECRET] },
    { secret: SECRET, idleTimeout: SECRET },
    { secret: SECRET, header: `${SECRET};` },
    { secret: SECRET, mode: SECRET },
    { secret: SECRET, cookie: { name: `${SECRET};` } },
    { secret: SECRET, cookie: { domain: `${OTHER_SECRET}:443` } },
    { secret: SECRET, cookie: { path: OTHER_SECRET } },
    { secret: SECRET, [OTHER_SECRET]: true },
  ];
  it.each(mistakes.map((m, i) => [i, m]))("mistake #%i names neither secret", (_i, options) => {
    const err = configError(() => createSessions(options as unknown as SessionsOptions));
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain(OTHER_SECRET);
    expect(err.message).not.toContain(SECRET.slice(0, 12));
  });
});

// ---------------------------------------------------------------------------------------------------

const sessions = createSessions({ secret: SECRET });
const noGuard = expressAdapter.requireSession(() => true, { status: 401 });

/** Each adapter's entry function, called as a user would, and the options it knows. */
const adapters: Array<{
  name: string;
  make: (manager: unknown, options?: unknown) => unknown;
  options: string[];
}> = [
  {
    name: "express",
    make: (m, o) => expressAdapter.session(m as never, o as never),
    options: ["guards"],
  },
  { name: "koa", make: (m, o) => koaAdapter.session(m as never, o as never), options: ["guards"] },
  {
    name: "fastify",
    make: (m, o) => fastifyAdapter.session(m as never, o as never),
    options: ["guards"],
  },
  {
    name: "hono",
    make: (m, o) => honoAdapter.sessionMiddleware(m as never, o as never),
    options: ["guards", "ip"],
  },
  {
    name: "h3",
    make: (m, o) => h3Adapter.sessionMiddleware(m as never, o as never),
    options: ["guards"],
  },
  {
    name: "node",
    make: (m, o) => nodeAdapter.withSession(m as never, () => {}, o as never),
    options: ["guards"],
  },
  {
    name: "fetch",
    make: (m, o) => fetchAdapter.withSession(m as never, () => new Response(), o as never),
    options: ["ip"],
  },
  { name: "oak", make: (m) => oakAdapter.sessionMiddleware(m as never), options: [] },
];

describe("adapters: the options object", () => {
  for (const { name, make, options } of adapters.filter((a) => a.options.includes("guards"))) {
    it(`${name} refuses "guard" (for "guards") at creation, rather than run every route unguarded`, () => {
      const err = configError(() => make(sessions, { guard: [noGuard] }));
      expect(err.message).toMatch(/unknown .*option "guard"; did you mean "guards"\?/);
      expect(options).toContain("guards");
    });

    it(`${name} refuses guards that are not a list of functions`, () => {
      expect(configError(() => make(sessions, { guards: noGuard })).message).toMatch(
        /"guards" must be a list of guard functions/,
      );
      expect(configError(() => make(sessions, { guards: [{}] })).message).toMatch(
        /"guards" must be a list of guard functions/,
      );
    });
  }

  for (const { name, make } of adapters.filter((a) => a.options.includes("ip"))) {
    it(`${name} refuses an ip option that is not a function`, () => {
      const err = configError(() => make(sessions, { ip: "x-forwarded-for" }));
      expect(err.message).toMatch(/"ip" must be a function/);
    });
  }

  // Oak's sessionMiddleware(sessions) takes no options object at all.
  for (const { name, make } of adapters.filter(
    (a) => !a.options.includes("ip") && a.name !== "oak",
  )) {
    it(`${name} refuses an ip option it does not have`, () => {
      const err = configError(() => make(sessions, { ip: () => "127.0.0.1" }));
      expect(err.message).toMatch(/unknown .*option "ip"/);
    });
  }

  it("accepts every adapter's own options", () => {
    for (const { make, options } of adapters) {
      const given: Record<string, unknown> = {};
      if (options.includes("guards")) given.guards = [noGuard];
      if (options.includes("ip")) given.ip = () => "127.0.0.1";
      expect(() => make(sessions, given)).not.toThrow();
      expect(() => make(sessions)).not.toThrow();
    }
  });
});

describe("adapters: the manager", () => {
  const notManagers: Array<[string, unknown, RegExp]> = [
    ["undefined", undefined, /got undefined/],
    [
      "the options object",
      { secret: SECRET },
      /got createSessions' options: pass createSessions\(options\)/,
    ],
    ["a store", memoryStore(), /got a session store: pass createSessions\(\{ secret, store \}\)/],
    ["createSessions itself", createSessions, /got a function/],
  ];
  for (const { name, make } of adapters) {
    for (const [what, value, message] of notManagers) {
      it(`${name} refuses ${what} in place of the manager, at creation`, () => {
        const err = configError(() => make(value));
        expect(err.message).toMatch(/needs the manager createSessions\(\) returns/);
        expect(err.message).toMatch(message);
        expect(err.message).not.toContain(SECRET);
      });
    }
  }

  it("node and fetch withSession refuse a missing handler at creation", () => {
    expect(configError(() => nodeAdapter.withSession(sessions, {} as never)).message).toMatch(
      /the handler is missing/,
    );
    expect(configError(() => fetchAdapter.withSession(sessions, {} as never)).message).toMatch(
      /the handler is missing/,
    );
  });

  it("Express: mounting the options object fails at start-up instead of as a 500 on every request", () => {
    const app = express();
    expect(() => app.use(expressAdapter.session({ secret: SECRET } as never))).toThrow(ConfigError);
  });

  it("Fastify: app.register(session, { sessions }) rejects at ready instead of leaving req.session unset", async () => {
    const app = Fastify();
    app.register(fastifyAdapter.session as never, { sessions } as never);
    const err = await app.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    await app.close();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/app\.register\(session\(sessions\)\)/);
  });

  it("Fastify: register not awaited still loads the plugin before the first request", async () => {
    const app = Fastify();
    app.register(fastifyAdapter.session(sessions)); // no await, routes after it
    app.get("/", async (request) => {
      request.session.set("visits", 1);
      return "ok";
    });
    const response = await app.inject({ url: "/" });
    await app.close();
    expect(response.statusCode).toBe(200);
    expect(String(response.headers["set-cookie"])).toMatch(/^sid=/);
  });
});

// ---------------------------------------------------------------------------------------------------

describe("stores: the client handed in", () => {
  const dir = mkdtempSync(join(tmpdir(), "sk-misconfig-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("redisStore refuses a node-redis client never connected (await client.connect() forgotten)", () => {
    const client = createClient({ url: "redis://127.0.0.1:1" });
    const err = configError(() => redisStore({ client }));
    expect(err.message).toMatch(/node-redis client is not open/);
    expect(err.message).toMatch(/await client\.connect\(\)/);
  });

  it("redisStore refuses the promise client.connect() returns, saying to await it", () => {
    const pending = Promise.resolve({});
    const err = configError(() => redisStore({ client: pending as never }));
    expect(err.message).toMatch(/got a Promise/);
  });

  it("postgresStore refuses a pg Client that is not connected (it would hang every request)", () => {
    const client = new pg.Client({ connectionString: "postgres://127.0.0.1:1/none" });
    const err = configError(() => postgresStore({ pool: client }));
    expect(err.message).toMatch(/pg Client is not connected/);
    expect(err.message).toMatch(/pg\.Pool/);
  });

  it("postgresStore refuses a pg Client that was ended", async () => {
    const client = new pg.Client({ connectionString: "postgres://127.0.0.1:1/none" });
    await client.end();
    expect(configError(() => postgresStore({ pool: client })).message).toMatch(/ended/);
  });

  it("postgresStore refuses a Promise (pool.connect() not awaited)", () => {
    const err = configError(() => postgresStore({ pool: Promise.resolve({}) as never }));
    expect(err.message).toMatch(/got a Promise/);
  });

  it("mysqlStore refuses mysql2's callback pool, naming mysql2/promise and pool.promise()", async () => {
    const pool = mysqlCallback.createPool({ uri: "mysql://root@127.0.0.1:1/none" });
    try {
      const err = configError(() => mysqlStore({ pool: pool as never }));
      expect(err.message).toMatch(/mysql2\/promise/);
      expect(err.message).toMatch(/pool\.promise\(\)/);
    } finally {
      await new Promise((done) => pool.end(done));
    }
  });

  it("mysqlStore refuses a Promise (createConnection not awaited)", () => {
    const err = configError(() => mysqlStore({ pool: Promise.resolve({}) as never }));
    expect(err.message).toMatch(/got a Promise/);
  });

  it("sqliteStore refuses a better-sqlite3 database opened readonly", () => {
    const file = join(dir, "readonly.db");
    new Database(file).close();
    const db = new Database(file, { readonly: true });
    try {
      expect(configError(() => sqliteStore({ db })).message).toMatch(/opened readonly/);
    } finally {
      db.close();
    }
  });

  it("sqliteStore refuses a database already closed", () => {
    const db = new Database(":memory:");
    db.close();
    expect(configError(() => sqliteStore({ db })).message).toMatch(/database is closed/);
  });

  it("sqliteStore says a schema prefix is not taken", () => {
    const db = new Database(":memory:");
    try {
      const err = configError(() => sqliteStore({ db, table: "main.sessions" }));
      expect(err.message).toMatch(/no "schema\." prefix/);
    } finally {
      db.close();
    }
  });
});

describe("guards and the Wille-style handler", () => {
  it("createHandler refuses what is not a manager, at creation", () => {
    const err = configError(() => fetchAdapter.createHandler({ secret: SECRET } as never));
    expect(err.message).toMatch(/createHandler\(\) needs the manager/);
  });

  it("a guard factory given uncalled (requireSession itself) is a ConfigError, not a 500 of a TypeError", async () => {
    const sessions = createSessions({ secret: SECRET });
    const fetch = fetchAdapter.withSession(sessions, async (request, { session }) => {
      const guard = fetchAdapter.requireSession as unknown as fetchAdapter.Guard;
      const { runGuards } = await import("../../src/guard.js");
      await runGuards([guard], session, request);
      return new Response("unreachable");
    });
    const err = await fetch(new Request("http://localhost/")).catch((e: unknown) => e);
    expect(isSessionError(err, "ERR_CONFIG")).toBe(true);
    expect((err as Error).message).toMatch(/not requireSession itself/);
  });
});
