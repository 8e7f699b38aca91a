/**
 * A sign-out (`destroy`) racing another request of the same session that moves it to a new id
 * (`regenerate`, or the renewal `renewInterval` makes at load). Whichever commits second must not
 * leave the session alive. When the sign-out commits first, the move finds the old record gone
 * and is abandoned. When the move commits first, the sign-out finds its record gone and looks
 * among the user's sessions for the one the move carried its lineage to (`meta.lineage`); before
 * that, the session lived on under the new id (found by reasoning over the model of
 * src/testing/store-concurrency-requests.ts).
 */
import { describe, expect, it } from "vitest";
import type { Harness } from "./harness.js";
import { MINUTE, storeHarness } from "./harness.js";

/** A signed-in session, and two requests of it in flight at once (two tabs). */
async function twoTabs(h: Harness) {
  await h.request(async (s) => {
    await s.regenerate({ userId: "ada" });
    s.set("cart", ["apple"]);
  });
  const cookie = h.jar.header() as string;
  const load = () => h.sessions.load(new Headers({ cookie }));
  return { signOut: await load(), other: await load() };
}

/** The Cookie header a browser sends after a response's Set-Cookie lines. */
function cookieOf(response: Headers): string {
  return response
    .getSetCookie()
    .filter((line) => !/max-age=0/i.test(line))
    .map((line) => line.split(";")[0])
    .join("; ");
}

/** Whether the session is left anywhere: a listed device, or a cookie a response set that opens it. */
async function leftAlive(h: Harness, responses: Headers[]): Promise<boolean> {
  if ((await h.sessions.listByUser("ada")).length > 0) return true;
  for (const response of responses) {
    const cookie = cookieOf(response);
    if (cookie && !(await h.sessions.load(new Headers({ cookie }))).isNew) return true;
  }
  return false;
}

describe("a sign-out racing a move of the same session to a new id", () => {
  it("the sign-out commits first: the regenerate is abandoned and nothing is left", async () => {
    const h = storeHarness();
    const { signOut, other } = await twoTabs(h);
    await other.regenerate();
    signOut.destroy();
    const responses = [new Headers(), new Headers()];
    await h.sessions.commit(signOut, responses[0] as Headers);
    await h.sessions.commit(other, responses[1] as Headers);
    expect(other.isNew).toBe(true);
    expect(await leftAlive(h, responses)).toBe(false);
  });

  it("the regenerate commits first: the sign-out finds the session under its new id and ends it", async () => {
    const h = storeHarness();
    const { signOut, other } = await twoTabs(h);
    await other.regenerate();
    signOut.destroy();
    const responses = [new Headers(), new Headers()];
    await h.sessions.commit(other, responses[1] as Headers);
    await h.sessions.commit(signOut, responses[0] as Headers);
    expect(await leftAlive(h, responses)).toBe(false);
  });

  it("a renewal (renewInterval) commits first: the sign-out ends the renewed session", async () => {
    const h = storeHarness({ renewInterval: "15m" });
    await h.request(async (s) => {
      await s.regenerate({ userId: "ada" });
    });
    const cookie = h.jar.header() as string;
    h.clock.advance(16 * MINUTE);
    // Both requests load after the interval: each renews at load; the poll writes a key.
    const signOut = await h.sessions.load(new Headers({ cookie }));
    const poll = await h.sessions.load(new Headers({ cookie }));
    poll.set("seen", 1);
    signOut.destroy();
    const responses = [new Headers(), new Headers()];
    await h.sessions.commit(poll, responses[1] as Headers);
    await h.sessions.commit(signOut, responses[0] as Headers);
    expect(await leftAlive(h, responses)).toBe(false);
  });

  it("two moves commit first: the sign-out still finds the session by its lineage", async () => {
    const h = storeHarness();
    const { signOut, other } = await twoTabs(h);
    await other.regenerate();
    const first = new Headers();
    await h.sessions.commit(other, first);
    const third = await h.sessions.load(new Headers({ cookie: cookieOf(first) }));
    await third.regenerate();
    const second = new Headers();
    await h.sessions.commit(third, second);
    signOut.destroy();
    const responses = [new Headers(), first, second];
    await h.sessions.commit(signOut, responses[0] as Headers);
    expect(await leftAlive(h, responses)).toBe(false);
  });

  it("a sign-out whose record was gone ends no other device of the user", async () => {
    const h = storeHarness();
    const { signOut, other } = await twoTabs(h);
    // The same user on another device, whose session moved once too: a lineage of its own.
    const device = await h.sessions.load(new Headers());
    await device.regenerate({ userId: "ada" });
    const signedIn = new Headers();
    await h.sessions.commit(device, signedIn);
    const later = await h.sessions.load(new Headers({ cookie: cookieOf(signedIn) }));
    await later.regenerate();
    await h.sessions.commit(later, new Headers());
    // This session is signed out by its other tab first, then by this request.
    other.destroy();
    await h.sessions.commit(other, new Headers());
    signOut.destroy();
    await h.sessions.commit(signOut, new Headers());
    expect(await h.sessions.listByUser("ada")).toHaveLength(1);
  });
});

describe("a write racing a move of the same session", () => {
  // A regenerate wrote the record as its request loaded it, so a patch another tab committed
  // meanwhile (between the move's load and its commit: a sign-in's password check is that long)
  // was lost, though its commit reported success. The move now re-reads the record: what lands
  // between that read and the old record's delete is still lost (an atomic move in the store would
  // close it).
  it("keeps a key another request wrote between the move's load and its commit", async () => {
    const h = storeHarness();
    const { signOut: signIn, other } = await twoTabs(h);
    other.set("wish", "kite");
    await h.sessions.commit(other, new Headers());
    await signIn.regenerate({ userId: "ada" });
    const moved = new Headers();
    await h.sessions.commit(signIn, moved);
    const after = await h.sessions.load(new Headers({ cookie: cookieOf(moved) }));
    expect(after.get("cart")).toEqual(["apple"]);
    expect(after.get("wish")).toBe("kite");
  });
});
