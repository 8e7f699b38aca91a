/**
 * Several cookies of the session's name in one request. Browsers send every cookie whose path and
 * domain match, longest path first and then oldest first: a cookie left by an earlier `cookie.path`,
 * or one a sibling subdomain set for the parent domain (by mistake, or to toss it on purpose), arrives
 * before ours. Reading only the first would refuse the visitor's valid session and clear the good
 * cookie on every request: signed out for good. Each value is tried, a few at most.
 */
import { describe, expect, it } from "vitest";
import { memoryStore } from "../../src/stores/memory.js";
import { fakeClock, type Harness, harness, jarToken, OTHER_SECRET } from "./harness.js";

/** A store on the harness's clock (its fake clock starts where the harness's does and stays put). */
const store = () => memoryStore({ now: fakeClock().now });

const modes = {
  "cookie session": () => harness(),
  "store session": () => harness({ store: store() }),
} as const;

/** A signed-in visitor's valid token, and a token of the same name the server refuses. */
async function tokens(h: Harness) {
  await h.request((s) => s.set("user", "ada"));
  const valid = jarToken(h.jar) as string;
  const foreign = harness({ secret: OTHER_SECRET, store: h.sessions.store });
  await foreign.request((s) => s.set("user", "mallory"));
  return { valid, foreign: jarToken(foreign.jar) as string };
}

async function load(h: Harness, cookie: string) {
  h.invalid.length = 0;
  const exchange = await h.request(() => {}, { cookie, keepJar: true });
  return { ...exchange, reasons: [...h.invalid] };
}

for (const [mode, make] of Object.entries(modes)) {
  describe(`duplicate session cookies (${mode})`, () => {
    it("loads the valid one when a refused one comes first, and clears nothing", async () => {
      const h = make();
      const { valid, foreign } = await tokens(h);
      for (const stale of [foreign, "garbage", `${valid.slice(0, -4)}AAAA`, ""]) {
        const got = await load(h, `sid=${stale}; sid=${valid}`);
        expect(got.session.get("user"), stale).toBe("ada");
        expect(got.session.isNew).toBe(false);
        // The clearing line would delete the visitor's good cookie, not the stale one.
        expect(got.lines).toEqual([]);
      }
    });

    it("still reports the refused one to onInvalid", async () => {
      const h = make();
      const { valid, foreign } = await tokens(h);
      const got = await load(h, `sid=${foreign}; sid=${valid}`);
      expect(got.session.get("user")).toBe("ada");
      expect(got.reasons).toEqual(["unknown-key"]);
    });

    it("keeps the first when it is valid", async () => {
      const h = make();
      const { valid, foreign } = await tokens(h);
      const got = await load(h, `sid=${valid}; sid=${foreign}`);
      expect(got.session.get("user")).toBe("ada");
      expect(got.reasons).toEqual([]);
    });

    it("gives a fresh session and clears the cookie when every value is refused", async () => {
      const h = make();
      const { foreign } = await tokens(h);
      const got = await load(h, `sid=${foreign}; other=1; sid=garbage`);
      expect(got.session.isNew).toBe(true);
      expect(got.reasons).toEqual(["unknown-key", "malformed"]);
      expect(got.setCookies.map((c) => [c.name, c.maxAge])).toEqual([["sid", 0]]);
    });

    it("tries four values at most: a header stuffed with refused ones costs bounded work", async () => {
      const h = make();
      const { valid } = await tokens(h);
      const junk = (n: number) => Array.from({ length: n }, (_, i) => `sid=junk${i}`).join("; ");
      const fourth = await load(h, `${junk(3)}; sid=${valid}`);
      expect(fourth.session.get("user")).toBe("ada");
      const fifth = await load(h, `${junk(4)}; sid=${valid}`);
      expect(fifth.session.isNew).toBe(true);
      expect(fifth.reasons).toHaveLength(4);
    });
  });
}

describe("duplicate session cookies (store session, a destroyed id first)", () => {
  it("an id the store no longer knows does not hide the live one behind it", async () => {
    const h = harness({ store: store() });
    await h.request((s) => s.set("user", "ada"));
    const old = jarToken(h.jar) as string;
    await h.request((s) => s.regenerate());
    const live = jarToken(h.jar) as string;
    expect(live).not.toBe(old);
    const got = await load(h, `sid=${old}; sid=${live}`);
    expect(got.session.get("user")).toBe("ada");
    expect(got.reasons).toEqual(["unknown-session"]);
    expect(got.lines).toEqual([]);
  });
});

describe("a stale cookie of the session's name beside a chunked session", () => {
  it("loads the chunks and clears nothing, as for an unchunked session", async () => {
    const h = harness();
    await h.request((s) => s.set("big", "x".repeat(6000)));
    const chunks = [...h.jar.cookies].map(([name, value]) => `${name}=${value}`);
    expect(chunks.length).toBeGreaterThan(1);
    // A sibling app set "sid" for the parent domain: the browser sends it with ours.
    const { session, lines } = await h.request(() => {}, {
      cookie: ["sid=from-a-sibling-app", ...chunks].join("; "),
      keepJar: true,
    });
    expect(session.isNew).toBe(false);
    expect(session.get("big")).toBe("x".repeat(6000));
    // Clearing would delete the visitor's good chunks, not the sibling's cookie.
    expect(lines).toEqual([]);
  });
});
