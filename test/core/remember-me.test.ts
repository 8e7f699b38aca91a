/**
 * "Remember me": the `cookie.persistent` option and `session.rememberMe()` choose whether the cookie
 * carries Max-Age (outlives the browser) or is a browser-session cookie. The server's deadlines hold
 * either way: the base ones, or with the `rememberMe` option, longer ones for remembered sessions.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createSessions, SessionError } from "../../src/index.js";
import { decodeRecord, encodeRecord } from "../../src/internal/record.js";
import type { SessionsOptions } from "../../src/options.js";
import { memoryStore } from "../../src/stores/memory.js";
import { DAY, HOUR, harness, jarToken, MINUTE, OTHER_SECRET, SECRET } from "./harness.js";

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

/**
 * The `rememberMe` option: sessions that called `rememberMe()` live by their own idle and absolute
 * deadlines. Here an ordinary session idles out after 30 minutes with a browser-session cookie, and
 * a remembered one after 30 days, 90 at most.
 */
const LONGER = {
  idleTimeout: "30m",
  absoluteTimeout: "12h",
  cookie: { persistent: false },
  rememberMe: { idleTimeout: "30d", absoluteTimeout: "90d" },
} as const;

/** Loads a token without committing, so the check itself moves no deadline. */
const peek = (
  h: { sessions: { load(input: Request): Promise<{ isNew: boolean }> } },
  token: string,
) => h.sessions.load(new Request("https://example.com/", { headers: { cookie: `sid=${token}` } }));

describe("the 400-day cap, wherever it is the binding deadline", () => {
  it("re-sends a remembered store session's Max-Age when a write moves its 400-day deadline", async () => {
    let clock = () => 0;
    const store = memoryStore({ now: () => clock() });
    const h = harness({ idleTimeout: false, absoluteTimeout: false, store });
    clock = h.clock.now;
    await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    h.clock.advance(10 * DAY);
    const written = await h.request((s) => s.set("n", 1));
    // The store keeps the record 400 days from this write: the cookie must last as long.
    expect(maxAgeOf(written)).toBe((400 * DAY) / 1000);
    const [[, , expiresAt] = []] = [...store.rawEntries()];
    expect(written.session.expiresAt).toBe(expiresAt);
  });

  it("ends a cookie session with an idle timeout past 400 days at 400 days, as expiresAt says", async () => {
    const h = harness({ idleTimeout: "500d", absoluteTimeout: false });
    const written = await h.request((s) => s.set("user", "ada"));
    expect(written.session.expiresAt).toBe(h.clock.now() + 400 * DAY);
    const token = jarToken(h.jar) as string;
    h.clock.advance(400 * DAY - 1);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(1);
    expect((await h.request(() => {}, { cookie: `sid=${token}` })).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });
});

describe("the rememberMe option: cookie sessions", () => {
  it("a remembered session outlives the base idle timeout and ends at its own, as expiresAt and Max-Age say", async () => {
    const h = harness(LONGER);
    const login = await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    const token = jarToken(h.jar) as string;
    expect(login.session.expiresAt).toBe(h.clock.now() + 30 * DAY);
    expect(maxAgeOf(login)).toBe((30 * DAY) / 1000);

    h.clock.advance(2 * HOUR); // past the base idle (30m)
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(30 * DAY - 2 * HOUR - 1);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(1);
    const late = await h.request(() => {}, { cookie: `sid=${token}`, keepJar: true });
    expect(late.session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("an unremembered session ends at the base idle timeout, with a browser-session cookie", async () => {
    const h = harness(LONGER);
    const login = await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
    });
    const token = jarToken(h.jar) as string;
    expect(login.session.expiresAt).toBe(h.clock.now() + 30 * MINUTE);
    expect(maxAgeOf(login)).toBeUndefined();
    h.clock.advance(30 * MINUTE - 1);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(1);
    expect((await h.request(() => {}, { cookie: `sid=${token}` })).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("with cookie.persistent left true, an unremembered cookie's Max-Age is the base idle", async () => {
    const h = harness({ ...LONGER, cookie: {} });
    expect(maxAgeOf(await h.request((s) => s.set("n", 1)))).toBe((30 * MINUTE) / 1000);
    expect(maxAgeOf(await h.request((s) => s.rememberMe()))).toBe((30 * DAY) / 1000);
  });

  it("a remembered session slides by its own touch interval (a quarter of its idle, at most 1h) and ends at its own absolute deadline", async () => {
    const h = harness(LONGER);
    await h.request((s) => {
      s.set("user", "ada");
      s.rememberMe();
    });
    const created = h.clock.now();
    // 45 minutes: past the base touch interval (7.5 min), short of the remembered one (1h).
    h.clock.advance(45 * MINUTE);
    expect((await h.request()).lines).toEqual([]);
    h.clock.advance(30 * MINUTE);
    const slid = await h.request();
    expect(maxAgeOf(slid)).toBe((30 * DAY) / 1000);
    expect(slid.session.expiresAt).toBe(h.clock.now() + 30 * DAY);

    // Used daily, it lives past the base absolute (12h) up to its own (90d), and not beyond.
    for (let day = 1; day < 89; day++) {
      h.clock.advance(created + day * DAY - h.clock.now());
      expect((await h.request()).session.get("user")).toBe("ada");
    }
    h.clock.advance(DAY);
    const lastDay = await h.request();
    expect(lastDay.session.expiresAt).toBe(created + 90 * DAY);
    expect(maxAgeOf(lastDay)).toBe(DAY / 1000);
    h.clock.advance(created + 90 * DAY - h.clock.now());
    expect((await h.request()).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-absolute"]);
  });

  it("rememberMe(false) mid-life returns the session to the base deadlines", async () => {
    const h = harness(LONGER);
    await h.request((s) => {
      s.set("user", "ada");
      s.rememberMe();
    });
    h.clock.advance(3 * HOUR);
    const forget = await h.request((s) => s.rememberMe(false));
    expect(maxAgeOf(forget)).toBeUndefined();
    expect(forget.session.expiresAt).toBe(h.clock.now() + 30 * MINUTE);
    const token = jarToken(h.jar) as string;
    h.clock.advance(30 * MINUTE - 1);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(1);
    expect((await h.request()).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("rememberMe(false) on a session older than the base absolute timeout ends it, as expiresAt says", async () => {
    const h = harness(LONGER);
    await h.request((s) => {
      s.set("user", "ada");
      s.rememberMe();
    });
    const created = h.clock.now();
    h.clock.advance(DAY);
    const forget = await h.request((s) => s.rememberMe(false));
    // The base absolute deadline counts from creation, as for a session never remembered.
    expect(forget.session.expiresAt).toBe(created + 12 * HOUR);
    expect(forget.session.expiresAt).toBeLessThan(h.clock.now());
    expect((await h.request()).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-absolute"]);
  });

  it("regenerate to another user drops the choice, and with it the longer lifetime", async () => {
    const h = harness(LONGER);
    await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    const other = await h.request(async (s) => {
      await s.regenerate({ userId: "bob" });
    });
    expect(other.session.expiresAt).toBe(h.clock.now() + 30 * MINUTE);
    expect(maxAgeOf(other)).toBeUndefined();
  });

  it("cannot be claimed by the client: a signed cookie edited to say remembered is refused", async () => {
    const h = harness({ ...LONGER, mode: "signed" });
    await h.request((s) => s.set("user", "ada"));
    const token = jarToken(h.jar) as string;
    const [version, keyId, payload, mac] = token.split(".") as [string, string, string, string];
    const record = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    expect(record.p).toBeUndefined();
    const forged = Buffer.from(JSON.stringify({ ...record, p: true })).toString("base64url");
    h.clock.advance(HOUR); // past the base idle: only the remembered lifetime would open it
    const replay = await h.request(() => {}, {
      cookie: `sid=${version}.${keyId}.${forged}.${mac}`,
    });
    expect(replay.session.isNew).toBe(true);
    expect(h.invalid).toEqual(["tampered"]);
  });

  it("cannot be claimed by the client: a remembered record sealed under another key is refused", async () => {
    // Same key id, another secret: a forger who knows the format but not the key.
    const forger = harness({ ...LONGER, secret: { k1: OTHER_SECRET } });
    await forger.request((s) => {
      s.set("user", "ada");
      s.rememberMe();
    });
    const forged = jarToken(forger.jar) as string;
    const h = harness({ ...LONGER, secret: { k1: SECRET } });
    const replay = await h.request(() => {}, { cookie: `sid=${forged}` });
    expect(replay.session.isNew).toBe(true);
    expect(h.invalid).toEqual(["tampered"]);
  });
});

describe("the rememberMe option: store sessions", () => {
  /** The store's own record of the single session: its meta and the expiresAt it was given. */
  const recordOf = async (store: ReturnType<typeof memoryStore>) => {
    const entries = [...store.rawEntries()];
    expect(entries).toHaveLength(1);
    const [key, , expiresAt] = entries[0] as [string, string, number];
    return { expiresAt, meta: (await store.get(key))?.meta };
  };

  const setup = (options: Partial<SessionsOptions<undefined>> = {}, storeClock?: () => number) => {
    let clock = () => 0;
    const store = memoryStore({ now: storeClock ?? (() => clock()) });
    const h = harness({ ...LONGER, store, ...options });
    clock = h.clock.now;
    return { h, store };
  };

  it("gives a remembered session's record its own TTL, which it outlives the base idle by and ends at", async () => {
    const { h, store } = setup();
    const login = await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    const token = jarToken(h.jar) as string;
    expect(maxAgeOf(login)).toBe((30 * DAY) / 1000);
    expect(login.session.expiresAt).toBe(h.clock.now() + 30 * DAY);
    const stored = await recordOf(store);
    expect(stored.expiresAt).toBe(login.session.expiresAt);
    expect(stored.meta?.persistent).toBe(true);

    h.clock.advance(2 * HOUR);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(30 * DAY - 2 * HOUR - 1);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(1);
    expect((await h.request(() => {}, { cookie: `sid=${token}` })).session.isNew).toBe(true);
  });

  it("refuses the record at its deadline by the manager's own check, not only the store's TTL", async () => {
    // A store whose clock stands still never expires anything: what refuses is load's own check.
    const { h, store } = setup({}, () => 0);
    await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    const token = jarToken(h.jar) as string;
    const { expiresAt } = await recordOf(store);
    h.clock.advance(expiresAt - h.clock.now() - 1);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(1);
    expect((await h.request(() => {}, { cookie: `sid=${token}` })).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("gives an unremembered record the base TTL, and ends it at the base idle", async () => {
    const { h, store } = setup({}, () => 0);
    const login = await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
    });
    expect(maxAgeOf(login)).toBeUndefined();
    expect((await recordOf(store)).expiresAt).toBe(h.clock.now() + 30 * MINUTE);
    h.clock.advance(30 * MINUTE);
    expect((await h.request()).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("slides a remembered record by its own touch interval, store TTL and Max-Age together", async () => {
    const { h, store } = setup();
    await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    h.clock.advance(45 * MINUTE); // past the base touch interval, short of the remembered one
    expect((await h.request()).lines).toEqual([]);
    h.clock.advance(30 * MINUTE);
    const slid = await h.request();
    expect(maxAgeOf(slid)).toBe((30 * DAY) / 1000);
    expect((await recordOf(store)).expiresAt).toBe(h.clock.now() + 30 * DAY);
    expect(slid.session.expiresAt).toBe(h.clock.now() + 30 * DAY);
  });

  it("rememberMe(false) mid-life moves the record's TTL back to the base and drops the cookie's Max-Age", async () => {
    const { h, store } = setup();
    await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    const token = jarToken(h.jar);
    h.clock.advance(3 * HOUR);
    const forget = await h.request((s) => s.rememberMe(false));
    expect(jarToken(h.jar)).toBe(token); // same id: only the cookie's lifetime changed
    expect(maxAgeOf(forget)).toBeUndefined();
    const stored = await recordOf(store);
    expect(stored.expiresAt).toBe(h.clock.now() + 30 * MINUTE);
    expect(stored.meta?.persistent).toBe(false);
    expect(forget.session.expiresAt).toBe(stored.expiresAt);
    h.clock.advance(30 * MINUTE);
    expect((await h.request()).session.isNew).toBe(true);
  });
});

describe("the rememberMe option without timeouts for remembered sessions", () => {
  const NONE = {
    idleTimeout: "30m",
    absoluteTimeout: false,
    cookie: { persistent: false },
    rememberMe: { idleTimeout: false },
  } as const;

  it("ends a remembered cookie session 400 days after its last write, as expiresAt and Max-Age say", async () => {
    const h = harness(NONE);
    const remembered = await h.request((s) => {
      s.set("user", "ada");
      s.rememberMe();
    });
    expect(remembered.session.expiresAt).toBe(h.clock.now() + 400 * DAY);
    expect(maxAgeOf(remembered)).toBe((400 * DAY) / 1000);
    const token = jarToken(h.jar) as string;
    // No idle timeout: reads never slide it, so nothing is re-sent.
    h.clock.advance(DAY);
    expect((await h.request()).lines).toEqual([]);
    h.clock.advance(399 * DAY - 1);
    expect((await peek(h, token)).isNew).toBe(false);
    h.clock.advance(1);
    expect((await h.request()).session.isNew).toBe(true);
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("gives a remembered store session's record and cookie 400 days from each write", async () => {
    let clock = () => 0;
    const store = memoryStore({ now: () => clock() });
    const h = harness({ ...NONE, store });
    clock = h.clock.now;
    await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
      s.rememberMe();
    });
    h.clock.advance(10 * DAY);
    const written = await h.request((s) => s.set("n", 1));
    expect(maxAgeOf(written)).toBe((400 * DAY) / 1000);
    const [[, , expiresAt] = []] = [...store.rawEntries()];
    expect(expiresAt).toBe(h.clock.now() + 400 * DAY);
    expect(written.session.expiresAt).toBe(expiresAt);
  });
});
