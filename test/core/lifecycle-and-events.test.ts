/**
 * Id rotation (renewInterval, regenerate), the two deadlines across regenerate, and lifecycle events
 * that never carry an id or a token.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { describe, expect, it } from "vitest";
import type { SessionEvent } from "../../src/index.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import {
  counterIds,
  DAY,
  HOUR,
  harness,
  jarToken,
  MINUTE,
  SECRET,
  START,
  storeHarness,
} from "./harness.js";

describe("renewInterval", () => {
  it("rotates the id and token after the interval without sign-in, keeping the data", async () => {
    const h = harness({ renewInterval: "2h", idleTimeout: "7d" });
    const first = await h.request((s) => s.set("cart", [1, 2]));
    const firstToken = jarToken(h.jar);

    h.clock.advance(2 * HOUR - 1);
    const before = await h.request((s) => s.set("cart", [1, 2, 3]));
    expect(before.session.id).toBe(first.session.id);

    h.clock.advance(1);
    const renewed = await h.request();
    expect(renewed.session.id).not.toBe(first.session.id);
    expect(renewed.session.get("cart")).toEqual([1, 2, 3]);
    expect(renewed.session.createdAt).toBe(START);
    expect(renewed.setCookies).toHaveLength(1);
    expect(jarToken(h.jar)).not.toBe(firstToken);
    expect(h.events.map((e) => e.type)).toEqual(["created", "renewed"]);
    expect(h.events[1]).toEqual({ type: "renewed", at: START + 2 * HOUR, userId: undefined });

    // The clock of the interval restarted at the renewal (30 minutes: before the hourly touch too).
    h.clock.advance(30 * MINUTE);
    const after = await h.request();
    expect(after.session.id).toBe(renewed.session.id);
    expect(after.lines).toEqual([]);
  });

  it("does not rotate when renewInterval is off (the default)", async () => {
    const h = harness({ idleTimeout: "30d", absoluteTimeout: "60d", generateId: counterIds() });
    const first = await h.request((s) => s.set("n", 1));
    h.clock.advance(20 * DAY);
    const later = await h.request();
    expect(later.session.id).toBe(first.session.id);
    expect(h.events.map((e) => e.type)).toEqual(["created"]);
  });
});

describe("regenerate", () => {
  it("gives a new id but keeps the data and createdAt", async () => {
    const h = harness();
    const first = await h.request((s) => s.set("cart", ["book"]));
    h.clock.advance(10 * MINUTE);
    const signIn = await h.request(async (s) => {
      await s.regenerate({ userId: "user-7" });
    });
    expect(signIn.session.id).not.toBe(first.session.id);
    expect(signIn.session.createdAt).toBe(START);
    expect(signIn.session.userId).toBe("user-7");
    expect(signIn.setCookies).toHaveLength(1);
    const next = await h.request();
    expect(next.session.id).toBe(signIn.session.id);
    expect(next.session.get("cart")).toEqual(["book"]);
    expect(next.session.userId).toBe("user-7");
    expect(next.session.createdAt).toBe(START);
    expect(h.events.map((e) => e.type)).toEqual(["created", "regenerated"]);
    expect(h.events[1]).toMatchObject({ userId: "user-7" });
  });

  it("keeps the absolute deadline across regenerate", async () => {
    const h = harness({ idleTimeout: "30m", absoluteTimeout: "1h" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(25 * MINUTE);
    await h.request((s) => s.regenerate({ userId: "u1" }));
    h.clock.advance(25 * MINUTE);
    const stillAlive = await h.request((s) => s.regenerate());
    expect(stillAlive.session.get("n")).toBe(1);
    // Max-Age is what remains of the absolute hour, not a fresh one.
    expect(stillAlive.setCookies[0]?.maxAge).toBe(10 * 60);
    h.clock.advance(10 * MINUTE);
    const { session } = await h.request();
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-absolute"]);
  });

  it("unbinds the user with regenerate({ userId: null })", async () => {
    const h = harness();
    await h.request((s) => s.regenerate({ userId: "u1" }));
    await h.request((s) => s.regenerate({ userId: null }));
    expect((await h.request()).session.userId).toBeUndefined();
  });

  it("cannot revoke the previous cookie-mode token: it still opens until its own deadline", async () => {
    // Cookie sessions have no server state, so a regenerate cannot revoke the old cookie: it is a
    // different id, and the old one opens with the old data. This documents the limit.
    const h = harness();
    await h.request((s) => s.set("n", 1));
    const before = jarToken(h.jar) as string;
    await h.request((s) => s.regenerate());
    const old = await h.request(() => {}, { cookie: `sid=${before}`, keepJar: true });
    expect(old.session.isNew).toBe(false);
    expect(old.session.get("n")).toBe(1);
  });

  it("a later commit that only slides the deadline resends the token sent last, not the one the request brought", async () => {
    let now = START;
    const sessions = createSessions({
      secret: SECRET,
      store: memoryStore({ now: () => now }),
      now: () => now,
      idleTimeout: "1d",
    });
    const pair = (headers: Headers) => (headers.getSetCookie()[0] ?? "").split(";")[0] as string;
    const first = await sessions.load(new Headers());
    first.set("n", 1);
    const created = new Headers();
    await sessions.commit(first, created);
    const session = await sessions.load(new Headers({ cookie: pair(created) }));
    await session.regenerate();
    const regenerated = new Headers();
    await sessions.commit(session, regenerated);
    now += DAY / 2; // past the touch interval (a quarter of the idle timeout)
    const slid = new Headers();
    await sessions.commit(session, slid);
    expect(pair(slid)).toBe(pair(regenerated));
    expect((await sessions.load(new Headers({ cookie: pair(slid) }))).get("n")).toBe(1);
  });
});

describe("events", () => {
  it("delivers created, regenerated, renewed, expired, invalid and destroyed, none carrying an id or a token", async () => {
    const h = harness({ idleTimeout: "1h", absoluteTimeout: "1d", renewInterval: "45m" });
    const ids = new Set<string>();
    const tokens = new Set<string>();
    const record = (result: {
      session: { id: string };
      setCookies: { value: string }[];
      headers: Headers;
    }) => {
      ids.add(result.session.id);
      for (const cookie of result.setCookies) if (cookie.value) tokens.add(cookie.value);
    };

    record(await h.request((s) => s.set("n", 1))); // created
    h.clock.advance(10 * MINUTE);
    record(await h.request((s) => s.regenerate({ userId: "u1" }))); // regenerated
    h.clock.advance(50 * MINUTE);
    record(await h.request()); // renewed
    const live = jarToken(h.jar) as string;
    record(
      await h.request(() => {}, {
        cookie: `sid=${live.slice(0, -4)}${live.endsWith("AAAA") ? "BBBB" : "AAAA"}`,
        keepJar: true,
      }),
    ); // invalid
    h.clock.advance(2 * HOUR);
    record(await h.request(() => {}, { keepJar: true })); // expired (idle)
    h.clock.advance(-2 * HOUR);
    record(await h.request((s) => s.destroy())); // destroyed

    expect(h.events.map((e) => e.type)).toEqual([
      "created",
      "regenerated",
      "renewed",
      "invalid",
      "expired",
      "destroyed",
    ]);
    const byType = Object.fromEntries(h.events.map((e) => [e.type, e])) as Record<
      SessionEvent["type"],
      SessionEvent
    >;
    expect(byType.invalid).toMatchObject({ reason: expect.stringMatching(/tampered|malformed/) });
    expect(byType.expired).toMatchObject({ reason: "idle", userId: "u1" });
    expect(byType.regenerated).toMatchObject({ userId: "u1" });
    for (const event of h.events) expect(typeof event.at).toBe("number");

    expect(ids.size).toBeGreaterThanOrEqual(3);
    expect(tokens.size).toBeGreaterThanOrEqual(3);
    for (const event of h.events) {
      const serialized = JSON.stringify(event);
      for (const id of ids) expect(serialized).not.toContain(id);
      for (const token of tokens) {
        expect(serialized).not.toContain(token);
        expect(serialized).not.toContain(token.split(".")[2] as string);
      }
    }
  });

  it("names the user a destroyed session was bound to in the destroyed event", async () => {
    const h = harness();
    await h.request((s) => s.regenerate({ userId: "user-9" }));
    await h.request((s) => s.destroy());
    expect(h.events.at(-1)).toEqual({ type: "destroyed", at: START, userId: "user-9" });
  });

  it("emits nothing for a visitor who never writes or a session read unchanged", async () => {
    const h = harness();
    await h.request();
    expect(h.events).toEqual([]);
    await h.request((s) => s.set("n", 1));
    await h.request();
    await h.request();
    expect(h.events.map((e) => e.type)).toEqual(["created"]);
  });

  it("reports expiry by reason in onInvalid and as an expired event", async () => {
    const h = harness({ idleTimeout: "1h" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(HOUR);
    await h.request();
    expect(h.invalid).toEqual(["expired-idle"]);
    expect(h.events.at(-1)).toEqual({
      type: "expired",
      at: START + HOUR,
      reason: "idle",
      userId: undefined,
    });
  });
});

describe("the per-session lock when load fails", () => {
  it("is released when load throws after taking it, so the session's next request is not blocked", async () => {
    // A schema whose validation throws (a refinement that calls a service that is down): load
    // rejects after the lock was taken, so no commit will ever release it.
    let fail = false;
    const schema: StandardSchemaV1<Record<string, unknown>> = {
      "~standard": {
        version: 1,
        vendor: "review",
        validate: (value) => {
          if (fail) throw new Error("refinement service down");
          return { value: value as Record<string, unknown> };
        },
      },
    };
    const h = storeHarness({ schema, lock: { wait: "50ms", ttl: "30s" } });
    await h.request((s) => s.set("n", 1));
    const load = () =>
      h.sessions.load(
        new Request("https://example.com/", { headers: { cookie: h.jar.header() as string } }),
      );
    fail = true;
    await expect(load()).rejects.toThrow("refinement service down");
    fail = false;
    const session = await load();
    expect(session.get("n")).toBe(1);
  });
});

describe("requests racing a sign-in", () => {
  it("a request still carrying the id a regenerate replaced leaves the new cookie alone", async () => {
    const h = storeHarness();
    await h.request((s) => s.set("n", 1));
    const old = h.jar.header() as string;
    const load = () =>
      h.sessions.load(new Request("https://example.com/", { headers: { cookie: old } }));
    // Two requests loaded before the sign-in commits: one only reads (its touch falls due), one writes.
    const reading = await load();
    const writing = await load();
    writing.set("n", 2);
    await h.request((s) => s.regenerate({ userId: "u1" }));
    const signedIn = h.jar.header();
    h.clock.advance(2 * DAY);
    // And one that arrives after it, from a tab that had not seen the new cookie yet.
    const late = await load();
    for (const session of [reading, writing, late]) {
      const headers = new Headers();
      await h.sessions.commit(session, headers);
      // A clearing line here, answered last, would delete the new cookie and sign the visitor out.
      expect(headers.getSetCookie()).toEqual([]);
    }
    expect(h.invalid).toEqual(["unknown-session", "unknown-session", "unknown-session"]);
    // Nothing was revived under the old id, and the signed-in session is intact.
    const next = await h.request(undefined, { cookie: signedIn });
    expect(next.session.userId).toBe("u1");
    expect(next.session.get("n")).toBe(1);
    expect((await load()).isNew).toBe(true);
  });
});

describe("events of destroyByUser", () => {
  it("one destroyed event when it signed sessions out, none when there was nothing to sign out", async () => {
    const h = storeHarness();
    await h.request((s) => s.regenerate({ userId: "ana" }));
    h.events.length = 0;
    expect(await h.sessions.destroyByUser("nobody")).toBe(0);
    expect(h.events).toEqual([]);
    expect(await h.sessions.destroyByUser("ana")).toBe(1);
    expect(h.events).toEqual([{ type: "destroyed", at: h.clock.now(), userId: "ana" }]);
  });
});

describe("regenerate as another user", () => {
  it("starts empty: nothing of the previous user's session comes along; a visitor's cart does", async () => {
    for (const h of [harness(), storeHarness()]) {
      await h.request((s) => s.set("cart", ["book"]));
      await h.request((s) => s.regenerate({ userId: "ana" }));
      // The visitor's cart carried over to their own sign-in, and a repeat sign-in keeps it all.
      await h.request(async (s) => {
        expect(s.get("cart")).toEqual(["book"]);
        s.set("role", "admin");
        s.flash("info", "welcome ana");
        s.rememberMe(true);
        await s.regenerate({ userId: "ana" });
        expect(s.get("role")).toBe("admin");
      });
      // Someone else signs in on the same browser without signing out first, an hour later.
      h.clock.advance(HOUR);
      await h.request(async (s) => {
        await s.regenerate({ userId: "bob" });
        expect(s.data).toEqual({});
      });
      const next = await h.request();
      expect(next.session.userId).toBe("bob");
      expect(next.session.data).toEqual({});
      expect(next.session.createdAt).toBe(h.clock.now()); // bob's session begins at his sign-in
      expect(next.session.flashEntries()).toEqual([]);
    }
  });
});

describe("session.invalidReason: why this request's session is new", () => {
  it("is undefined on a first visit and on a session that loaded", async () => {
    const h = harness();
    const first = await h.request((s) => s.set("n", 1));
    expect(first.session.invalidReason).toBeUndefined();
    const again = await h.request();
    expect(again.session.isNew).toBe(false);
    expect(again.session.invalidReason).toBeUndefined();
  });

  it("says expired-idle, tampered or unknown-session, per request, as onInvalid is told", async () => {
    const h = harness({ idleTimeout: "30m" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(31 * 60_000);
    expect((await h.request(() => {}, { keepJar: true })).session.invalidReason).toBe(
      "expired-idle",
    );
    const tampered = await h.request(() => {}, { cookie: "sid=e1.AAAAAA.bm90LWEtdG9rZW4" });
    expect(tampered.session.invalidReason).toBe(h.invalid.at(-1));
    const store = storeHarness();
    await store.request((s) => s.set("n", 1));
    const token = jarToken(store.jar) as string;
    await store.request((s) => s.destroy(), { keepJar: true });
    const signedOut = await store.request(() => {}, { cookie: `sid=${token}` });
    expect(signedOut.session.invalidReason).toBe("unknown-session");
  });

  it("is cleared by destroy, which is the app's own doing", async () => {
    const h = harness({ idleTimeout: "30m" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(31 * 60_000);
    const { session } = await h.request((s) => {
      expect(s.invalidReason).toBe("expired-idle");
      s.destroy();
    });
    expect(session.invalidReason).toBeUndefined();
  });
});
