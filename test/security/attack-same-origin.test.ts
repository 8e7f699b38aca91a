/**
 * Attempts to get a cross-origin, state-changing request past `requireSameOrigin`. A CSRF attacker
 * controls the page's origin, the method, path and body, not the request headers: the browser writes
 * Sec-Fetch-Site, Origin and Host. Origin spellings below that no browser would send still check
 * that the parser cannot be confused into naming this host. All of these held.
 */
import { describe, expect, it } from "vitest";
import { createSessions } from "../../src/index.js";
import { requireSameOrigin } from "../../src/same-origin.js";
import { SECRET } from "../core/harness.js";

async function verdict(url: string, method: string, headers: Record<string, string>) {
  const request = new Request(url, { method, headers });
  const session = await createSessions({ secret: SECRET }).load(request);
  const denied = await requireSameOrigin()(session, request);
  return denied ? denied.status : "pass";
}

const HERE = "http://app.example.com:8080/transfer";

describe("requireSameOrigin under attack", () => {
  it("origins that look like this host but are not, without Sec-Fetch-Site, are refused", async () => {
    const origins = [
      "http://app.example.com:8080@evil.example",
      "http://evil.example#@app.example.com:8080",
      "http://evil.example\\@app.example.com:8080",
      "http://app.example.com.evil.example:8080",
      "http://app.example.com.:8080",
      "http://evil.example, http://app.example.com:8080",
      "http://app.example.com:8080, http://evil.example",
      "http://[::ffff:7f00:1]:8080",
      "file://app.example.com:8080",
      "null",
      "",
    ];
    const got: Record<string, number | "pass"> = {};
    for (const origin of origins) got[origin] = await verdict(HERE, "POST", { origin });
    expect(got).toEqual(Object.fromEntries(origins.map((origin) => [origin, 403])));
  });

  it("Sec-Fetch-Site decides in any spelling a browser does not send, and a repeated one is refused", async () => {
    const values = ["Same-Origin", " same-origin", "same-origin, cross-site", "same-origin;", "*"];
    const got: Record<string, number | "pass"> = {};
    for (const site of values) {
      got[site] = await verdict(HERE, "POST", {
        "sec-fetch-site": site,
        origin: "http://app.example.com:8080",
      });
    }
    // Headers trims the value, so " same-origin" is "same-origin", as a browser would send it.
    expect(got).toEqual({
      "Same-Origin": 403,
      " same-origin": "pass",
      "same-origin, cross-site": 403,
      "same-origin;": 403,
      "*": 403,
    });
  });

  it("lower-case and unusual methods are checked; only GET, HEAD and OPTIONS pass unchecked", async () => {
    const cross = { "sec-fetch-site": "cross-site" };
    const got: Record<string, number | "pass"> = {};
    for (const method of ["post", "patch", "delete", "put", "PROPPATCH", "MKCOL", "get", "head"]) {
      got[method] = await verdict(HERE, method, cross);
    }
    // Fetch upper-cases the standard methods ("get" is GET) but not "patch": it is still refused.
    expect(got).toEqual({
      post: 403,
      patch: 403,
      delete: 403,
      put: 403,
      PROPPATCH: 403,
      MKCOL: 403,
      get: "pass",
      head: "pass",
    });
  });

  it("the same origin spelled as a browser spells it passes: IPv6, default port, punycode", async () => {
    const cases: Array<[url: string, origin: string]> = [
      ["http://[::1]:3000/x", "http://[::1]:3000"],
      ["http://[0:0:0:0:0:0:0:1]:3000/x", "http://[::1]:3000"],
      ["https://app.example.com/x", "https://app.example.com"],
      ["http://app.example.com:80/x", "http://app.example.com"],
      ["http://xn--bcher-kva.example/x", "http://xn--bcher-kva.example"],
      ["http://bücher.example/x", "http://xn--bcher-kva.example"],
      ["http://APP.example.com/x", "http://app.example.com"],
    ];
    for (const [url, origin] of cases) {
      expect(await verdict(url, "POST", { origin }), `${url} <- ${origin}`).toBe("pass");
    }
  });

  it("another port or a sibling of an IPv6 or punycode host is refused", async () => {
    const cases: Array<[url: string, origin: string]> = [
      ["http://[::1]:3000/x", "http://[::1]:3001"],
      ["http://[::1]:3000/x", "http://[::2]:3000"],
      ["http://xn--bcher-kva.example/x", "http://xn--bcher-kva.example.evil"],
      ["http://xn--bcher-kva.example/x", "http://bucher.example"],
      ["https://app.example.com/x", "https://app.example.com:8443"],
    ];
    for (const [url, origin] of cases) {
      expect(await verdict(url, "POST", { origin }), `${url} <- ${origin}`).toBe(403);
    }
  });
});
