/** Header transport for clients without cookies, and flash messages read once. */
import { describe, expect, it } from "vitest";
import { decodeRecord, encodeRecord, isSessionMeta } from "../../src/internal/record.js";
import type { Session } from "../../src/session.js";
import type { Harness } from "./harness.js";
import { harness, jarToken, storeHarness } from "./harness.js";

describe("header transport", () => {
  async function twoSessions() {
    const h = harness({ header: "x-session" });
    await h.request((s) => s.set("who", "cookie"));
    const cookieToken = jarToken(h.jar) as string;
    // A second visitor; its token (bound to the cookie name either way) is then sent by header.
    const first = await h.request((s) => s.set("who", "header"), { cookie: "", keepJar: true });
    const headerToken = first.setCookies[0]?.value as string;
    expect(headerToken.startsWith("e1.")).toBe(true);
    expect(headerToken).not.toBe(cookieToken);
    return { h, cookieToken, headerToken };
  }

  it("takes the header's token over the cookie's when the request carries both", async () => {
    const { h, cookieToken, headerToken } = await twoSessions();
    const { session } = await h.request(() => {}, {
      cookie: `sid=${cookieToken}`,
      headers: { "x-session": headerToken },
      keepJar: true,
    });
    expect(session.get("who")).toBe("header");
    expect(h.invalid).toEqual([]);
  });

  it("answers a header request in the same header and sends no Set-Cookie", async () => {
    const { h, cookieToken, headerToken } = await twoSessions();
    const { headers, lines } = await h.request((s) => s.set("n", 1), {
      cookie: `sid=${cookieToken}`,
      headers: { "x-session": headerToken },
      keepJar: true,
    });
    expect(lines).toEqual([]);
    const next = headers.get("x-session") as string;
    expect(next).not.toBe(headerToken);
    expect(headers.get("cache-control")).toBe("no-store");
    const reread = await h.request(() => {}, {
      cookie: "",
      headers: { "x-session": next },
      keepJar: true,
    });
    expect(reread.session.data).toEqual({ who: "header", n: 1 });
  });

  it("sends nothing back to a header client whose unchanged session needs no touch", async () => {
    const { h, headerToken } = await twoSessions();
    const { headers } = await h.request(() => {}, {
      cookie: "",
      headers: { "x-session": headerToken },
    });
    expect(headers.get("x-session")).toBeNull();
    expect(headers.get("set-cookie")).toBeNull();
  });

  it("answers a destroyed header session with an empty header and no Set-Cookie", async () => {
    const { h, headerToken } = await twoSessions();
    const { headers, lines } = await h.request((s) => s.destroy(), {
      cookie: "",
      headers: { "x-session": headerToken },
    });
    expect(lines).toEqual([]);
    expect(headers.get("x-session")).toBe("");
  });

  it("tells a header client to forget a token it refused, as a cookie is cleared, once", async () => {
    const h = harness({ header: "x-session", idleTimeout: "10m" });
    const first = await h.request((s) => s.set("n", 1), {
      cookie: "",
      headers: { "x-session": "" },
    });
    const token = first.headers.get("x-session") as string;
    expect(token.startsWith("e1.")).toBe(true);
    h.clock.advance(11 * 60_000);
    const expired = await h.request(() => {}, { cookie: "", headers: { "x-session": token } });
    expect(expired.session.invalidReason).toBe("expired-idle");
    expect(expired.lines).toEqual([]);
    // Empty: forget it. Before, nothing came back and the client sent the dead token on every
    // request, each reported as expired again (onInvalid, "expired" events).
    expect(expired.headers.get("x-session")).toBe("");
    const next = await h.request(() => {}, { cookie: "", headers: { "x-session": "" } });
    expect(next.session.invalidReason).toBeUndefined();
    expect(h.invalid).toEqual(["expired-idle"]);
  });

  it("refuses a tampered header token with a fresh session, never falling back to the cookie", async () => {
    const { h, cookieToken, headerToken } = await twoSessions();
    const { session } = await h.request(() => {}, {
      cookie: `sid=${cookieToken}`,
      // Two new last characters, never the token's own (1 in 4,096 tokens ends in "AA").
      headers: {
        "x-session": `${headerToken.slice(0, -2)}${headerToken.endsWith("AA") ? "BB" : "AA"}`,
      },
      keepJar: true,
    });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toHaveLength(1);
    expect(["tampered", "malformed"]).toContain(h.invalid[0]);
  });

  it("never copies a cookie session's token into a script-readable response header", async () => {
    const h = harness({ header: "x-session" });
    const { headers, lines } = await h.request((s) => s.set("n", 1));
    expect(lines).toHaveLength(1);
    expect(headers.get("x-session")).toBeNull();
  });

  it("ignores the header entirely when the header transport is off", async () => {
    const h = harness();
    await h.request((s) => s.set("who", "cookie"));
    const { session, headers } = await h.request((s) => s.set("n", 1), {
      headers: { "x-session": "e1.whatever.AAAA" },
    });
    expect(session.get("who")).toBe("cookie");
    expect(headers.get("x-session")).toBeNull();
  });
});

describe("flash messages", () => {
  it("returns messages by level, each read once", async () => {
    const h = harness();
    const { session } = await h.request((s) => {
      s.flash("success", "Saved");
      s.flash("success", "Synced");
      s.flash("error", "Quota low");
    });
    expect(session.flashes("success")).toEqual(["Saved", "Synced"]);
    expect(session.flashes("success")).toEqual([]);
    expect(session.flashes("error")).toEqual(["Quota low"]);
    expect(session.flashes("info")).toEqual([]);
  });

  it("survives exactly one read across requests: set in 1, unread in 2, read in 3, gone in 4", async () => {
    const h = harness();
    const one = await h.request((s) => s.flash("info", "Welcome back"));
    expect(one.lines).toHaveLength(1);

    const two = await h.request((s) => {
      expect(s.get("anything")).toBeUndefined();
    });
    expect(two.lines).toEqual([]);

    const three = await h.request((s) => {
      expect(s.flashes("info")).toEqual(["Welcome back"]);
    });
    // Reading a flash is a change: the cookie is re-sealed without it.
    expect(three.lines).toHaveLength(1);

    const four = await h.request((s) => {
      expect(s.flashes("info")).toEqual([]);
      expect(s.flashEntries()).toEqual([]);
    });
    expect(four.lines).toEqual([]);
  });

  it("flashEntries returns every pending message with its level, in the order added, and empties the queue", async () => {
    const h = harness();
    await h.request((s) => {
      s.flash("success", "Saved");
      s.flash("warning", "Check your email");
      s.flash("success", "Synced");
    });
    const { session } = await h.request((s) => {
      expect(s.flashEntries()).toEqual([
        { level: "success", message: "Saved" },
        { level: "warning", message: "Check your email" },
        { level: "success", message: "Synced" },
      ]);
    });
    expect(session.flashEntries()).toEqual([]);
    expect((await h.request()).session.flashEntries()).toEqual([]);
  });

  it("keeps the unread levels when one level is read", async () => {
    const h = harness();
    await h.request((s) => {
      s.flash("success", "Saved");
      s.flash("error", "Oops");
    });
    await h.request((s) => {
      expect(s.flashes("success")).toEqual(["Saved"]);
    });
    const { session } = await h.request();
    expect(session.flashEntries()).toEqual([{ level: "error", message: "Oops" }]);
  });

  it("keeps flash messages beside the data, never inside it", async () => {
    const h = harness();
    await h.request((s) => s.flash("info", "hi"));
    const { session } = await h.request();
    expect(session.data).toEqual({});
    expect(session.flashes("info")).toEqual(["hi"]);
  });

  it("clear() drops pending flash messages with the data", async () => {
    const h = harness();
    await h.request((s) => {
      s.set("a", 1);
      s.flash("info", "hi");
    });
    await h.request((s) => s.clear());
    const { session } = await h.request();
    expect(session.isNew).toBe(false);
    expect(session.data).toEqual({});
    expect(session.flashEntries()).toEqual([]);
  });
});

describe("flash levels are any string", () => {
  it("keeps levels named like Object.prototype members apart from the prototype", async () => {
    const h = harness();
    await h.request((s) => {
      s.flash("constructor", "a");
      s.flash("__proto__", "b");
    });
    const { session } = await h.request((s) => {
      expect(s.flashes("toString")).toEqual([]);
      expect(s.flashes("constructor")).toEqual(["a"]);
    });
    expect(session.flashEntries()).toEqual([{ level: "__proto__", message: "b" }]);
  });
});

describe("flash messages of two requests of one session at once (two tabs, a server store)", () => {
  /** Two requests loaded from the same cookie, both in flight; the store first holds `seed`'s work. */
  async function twoTabs(h: Harness, seed: (s: Session) => void = () => {}) {
    await h.request((s) => {
      s.set("n", 1);
      seed(s);
    });
    const cookie = h.jar.header() as string;
    const load = () => h.sessions.load(new Headers({ cookie }));
    return { cookie, first: await load(), second: await load() };
  }

  async function commitBoth(h: Harness, first: Session, second: Session) {
    await h.sessions.commit(first, new Headers());
    await h.sessions.commit(second, new Headers());
  }

  async function pending(h: Harness, cookie: string) {
    return (await h.sessions.load(new Headers({ cookie }))).flashEntries();
  }

  it("both keep the message each added", async () => {
    const h = storeHarness();
    const { cookie, first, second } = await twoTabs(h);
    first.flash("success", "Saved the draft");
    second.flash("success", "Sent the invoice");
    second.flash("info", "Two left");
    await commitBoth(h, first, second);
    expect(await pending(h, cookie)).toEqual([
      { level: "success", message: "Saved the draft" },
      { level: "success", message: "Sent the invoice" },
      { level: "info", message: "Two left" },
    ]);
  });

  it("a request reading its messages leaves one another request added meanwhile", async () => {
    const h = storeHarness();
    const { cookie, first, second } = await twoTabs(h, (s) => s.flash("info", "Welcome"));
    expect(first.flashes("info")).toEqual(["Welcome"]);
    second.flash("info", "Saved");
    // Either order of the commits: the message read is gone, the one added stays.
    await commitBoth(h, second, first);
    expect(await pending(h, cookie)).toEqual([{ level: "info", message: "Saved" }]);
  });

  it("clear() removes the messages it saw, not one added by a request beside it", async () => {
    const h = storeHarness();
    const { cookie, first, second } = await twoTabs(h, (s) => s.flash("error", "Old"));
    first.clear();
    second.flash("warning", "New");
    await commitBoth(h, first, second);
    const session = await h.sessions.load(new Headers({ cookie }));
    expect(session.data).toEqual({});
    expect(session.flashEntries()).toEqual([{ level: "warning", message: "New" }]);
  });

  it("a regenerate keeping the data keeps a message another request added before its commit", async () => {
    const h = storeHarness();
    const { first, second } = await twoTabs(h);
    await first.regenerate();
    second.flash("success", "Saved");
    const moved = new Headers();
    await h.sessions.commit(second, new Headers());
    await h.sessions.commit(first, moved);
    const cookie = moved
      .getSetCookie()
      .map((line) => line.split(";")[0])
      .join("; ");
    expect(await pending(h, cookie)).toEqual([{ level: "success", message: "Saved" }]);
  });
});

describe("flash messages at rest", () => {
  const times = { createdAt: 1, touchedAt: 1, renewedAt: 1 };

  it("a cookie record keeps each message under its id, in order, and refuses one of another shape", () => {
    const meta = {
      ...times,
      "flash:000000001000x00001": ["info", "first"] as [string, string],
      "flash:000000001001x00002": ["error", "second"] as [string, string],
    };
    const text = encodeRecord("id-0123456789abcdef", {}, meta);
    expect(decodeRecord(text)?.meta).toEqual(meta);
    for (const bad of ['"hello"', '["info"]', '["info",2]', '{"info":["a"]}', "[]"]) {
      const record = JSON.stringify({ i: "id-0123456789abcdef", d: {}, ...{ c: 1, t: 1, r: 1 } });
      expect(decodeRecord(record.replace(/}$/, `,"f":{"x":${bad}}}`)), bad).toBeUndefined();
    }
    expect(decodeRecord(text.replace('"f":{', '"f":["info","a"],"g":{'))).toBeUndefined();
  });

  it("a store record whose flash field is not one [level, message] pair is refused", () => {
    expect(isSessionMeta({ ...times, "flash:a": ["info", "hi"] })).toBe(true);
    for (const bad of ["hello", ["info"], ["info", 1], { info: ["hi"] }, null]) {
      expect(isSessionMeta({ ...times, "flash:a": bad }), JSON.stringify(bad)).toBe(false);
    }
    // A field of the format before, one object of every level: no longer a flash message, ignored.
    expect(isSessionMeta({ ...times, flash: { info: ["hi"] } })).toBe(true);
  });
});
