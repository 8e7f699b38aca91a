/** Header transport for clients without cookies, and flash messages read once. */
import { describe, expect, it } from "vitest";
import { harness, jarToken } from "./harness.js";

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

  it("flashEntries returns every pending message with its level and empties the queue", async () => {
    const h = harness();
    await h.request((s) => {
      s.flash("success", "Saved");
      s.flash("warning", "Check your email");
      s.flash("success", "Synced");
    });
    const { session } = await h.request((s) => {
      expect(s.flashEntries()).toEqual([
        { level: "success", message: "Saved" },
        { level: "success", message: "Synced" },
        { level: "warning", message: "Check your email" },
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
