/**
 * Large cookie sessions: split into numbered chunks under the browser's 4096-byte cap, joined on read,
 * stale chunks cleared; never silently dropped (DESIGN invariant 6).
 */
import { describe, expect, it } from "vitest";
import { isSessionError, type SecretInput, type SessionError } from "../../src/index.js";
import type { Session } from "../../src/session.js";
import { MAX_CHUNKS, MAX_CLEARED } from "../../src/transport/cookie.js";
import { counterIds, harness, jarToken, OTHER_SECRET, SECRET } from "./harness.js";

const BROWSER_COOKIE_LIMIT = 4096;

describe("chunked cookies", () => {
  for (const mode of ["encrypted", "signed"] as const) {
    it(`splits a ${mode} token over 4096 bytes into numbered chunks and joins them on read`, async () => {
      const h = harness({ mode });
      const big = "é✓".repeat(1500);
      const { setCookies, lines } = await h.request((s) => s.set("big", big));
      expect(setCookies.length).toBeGreaterThan(1);
      expect(setCookies.map((c) => c.name)).toEqual(setCookies.map((_, i) => `sid.${i}`));
      for (const line of lines) {
        const pair = line.split(";")[0] as string;
        expect(new TextEncoder().encode(pair).length).toBeLessThanOrEqual(BROWSER_COOKIE_LIMIT);
      }
      // Every chunk carries the same attributes as a single cookie would.
      for (const cookie of setCookies) {
        expect(cookie.attributes).toEqual([
          "Max-Age=604800",
          "Path=/",
          "HttpOnly",
          "Secure",
          "SameSite=Lax",
        ]);
      }
      const { session } = await h.request();
      expect(session.get("big")).toBe(big);
      expect(h.invalid).toEqual([]);
    });
  }

  it("clears stale chunks when the session shrinks back to one cookie", async () => {
    const h = harness();
    await h.request((s) => s.set("big", "z".repeat(8000)));
    const chunkNames = [...h.jar.cookies.keys()];
    expect(chunkNames.length).toBeGreaterThan(1);

    const { setCookies } = await h.request((s) => s.delete("big"));
    expect(setCookies[0]?.name).toBe("sid");
    expect(setCookies[0]?.maxAge).toBe(604800);
    expect(setCookies.slice(1).map((c) => [c.name, c.value, c.maxAge])).toEqual(
      chunkNames.map((name) => [name, "", 0]),
    );
    expect([...h.jar.cookies.keys()]).toEqual(["sid"]);
    const { session } = await h.request((s) => s.set("small", 1));
    expect(session.data).toEqual({ small: 1 });
    expect(h.invalid).toEqual([]);
  });

  it("clears the single cookie when the session grows into chunks", async () => {
    const h = harness();
    await h.request((s) => s.set("small", 1));
    const { setCookies } = await h.request((s) => s.set("big", "z".repeat(8000)));
    expect(setCookies.at(-1)).toMatchObject({ name: "sid", value: "", maxAge: 0 });
    expect(h.jar.cookies.has("sid")).toBe(false);
    expect((await h.request()).session.get("small")).toBe(1);
  });

  it("clears chunks left over when a chunked session shrinks to fewer chunks", async () => {
    const h = harness({ maxSize: 32_000 });
    await h.request((s) => s.set("big", "z".repeat(20_000)));
    const before = [...h.jar.cookies.keys()];
    const { setCookies } = await h.request((s) => s.set("big", "z".repeat(5000)));
    const written = setCookies.filter((c) => c.maxAge !== 0).map((c) => c.name);
    const cleared = setCookies.filter((c) => c.maxAge === 0).map((c) => c.name);
    expect(written).toEqual(["sid.0", "sid.1"]);
    expect(cleared).toEqual(before.filter((name) => !written.includes(name)));
    expect((await h.request()).session.get("big")).toBe("z".repeat(5000));
  });
});

describe("maxSize", () => {
  it("set past maxSize throws ERR_SESSION_TOO_LARGE in the handler and the session keeps its previous data", async () => {
    const h = harness();
    await h.request((s) => s.set("kept", "before"));
    let caught: unknown;
    const { session, lines } = await h.request((s) => {
      s.set("small", 1);
      try {
        s.set("kept", "x".repeat(17_000));
      } catch (err) {
        caught = err;
      }
    });
    expect(isSessionError(caught, "ERR_SESSION_TOO_LARGE")).toBe(true);
    expect((caught as SessionError).message).toMatch(/over maxSize 12000/);
    expect(session.get("kept")).toBe("before");
    expect(session.get("small")).toBe(1);
    expect(lines).toHaveLength(1);
    const next = await h.request();
    expect(next.session.data).toEqual({ kept: "before", small: 1 });
  });

  it("update and flash past maxSize throw and change nothing", async () => {
    const h = harness();
    await h.request((s) => s.set("kept", "before"));
    const { lines, session } = await h.request((s) => {
      expect(() => s.update({ kept: "after", huge: "x".repeat(17_000) })).toThrow(
        expect.objectContaining({ code: "ERR_SESSION_TOO_LARGE" }),
      );
      expect(() => s.flash("info", "x".repeat(17_000))).toThrow(
        expect.objectContaining({ code: "ERR_SESSION_TOO_LARGE" }),
      );
    });
    expect(session.data).toEqual({ kept: "before" });
    expect(session.flashEntries()).toEqual([]);
    expect(lines.length).toBeLessThanOrEqual(1);
  });

  for (const secret of [
    SECRET,
    { "sixteen-char-kid": SECRET },
    { k: OTHER_SECRET },
  ] as SecretInput[]) {
    for (const mode of ["encrypted", "signed"] as const) {
      it(`never issues a ${mode} token that its own load would refuse as oversized (key id ${typeof secret === "string" ? "derived" : Object.keys(secret)[0]})`, async () => {
        const maxSize = 1000;
        const h = harness({ secret, mode, maxSize });
        // The largest value `set` accepts must still come back on the next request.
        let largest = 0;
        const { lines } = await h.request((s) => {
          for (let n = 0; n < maxSize; n++) {
            try {
              s.set("v", "a".repeat(n));
              largest = n;
            } catch (err) {
              expect(isSessionError(err, "ERR_SESSION_TOO_LARGE")).toBe(true);
              break;
            }
          }
        });
        expect(largest).toBeGreaterThan(500);
        expect(lines).toHaveLength(1);
        expect((jarToken(h.jar) as string).length).toBeLessThanOrEqual(maxSize);
        const next = await h.request();
        expect(h.invalid).toEqual([]);
        expect(next.session.get("v")).toBe("a".repeat(largest));
      });
    }
  }

  it("refuses an incoming single cookie over maxSize as oversized and clears it", async () => {
    const h = harness();
    const { session, setCookies } = await h.request(() => {}, {
      cookie: `sid=${"A".repeat(16_001)}`,
    });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["oversized"]);
    expect(setCookies.map((c) => [c.name, c.maxAge])).toEqual([["sid", 0]]);
  });

  it("refuses incoming chunks that together exceed maxSize as oversized and clears every one", async () => {
    const h = harness();
    const chunks = Array.from({ length: 5 }, (_, i) => `sid.${i}=${"A".repeat(4000)}`);
    const { session, setCookies } = await h.request(() => {}, { cookie: chunks.join("; ") });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["oversized"]);
    expect(setCookies.map((c) => [c.name, c.maxAge])).toEqual([
      ["sid.0", 0],
      ["sid.1", 0],
      ["sid.2", 0],
      ["sid.3", 0],
      ["sid.4", 0],
      ["sid", 0],
    ]);
  });

  it("refuses more chunk cookies than the chunk limit as oversized, however small each is", async () => {
    const h = harness();
    const chunks = Array.from({ length: 70 }, (_, i) => `sid.${i}=A`);
    const { session, setCookies } = await h.request(() => {}, { cookie: chunks.join("; ") });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["oversized"]);
    expect(setCookies.filter((c) => c.maxAge === 0)).toHaveLength(71);
  });

  it("clears at most MAX_CLEARED stale cookies of ours, whatever a request carries", async () => {
    const names = Array.from({ length: 999 }, (_, i) => `sid.${i}=A`);
    for (const [what, handler] of [
      ["a write", (s: Session) => s.set("n", 1)],
      ["a large write", (s: Session) => s.set("big", "x".repeat(8000))],
      ["a destroy", (s: Session) => s.destroy()],
      ["no change", () => {}],
    ] as const) {
      const { setCookies } = await harness().request(handler, { cookie: names.join("; ") });
      const cleared = setCookies.filter((c) => c.maxAge === 0);
      expect(cleared.length, what).toBeGreaterThanOrEqual(MAX_CHUNKS);
      expect(cleared.length, what).toBeLessThanOrEqual(MAX_CLEARED + 1);
      expect(new Set(cleared.map((c) => c.name)).size, what).toBe(cleared.length);
    }
  });

  it("refuses an oversized header token as oversized", async () => {
    const h = harness({ header: "x-session" });
    const { session } = await h.request(() => {}, { headers: { "x-session": "A".repeat(16_001) } });
    expect(session.isNew).toBe(true);
    expect(h.invalid).toEqual(["oversized"]);
  });
});

describe("regenerate and maxSize", () => {
  it("regenerate({ userId }) past a cookie session's maxSize throws and changes nothing, like set", async () => {
    const h = harness({ maxSize: 1000, generateId: counterIds() });
    await h.request((s) => s.set("v", "a".repeat(500)));
    const before = jarToken(h.jar);
    let caught: unknown;
    const { session } = await h.request(async (s) => {
      try {
        await s.regenerate({ userId: "u".repeat(600) });
      } catch (err) {
        caught = err;
      }
    });
    expect(isSessionError(caught, "ERR_SESSION_TOO_LARGE")).toBe(true);
    expect(session.userId).toBeUndefined();
    // Nothing else changed: the visitor keeps the cookie they had, and it still opens.
    expect(jarToken(h.jar)).toBe(before);
    const next = await h.request();
    expect(h.invalid).toEqual([]);
    expect(next.session.isNew).toBe(false);
    expect(next.session.get("v")).toBe("a".repeat(500));
  });
});
