/**
 * Cookie attributes (OWASP: "Cookies": Secure, HttpOnly, SameSite, Domain and Path, Expire and
 * Max-Age; "Transport Layer Security"; "Web Content Caching"), and the browser's own rules for
 * __Host- / __Secure- prefixes, SameSite=None and Partitioned, enforced at start-up.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createSessions } from "../../src/index.js";
import type { CookieOptions } from "../../src/options.js";
import { harness, SECRET } from "../core/harness.js";

async function firstCookie(cookie: CookieOptions, url = "https://example.com/") {
  const h = harness({ cookie });
  const { setCookies, headers } = await h.request((s) => s.set("a", 1), { url });
  const line = setCookies[0];
  if (!line) throw new Error("no Set-Cookie");
  return { ...line, headers };
}

const configError = (cookie: CookieOptions) => () => createSessions({ secret: SECRET, cookie });

describe("cookie attributes", () => {
  it("defaults: sid, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age of the idle timeout", async () => {
    const c = await firstCookie({});
    expect(c.name).toBe("sid");
    expect(c.attributes.sort()).toEqual(
      ["HttpOnly", "Max-Age=604800", "Path=/", "SameSite=Lax", "Secure"].sort(),
    );
  });

  it("responses that set a session cookie are not cacheable", async () => {
    const c = await firstCookie({});
    expect(c.headers.get("cache-control")).toBe("no-store");
  });

  it('secure "auto" drops Secure only for plain-http localhost, never for another plain-http host', async () => {
    expect((await firstCookie({}, "http://localhost:3000/")).attributes).not.toContain("Secure");
    expect((await firstCookie({}, "http://127.0.0.1:3000/")).attributes).not.toContain("Secure");
    expect((await firstCookie({}, "http://example.com/")).attributes).toContain("Secure");
    expect((await firstCookie({}, "https://localhost/")).attributes).toContain("Secure");
  });

  it("a __Host- name is accepted and forced Secure with Path=/ and no Domain, even on localhost", async () => {
    const c = await firstCookie({ name: "__Host-sid" }, "http://localhost:3000/");
    expect(c.name).toBe("__Host-sid");
    expect(c.attributes).toContain("Secure");
    expect(c.attributes).toContain("Path=/");
    expect(c.attributes.some((a) => a.startsWith("Domain="))).toBe(false);
  });

  it("a __Host- name with a domain is a ConfigError", () => {
    expect(configError({ name: "__Host-sid", domain: "example.com" })).toThrow(ConfigError);
  });

  it('a __Host- name with a path other than "/" is a ConfigError', () => {
    expect(configError({ name: "__Host-sid", path: "/app" })).toThrow(ConfigError);
  });

  it("a __Host- or __Secure- name with secure: false is a ConfigError", () => {
    expect(configError({ name: "__Host-sid", secure: false })).toThrow(ConfigError);
    expect(configError({ name: "__Secure-sid", secure: false })).toThrow(ConfigError);
  });

  it("SameSite=None demands Secure: secure: false is a ConfigError", () => {
    expect(configError({ sameSite: "none", secure: false })).toThrow(ConfigError);
  });

  it('SameSite=None with secure "auto" sends Secure even on plain-http localhost', async () => {
    const c = await firstCookie({ sameSite: "none" }, "http://localhost:3000/");
    expect(c.attributes).toContain("SameSite=None");
    expect(c.attributes).toContain("Secure");
  });

  it("Partitioned demands Secure", async () => {
    expect(configError({ partitioned: true, secure: false })).toThrow(ConfigError);
    const c = await firstCookie({ partitioned: true }, "http://localhost:3000/");
    expect(c.attributes).toEqual(expect.arrayContaining(["Partitioned", "Secure"]));
  });

  it("a cookie name or path that could inject attributes is a ConfigError", () => {
    expect(configError({ name: "sid; Domain=evil.com" })).toThrow(ConfigError);
    expect(configError({ path: "/; Domain=evil.com" })).toThrow(ConfigError);
    expect(configError({ domain: "evil.com; Secure" })).toThrow(ConfigError);
  });

  it("logout deletes the cookie with Max-Age=0 and an Expires in 1970", async () => {
    const h = harness();
    await h.request((s) => s.set("a", 1));
    const { lines } = await h.request((s) => s.destroy());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^sid=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax$/,
    );
  });

  it('clearSiteData sends Clear-Site-Data: "cookies" on logout', async () => {
    const h = harness({ clearSiteData: true });
    await h.request((s) => s.set("a", 1));
    const { headers } = await h.request((s) => s.destroy());
    expect(headers.get("clear-site-data")).toBe('"cookies"');
  });
});
