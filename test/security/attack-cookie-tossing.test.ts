/**
 * Attacks on how the session cookie is read and written: cookie tossing from a sibling subdomain
 * against a chunked session, name and encoding variants, and the `Secure` attribute behind a proxy.
 * Each finding is a test that fails on the code as it is (`it.fails`, with the problem named);
 * the rest pin down attacks that were tried and held.
 */
import { describe, expect, it } from "vitest";
import { fakeClock, harness, jarToken, OTHER_SECRET } from "../core/harness.js";

/** A visitor whose session is large enough to travel in chunks (sid.0, sid.1). */
async function chunkedVisitor() {
  const h = harness();
  await h.request((s) => s.set("big", "x".repeat(5000)));
  const chunks = [...h.jar.cookies].map(([name, value]) => `${name}=${value}`);
  expect(chunks.map((pair) => pair.split("=")[0])).toEqual(["sid.0", "sid.1"]);
  return { h, chunks };
}

describe("cookie tossing against a chunked session", () => {
  // FINDING (sibling-subdomain sign-out): the defence against tossing (try later values of the
  // name, clear nothing) covers the base cookie `sid` only. A sibling subdomain that sets one
  // `sid.0` for the parent domain on a longer path (it comes first, and the parser keeps the first
  // value of a name) makes every chunked session of that site refused, and the refusal's clearing
  // lines delete the visitor's real host-only chunks: signed out for good by one cookie. Fix
  // (manager.ts, beside the `laterValues` retry): when the join of the first values is refused and
  // a chunk name came more than once, also try the join of each chunk name's last value, and do not
  // clear when the request carried several values of one of our names.
  it("a tossed sid.0 in front of the visitor's chunks does not hide or clear them", async () => {
    const { h, chunks } = await chunkedVisitor();
    const attacker = harness({ secret: OTHER_SECRET });
    await attacker.request((s) => s.set("big", "y".repeat(5000)));
    const tossed = `sid.0=${attacker.jar.cookies.get("sid.0")}`;
    const { session, lines } = await h.request(() => {}, {
      cookie: [tossed, ...chunks].join("; "),
      keepJar: true,
    });
    expect(session.get("big")).toBe("x".repeat(5000));
    expect(lines).toEqual([]);
  });

  it("the same tossed chunk cannot splice the attacker's data into the visitor's session", async () => {
    const { h, chunks } = await chunkedVisitor();
    // Same secret, other session: a chunk that authenticates on its own still cannot be mixed in.
    const other = harness();
    await other.request((s) => s.set("big", "y".repeat(5000)));
    for (const name of ["sid.0", "sid.1"]) {
      const mixed = chunks.map((pair) =>
        pair.startsWith(`${name}=`) ? `${name}=${other.jar.cookies.get(name)}` : pair,
      );
      h.invalid.length = 0;
      const { session } = await h.request(() => {}, { cookie: mixed.join("; "), keepJar: true });
      expect(session.isNew).toBe(true);
      expect(h.invalid).toEqual(["tampered"]);
    }
  });

  it("reordered, duplicated or renumbered chunks never open anything but the original", async () => {
    const { h, chunks } = await chunkedVisitor();
    const [first, second] = chunks as [string, string];
    const value = (pair: string) => pair.slice(pair.indexOf("=") + 1);
    const variants = [
      [second, first], // the browser's order does not matter: names carry the index
      [first, second, `sid.2=${value(second)}`],
      [`sid.0=${value(second)}`, `sid.1=${value(first)}`],
      [`sid.00=${value(first)}`, `sid.01=${value(second)}`],
      [first, `sid.1=${value(second).slice(0, -1)}`],
      [first],
    ];
    const opened = [];
    for (const cookies of variants) {
      const { session } = await h.request(() => {}, { cookie: cookies.join("; "), keepJar: true });
      opened.push(session.isNew ? "fresh" : session.get("big") === "x".repeat(5000));
    }
    expect(opened).toEqual([true, "fresh", "fresh", "fresh", "fresh", "fresh"]);
  });
});

describe("name and encoding variants of the session cookie", () => {
  it("another spelling of the name is not our cookie; a percent-encoded value is the same token", async () => {
    const h = harness();
    await h.request((s) => s.set("user", "ada"));
    const token = jarToken(h.jar) as string;
    const id = (await h.request(() => {}, { keepJar: true })).session.id;
    const encoded = [...token].map((c) => `%${c.charCodeAt(0).toString(16)}`).join("");
    const cases: Record<string, string> = {
      upper: `SID=${token}`,
      quoted: `"sid"=${token}`,
      "encoded name": `sid%2E0=${token}`,
      "unicode space": `\u00a0sid=${token}`,
      "percent-encoded value": `sid=${encoded}`,
      "blanks around the name": ` \tsid\t =${token}`,
    };
    const got: Record<string, string> = {};
    for (const [label, cookie] of Object.entries(cases)) {
      const { session, lines } = await h.request(() => {}, { cookie, keepJar: true });
      // A cookie that is not ours is neither read nor cleared.
      if (session.isNew) got[label] = lines.length === 0 ? "ignored" : "cleared";
      else got[label] = session.id === id ? "same session" : "another session";
    }
    expect(got).toEqual({
      upper: "ignored",
      quoted: "ignored",
      "encoded name": "ignored",
      "unicode space": "ignored",
      // Decoded before it is verified: one session, whatever the spelling, and the token cache
      // keyed by the decoded text cannot be used to tell spellings apart.
      "percent-encoded value": "same session",
      // Browsers trim the same blanks (RFC 6265bis 5.4 step 3).
      "blanks around the name": "same session",
    });
  });
});

describe("Secure behind a TLS-terminating proxy", () => {
  // FINDING (cookie without Secure in production): with the default `secure: "auto"`, a request is
  // judged by its URL, which the node-based adapters build from the Host header. nginx's default
  // `proxy_pass http://127.0.0.1:3000` sends `Host: 127.0.0.1:3000` (proxy_set_header Host
  // $proxy_host is its default), so every session cookie goes out without Secure, even when the
  // proxy says `X-Forwarded-Proto: https`; a network attacker then reads it from any plain-http
  // request to the site. Fix (manager.ts isLocalPlainHttp): a request that says it came over https
  // (X-Forwarded-Proto or Forwarded proto=https) is not "local plain http": such a header can only
  // add Secure, never remove it, so trusting it is safe.
  it("a cookie issued for a proxy-forwarded https request is Secure", async () => {
    const h = harness({ now: fakeClock().now });
    const { setCookies } = await h.request((s) => s.set("user", "ada"), {
      url: "http://127.0.0.1:3000/account",
      headers: { "x-forwarded-proto": "https" },
    });
    expect(setCookies[0]?.attributes).toContain("Secure");
  });

  it("so is one for a request a proxy forwarded with RFC 7239's Forwarded: proto=https", async () => {
    for (const forwarded of ["for=192.0.2.60;proto=https;by=203.0.113.43", 'proto="https"']) {
      const h = harness({ now: fakeClock().now });
      const { setCookies } = await h.request((s) => s.set("user", "ada"), {
        url: "http://127.0.0.1:3000/account",
        headers: { forwarded },
      });
      expect(setCookies[0]?.attributes, forwarded).toContain("Secure");
    }
  });

  it("a local plain-http request forwarded as http, or by a later proxy only, stays without Secure", async () => {
    for (const headers of [
      { "x-forwarded-proto": "http" } as Record<string, string>,
      { "x-forwarded-proto": "http, https" },
      { forwarded: "proto=http, proto=https" },
    ]) {
      const h = harness({ now: fakeClock().now });
      const { setCookies } = await h.request((s) => s.set("user", "ada"), {
        url: "http://127.0.0.1:3000/account",
        headers,
      });
      expect(setCookies[0]?.attributes, JSON.stringify(headers)).not.toContain("Secure");
    }
  });

  it("a direct plain-http request to a public host still gets Secure (control)", async () => {
    const h = harness();
    const { setCookies } = await h.request((s) => s.set("user", "ada"), {
      url: "http://example.com/",
      headers: { "x-forwarded-proto": "http" },
    });
    expect(setCookies[0]?.attributes).toContain("Secure");
  });
});
