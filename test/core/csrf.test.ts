/**
 * CSRF tokens (`session.csrfToken`, `session.verifyCsrfToken`) and the `requireCsrfToken` guard, on
 * cookie sessions (encrypted and signed) and store sessions: bound to the session's id, so they die
 * with regenerate and destroy; verified with any listed secret; refused in every malformed shape.
 */

import { createHmac, hkdfSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { backend } from "#crypto-backend";
import { createKeyring } from "../../src/crypto/keyring.js";
import { createCsrfSigner, requireCsrfToken } from "../../src/csrf.js";
import { ConfigError, createSessions, isSessionError, type Session } from "../../src/index.js";
import { closeSession } from "../../src/session.js";
import {
  DAY,
  type Harness,
  harness,
  keyIdOf,
  MINUTE,
  OTHER_SECRET,
  SECRET,
  storeHarness,
} from "./harness.js";

type Options = NonNullable<Parameters<typeof harness>[0]>;
const MODES: Array<[name: string, make: (options?: Options) => Harness, mode: Options]> = [
  ["cookie (encrypted)", (options) => harness(options), {}],
  ["cookie (signed)", (options) => harness({ mode: "signed", ...options }), { mode: "signed" }],
  ["memory store", (options) => storeHarness(options), {}],
];

/** A token issued in one request of `h`, after which the session is saved. */
async function tokenOf(h: Harness): Promise<string> {
  let token = "";
  await h.request(async (session) => {
    token = await session.csrfToken();
  });
  return token;
}

async function verifies(h: Harness, token: unknown): Promise<boolean> {
  let ok = false;
  await h.request(async (session) => {
    ok = await session.verifyCsrfToken(token);
  });
  return ok;
}

describe.each(MODES)("CSRF tokens: %s", (_name, make, mode) => {
  it("a response that hands out a token is no-store, also when the session writes nothing", async () => {
    const h = make();
    await tokenOf(h); // saves the session
    const plain = await h.request(() => {});
    expect(plain.lines).toEqual([]);
    expect(plain.headers.get("cache-control")).toBeNull();
    const shown = await h.request(async (session) => {
      await session.csrfToken();
    });
    expect(shown.lines).toEqual([]);
    expect(shown.headers.get("cache-control")).toBe("no-store");
  });

  it("a new visitor asking for a token gets a saved session, and its next request's token verifies", async () => {
    const h = make();
    let id = "";
    let token = "";
    const form = await h.request(async (session) => {
      expect(session.isNew).toBe(true);
      token = await session.csrfToken();
      id = session.id;
    });
    expect(form.lines).toHaveLength(1);
    let posted = false;
    await h.request(async (session) => {
      expect(session.isNew).toBe(false);
      expect(session.id).toBe(id);
      posted = await session.verifyCsrfToken(token);
    });
    expect(posted).toBe(true);
  });

  it("every token of a session verifies for as long as the id holds, each spelled differently", async () => {
    const h = make();
    const first = await tokenOf(h);
    const second = await tokenOf(h);
    // Asking again on a saved session writes nothing.
    const again = await h.request(async (session) => {
      await session.csrfToken();
    });
    expect(again.lines).toEqual([]);
    h.clock.advance(10 * MINUTE);
    expect(first).not.toBe(second);
    expect(await verifies(h, first)).toBe(true);
    expect(await verifies(h, second)).toBe(true);
    expect(first).toMatch(/^c1\.[A-Za-z0-9_-]{1,16}\.[A-Za-z0-9_-]{86}$/);
  });

  it("a token of one session does not verify in another", async () => {
    const a = make();
    const b = make();
    const tokenA = await tokenOf(a);
    const tokenB = await tokenOf(b);
    expect(await verifies(a, tokenB)).toBe(false);
    expect(await verifies(b, tokenA)).toBe(false);
    expect(await verifies(a, tokenA)).toBe(true);
  });

  it("regenerate (sign-in) ends the session's tokens, in the same request and after", async () => {
    const h = make();
    const before = await tokenOf(h);
    let sameRequest = true;
    let fresh = "";
    await h.request(async (session) => {
      await session.regenerate({ userId: "ada" });
      sameRequest = await session.verifyCsrfToken(before);
      fresh = await session.csrfToken();
    });
    expect(sameRequest).toBe(false);
    expect(await verifies(h, before)).toBe(false);
    expect(await verifies(h, fresh)).toBe(true);
  });

  it("destroy ends the session's tokens; a token asked for after it belongs to the new session", async () => {
    const h = make();
    const before = await tokenOf(h);
    let sameRequest = true;
    let after = "";
    await h.request(async (session) => {
      session.destroy();
      sameRequest = await session.verifyCsrfToken(before);
      after = await session.csrfToken();
    });
    expect(sameRequest).toBe(false);
    expect(await verifies(h, before)).toBe(false);
    expect(await verifies(h, after)).toBe(true);
  });

  it("refuses tampered, truncated, extended and non-string tokens without throwing", async () => {
    const h = make();
    const token = await tokenOf(h);
    const [version = "", kid = "", masked = ""] = token.split(".");
    expect(version).toBe("c1");
    const flip = (text: string, at: number) =>
      text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    const maskedAt = version.length + kid.length + 2;
    const bad: unknown[] = [
      flip(token, 0), // version
      flip(token, version.length + 1), // key id
      flip(token, maskedAt), // pad
      flip(token, maskedAt + 50), // masked MAC
      flip(token, token.length - 2),
      token.slice(0, -1),
      token.slice(0, -4),
      token.slice(0, token.length / 2),
      `${token}A`,
      `${token}AAAA`,
      `${token}.`,
      `${kid}.${masked}`,
      `c2.${kid}.${masked}`,
      `c1..${masked}`,
      `c1.${kid}.`,
      `c1.${kid}..${masked}`,
      `c1.nokey.${masked}`,
      // Non-canonical base64url: the last character's unused low bits set, the same bytes otherwise.
      `c1.${kid}.${masked.slice(0, -1)}B`,
      // Standard base64's alphabet for the same bytes.
      token.replaceAll("-", "+").replaceAll("_", "/") === token
        ? ""
        : token.replaceAll("-", "+").replaceAll("_", "/"),
      token.toUpperCase(),
      ` ${token}`,
      "",
      "x".repeat(100_000),
      undefined,
      null,
      42,
      {},
      [token],
      { toString: () => token },
      new String(token),
    ];
    const results: boolean[] = [];
    await h.request(async (session) => {
      for (const candidate of bad) results.push(await session.verifyCsrfToken(candidate));
      // The token itself still verifies in this very request.
      results.push(!(await session.verifyCsrfToken(token)));
    });
    expect(results).toEqual(bad.map(() => false).concat(false));
  });

  it("tokens made before a secret rotation verify while the old secret is listed; new ones carry the new key", async () => {
    const first = make({ secret: SECRET });
    const token = await tokenOf(first);
    // The store sessions live on: the same store, read by a manager with the new secret first.
    const store = first.sessions.store;
    const rotated = createSessions({
      secret: [OTHER_SECRET, SECRET],
      now: first.clock.now,
      ...mode,
      ...(store ? { store } : {}),
    });
    const request = () =>
      new Request("https://example.com/", { headers: { cookie: first.jar.header() ?? "" } });
    const session = await rotated.load(request());
    expect(session.isNew).toBe(false);
    expect(await session.verifyCsrfToken(token)).toBe(true);
    const renewed = await session.csrfToken();
    expect(keyIdOf(renewed)).not.toBe(keyIdOf(token));
    expect(await session.verifyCsrfToken(renewed)).toBe(true);
  });

  it("a session renewed at load (renewInterval) still accepts tokens of the id the request came with, that once", async () => {
    const h = make({ renewInterval: "1d", absoluteTimeout: "30d", idleTimeout: "7d" });
    const token = await tokenOf(h);
    h.clock.advance(DAY + MINUTE);
    let during = false;
    let renewed = false;
    await h.request(async (session) => {
      renewed = h.invalid.length === 0 && session.isNew === false;
      during = await session.verifyCsrfToken(token);
    });
    expect(renewed).toBe(true);
    expect(during).toBe(true);
    // The renewal was committed: the old id is gone, and its tokens with it.
    expect(await verifies(h, token)).toBe(false);
  });
});

/** A keyring as the manager hands it to the signer: derived once, given on each call. */
function keysOf(secrets: Parameters<typeof createKeyring>[0], b: typeof backend) {
  const ring = createKeyring(secrets, b);
  return () => ring;
}

describe("CSRF tokens: store revocation", () => {
  it("destroyByUser (log out everywhere) ends the tokens of every session of the user", async () => {
    const h = storeHarness();
    let token = "";
    await h.request(async (session) => {
      await session.regenerate({ userId: "alice" });
      token = await session.csrfToken();
    });
    expect(await verifies(h, token)).toBe(true);
    await h.sessions.destroyByUser("alice");
    expect(await verifies(h, token)).toBe(false);
  });
});

describe("CSRF tokens: keys", () => {
  it("refuses a token made with another secret under the same key id, or a retired secret", async () => {
    const h = harness({ secret: { v1: SECRET } });
    let session: Session | undefined;
    await h.request(async (s) => {
      await s.csrfToken();
    });
    await h.request((s) => {
      session = s;
    });
    const id = (session as Session).id;
    const forger = createCsrfSigner(keysOf([{ id: "v1", secret: OTHER_SECRET }], backend), "sid");
    const genuine = createCsrfSigner(keysOf([{ id: "v1", secret: SECRET }], backend), "sid");
    const forged = await forger.issue(id);
    expect(keyIdOf(forged)).toBe("v1");
    expect(await (session as Session).verifyCsrfToken(forged)).toBe(false);
    // The same construction with the right secret verifies: the refusal above is the secret's doing.
    expect(await (session as Session).verifyCsrfToken(await genuine.issue(id))).toBe(true);
    // A secret taken out of the list: its tokens name a key id nobody holds.
    const retired = createCsrfSigner(keysOf([{ id: "v0", secret: OTHER_SECRET }], backend), "sid");
    expect(await (session as Session).verifyCsrfToken(await retired.issue(id))).toBe(false);
  });

  it("unmasks to HMAC-SHA256 under HKDF(secret, 'sessionkit/v1 csrf') of cookie name NUL id, on either backend", async () => {
    // Computed here with node:crypto alone: run with SESSIONKIT_BACKEND=web too, a token of one
    // backend is then known to verify on the other (a fleet mixing Node and Workers).
    const h = harness({ secret: { v1: SECRET } });
    const token = await tokenOf(h);
    let id = "";
    await h.request((s) => {
      id = s.id;
    });
    const masked = Buffer.from(token.split(".")[2] as string, "base64url");
    const mac = masked.subarray(32).map((byte, i) => byte ^ (masked[i] as number));
    const key = Buffer.from(
      hkdfSync("sha256", SECRET, new Uint8Array(0), "sessionkit/v1 csrf", 32),
    );
    const expected = createHmac("sha256", key).update(`sid\0${id}`).digest();
    expect(Buffer.from(mac).equals(expected)).toBe(true);
  });

  it("a manager with another cookie name, same secret, refuses the token (bound to the cookie name)", async () => {
    const h = harness();
    const token = await tokenOf(h);
    let id = "";
    await h.request((s) => {
      id = s.id;
    });
    const other = createCsrfSigner(keysOf([{ id: undefined, secret: SECRET }], backend), "other");
    const otherToken = await other.issue(id);
    expect(keyIdOf(otherToken)).toBe(keyIdOf(token));
    expect(await verifies(h, otherToken)).toBe(false);
  });

  it("asking a new session for a token once its response has begun throws, a saved one's does not", async () => {
    const h = harness();
    let thrown: unknown;
    await h.request(async (session) => {
      closeSession(session);
      thrown = await session.csrfToken().catch((err: unknown) => err);
    });
    expect(isSessionError(thrown, "ERR_SESSION_STATE")).toBe(true);
    await tokenOf(h);
    let token = "";
    await h.request(async (session) => {
      closeSession(session);
      token = await session.csrfToken();
    });
    expect(await verifies(h, token)).toBe(true);
  });
});

const HERE = "https://app.example.com/transfer";

/** The guard's verdict on one request of `h`'s current session: "pass" or the refusal. */
async function guarded(
  h: Harness,
  init: Omit<RequestInit, "headers"> & { headers?: Record<string, string>; duplex?: "half" },
  guard = requireCsrfToken(),
): Promise<"pass" | Response> {
  const headers = new Headers(init.headers);
  const cookie = h.jar.header();
  if (cookie !== undefined) headers.set("cookie", cookie);
  const request = new Request(HERE, { ...init, headers });
  const session = await h.sessions.load(request);
  return (await guard(session, request)) ?? "pass";
}

describe("requireCsrfToken", () => {
  it("lets GET, HEAD and OPTIONS through without a token", async () => {
    const h = harness();
    for (const method of ["GET", "HEAD", "OPTIONS"])
      expect(await guarded(h, { method })).toBe("pass");
  });

  it("refuses unsafe methods without a valid token: 403, no-store, plain text", async () => {
    const h = harness();
    const token = await tokenOf(h);
    // Lowercase too: Fetch upper-cases only its six standard methods ("post" is POST), and keeps
    // any other as sent ("patch"), which is then no safe method either.
    for (const method of ["POST", "PUT", "PATCH", "DELETE", "PROPFIND", "post", "patch", "Get-"]) {
      const denied = await guarded(h, { method });
      expect(denied).toBeInstanceOf(Response);
      const response = denied as Response;
      expect(response.status).toBe(403);
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(await response.text()).toBe("Forbidden: missing or invalid CSRF token");
      expect(await guarded(h, { method, headers: { "x-csrf-token": token } })).toBe("pass");
      expect(
        ((await guarded(h, { method, headers: { "x-csrf-token": `${token}x` } })) as Response)
          .status,
      ).toBe(403);
    }
  });

  it("reads the token from an urlencoded form field, and the handler can still read the body", async () => {
    const h = harness();
    const token = await tokenOf(h);
    const headers = new Headers({ "content-type": "application/x-www-form-urlencoded" });
    headers.set("cookie", h.jar.header() ?? "");
    const body = new URLSearchParams({ amount: "10", _csrf: token }).toString();
    const request = new Request(HERE, { method: "POST", headers, body });
    const session = await h.sessions.load(request);
    expect(await requireCsrfToken()(session, request)).toBeUndefined();
    expect((await request.formData()).get("amount")).toBe("10");
    const wrong = new URLSearchParams({ _csrf: "nope" }).toString();
    const refused = await guarded(h, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: wrong,
    });
    expect((refused as Response).status).toBe(403);
  });

  it("reads the token from a multipart form field, under a configured name", async () => {
    const h = harness();
    const token = await tokenOf(h);
    const form = new FormData();
    form.set("authenticity_token", token);
    form.set("file", new Blob(["x".repeat(1000)]), "a.txt");
    expect(
      await guarded(
        h,
        { method: "POST", body: form },
        requireCsrfToken({ field: "authenticity_token" }),
      ),
    ).toBe("pass");
    // Under the default name only "_csrf" is read.
    expect(((await guarded(h, { method: "POST", body: form })) as Response).status).toBe(403);
    // field: false reads no body.
    const plain = new URLSearchParams({ _csrf: token }).toString();
    const init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: plain,
    };
    expect(await guarded(h, init)).toBe("pass");
    expect(((await guarded(h, init, requireCsrfToken({ field: false }))) as Response).status).toBe(
      403,
    );
  });

  it("reads no more than maxFormBytes of a body, by Content-Length or as it streams", async () => {
    const h = harness();
    const token = await tokenOf(h);
    const body = new URLSearchParams({ _csrf: token, pad: "x".repeat(2000) }).toString();
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const small = requireCsrfToken({ maxFormBytes: 1000 });
    expect(await guarded(h, { method: "POST", headers: form, body })).toBe("pass");
    expect(
      ((await guarded(h, { method: "POST", headers: form, body }, small)) as Response).status,
    ).toBe(403);
    // A streamed body (no Content-Length) is cut at the limit too.
    const stream = new Blob([body]).stream();
    const streamed = await guarded(
      h,
      { method: "POST", headers: form, body: stream, duplex: "half" },
      small,
    );
    expect((streamed as Response).status).toBe(403);
  });

  it("the header is read first, under a configured name", async () => {
    const h = harness();
    const token = await tokenOf(h);
    const guard = requireCsrfToken({ header: "x-xsrf-token" });
    expect(await guarded(h, { method: "POST", headers: { "x-xsrf-token": token } }, guard)).toBe(
      "pass",
    );
    expect(
      (
        (await guarded(
          h,
          { method: "POST", headers: { "x-csrf-token": token } },
          guard,
        )) as Response
      ).status,
    ).toBe(403);
  });

  it("a new visitor's POST without a saved session is refused", async () => {
    const h = harness();
    const stranger = harness();
    const token = await tokenOf(stranger);
    expect(
      ((await guarded(h, { method: "POST", headers: { "x-csrf-token": token } })) as Response)
        .status,
    ).toBe(403);
  });

  it("a session carried by the header transport passes: no browser sends that header for another site", async () => {
    const h = harness({ header: "x-session" });
    const first = await h.sessions.load(new Request(HERE, { headers: { "x-session": "" } }));
    first.set("n", 1);
    const out = new Headers();
    await h.sessions.commit(first, out);
    const carried = out.get("x-session") as string;
    const request = new Request(HERE, { method: "POST", headers: { "x-session": carried } });
    const session = await h.sessions.load(request);
    expect(session.isNew).toBe(false);
    expect(await requireCsrfToken()(session, request)).toBeUndefined();
  });

  it("refuses when the adapter has no Fetch request to give (CONNECT, TRACE on node)", async () => {
    const h = harness();
    const session = await h.sessions.load(new Request(HERE));
    expect((await requireCsrfToken()(session, undefined))?.status).toBe(403);
  });

  it("unknown or malformed options are a ConfigError at start-up", () => {
    for (const options of [
      { headers: "x-csrf-token" },
      { header: "x csrf" },
      { header: "" },
      { field: "" },
      { field: 1 },
      { maxFormBytes: -1 },
      { maxFormBytes: 1.5 },
    ]) {
      expect(() => requireCsrfToken(options as never), JSON.stringify(options)).toThrow(
        ConfigError,
      );
    }
    expect(() => requireCsrfToken({ headers: "x" } as never)).toThrow(/did you mean "header"/);
  });
});
