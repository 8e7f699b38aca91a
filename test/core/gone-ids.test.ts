/**
 * A store session's id that the store no longer holds never comes back (ids are never reused, and a
 * token leaves only once its record is written). A client that keeps sending such a cookie (an
 * unknown id's is left in place) is refused from the token cache, without a store call.
 */
import { describe, expect, it } from "vitest";
import { memoryStore } from "../../src/stores/memory.js";
import { countedStore } from "../helpers/counted-store.js";
import { HOUR, harness } from "./harness.js";

/** A memory store on the harness's clock that counts every call made to it by method. */
function countedHarness(options: Parameters<typeof harness>[0] = {}) {
  let clock = () => 0;
  const inner = memoryStore({ now: () => clock() });
  const { store, calls } = countedStore(inner);
  const h = harness({ store, ...options });
  clock = h.clock.now;
  return { h, calls, inner };
}

describe("an id the store no longer holds", () => {
  it("costs store calls once; later requests with its cookie are refused without any", async () => {
    const { h, calls } = countedHarness();
    await h.request((s) => s.regenerate({ userId: "ada" }));
    const cookie = h.jar.header();
    await h.sessions.destroyByUser("ada"); // signed out everywhere, from another device
    const seen: Array<{ calls: string[]; isNew: boolean; cleared: boolean }> = [];
    for (let i = 0; i < 3; i++) {
      calls.length = 0;
      const { session, lines } = await h.request(() => {}, { cookie, keepJar: true });
      seen.push({ calls: [...calls], isNew: session.isNew, cleared: lines.length > 0 });
    }
    expect(seen).toEqual([
      { calls: ["get", "expiredMeta"], isNew: true, cleared: false },
      { calls: [], isNew: true, cleared: false },
      { calls: [], isNew: true, cleared: false },
    ]);
    expect(h.invalid).toEqual(["unknown-session", "unknown-session", "unknown-session"]);
  });

  it("after an expiry the manager deleted, a replay of the cookie makes no store call", async () => {
    const { h, calls } = countedHarness({ idleTimeout: "1h" });
    await h.request((s) => s.set("n", 1));
    const cookie = h.jar.header();
    h.clock.advance(2 * HOUR);
    calls.length = 0;
    await h.request(() => {}, { cookie, keepJar: true });
    const first = [...calls];
    calls.length = 0;
    await h.request(() => {}, { cookie, keepJar: true });
    expect({ first, replay: calls }).toEqual({
      first: ["get", "expiredMeta", "delete"],
      replay: [],
    });
    expect(h.invalid).toEqual(["expired-idle", "unknown-session"]);
  });

  it("a new session written after it is unaffected, and without the token cache every request asks the store", async () => {
    const { h, calls } = countedHarness({ tokenCache: false });
    await h.request((s) => s.set("n", 1));
    const cookie = h.jar.header();
    await h.request((s) => s.destroy());
    for (let i = 0; i < 2; i++) await h.request(() => {}, { cookie, keepJar: true });
    expect(calls.filter((name) => name === "get")).toHaveLength(2 + 1); // the destroy's own load too
    const fresh = await h.request((s) => s.set("m", 2));
    expect(fresh.session.isNew).toBe(true);
    const back = await h.request(() => {});
    expect(back.session.get("m")).toBe(2);
  });

  it("a store outage on the way is no verdict: the next request asks the store again", async () => {
    const { h, calls, inner } = countedHarness();
    await h.request((s) => s.set("n", 1));
    const cookie = h.jar.header();
    const get = inner.get;
    inner.get = () => Promise.reject(new Error("connection refused"));
    await expect(h.request(() => {}, { cookie, keepJar: true })).rejects.toThrow();
    inner.get = get;
    calls.length = 0;
    const { session } = await h.request(() => {}, { cookie, keepJar: true });
    expect(session.get("n")).toBe(1);
    expect(calls).toEqual(["get"]);
  });
});
