/**
 * Two internal shortcuts the node adapters take on every request, pinned against the general path
 * they stand in for:
 * - `loadSession` hands back the session itself, not a promise, when nothing on the way waits;
 * - `closeIfQuiet` says a commit would change nothing, and only then, so the adapter may let the
 *   response go unheld. Each case runs twice on identical state: once asking `closeIfQuiet`, once
 *   committing and recording every header and store write the commit makes.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { describe, expect, it } from "vitest";
import { closeIfQuiet, loadSession, type Sessions } from "../../src/manager.js";
import type { Session, SessionData } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import type { SessionStore } from "../../src/stores/store.js";
import { HOUR, harness, jarToken, MINUTE, OTHER_SECRET, SECRET, storeHarness } from "./harness.js";

const request = (cookie?: string) =>
  new Request("https://example.com/", { headers: cookie ? { cookie } : {} });

/** A schema accepting any object, validating synchronously or through a promise. */
function anyObject(async: boolean): StandardSchemaV1<SessionData, SessionData> {
  const result = (value: unknown) =>
    typeof value === "object" && value !== null
      ? { value: value as SessionData }
      : { issues: [{ message: "not an object" }] };
  return {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (value) => (async ? Promise.resolve(result(value)) : result(value)),
    },
  };
}

describe("loadSession", () => {
  it("gives a cookie session synchronously once its token was opened before", async () => {
    const writer = harness();
    await writer.request((s) => s.set("n", 1));
    const cookie = writer.jar.header();
    const h = harness(); // another instance of the app: it never saw the token
    const first = loadSession(h.sessions, request(cookie));
    expect(first).toBeInstanceOf(Promise);
    await first;
    const second = loadSession(h.sessions, request(cookie));
    expect(second).not.toBeInstanceOf(Promise);
    expect((second as Session<SessionData>).get("n")).toBe(1);
  });

  it("gives a promise where something waits: an async schema, a store, no token cache, no cookie", async () => {
    const cases = {
      "async schema": harness({ schema: anyObject(true) }),
      "sync schema": harness({ schema: anyObject(false) }),
      store: storeHarness(),
      "no token cache": harness({ tokenCache: false }),
    };
    const sync: Record<string, boolean> = {};
    for (const [name, h] of Object.entries(cases)) {
      await h.request((s) => s.set("n", 1));
      const cookie = h.jar.header();
      await loadSession(h.sessions as Sessions<SessionData>, request(cookie));
      const again = loadSession(h.sessions as Sessions<SessionData>, request(cookie));
      sync[name] = !(again instanceof Promise);
      expect((await again).get("n")).toBe(1);
    }
    const fresh = loadSession(harness().sessions, request());
    sync["no cookie"] = !(fresh instanceof Promise);
    await fresh;
    expect(sync).toEqual({
      "async schema": false,
      "sync schema": true,
      store: false,
      "no token cache": false,
      "no cookie": false,
    });
  });

  it("turns a synchronous failure into a rejected promise", async () => {
    let fail = false;
    const schema: StandardSchemaV1<SessionData, SessionData> = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: (value) => {
          if (fail) throw new Error("validator broke");
          return { value: value as SessionData };
        },
      },
    };
    const h = harness({ schema });
    await h.request((s) => s.set("n", 1));
    const cookie = h.jar.header();
    await loadSession(h.sessions, request(cookie));
    fail = true;
    let loaded: unknown;
    expect(() => {
      loaded = loadSession(h.sessions, request(cookie));
    }).not.toThrow();
    await expect(loaded).rejects.toThrow("validator broke");
  });
});

/** Counts the store calls that change something, and the lock's releases. */
function recording(store: SessionStore): { store: SessionStore; writes: string[] } {
  const writes: string[] = [];
  const changing = new Set(["set", "patch", "touch", "delete", "deleteByUser"]);
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (changing.has(String(name))) writes.push(String(name));
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (name === "lock") {
          return (result as Promise<(() => Promise<void>) | null>).then(
            (release) =>
              release &&
              (() => {
                writes.push("unlock");
                return release();
              }),
          );
        }
        return result;
      };
    },
  });
  return { store: proxy, writes };
}

interface Case {
  /** Manager options beyond the harness's. */
  options?: Record<string, unknown>;
  /** Whether the case runs on a memory store. */
  store?: boolean;
  /** Requests before the one under test; their cookies go to the jar. */
  before?: (h: ReturnType<typeof harness>) => Promise<void>;
  /** The Cookie header of the request under test (default: the jar's). */
  cookie?: (h: ReturnType<typeof harness>) => string | undefined;
  /** What the handler does. */
  act?: (session: Session<SessionData>) => void | Promise<void>;
}

async function run(c: Case, ask: boolean): Promise<{ quiet?: boolean; changed?: string[] }> {
  const recorded = c.store ? recording(memoryStore({ now: () => clock() })) : undefined;
  let clock = () => 0;
  const h = harness({
    ...(recorded ? { store: recorded.store } : {}),
    ...c.options,
  } as Parameters<typeof harness>[0]);
  clock = h.clock.now;
  await c.before?.(h);
  const cookie = c.cookie ? c.cookie(h) : h.jar.header();
  const session = await h.sessions.load(request(cookie));
  await c.act?.(session);
  if (recorded) recorded.writes.length = 0;
  if (ask) return { quiet: closeIfQuiet(session, h.sessions) };
  const headers = new Headers();
  await h.sessions.commit(session, headers);
  const changed = [...headers.keys(), ...(recorded?.writes ?? [])];
  return { changed };
}

const written = async (h: ReturnType<typeof harness>) => {
  await h.request((s) => s.set("n", 1));
};

const CASES: Record<string, Case & { quiet: boolean }> = {
  "a new visitor, nothing written": { quiet: true },
  "a new visitor who writes": { quiet: false, act: (s) => s.set("n", 1) },
  "a refused cookie, to be cleared": { quiet: false, cookie: () => "sid=e1.AAAAAA.tampered" },
  "a loaded session, only read": { quiet: true, before: written, act: (s) => void s.get("n") },
  "a loaded session, written": { quiet: false, before: written, act: (s) => s.set("n", 2) },
  "a loaded session, cleared": { quiet: false, before: written, act: (s) => s.clear() },
  "a loaded session, destroyed": { quiet: false, before: written, act: (s) => s.destroy() },
  "a loaded session, regenerated": {
    quiet: false,
    before: written,
    act: (s) => s.regenerate(),
  },
  "a loaded session asked for a CSRF token": {
    quiet: false,
    before: async (h) => {
      await h.request(async (s) => {
        s.set("n", 1);
        await s.csrfToken(); // the seed is saved here: the next token is no write
      });
    },
    act: async (s) => void (await s.csrfToken()),
  },
  "a loaded session whose idle slide is due": {
    quiet: false,
    options: { idleTimeout: "1h" },
    before: async (h) => {
      await written(h);
      h.clock.advance(20 * MINUTE);
    },
  },
  "a loaded session whose idle slide is not yet due": {
    quiet: true,
    options: { idleTimeout: "1h" },
    before: async (h) => {
      await written(h);
      h.clock.advance(MINUTE);
    },
  },
  "a loaded session due for renewal": {
    quiet: false,
    options: { renewInterval: "1h" },
    before: async (h) => {
      await written(h);
      h.clock.advance(2 * HOUR);
    },
  },
  "a session sealed under a retired secret": {
    quiet: false,
    options: { secret: [SECRET, OTHER_SECRET] },
    cookie: () => oldToken,
  },
};

/** A cookie session sealed under OTHER_SECRET alone: a rotated manager still opens it, then re-seals. */
let oldToken = "";

describe("closeIfQuiet", () => {
  it("is true exactly when a commit would send no header and make no store write", async () => {
    const old = harness({ secret: OTHER_SECRET });
    await old.request((s) => s.set("n", 1));
    oldToken = `sid=${jarToken(old.jar)}`;
    const verdicts: Record<string, unknown> = {};
    const expected: Record<string, unknown> = {};
    for (const [name, c] of Object.entries(CASES)) {
      for (const store of [false, true]) {
        if (store && name === "a session sealed under a retired secret") continue; // cookie only
        const label = `${store ? "store" : "cookie"}: ${name}`;
        const { quiet } = await run({ ...c, store }, true);
        const { changed } = await run({ ...c, store }, false);
        verdicts[label] = { quiet, changed: (changed ?? []).length > 0 };
        expected[label] = { quiet: c.quiet, changed: !c.quiet };
      }
    }
    expect(verdicts).toEqual(expected);
  });

  it("is false for a store session holding a lock, whose commit lets the lock go", async () => {
    const locked: Case = {
      store: true,
      options: { lock: { wait: "1s", ttl: "5s" } },
      before: written,
    };
    expect(await run(locked, true)).toEqual({ quiet: false });
    expect(await run(locked, false)).toEqual({ changed: ["unlock"] });
  });

  it("closes the session it calls quiet: a later change throws ERR_SESSION_STATE", async () => {
    const h = harness();
    await written(h);
    const session = await h.sessions.load(request(h.jar.header()));
    // Through a wrapper of the manager, its own commit must run: no shortcut.
    expect(closeIfQuiet(session, { ...h.sessions })).toBe(false);
    expect(closeIfQuiet(session, h.sessions)).toBe(true);
    expect(() => session.set("n", 2)).toThrow(
      expect.objectContaining({ code: "ERR_SESSION_STATE" }),
    );
    expect(closeIfQuiet(session, h.sessions)).toBe(false); // closed already: the adapter's own commit decides
  });
});
