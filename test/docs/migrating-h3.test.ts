/**
 * docs/migrating/h3.md, walked as a user would: one small app written with h3's own `useSession`
 * (a counter, sign-in by `clear()` then `update()`, a flash-like message read once, sign-out with
 * `clear()`, `maxAge`), and the same source with only the import line changed to `sessionkit/h3`,
 * as the guide says. One scenario runs against both over HTTP on loopback, on the real h3; then the
 * switch-over: a cookie h3 wrote, sent to the migrated app.
 */
import { createServer } from "node:http";
import { H3, useSession as h3UseSession, redirect } from "h3";
import { toNodeHandler } from "h3/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useSession } from "../../src/adapters/h3.js";
import { Client, cookieLine } from "../helpers/http.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";

const PASSWORD = "migrating-h3-session-password-0123456789abc";
const ONE_DAY_S = 86_400;

type Data = { userId?: string; visits?: number; flash?: string };
interface Page {
  user: string | null;
  visits: number;
  flash: string | null;
}

/** The app, written once; `use` is h3's `useSession` or sessionkit's, the one line that changes. */
function build(use: typeof useSession, maxAge?: number) {
  const config = { password: PASSWORD, ...(maxAge === undefined ? {} : { maxAge }) };
  const app = new H3();
  app.get("/", async (event) => {
    const session = await use<Data>(event, config);
    const flash = session.data.flash ?? null;
    await session.update((data) => ({ visits: (data.visits ?? 0) + 1, flash: undefined }));
    return { user: session.data.userId ?? null, visits: session.data.visits ?? 0, flash } as Page;
  });
  app.get("/me", async (event) => {
    const session = await use<Data>(event, config);
    if (session.data.userId === undefined) {
      event.res.status = 401;
      return { user: null };
    }
    return { user: session.data.userId };
  });
  app.post("/login", async (event) => {
    const user = event.url.searchParams.get("user") as string;
    const session = await use<Data>(event, config);
    await session.clear(); // a new session, so a new id: h3 has no regenerate
    await session.update({ userId: user, flash: `Welcome, ${user}` });
    return redirect("/", 303);
  });
  app.post("/logout", async (event) => {
    await (await use<Data>(event, config)).clear();
    return redirect("/", 303);
  });
  return listenLoopback(createServer(toNodeHandler(app)));
}
// h3's own, typed as the sessionkit export that replaces it: the app's source is the same for both.
const h3 = h3UseSession as unknown as typeof useSession;

const page = async (client: Client) => JSON.parse((await client.get("/")).text) as Page;

/**
 * `clearThenUpdate`: what `clear()` then `update()` in one request leaves. h3 re-reads the request's
 * cookie, so the old session (its id and data) comes back under the new data; sessionkit/h3 starts a
 * new, empty session under a new id. The one difference the migrated app shows: the guide states it.
 */
function scenario(
  name: string,
  use: typeof useSession,
  clearThenUpdate: "resumes" | "starts anew",
) {
  describe(name, () => {
    let server: Listening;
    let lasting: Listening;
    beforeAll(async () => {
      server = await build(use);
      lasting = await build(use, ONE_DAY_S);
    });
    afterAll(async () => {
      await server.close();
      await lasting.close();
    });

    it("starts a session, with its cookie, on a first useSession", async () => {
      const reply = await new Client(server.url).get("/me");
      expect(reply.status).toBe(401);
      expect(cookieLine(reply.setCookies, "h3")?.value).toBeTruthy();
    });

    it("counts visits in the session", async () => {
      const client = new Client(server.url);
      expect((await page(client)).visits).toBe(1);
      expect((await page(client)).visits).toBe(2);
      expect((await page(client)).visits).toBe(3);
    });

    it(`signs in by clear() then update(), which ${clearThenUpdate}, and shows the flash once`, async () => {
      const client = new Client(server.url);
      await page(client);
      const before = client.jar.get("h3") as string;
      const login = await client.post("/login?user=ada");
      expect(login.status).toBe(303);
      const set = cookieLine(login.setCookies, "h3");
      expect(set?.value).toBeTruthy();
      expect(set?.value).not.toBe(before);
      expect(set?.lifetime).toBeUndefined(); // no maxAge: a browser-session cookie
      const visits = clearThenUpdate === "resumes" ? 2 : 1;
      expect(await page(client)).toEqual({ user: "ada", visits, flash: "Welcome, ada" });
      expect(await page(client)).toEqual({ user: "ada", visits: visits + 1, flash: null });
    });

    it("maxAge (seconds) gives a cookie that outlives the browser", async () => {
      const client = new Client(lasting.url);
      const login = await client.post("/login?user=ada");
      const lifetime = cookieLine(login.setCookies, "h3")?.lifetime ?? 0;
      expect(lifetime).toBeGreaterThan(ONE_DAY_S - 60);
      expect(lifetime).toBeLessThanOrEqual(ONE_DAY_S);
    });

    it("signs out: the session is gone for this browser; a copy of the sealed cookie still opens", async () => {
      const client = new Client(server.url);
      await client.post("/login?user=ada");
      const signedIn = client.jar.get("h3") as string;
      expect((await client.post("/logout")).status).toBe(303);
      expect((await client.get("/me")).status).toBe(401);
      const replay = new Client(server.url);
      replay.jar.set("h3", signedIn);
      expect((await replay.get("/me")).status).toBe(200); // sealed cookies: no server-side revocation
    });
  });
}

scenario("before: h3's useSession", h3, "resumes");
scenario(
  'after: the same app importing useSession from "sessionkit/h3"',
  useSession,
  "starts anew",
);

describe("the switch-over", () => {
  it("a cookie h3 sealed is not read: the visitor starts a fresh session", async () => {
    const before = await build(h3);
    const after = await build(useSession);
    try {
      const browser = new Client(before.url);
      await browser.post("/login?user=grace");
      expect((await browser.get("/me")).status).toBe(200);
      const switched = new Client(after.url);
      switched.jar.set("h3", browser.jar.get("h3") as string);
      const reply = await switched.get("/me");
      expect(reply.status).toBe(401);
      expect(cookieLine(reply.setCookies, "h3")?.value).toMatch(/^e1\./); // replaced by sessionkit's
    } finally {
      await before.close();
      await after.close();
    }
  });
});
