/**
 * CSRF tokens (`session.csrfToken`, `session.verifyCsrfToken`) and the `requireCsrfToken` guard, on
 * cookie sessions (encrypted and signed) and store sessions: bound to a seed the session keeps, so
 * they outlive `renewInterval`'s renewal and die with regenerate, a user switch and destroy; tokens
 * of the id (older versions') still verify; verified with any listed secret; refused in every
 * malformed shape.
 */

import { createHmac, hkdfSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { backend } from "#crypto-backend";
import { createKeyring } from "../../src/crypto/keyring.js";
import { createCsrfSigner, requireCsrfToken } from "../../src/csrf.js";
import { ConfigError, createSessions, isSessionError, type Session } from "../../src/index.js";
import { decodeRecord, encodeRecord } from "../../src/internal/record.js";
import { closeSession, type SessionState } from "../../src/session.js";
import {
  DAY,
  type Harness,
  HOUR,
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

/** The CSRF seed the session keeps in its meta (internal: no public API shows it). */
function seedOf(session: Session): string | undefined {
  return (session as SessionState).meta.csrf;
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

  it("a token issued before a renewal another request made verifies after it: renewInterval keeps the seed", async () => {
    const h = make({ renewInterval: "1d", absoluteTimeout: "30d", idleTimeout: "7d" });
    // Request 1: tab A shows a form.
    let token = "";
    const form = await h.request(async (session) => {
      token = await session.csrfToken();
    });
    const before = form.session.id;
    h.clock.advance(DAY + MINUTE);
    // Request 2, same cookie: tab B's request renews the id, and accepts the token too.
    let during = false;
    const renewal = await h.request(async (session) => {
      during = await session.verifyCsrfToken(token);
    });
    expect(h.invalid).toEqual([]);
    expect(renewal.session.isNew).toBe(false);
    expect(renewal.session.id).not.toBe(before);
    expect(renewal.lines).toHaveLength(1);
    expect(h.events.some((event) => event.type === "renewed")).toBe(true);
    expect(during).toBe(true);
    // Request 3, with the renewed cookie: tab A posts its form.
    expect(await verifies(h, token)).toBe(true);
    if (h.sessions.store) {
      // The token outlived the id it was first shown with: that id opens nothing any more.
      const cookie = form.lines[0]?.split(";", 1)[0];
      const stale = await h.request(() => {}, { cookie, keepJar: true });
      expect(stale.session.isNew).toBe(true);
    }
  });

  // Two tabs opened together: each request asks for the session's first token before either has
  // saved a seed. The seed is derived from the id, so both make the same one.
  it("two requests at once on a session with no seed make the same one: both tabs' tokens verify", async () => {
    const h = make();
    await h.request((session) => session.set("n", 1)); // saved, no seed yet
    const init = { headers: { cookie: h.jar.header() ?? "" } };
    const tabA = await h.sessions.load(new Request("https://example.com/a", init));
    const tabB = await h.sessions.load(new Request("https://example.com/b", init));
    const tokenA = await tabA.csrfToken();
    const tokenB = await tabB.csrfToken();
    expect(seedOf(tabA)).toBe(seedOf(tabB));
    for (const tab of [tabA, tabB]) {
      const out = new Headers();
      await h.sessions.commit(tab, out);
      h.jar.apply(out.getSetCookie());
    }
    expect(await verifies(h, tokenA)).toBe(true);
    expect(await verifies(h, tokenB)).toBe(true);
  });

  // A write of a request that loaded before the seed existed saves the record without it (a cookie
  // re-sealed whole; a store record moved to a new id by it is the open case in docs/SECURITY.md).
  it("a token stays valid when an older request's write drops the seed its session kept", async () => {
    const h = make();
    await h.request((session) => session.set("n", 1));
    const init = { headers: { cookie: h.jar.header() ?? "" } };
    const older = await h.sessions.load(new Request("https://example.com/slow", init));
    const token = await tokenOf(h); // saves the seed
    older.set("n", 2);
    const out = new Headers();
    await h.sessions.commit(older, out);
    h.jar.apply(out.getSetCookie());
    let kept: string | undefined;
    await h.request((session) => {
      kept = seedOf(session);
    });
    // A cookie is re-sealed whole, without the seed; a store's patch leaves the seed alone.
    expect(kept === undefined).toBe(h.sessions.store === undefined);
    expect(await verifies(h, token)).toBe(true);
  });

  // The seed a token was made for is derived under the secret that was primary then; checking a
  // token of a lost seed derives it under the key the token names, not under today's primary.
  it("a token of a lost seed still verifies after a change of primary secret, while the old one is listed", async () => {
    const h = make({ secret: SECRET });
    await h.request((session) => session.set("n", 1));
    const init = { headers: { cookie: h.jar.header() ?? "" } };
    const older = await h.sessions.load(new Request("https://example.com/slow", init));
    const token = await tokenOf(h); // saves the seed, under SECRET
    older.set("n", 2); // a cookie re-sealed whole, without the seed
    const out = new Headers();
    await h.sessions.commit(older, out);
    h.jar.apply(out.getSetCookie());
    const store = h.sessions.store;
    const under = (secret: string | string[]) =>
      createSessions({ secret, now: h.clock.now, ...mode, ...(store ? { store } : {}) });
    const request = () =>
      new Request("https://example.com/", { headers: { cookie: h.jar.header() ?? "" } });
    const rotated = await under([OTHER_SECRET, SECRET]).load(request());
    expect(rotated.isNew).toBe(false);
    expect(seedOf(rotated) === undefined).toBe(store === undefined);
    expect(await rotated.verifyCsrfToken(token)).toBe(true);
    // Once SECRET leaves the keyring, its tokens end with it (a cookie sealed under it, too).
    const retired = await under([OTHER_SECRET]).load(request());
    expect(await retired.verifyCsrfToken(token)).toBe(false);
  });

  // A rotation rolling out: one server already signs with the new secret, the other still with the
  // old (each lists both). Two tabs ask for the session's first token at once, one on each server:
  // the seeds differ, the later write wins, and the other tab's token must still verify on both.
  it("two servers on different primary secrets (a rotation rolling out): both tabs' tokens verify on both", async () => {
    const h = make({ secret: [SECRET, OTHER_SECRET] });
    await h.request((session) => session.set("n", 1)); // saved, no seed yet
    const store = h.sessions.store;
    const ahead = createSessions({
      secret: [OTHER_SECRET, SECRET],
      now: h.clock.now,
      ...mode,
      ...(store ? { store } : {}),
    });
    const init = { headers: { cookie: h.jar.header() ?? "" } };
    const tabA = await h.sessions.load(new Request("https://example.com/a", init));
    const tabB = await ahead.load(new Request("https://example.com/b", init));
    const tokenA = await tabA.csrfToken();
    const tokenB = await tabB.csrfToken();
    expect(seedOf(tabA)).not.toBe(seedOf(tabB));
    for (const [manager, tab] of [
      [h.sessions, tabA],
      [ahead, tabB],
    ] as const) {
      const out = new Headers();
      await manager.commit(tab, out);
      h.jar.apply(out.getSetCookie());
    }
    for (const manager of [h.sessions, ahead]) {
      const session = await manager.load(
        new Request("https://example.com/", { headers: { cookie: h.jar.header() ?? "" } }),
      );
      expect(session.isNew).toBe(false);
      expect(await session.verifyCsrfToken(tokenA)).toBe(true);
      expect(await session.verifyCsrfToken(tokenB)).toBe(true);
    }
  });

  it("the request that renews accepts a token of a lost seed of the id it came with, that once", async () => {
    const h = make({ renewInterval: "1h", idleTimeout: "7d", absoluteTimeout: "30d" });
    await h.request((session) => session.set("n", 1));
    const init = { headers: { cookie: h.jar.header() ?? "" } };
    const older = await h.sessions.load(new Request("https://example.com/slow", init));
    const token = await tokenOf(h); // saves the seed
    older.set("n", 2); // a cookie re-sealed whole, without the seed
    const out = new Headers();
    await h.sessions.commit(older, out);
    h.jar.apply(out.getSetCookie());
    h.clock.advance(2 * HOUR); // the next request renews the id at load
    let accepted: boolean | undefined;
    await h.request(async (session) => {
      accepted = await session.verifyCsrfToken(token);
    });
    expect(accepted).toBe(true);
  });

  it("the request that renews still accepts a token of the id it came with (an older version's), that once", async () => {
    const h = make({ renewInterval: "1d", absoluteTimeout: "30d", idleTimeout: "7d" });
    let id = "";
    await h.request((session) => {
      session.set("n", 1);
      id = session.id;
    });
    const signer = createCsrfSigner(keysOf([{ id: undefined, secret: SECRET }], backend), "sid");
    const token = await signer.issue({ id });
    h.clock.advance(DAY + MINUTE);
    let during = false;
    await h.request(async (session) => {
      expect(session.id).not.toBe(id);
      during = await session.verifyCsrfToken(token);
    });
    expect(during).toBe(true);
    // The renewal was committed: the old id is gone, and its tokens with it.
    expect(await verifies(h, token)).toBe(false);
  });

  it.each([
    ["regenerate() (a privilege change)", undefined, (s: Session) => s.regenerate()],
    [
      "regenerate({ userId }) (sign-in)",
      undefined,
      (s: Session) => s.regenerate({ userId: "ada" }),
    ],
    ["a user switch", "ada", (s: Session) => s.regenerate({ userId: "grace" })],
    [
      "signing out with regenerate({ userId: null })",
      "ada",
      (s: Session) => s.regenerate({ userId: null }),
    ],
    ["destroy()", "ada", (s: Session) => s.destroy()],
  ] as const)(
    "tokens a renewal keeps end at %s, in the same request and after",
    async (_what, user, end) => {
      const h = make({ renewInterval: "1d", absoluteTimeout: "30d", idleTimeout: "7d" });
      let token = "";
      let seed: string | undefined;
      await h.request(async (session) => {
        if (user) await session.regenerate({ userId: user });
        token = await session.csrfToken();
        seed = seedOf(session);
      });
      h.clock.advance(DAY + MINUTE);
      expect(await verifies(h, token)).toBe(true); // renewed, and the token holds
      let sameRequest = true;
      let fresh = "";
      await h.request(async (session) => {
        await end(session);
        expect(seedOf(session)).toBeUndefined();
        sameRequest = await session.verifyCsrfToken(token);
        fresh = await session.csrfToken();
        expect(seedOf(session)).not.toBe(seed);
      });
      expect(sameRequest).toBe(false);
      expect(await verifies(h, token)).toBe(false);
      expect(await verifies(h, fresh)).toBe(true);
    },
  );
});

/** HMAC-SHA256 of `message` under HKDF(SECRET, "sessionkit/v1 csrf"), by node:crypto alone. */
function hmacOf(message: string): Buffer {
  const key = Buffer.from(hkdfSync("sha256", SECRET, new Uint8Array(0), "sessionkit/v1 csrf", 32));
  return createHmac("sha256", key).update(message).digest();
}

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

// A renewal carries the seed its old id derives: what another request made of that id's seed, and
// this one never saw, still verifies under the new id (both cases were open before, see
// docs/SECURITY.md).
describe.each(MODES)("CSRF seed: renewals that never saw the seed, %s", (_name, make) => {
  const renewing = () => make({ renewInterval: "1h", idleTimeout: "7d", absoluteTimeout: "30d" });

  it("two requests renew at once, one asking for the first token: its token verifies at once", async () => {
    const h = renewing();
    await h.request((session) => session.set("n", 1));
    h.clock.advance(2 * HOUR);
    const init = { headers: { cookie: h.jar.header() ?? "" } };
    const other = await h.sessions.load(new Request("https://example.com/other", init));
    const tab = await h.sessions.load(new Request("https://example.com/form", init));
    const token = await tab.csrfToken();
    for (const request of [other, tab]) {
      const out = new Headers();
      await h.sessions.commit(request, out);
      h.jar.apply(out.getSetCookie());
    }
    expect(await verifies(h, token)).toBe(true);
  });

  it("a renewal by a request that loaded before the first token was saved keeps that token valid", async () => {
    const h = renewing();
    await h.request((session) => session.set("n", 1));
    h.clock.advance(30 * MINUTE);
    const init = { headers: { cookie: h.jar.header() ?? "" } };
    const tab = await h.sessions.load(new Request("https://example.com/form", init)); // not due
    h.clock.advance(HOUR);
    const renewer = await h.sessions.load(new Request("https://example.com/other", init)); // due
    expect(renewer.id).not.toBe(tab.id);
    const token = await tab.csrfToken();
    for (const request of [tab, renewer]) {
      const out = new Headers();
      await h.sessions.commit(request, out);
      h.jar.apply(out.getSetCookie());
    }
    let seed: string | undefined;
    let id: string | undefined;
    await h.request((session) => {
      seed = seedOf(session);
      id = session.id;
    });
    expect(id).toBe(renewer.id);
    expect(seed).toBeDefined();
    expect(await verifies(h, token)).toBe(true);
  });

  it("a cookie too close to maxSize to carry the seed renews without it", async () => {
    const h = make({
      renewInterval: "1h",
      idleTimeout: "7d",
      absoluteTimeout: "30d",
      maxSize: 1000,
    });
    if (h.sessions.store) return; // a store session's cookie holds only the id
    // The longest value the cookie takes: one more character is over maxSize.
    let fits = 0;
    await h.request((session) => {
      for (let length = 400; length < 1000; length++) {
        try {
          session.set("s", "x".repeat(length));
          fits = length;
        } catch (err) {
          if (!isSessionError(err, "ERR_SESSION_TOO_LARGE")) throw err;
          break;
        }
      }
      session.set("s", "x".repeat(fits));
    });
    expect(fits).toBeGreaterThan(400);
    const before = h.jar.header();
    h.clock.advance(2 * HOUR);
    const renewal = await h.request(() => {});
    expect(renewal.session.isNew).toBe(false);
    expect(renewal.lines).toHaveLength(1);
    expect(h.jar.header()).not.toBe(before);
    let seed: string | undefined;
    let value: unknown;
    await h.request((session) => {
      seed = seedOf(session);
      value = session.get("s");
    });
    expect(seed).toBeUndefined();
    expect(value).toBe("x".repeat(fits));
  });

  it("no seed is carried by regenerate(): a sign-in still ends the old id's tokens", async () => {
    const h = renewing();
    const token = await tokenOf(h);
    h.clock.advance(2 * HOUR);
    await h.request(async (session) => {
      await session.regenerate({ userId: "alice" });
    });
    expect(await verifies(h, token)).toBe(false);
  });
});

describe("CSRF seed: kept in meta, never shown", () => {
  const SEED = "AAAAAAAAAAAAAAAAAAAAAA"; // 16 zero bytes
  // Wrong type, wrong length, outside base64url, non-canonical (the last character's unused bits set).
  const BAD_SEEDS: unknown[] = [
    42,
    true,
    null,
    {},
    ["x"],
    "",
    "short",
    `${SEED}A`,
    SEED.slice(1),
    `${SEED.slice(1)}!`,
    `${SEED.slice(1)}B`,
  ];

  it("listByUser never shows the seed", async () => {
    const h = storeHarness();
    let seed: string | undefined;
    await h.request(async (session) => {
      await session.regenerate({ userId: "alice" });
      session.setLabel("laptop");
      await session.csrfToken();
      seed = seedOf(session);
    });
    expect(seed).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const devices = await h.sessions.listByUser("alice");
    expect(devices).toHaveLength(1);
    expect(devices[0]?.label).toBe("laptop");
    expect(Object.keys(devices[0] as object)).not.toContain("csrf");
    expect(JSON.stringify(devices)).not.toContain(seed as string);
  });

  it("a store row whose seed is not a seed (wrong type or length) is refused as malformed", async () => {
    for (const bad of BAD_SEEDS) {
      const h = storeHarness();
      const store = h.sessions.store as NonNullable<typeof h.sessions.store>;
      const { session } = await h.request(async (s) => {
        await s.csrfToken();
      });
      const key = (session as SessionState).origin?.key as string;
      const row = await store.get(key);
      expect(row?.meta.csrf).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const meta = { ...row?.meta, csrf: bad } as never;
      await store.set(key, { data: row?.data ?? {}, meta }, h.clock.now() + DAY);
      const replayed = await h.request();
      expect(replayed.session.isNew, JSON.stringify(bad)).toBe(true);
      expect(h.invalid, JSON.stringify(bad)).toEqual(["malformed"]);
    }
  });

  it("a cookie record carries the seed under its short key, and one with a bad seed is refused", () => {
    const meta = { createdAt: 1, touchedAt: 1, renewedAt: 1, csrf: SEED };
    const good = encodeRecord("id-0123456789abcdef", {}, meta);
    expect(good).toContain(`"x":"${SEED}"`);
    expect(decodeRecord(good)?.meta).toEqual(meta);
    for (const bad of BAD_SEEDS) {
      const record = good.replace(`"x":"${SEED}"`, `"x":${JSON.stringify(bad)}`);
      expect(decodeRecord(record), JSON.stringify(bad)).toBeUndefined();
    }
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
    const forged = await forger.issue({ id });
    expect(keyIdOf(forged)).toBe("v1");
    expect(await (session as Session).verifyCsrfToken(forged)).toBe(false);
    // The same construction with the right secret verifies: the refusal above is the secret's doing.
    expect(await (session as Session).verifyCsrfToken(await genuine.issue({ id }))).toBe(true);
    // A secret taken out of the list: its tokens name a key id nobody holds.
    const retired = createCsrfSigner(keysOf([{ id: "v0", secret: OTHER_SECRET }], backend), "sid");
    expect(await (session as Session).verifyCsrfToken(await retired.issue({ id }))).toBe(false);
  });

  it("unmasks to HMAC-SHA256 under HKDF(secret, 'sessionkit/v1 csrf') of cookie name NUL 'seed' NUL seed, on either backend", async () => {
    // Computed here with node:crypto alone: run with SESSIONKIT_BACKEND=web too, a token of one
    // backend is then known to verify on the other (a fleet mixing Node and Workers).
    const h = harness({ secret: { v1: SECRET } });
    const token = await tokenOf(h);
    let seed: string | undefined;
    await h.request((s) => {
      seed = seedOf(s);
    });
    expect(seed).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const masked = Buffer.from(token.split(".")[2] as string, "base64url");
    const mac = masked.subarray(32).map((byte, i) => byte ^ (masked[i] as number));
    expect(Buffer.from(mac).equals(hmacOf(`sid\0seed\0${seed}`))).toBe(true);
  });

  it("a token of the id, as versions before the seed made them, still verifies beside the seed's", async () => {
    const h = harness({ secret: { v1: SECRET } });
    const token = await tokenOf(h);
    let oldStyle = "";
    let results: boolean[] = [];
    await h.request(async (s) => {
      expect(seedOf(s)).toBeDefined();
      // Built with node:crypto alone: HMAC of cookie name NUL id, masked with a random pad.
      const pad = randomBytes(32);
      const mac = hmacOf(`sid\0${s.id}`).map((byte, i) => byte ^ (pad[i] as number));
      oldStyle = `c1.v1.${Buffer.concat([pad, mac]).toString("base64url")}`;
      results = [await s.verifyCsrfToken(oldStyle), await s.verifyCsrfToken(token)];
    });
    expect(results).toEqual([true, true]);
    expect(await verifies(h, oldStyle)).toBe(true);
  });

  it("a seed's token never verifies as an id's, nor an id's as a seed's (domain separation)", async () => {
    const signer = createCsrfSigner(keysOf([{ id: undefined, secret: SECRET }], backend), "sid");
    // A seed is 22 base64url characters: it could spell a session id.
    const value = await signer.seedOf("some-session-id-0001");
    expect(value).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // Made by the key alone: another id, another secret or another cookie name makes another seed.
    const elsewhere = [
      await signer.seedOf("some-session-id-0002"),
      await createCsrfSigner(
        keysOf([{ id: undefined, secret: OTHER_SECRET }], backend),
        "sid",
      ).seedOf("some-session-id-0001"),
      await createCsrfSigner(keysOf([{ id: undefined, secret: SECRET }], backend), "other").seedOf(
        "some-session-id-0001",
      ),
    ];
    expect(new Set([value, ...elsewhere]).size).toBe(4);
    expect(await signer.seedOf("some-session-id-0001")).toBe(value);
    const bySeed = await signer.issue({ seed: value });
    const byId = await signer.issue({ id: value });
    expect(await signer.verify(bySeed, [{ id: value }])).toBe(false);
    expect(await signer.verify(byId, [{ seed: value }])).toBe(false);
    expect(await signer.verify(bySeed, [{ id: value }, { seed: value }])).toBe(true);
    expect(await signer.verify(byId, [{ seed: value }, { id: value }])).toBe(true);
  });

  it("a manager with another cookie name, same secret, refuses the token (bound to the cookie name)", async () => {
    const h = harness();
    const token = await tokenOf(h);
    let id = "";
    let seed = "";
    await h.request((s) => {
      id = s.id;
      seed = seedOf(s) as string;
    });
    const bySeed = createCsrfSigner(keysOf([{ id: undefined, secret: SECRET }], backend), "other");
    expect(await verifies(h, await bySeed.issue({ seed }))).toBe(false);
    const other = createCsrfSigner(keysOf([{ id: undefined, secret: SECRET }], backend), "other");
    const otherToken = await other.issue({ id });
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

  it("a saved session without a seed asked once its response has begun gets a token of its id (a Server Component's case)", async () => {
    const h = harness({ renewInterval: "1d", absoluteTimeout: "30d", idleTimeout: "7d" });
    await h.request((session) => session.set("n", 1));
    let token = "";
    const late = await h.request(async (session) => {
      closeSession(session);
      token = await session.csrfToken();
      expect(seedOf(session)).toBeUndefined();
    });
    expect(late.lines).toEqual([]);
    expect(late.headers.get("cache-control")).toBe("no-store");
    expect(await verifies(h, token)).toBe(true);
    // Bound to the id, it ends at the next renewal; a seed's token would not.
    h.clock.advance(DAY + MINUTE);
    await h.request();
    expect(await verifies(h, token)).toBe(false);
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
