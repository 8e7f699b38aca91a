/**
 * `session.expiresAt`: the instant the session ends if no further request comes, as this request's
 * commit leaves it. Checked against what the server then enforces (the session loads one millisecond
 * before, is refused at it) and against the cookie's Max-Age, for cookie and store sessions.
 */
import { describe, expect, it } from "vitest";
import type { SessionsOptions } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";
import { DAY, HOUR, harness, jarToken, MINUTE, SECOND, START, storeHarness } from "./harness.js";

describe.each([
  ["cookie sessions", false],
  ["store sessions", true],
])("session.expiresAt: %s", (_mode, withStore) => {
  const setup = (options: Partial<SessionsOptions<undefined>> = {}) => {
    // The memory store reads the harness's fake clock, which exists once the harness does.
    let clock = () => START;
    const store = withStore ? { store: memoryStore({ now: () => clock() }) } : {};
    const h = harness({ idleTimeout: "30m", absoluteTimeout: "1d", ...store, ...options });
    clock = h.clock.now;
    return h;
  };

  it("is what the server enforces: the session loads 1 ms before it and is refused at it", async () => {
    const h = setup();
    const written = await h.request((s) => s.set("n", 1));
    const deadline = written.session.expiresAt;
    expect(deadline).toBe(START + 30 * MINUTE);

    h.clock.advance(deadline - h.clock.now() - 1);
    const token = jarToken(h.jar);
    // Loaded without a commit: a committed request here would slide the deadline it is testing.
    const before = await h.sessions.load(
      new Request("https://example.com/", { headers: { cookie: `sid=${token}` } }),
    );
    expect(before.isNew).toBe(false);
    expect(before.get("n")).toBe(1);

    h.clock.advance(1);
    const at = await h.request(() => {}, { cookie: `sid=${token}`, keepJar: true });
    expect(at.session.isNew).toBe(true);
    // A store hides the record at its deadline, and still tells why (expiredMeta); a cookie carries its own.
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("agrees with the Max-Age of the cookie a write sends once the slide is due", async () => {
    const h = setup();
    await h.request((s) => s.set("n", 1));
    h.clock.advance(10 * MINUTE); // past the touch interval (idle / 4 = 7.5 min)
    const written = await h.request((s) => s.set("n", 2));
    const maxAge = written.setCookies.find((c) => c.name === "sid")?.maxAge;
    expect(maxAge).toBe(30 * 60);
    expect(written.session.expiresAt).toBe(h.clock.now() + (maxAge as number) * 1000);
  });

  it("an unchanged session not due to slide keeps its earlier deadline; a write moves it to now + idle", async () => {
    const h = setup();
    await h.request((s) => s.set("n", 1));
    h.clock.advance(2 * MINUTE); // under the touch interval (idle / 4 = 7.5 min)

    let seen: number[] = [];
    const read = await h.request((s) => {
      seen = [s.expiresAt];
      s.set("n", 2);
      seen.push(s.expiresAt);
    });
    expect(seen).toEqual([START + 30 * MINUTE, START + 32 * MINUTE]);
    expect(read.session.expiresAt).toBe(START + 32 * MINUTE);

    h.clock.advance(MINUTE);
    const unchanged = await h.request();
    expect(unchanged.lines).toEqual([]);
    expect(unchanged.session.expiresAt).toBe(START + 32 * MINUTE);
  });

  it("reports a due slide before commit, and commit makes it true", async () => {
    const h = setup();
    await h.request((s) => s.set("n", 1));
    h.clock.advance(10 * MINUTE); // past the touch interval: this request slides the idle deadline
    let before = 0;
    const slid = await h.request((s) => {
      before = s.expiresAt;
    });
    expect(before).toBe(START + 40 * MINUTE);
    expect(slid.session.expiresAt).toBe(before);

    h.clock.advance(29 * MINUTE); // 39 min: alive only because the slide happened
    expect((await h.request()).session.isNew).toBe(false);
  });

  it("the absolute deadline wins once it is the earlier one, and regenerate does not move it", async () => {
    const h = setup({ absoluteTimeout: "1h" });
    await h.request((s) => s.set("n", 1));
    for (let i = 0; i < 4; i++) {
      h.clock.advance(10 * MINUTE);
      await h.request((s) => s.set("n", i));
    }
    h.clock.advance(5 * MINUTE); // 45 min in: idle would give 75, absolute gives 60
    const late = await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
    });
    expect(late.session.expiresAt).toBe(START + HOUR);
  });

  it("a new session, and one just destroyed, report the deadline a write now would give", async () => {
    const h = setup();
    const fresh = await h.request();
    expect(fresh.lines).toEqual([]);
    expect(fresh.session.expiresAt).toBe(START + 30 * MINUTE);

    await h.request((s) => s.set("n", 1));
    h.clock.advance(5 * MINUTE);
    let afterDestroy = 0;
    await h.request((s) => {
      s.destroy();
      afterDestroy = s.expiresAt;
    });
    expect(afterDestroy).toBe(h.clock.now() + 30 * MINUTE);
  });

  it("without either timeout it is the 400-day cap", async () => {
    const h = setup({ idleTimeout: false, absoluteTimeout: false });
    const written = await h.request((s) => s.set("n", 1));
    expect(written.session.expiresAt).toBe(START + 400 * DAY);
  });
});

describe("store sessions written on every request", () => {
  it("keep the id cookie alive in the browser while the visitor stays active", async () => {
    const h = storeHarness({ idleTimeout: "30m" });
    // The browser drops the cookie at its Max-Age, whatever the server's record says.
    let cookieEndsAt = 0;
    const visit = async () => {
      const exchange = await h.request((s) => s.set("n", ((s.get("n") as number) ?? 0) + 1));
      const sent = exchange.setCookies.find((c) => c.name === "sid");
      if (sent?.maxAge !== undefined) cookieEndsAt = h.clock.now() + sent.maxAge * SECOND;
      return exchange;
    };
    await visit();
    for (let i = 1; i <= 24; i++) {
      h.clock.advance(5 * MINUTE);
      expect(cookieEndsAt, `request ${i}: the browser still holds the cookie`).toBeGreaterThan(
        h.clock.now(),
      );
      const { session } = await visit();
      expect(session.isNew).toBe(false);
      // The cookie lasts until the deadline the session reports, to the second.
      expect(cookieEndsAt).toBeGreaterThanOrEqual(session.expiresAt - SECOND);
    }
  });
});
