/**
 * Pieces the server stores' test files share: record metadata, readable keys, and the round trip
 * through `createSessions` that each of them runs against its own store.
 */
import { expect, it } from "vitest";
import { createSessions } from "../../src/manager.js";
import type { SessionMeta, SessionStore } from "../../src/stores/store.js";

export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;
const SECRET = "x".repeat(32);

export const metaAt = (at: number): SessionMeta => ({
  createdAt: at,
  touchedAt: at,
  renewedAt: at,
});

/** Distinct keys of the real shape (43 base64url characters), readable in a failing test. */
export function keyMaker(label: string): () => string {
  let seq = 0;
  return () => `${label}${String(++seq).padStart(4, "0")}`.padEnd(43, "A");
}

/**
 * One request writes, the next changes a key, and each reads back through the cookie the first got: loaded from a
 * `Request` and from plain `Headers`. `stored(name)`, when given, reads the data of every stored session holding the
 * data key `name` straight from the server.
 */
export function itRoundTripsThroughCreateSessions(
  store: () => SessionStore,
  stored?: (name: string) => Promise<unknown[]>,
): void {
  it("round-trips a session through createSessions: load, set, commit a cookie, load", async () => {
    const sessions = createSessions({ secret: SECRET, store: store() });
    const first = await sessions.load(new Request("http://localhost/"));
    first.set("user", { name: "ada", roles: ["admin"] });
    first.set("visits", 1);
    const headers = new Headers();
    await sessions.commit(first, headers);
    const [setCookie] = headers.getSetCookie();
    expect(setCookie).toMatch(/^sid=[^;]+;/);
    const cookie = (setCookie as string).split(";")[0] as string;

    const second = await sessions.load(new Request("http://localhost/", { headers: { cookie } }));
    expect(second.isNew).toBe(false);
    expect(second.get("user")).toEqual({ name: "ada", roles: ["admin"] });
    expect(second.get("visits")).toBe(1);
    second.set("visits", 2);
    await sessions.commit(second, new Headers());

    const third = await sessions.load(new Headers({ cookie }));
    expect(third.get("user")).toEqual({ name: "ada", roles: ["admin"] });
    expect(third.get("visits")).toBe(2);
    if (stored) {
      expect(await stored("visits")).toEqual([
        { user: { name: "ada", roles: ["admin"] }, visits: 2 },
      ]);
    }
  });
}
