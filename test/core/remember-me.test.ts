/**
 * "Remember me": the `cookie.persistent` option and `session.rememberMe()` choose whether the cookie
 * carries Max-Age (outlives the browser) or is a browser-session cookie. The server's deadlines hold
 * either way.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createSessions, SessionError } from "../../src/index.js";
import { decodeRecord, encodeRecord } from "../../src/internal/record.js";
import { memoryStore } from "../../src/stores/memory.js";
import { DAY, HOUR, harness, jarToken, MINUTE, SECRET } from "./harness.js";

const maxAgeOf = (exchange: { setCookies: { name: string; maxAge: number | undefined }[] }) => {
  const line = exchange.setCookies.find((cookie) => cookie.name === "sid");
  if (!line) throw new Error("no sid cookie in the response");
  return line.maxAge;
};

describe("remember me: cookie sessions", () => {
  it("by default the cookie has Max-Age; rememberMe(false) makes it a browser-session cookie from then on", async () => {
    const h = harness({ idleTimeout: "1d" });
    const first = await h.request((s) => s.set("n", 1));
    expect(maxAgeOf(first)).toBe(DAY / 1000);

    const forget = await h.request((s) => s.rememberMe(false));
    expect(maxAgeOf(forget)).toBeUndefined();
    expect(forget.session.data).toEqual({ n: 1 });

    // The choice is sealed in the cookie: a later write and a later slide keep it.
    expect(maxAgeOf(await h.request((s) => s.set("n", 2)))).toBeUndefined();
    h.clock.advance(12 * HOUR);
    const slid = await h.request();
    expect(slid.lines).toHaveLength(1);
    expect(maxAgeOf(slid)).toBeUndefined();
  });

  it("with cookie.persistent false, only sessions that rememberMe() get Max-Age", async () => {
    const h = harness({ idleTimeout: "1d", absoluteTimeout: "30d", cookie: { persistent: false } });
    expect(maxAgeOf(await h.request((s) => s.set("user", "ada")))).toBeUndefined();

    h.clock.advance(HOUR);
    const remembered = await h.request((s) => s.rememberMe());
    expect(maxAgeOf(remembered)).toBe(DAY / 1000);
    expect(remembered.session.get("user")).toBe("ada");
    expect(maxAgeOf(await h.request((s) => s.set("n", 1)))).toBe(DAY / 1000);

    // Unchanged and not due for a slide: nothing is sent, remembered or not.
    expect((await h.request((s) => s.rememberMe(true))).lines).toEqual([]);

    expect(maxAgeOf(await h.request((s) => s.rememberMe(false)))).toBeUndefined();
  });

  it("a browser-session cookie still dies at the server's idle deadline", async () => {
    const h = harness({ idleTimeout: "30m", cookie: { persistent: false } });
    await h.request((s) => s.set("user", "ada"));
    const token = jarToken(h.jar);
    h.clock.advance(31 * MINUTE);
    const late = await h.request(() => {}, { cookie: `sid=${token}` });
    expect(late.session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("the choice survives regenerate and clear, not destroy", async () => {
    const h = harness({ idleTimeout: "1d", cookie: { persistent: false } });
    await h.request((s) => {
      s.set("n", 1);
      s.rememberMe();
    });
    const regenerated = await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
    });
    expect(maxAgeOf(regenerated)).toBe(DAY / 1000);
    expect(maxAgeOf(await h.request((s) => s.clear()))).toBe(DAY / 1000);

    const destroyed = await h.request((s) => {
      s.destroy();
      s.set("after", true);
    });
    expect(maxAgeOf(destroyed)).toBeUndefined();
  });

  it("refuses a non-boolean, and a cookie record whose flag is not a boolean", async () => {
    const h = harness();
    await expect(
      h.request((s) => (s.rememberMe as (value: unknown) => void)("yes")),
    ).rejects.toThrow(SessionError);

    const meta = { createdAt: 1, touchedAt: 1, renewedAt: 1, persistent: true };
    const good = encodeRecord("id-0123456789abcdef", {}, meta);
    expect(decodeRecord(good)?.meta.persistent).toBe(true);
    expect(decodeRecord(good.replace('"p":true', '"p":"yes"'))).toBeUndefined();
  });

  it("checks cookie.persistent at start-up", () => {
    expect(() =>
      createSessions({ secret: SECRET, cookie: { persistent: "no" as unknown as boolean } }),
    ).toThrow(/cookie.persistent must be true or false/);
    expect(() =>
      createSessions({ secret: SECRET, cookie: { persistant: false } as never }),
    ).toThrow(ConfigError);
    expect(() =>
      createSessions({ secret: SECRET, cookie: { persistant: false } as never }),
    ).toThrow(/did you mean "persistent"/);
  });
});

describe("remember me: store sessions", () => {
  it("re-sends the id cookie with Max-Age when only the choice changed, and keeps it in the store", async () => {
    // The store reads the same fake clock as the manager.
    let clock = () => 0;
    const store = memoryStore({ now: () => clock() });
    const h = harness({
      store,
      idleTimeout: "1d",
      touchInterval: "1h",
      cookie: { persistent: false },
    });
    clock = h.clock.now;
    const login = await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
    });
    expect(maxAgeOf(login)).toBeUndefined();
    const token = jarToken(h.jar);

    const remembered = await h.request((s) => s.rememberMe());
    expect(maxAgeOf(remembered)).toBe(DAY / 1000);
    expect(jarToken(h.jar)).toBe(token); // same id, same token: only Max-Age moved
    const [[key] = []] = [...store.rawEntries()];
    expect((await store.get(key as string))?.meta.persistent).toBe(true);

    // The store holds the choice: the next slide of the id cookie keeps its Max-Age.
    expect((await h.request()).lines).toEqual([]);
    h.clock.advance(2 * HOUR);
    const slid = await h.request();
    expect(maxAgeOf(slid)).toBe(DAY / 1000);
  });
});

describe("remember me with neither timeout", () => {
  const none = { idleTimeout: false, absoluteTimeout: false } as const;

  it("gives a browser-session cookie unless the session asks, and then 400 days", async () => {
    const h = harness(none);
    expect(maxAgeOf(await h.request((s) => s.set("n", 1)))).toBeUndefined();
    const remembered = await h.request((s) => s.rememberMe());
    expect(maxAgeOf(remembered)).toBe((400 * DAY) / 1000);
    expect(remembered.session.expiresAt).toBe(h.clock.now() + 400 * DAY);
    expect(maxAgeOf(await h.request((s) => s.rememberMe(false)))).toBeUndefined();
  });

  it("ends a cookie session 400 days after its last write, as expiresAt says", async () => {
    const h = harness(none);
    await h.request((s) => s.set("user", "ada"));
    const token = jarToken(h.jar);
    h.clock.advance(399 * DAY);
    expect((await h.request(() => {}, { cookie: `sid=${token}` })).session.get("user")).toBe("ada");
    h.clock.advance(DAY);
    const late = await h.request(() => {}, { cookie: `sid=${token}` });
    expect(late.session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });
});
