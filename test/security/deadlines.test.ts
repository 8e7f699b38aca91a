/**
 * Expiration (OWASP: "Idle Timeout", "Absolute Timeout", "Renewal Timeout"): a replayed cookie past
 * its idle or absolute deadline is refused in both modes, by fake clock; a record stamped in the
 * future by a server whose clock runs ahead must not outlive its real deadline.
 */
import { describe, expect, it } from "vitest";
import type { SessionsOptions } from "../../src/options.js";
import { memoryStore } from "../../src/stores/memory.js";
import { DAY, fakeClock, HOUR, harness, jarToken, MINUTE } from "../core/harness.js";

type Mode = "cookie" | "store";
const MODES: Mode[] = ["cookie", "store"];

/** A harness whose clock is shared by the store; `store` shares a store between harnesses. */
function make(
  mode: Mode,
  options: Partial<SessionsOptions> = {},
  shared?: ReturnType<typeof memoryStore>,
) {
  const clock = fakeClock();
  const store = mode === "store" ? (shared ?? memoryStore({ now: clock.now })) : undefined;
  const h = harness({ ...(store ? { store } : {}), now: clock.now, ...options });
  return { ...h, clock, store };
}

async function replay(h: ReturnType<typeof make>, token: string) {
  h.invalid.length = 0;
  const { session } = await h.request(() => {}, { cookie: `sid=${token}`, keepJar: true });
  return { data: session.data, reasons: [...h.invalid] };
}

/**
 * Refused, with the reason. A store hides an entry at its deadline (the deadline is the entry's
 * expiry), and the memory store still tells why it ended (`expiredMeta`), as a cookie does.
 */
function expectRefused(result: Awaited<ReturnType<typeof replay>>, reason: string) {
  expect(result).toEqual({ data: {}, reasons: [reason] });
}

describe.each(MODES)("deadlines in %s mode", (mode) => {
  it("refuses a cookie replayed past its idle deadline", async () => {
    const h = make(mode, { idleTimeout: "30m", absoluteTimeout: "1d" });
    await h.request((s) => s.set("user", "alice"));
    const token = jarToken(h.jar) as string;
    h.clock.advance(29 * MINUTE);
    expect((await replay(h, token)).data).toEqual({ user: "alice" });
    // 29 minutes later the session was used, but this replay is of an idle copy in cookie mode;
    // in store mode the same id slid. Either way 30 minutes of silence ends it.
    h.clock.advance(30 * MINUTE);
    expectRefused(await replay(h, jarToken(h.jar) as string), "expired-idle");
  });

  it("refuses a cookie past its absolute deadline while idle time remains", async () => {
    const h = make(mode, { idleTimeout: "1d", absoluteTimeout: "3d" });
    await h.request((s) => s.set("user", "alice"));
    const first = jarToken(h.jar) as string;
    for (let i = 0; i < 5; i++) {
      h.clock.advance(12 * HOUR);
      const { session } = await h.request();
      expect(session.data).toEqual({ user: "alice" });
    }
    h.clock.advance(12 * HOUR); // 3 days since creation, 12 hours since the last use
    expectRefused(await replay(h, jarToken(h.jar) as string), "expired-absolute");
    const old = await replay(h, first);
    expect(old.data).toEqual({});
  });

  it("regenerate keeps the absolute deadline: signing in does not extend a life", async () => {
    const h = make(mode, { idleTimeout: "1d", absoluteTimeout: "2d" });
    await h.request((s) => s.set("cart", 1));
    h.clock.advance(20 * HOUR);
    await h.request((s) => s.regenerate({ userId: "alice" }));
    h.clock.advance(20 * HOUR);
    expect((await h.request()).session.userId).toBe("alice");
    h.clock.advance(8 * HOUR); // 48 hours since creation, 8 since the last use
    expectRefused(await replay(h, jarToken(h.jar) as string), "expired-absolute");
  });

  it("renewInterval rotates the token on its own; in store mode the old id then opens nothing", async () => {
    const h = make(mode, { renewInterval: "1h" });
    await h.request((s) => s.set("user", "alice"));
    const before = jarToken(h.jar) as string;
    h.clock.advance(HOUR);
    const renewed = await h.request();
    const after = jarToken(h.jar) as string;
    expect(after).not.toBe(before);
    expect(renewed.session.data).toEqual({ user: "alice" });
    expect(h.events.map((e) => e.type)).toContain("renewed");
    if (mode === "store")
      expect(await replay(h, before)).toEqual({ data: {}, reasons: ["unknown-session"] });
  });

  it("the cookie's Max-Age is the time left to the earlier deadline", async () => {
    // Store mode re-sends its cookie only when the id changes or the idle deadline slides.
    if (mode === "store") return;
    const h = make(mode, { idleTimeout: "2h", absoluteTimeout: "3h" });
    const first = await h.request((s) => s.set("a", 1));
    expect(first.setCookies[0]?.maxAge).toBe((2 * HOUR) / 1000);
    h.clock.advance(2 * HOUR - MINUTE);
    const later = await h.request((s) => s.set("a", 2));
    // The idle deadline would be 2 hours away; the absolute one is 61 minutes away and wins.
    expect(later.setCookies[0]?.maxAge).toBe((HOUR + MINUTE) / 1000);
  });
});

describe.each(MODES)("clock skew in %s mode", (mode) => {
  /**
   * Server B's clock runs a day ahead. A server on time that sees B's record while its stamps are in
   * the future refuses it. A server that first sees it after the stamps have passed cannot tell skew
   * from use: the record then lives by B's clock, bounded by its own stamps (the next test). That
   * limit is stated in docs/SECURITY.md.
   */
  it("refuses a record stamped further ahead than the skew tolerance", async () => {
    const a = make(mode, { idleTimeout: "7d", absoluteTimeout: "30d" });
    const b = make(
      mode,
      { idleTimeout: "7d", absoluteTimeout: "30d", now: () => a.clock.now() + DAY },
      a.store,
    );
    await b.request((s) => s.set("user", "alice"));
    const token = jarToken(b.jar) as string;
    expectRefused(await replay(a, token), "malformed");
  });

  it("accepts a record stamped a little ahead, within the skew tolerance", async () => {
    const a = make(mode, { idleTimeout: "7d", absoluteTimeout: "30d" });
    const b = make(
      mode,
      { idleTimeout: "7d", absoluteTimeout: "30d", now: () => a.clock.now() + MINUTE },
      a.store,
    );
    await b.request((s) => s.set("user", "alice"));
    expect((await replay(a, jarToken(b.jar) as string)).data).toEqual({ user: "alice" });
  });

  it("a record stamped ahead never lives past its own stamps' deadline", async () => {
    // What the clamp does guarantee today: the life is bounded by stamp + timeout.
    const a = make(mode, { idleTimeout: "7d", absoluteTimeout: "30d" });
    const b = make(
      mode,
      { idleTimeout: "7d", absoluteTimeout: "30d", now: () => a.clock.now() + DAY },
      a.store,
    );
    await b.request((s) => s.set("user", "alice"));
    const token = jarToken(b.jar) as string;
    a.clock.advance(8 * DAY);
    expectRefused(await replay(a, token), "expired-idle");
  });
});
