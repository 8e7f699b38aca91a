/**
 * Write only when needed (DESIGN invariant 3) and secure defaults on the wire: exact Set-Cookie
 * attributes, Cache-Control, clearing cookies.
 */
import { describe, expect, it } from "vitest";
import { DAY, HOUR, harness, jarToken, MINUTE, SECOND } from "./harness.js";

const SEVEN_DAYS_S = (7 * DAY) / SECOND;

describe("writes only when needed", () => {
  it("sends no Set-Cookie and no Cache-Control to a visitor who never writes", async () => {
    const h = harness();
    const { session, headers, lines } = await h.request((s) => {
      expect(s.get("anything")).toBeUndefined();
      expect(s.has("anything")).toBe(false);
    });
    expect(session.isNew).toBe(true);
    expect(lines).toEqual([]);
    expect(headers.get("cache-control")).toBeNull();
    expect(h.events).toEqual([]);
  });

  it("sends no Set-Cookie for a loaded session that nothing changed", async () => {
    const h = harness();
    await h.request((s) => s.set("n", 1));
    h.clock.advance(10 * MINUTE);
    const { session, lines, headers } = await h.request((s) => {
      expect(s.get("n")).toBe(1);
    });
    expect(session.isNew).toBe(false);
    expect(lines).toEqual([]);
    expect(headers.get("cache-control")).toBeNull();
  });

  it("sends no Set-Cookie when the handler deletes a key the session does not have", async () => {
    const h = harness();
    await h.request((s) => s.set("n", 1));
    const { lines } = await h.request((s) => s.delete("absent"));
    expect(lines).toEqual([]);
  });

  it("re-issues exactly one cookie with a longer lifetime once the touch interval has passed", async () => {
    const h = harness({ idleTimeout: "7d", absoluteTimeout: "30d" });
    const first = await h.request((s) => s.set("n", 1));
    expect(first.setCookies[0]?.maxAge).toBe(SEVEN_DAYS_S);

    // Default touch interval: a quarter of idleTimeout, at most an hour.
    h.clock.advance(HOUR - 1);
    const before = await h.request();
    expect(before.lines).toEqual([]);

    h.clock.advance(1);
    const touched = await h.request();
    expect(touched.setCookies).toHaveLength(1);
    const cookie = touched.setCookies[0];
    expect(cookie?.name).toBe("sid");
    // The old cookie had 7d - 1h left; the re-issued one runs a full idle timeout from now.
    expect(cookie?.maxAge).toBe(SEVEN_DAYS_S);
    expect(cookie?.maxAge).toBeGreaterThan(SEVEN_DAYS_S - HOUR / SECOND);
    expect(touched.headers.get("cache-control")).toBe("no-store");
    expect(touched.session.get("n")).toBe(1);

    // The touch moved the interval: the next request within the hour writes nothing again.
    h.clock.advance(30 * MINUTE);
    expect((await h.request()).lines).toEqual([]);
  });

  it("honours an explicit touchInterval", async () => {
    const h = harness({ idleTimeout: "1h", touchInterval: "5m" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(5 * MINUTE - 1);
    expect((await h.request()).lines).toEqual([]);
    h.clock.advance(1);
    expect((await h.request()).setCookies.map((c) => c.maxAge)).toEqual([HOUR / SECOND]);
  });

  it("caps Max-Age at the absolute deadline", async () => {
    const h = harness({ idleTimeout: "7d", absoluteTimeout: "8d" });
    await h.request((s) => s.set("n", 1));
    h.clock.advance(3 * DAY);
    const { setCookies } = await h.request((s) => s.set("n", 2));
    expect(setCookies[0]?.maxAge).toBe((5 * DAY) / SECOND);
  });

  it("sends a session cookie (no Max-Age) when neither timeout is set", async () => {
    const h = harness({ idleTimeout: false, absoluteTimeout: false });
    const { lines } = await h.request((s) => s.set("n", 1));
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/Max-Age|Expires/);
  });

  it("destroy sends a clearing cookie with Max-Age=0 and Cache-Control: no-store", async () => {
    const h = harness();
    await h.request((s) => s.set("user", "ada"));
    const { lines, headers, session } = await h.request((s) => s.destroy());
    expect(lines).toEqual([
      "sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax",
    ]);
    expect(headers.get("cache-control")).toBe("no-store");
    expect(headers.get("clear-site-data")).toBeNull();
    expect(session.get("user")).toBeUndefined();
    expect(h.jar.cookies.size).toBe(0);
    expect(h.events.map((e) => e.type)).toEqual(["created", "destroyed"]);
  });

  it("destroy clears the base cookie and every chunk the request carried", async () => {
    const h = harness();
    await h.request((s) => s.set("big", "y".repeat(8000)));
    const chunks = [...h.jar.cookies.keys()];
    const count = Math.ceil((jarToken(h.jar) as string).length / 4000);
    expect(count).toBeGreaterThanOrEqual(3);
    expect(chunks).toEqual(Array.from({ length: count }, (_, i) => `sid.${i}`));
    const { setCookies } = await h.request((s) => s.destroy());
    expect(setCookies.map((c) => [c.name, c.value, c.maxAge])).toEqual([
      ...chunks.map((name) => [name, "", 0]),
      ["sid", "", 0],
    ]);
    expect(h.jar.cookies.size).toBe(0);
  });

  it("sends Clear-Site-Data on destroy when clearSiteData is on", async () => {
    const h = harness({ clearSiteData: true });
    await h.request((s) => s.set("user", "ada"));
    expect((await h.request()).headers.get("clear-site-data")).toBeNull();
    const { headers } = await h.request((s) => s.destroy());
    expect(headers.get("clear-site-data")).toBe('"cookies"');
  });

  it("a write after destroy starts a new session with a new id and only the new data", async () => {
    const h = harness();
    const first = await h.request((s) => s.set("user", "ada"));
    const oldId = first.session.id;
    const { session, setCookies } = await h.request((s) => {
      s.destroy();
      s.set("theme", "dark");
    });
    expect(session.id).not.toBe(oldId);
    expect(setCookies).toHaveLength(1);
    expect(setCookies[0]?.maxAge).toBe(SEVEN_DAYS_S);
    const next = await h.request();
    expect(next.session.data).toEqual({ theme: "dark" });
    expect(h.events.map((e) => e.type)).toEqual(["created", "destroyed", "created"]);
  });

  it("commit called twice writes the second change only", async () => {
    const h = harness();
    const session = await h.sessions.load(new Headers());
    session.set("a", 1);
    const first = new Headers();
    await h.sessions.commit(session, first);
    expect(first.getSetCookie()).toHaveLength(1);
    const again = new Headers();
    await h.sessions.commit(session, again);
    expect(again.getSetCookie()).toEqual([]);
    session.set("b", 2);
    const third = new Headers();
    await h.sessions.commit(session, third);
    expect(third.getSetCookie()).toHaveLength(1);
    const reread = await h.sessions.load(
      new Headers({ cookie: third.getSetCookie()[0]?.split(";")[0] as string }),
    );
    expect(reread.data).toEqual({ a: 1, b: 2 });
    expect(h.events.map((e) => e.type)).toEqual(["created"]);
  });
});

describe("secure defaults on the wire", () => {
  const BASE = ["Path=/", "HttpOnly"];

  for (const [url, secure] of [
    ["https://example.com/", true],
    ["http://example.com/", true],
    ["http://localhost:3000/", false],
    ["http://127.0.0.1/", false],
    ["http://[::1]:8080/", false],
    ["http://app.localhost/", false],
    ["https://localhost/", true],
  ] as const) {
    it(`${secure ? "sends" : "omits"} Secure for ${url}`, async () => {
      const h = harness();
      const { setCookies, headers } = await h.request((s) => s.set("n", 1), { url });
      expect(setCookies).toHaveLength(1);
      expect(setCookies[0]?.attributes).toEqual([
        `Max-Age=${SEVEN_DAYS_S}`,
        ...BASE,
        ...(secure ? ["Secure"] : []),
        "SameSite=Lax",
      ]);
      expect(headers.get("cache-control")).toBe("no-store");
    });
  }

  it("decides Secure from Host and X-Forwarded-Proto when given bare headers", async () => {
    const h = harness();
    for (const [host, proto, secure] of [
      ["localhost:3000", undefined, false],
      ["localhost:3000", "https", true],
      ["example.com", undefined, true],
    ] as const) {
      const request = new Headers({ host });
      if (proto) request.set("x-forwarded-proto", proto);
      const session = await h.sessions.load(request);
      session.set("n", 1);
      const response = new Headers();
      await h.sessions.commit(session, response);
      expect(response.getSetCookie()[0]?.includes("; Secure"), `${host} ${proto}`).toBe(secure);
    }
  });

  it("a __Host- cookie name works and is always Secure, Path=/ and without Domain", async () => {
    const h = harness({ cookie: { name: "__Host-sid" } });
    const { setCookies } = await h.request((s) => s.set("n", 1), { url: "http://localhost:3000/" });
    expect(setCookies[0]?.name).toBe("__Host-sid");
    expect(setCookies[0]?.attributes).toEqual([
      `Max-Age=${SEVEN_DAYS_S}`,
      "Path=/",
      "HttpOnly",
      "Secure",
      "SameSite=Lax",
    ]);
    const next = await h.request();
    expect(next.session.get("n")).toBe(1);
    expect(h.invalid).toEqual([]);
  });

  it("writes the configured attributes in full", async () => {
    const h = harness({
      cookie: {
        name: "app",
        path: "/app",
        domain: "example.com",
        sameSite: "strict",
        priority: "high",
        partitioned: true,
      },
    });
    const { setCookies } = await h.request((s) => s.set("n", 1));
    expect(setCookies[0]?.attributes).toEqual([
      `Max-Age=${SEVEN_DAYS_S}`,
      "Domain=example.com",
      "Path=/app",
      "HttpOnly",
      "Secure",
      "Partitioned",
      "Priority=High",
      "SameSite=Strict",
    ]);
  });

  it("sends Cache-Control: no-store on every response that sets the session cookie", async () => {
    const h = harness({ idleTimeout: "1h", renewInterval: "2h" });
    const responses = [
      await h.request((s) => s.set("n", 1)), // created
      await h.request((s) => s.set("n", 2)), // changed
    ];
    h.clock.advance(15 * MINUTE);
    responses.push(await h.request()); // touched
    h.clock.advance(2 * HOUR - 15 * MINUTE);
    h.jar.apply([]);
    responses.push(await h.request()); // expired: the cleared cookie
    await h.request((s) => s.set("n", 1));
    responses.push(await h.request((s) => s.destroy())); // destroyed
    for (const response of responses) {
      expect(response.lines.length).toBeGreaterThan(0);
      expect(response.headers.get("cache-control")).toBe("no-store");
    }
    expect(jarToken(h.jar)).toBeUndefined();
  });
});
