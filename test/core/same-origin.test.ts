/**
 * `requireSameOrigin`: state-changing requests a browser sends for another origin are refused, from
 * the headers browsers set themselves (Sec-Fetch-Site, then Origin); safe methods and non-browser
 * clients pass; misconfigured trusted origins fail at start-up. A real browser posting from another
 * port of the same host is in test/e2e/demo.e2e.test.ts.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createSessions, isSessionError } from "../../src/index.js";
import { requireSameOrigin } from "../../src/same-origin.js";
import { SECRET } from "./harness.js";

const URL_HERE = "http://app.example.com:8080/transfer";

async function verdict(
  method: string,
  headers: Record<string, string>,
  guard = requireSameOrigin(),
): Promise<number | "pass"> {
  const request = new Request(URL_HERE, { method, headers });
  const session = await createSessions({ secret: SECRET }).load(request);
  const denied = await guard(session, request);
  return denied ? denied.status : "pass";
}

describe("requireSameOrigin", () => {
  it("lets GET, HEAD and OPTIONS through whatever their origin", async () => {
    for (const method of ["GET", "HEAD", "OPTIONS"]) {
      expect(await verdict(method, { "sec-fetch-site": "cross-site" })).toBe("pass");
      expect(await verdict(method, { origin: "https://evil.example" })).toBe("pass");
    }
  });

  it("by Sec-Fetch-Site: same-origin and none pass; same-site and cross-site are refused", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"]) {
      expect(await verdict(method, { "sec-fetch-site": "same-origin" })).toBe("pass");
      expect(await verdict(method, { "sec-fetch-site": "none" })).toBe("pass");
      expect(await verdict(method, { "sec-fetch-site": "same-site" })).toBe(403);
      expect(await verdict(method, { "sec-fetch-site": "cross-site" })).toBe(403);
    }
    // Sec-Fetch-Site decides when present, even if Origin names this host.
    expect(
      await verdict("POST", {
        "sec-fetch-site": "cross-site",
        origin: "http://app.example.com:8080",
      }),
    ).toBe(403);
  });

  it("without Sec-Fetch-Site, by Origin: this host passes, another host or port or 'null' is refused", async () => {
    expect(await verdict("POST", { origin: "http://app.example.com:8080" })).toBe("pass");
    // Behind a proxy that ends TLS the browser says https while the request URL says http.
    expect(await verdict("POST", { origin: "https://app.example.com:8080" })).toBe("pass");
    expect(await verdict("POST", { origin: "http://app.example.com:9090" })).toBe(403);
    expect(await verdict("POST", { origin: "http://evil.example.com:8080" })).toBe(403);
    expect(await verdict("POST", { origin: "http://sub.app.example.com:8080" })).toBe(403);
    expect(await verdict("POST", { origin: "null" })).toBe(403);
    expect(await verdict("POST", { origin: "not an origin" })).toBe(403);
  });

  it("a request with neither header (curl, a server, an app) passes", async () => {
    expect(await verdict("POST", {})).toBe("pass");
    expect(await verdict("DELETE", { cookie: "sid=x" })).toBe("pass");
  });

  it("trusted origins pass even cross-site; others stay refused", async () => {
    const guard = requireSameOrigin({ trustedOrigins: ["https://admin.example.com"] });
    const trusted = { "sec-fetch-site": "same-site", origin: "https://admin.example.com" };
    expect(await verdict("POST", trusted, guard)).toBe("pass");
    expect(await verdict("POST", { origin: "https://admin.example.com" }, guard)).toBe("pass");
    expect(
      await verdict(
        "POST",
        { "sec-fetch-site": "same-site", origin: "https://www.example.com" },
        guard,
      ),
    ).toBe(403);
    // An origin differs by scheme too.
    expect(
      await verdict(
        "POST",
        { "sec-fetch-site": "cross-site", origin: "http://admin.example.com" },
        guard,
      ),
    ).toBe(403);
  });

  it("refuses with 403 and a plain-text body, or with the denial given", async () => {
    const request = new Request(URL_HERE, {
      method: "POST",
      headers: { "sec-fetch-site": "cross-site" },
    });
    const session = await createSessions({ secret: SECRET }).load(request);
    const denied = await requireSameOrigin()(session, request);
    expect(denied?.status).toBe(403);
    expect(await denied?.text()).toBe("Forbidden: cross-origin request");
    const redirected = await requireSameOrigin({ deny: { redirect: "/" } })(session, request);
    expect(redirected?.status).toBe(303);
    expect(redirected?.headers.get("location")).toBe("/");
    // No request to judge (a CONNECT in the node adapters): refused, not waved through.
    expect((await requireSameOrigin()(session, undefined))?.status).toBe(403);
  });

  it("a trusted origin that is not an origin, or an unknown option, fails at start-up saying what to write", () => {
    for (const bad of [
      "https://admin.example.com/",
      "https://admin.example.com/path",
      "admin.example.com",
      "null",
      "",
    ]) {
      let error: unknown;
      try {
        requireSameOrigin({ trustedOrigins: [bad] });
      } catch (err) {
        error = err;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect(isSessionError(error)).toBe(true);
      expect((error as Error).message).toContain('e.g. "https://app.example.com"');
    }
    expect(() => requireSameOrigin({ trustedOrigins: ["https://admin.example.com/"] })).toThrow(
      '("https://admin.example.com")',
    );
    expect(() => requireSameOrigin({ trusted: [] } as never)).toThrow(
      /unknown requireSameOrigin option "trusted"/,
    );
  });
});

describe("a request whose URL does not parse (a fetch server on Node hands on Host: 1.2.3.256)", () => {
  // A stand-in: a real Request cannot hold such a URL, @hono/node-server's lazy one can.
  const unparsed = {
    method: "POST",
    url: "http://1.2.3.256/transfer",
    headers: new Headers({ origin: "http://1.2.3.256" }),
  } as unknown as Request;

  it("is refused by requireSameOrigin (403), never a throw", async () => {
    const session = await createSessions({ secret: SECRET }).load(new Headers());
    expect((await requireSameOrigin()(session, unparsed))?.status).toBe(403);
  });

  it("is answered 400 by runGuards before any guard runs", async () => {
    const { runGuards } = await import("../../src/guard.js");
    const session = await createSessions({ secret: SECRET }).load(new Headers());
    let ran = false;
    const denied = await runGuards(
      [
        () => {
          ran = true;
          return undefined;
        },
      ],
      session,
      unparsed,
    );
    expect(denied?.status).toBe(400);
    expect(denied?.headers.get("cache-control")).toBe("no-store");
    expect(ran).toBe(false);
  });
});
