// CSRF tokens in the demo app (examples/demo/app.ts), over HTTP on loopback: every form carries a
// `_csrf` field, and a POST without a valid token of the visitor's session is refused with a 403
// page that changes nothing, beside requireSameOrigin.
import { describe, expect, it } from "vitest";
import { csrfIn, startDemo } from "./demo-client.js";

const POSTS = [
  ["/login", { username: "ada", password: "lovelace" }],
  ["/logout", {}],
  ["/preference", { theme: "dark" }],
  ["/devices/label", { label: "forged" }],
  ["/devices/revoke", { handle: "x" }],
  ["/devices/others", {}],
  ["/devices/everywhere", {}],
] as const;

const userIn = (body: string) => /id="user">([^<]*)</.exec(body)?.[1];
const themeIn = (body: string) => /id="theme">([^<]*)</.exec(body)?.[1];
const formsIn = (body: string) => body.match(/<form method="post"[\s\S]*?<\/form>/g) ?? [];

describe("every form of the demo carries a CSRF token", () => {
  it("on the home, sign-in, members and devices pages, signed out and in", async () => {
    const demo = await startDemo();
    const pages: string[] = [];
    for (const path of ["/", "/login"]) pages.push((await demo.send("GET", path)).body);
    await demo.signIn();
    for (const path of ["/", "/login", "/private", "/devices", "/no-such-page"]) {
      pages.push((await demo.send("GET", path)).body);
    }
    const forms = pages.flatMap(formsIn);
    const actions = new Set(forms.map((f) => /action="([^"]+)"/.exec(f)?.[1]));
    expect(actions).toEqual(
      new Set([
        "/login",
        "/logout",
        "/preference",
        "/devices/label",
        "/devices/others",
        "/devices/everywhere",
      ]),
    );
    for (const form of forms) expect(form).toMatch(/<input type="hidden" name="_csrf" value="c1\./);
  });

  it("the revoke button of another device carries one too", async () => {
    const demo = await startDemo();
    await demo.signIn();
    // A second device of ada's: a client that forgets the first one's cookie and signs in again.
    demo.cookie = undefined;
    await demo.signIn();
    const devices = (await demo.send("GET", "/devices")).body;
    const revoke = formsIn(devices).filter((f) => f.includes('action="/devices/revoke"'));
    expect(revoke).toHaveLength(1);
    expect(revoke[0]).toMatch(/name="_csrf" value="c1\./);
  });
});

describe("a POST without a valid token is refused, and changes nothing", () => {
  it.each(POSTS)(
    "POST %s with no token, an unknown one or another session's: 403",
    async (path, form) => {
      const demo = await startDemo();
      // Another visitor's valid token, and ada's own token from before she signed in.
      const other = await startDemo(demo.clock);
      const othersToken = csrfIn((await other.send("GET", "/login")).body) as string;
      const beforeSignIn = csrfIn((await demo.send("GET", "/login")).body) as string;
      await demo.signIn();
      await demo.submit("/", "/preference", { theme: "sepia" });
      const mine = csrfIn((await demo.send("GET", "/devices")).body) as string;
      const flipped = `${mine.slice(0, -2)}${mine.endsWith("AA") ? "BB" : "AA"}`;
      const forged = [undefined, "", "c1.x.forged", flipped, othersToken, beforeSignIn];
      const cookie = demo.cookie;
      demo.writes.length = 0;
      for (const token of forged) {
        const posted = await demo.send("POST", path, {
          ...form,
          ...(token === undefined ? {} : { _csrf: token }),
        });
        expect(posted.response.status, String(token)).toBe(403);
        expect(posted.response.headers.get("content-type")).toBe("text/html; charset=utf-8");
        expect(posted.response.headers.get("cache-control")).toBe("no-store");
        expect(posted.body).toContain("This form was refused, and nothing was changed");
        expect(posted.setCookie).toBeNull();
      }
      expect(demo.writes).toEqual([]);
      expect(demo.cookie).toBe(cookie);
      const home = await demo.send("GET", "/");
      expect(userIn(home.body)).toBe("ada");
      expect(themeIn(home.body)).toBe("sepia");
      // The same post with the page's token goes through (a redirect), so the 403 above was the token.
      const allowed = await demo.submit(path === "/login" ? "/login" : "/devices", path, form);
      expect(allowed.response.status).toBe(303);
    },
  );

  it("a token in a body that is not a form, or only in the query string, is no token", async () => {
    const demo = await startDemo();
    await demo.signIn();
    const token = csrfIn((await demo.send("GET", "/")).body) as string;
    const json = await demo.send("POST", "/logout", undefined, {
      "content-type": "application/json",
    });
    expect(json.response.status).toBe(403);
    const query = await demo.send("POST", `/logout?_csrf=${encodeURIComponent(token)}`, {});
    expect(query.response.status).toBe(403);
    expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
  });

  it("revoking another device without a token leaves it signed in", async () => {
    const demo = await startDemo();
    await demo.signIn();
    const phone = demo.cookie;
    demo.cookie = undefined;
    await demo.signIn();
    const devices = (await demo.send("GET", "/devices")).body;
    const handle = /name="handle" value="([^"]+)"/.exec(devices)?.[1] as string;
    const refused = await demo.send("POST", "/devices/revoke", { handle });
    expect(refused.response.status).toBe(403);
    const laptop = demo.cookie;
    demo.cookie = phone;
    expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
    demo.cookie = laptop;
    const done = await demo.submit("/devices", "/devices/revoke", { handle });
    expect(done.response.status).toBe(303);
    demo.cookie = phone;
    expect(userIn((await demo.send("GET", "/")).body)).toBeUndefined();
  });

  it("a first visitor's POST /login without a token creates no session and signs nobody in", async () => {
    const demo = await startDemo();
    const posted = await demo.send("POST", "/login", { username: "ada", password: "lovelace" });
    expect(posted.response.status).toBe(403);
    expect(posted.setCookie).toBeNull();
    expect(demo.writes).toEqual([]);
  });

  it("a device signed out elsewhere that posts a stale form is sent to sign in, not refused", async () => {
    const demo = await startDemo();
    await demo.signIn();
    const token = csrfIn((await demo.send("GET", "/devices")).body) as string;
    const phone = demo.cookie;
    demo.cookie = undefined;
    await demo.signIn();
    await demo.submit("/devices", "/devices/others");
    demo.cookie = phone;
    const stale = await demo.send("POST", "/devices/label", { label: "x", _csrf: token });
    expect(stale.response.status).toBe(303);
    expect(stale.response.headers.get("location")).toBe("/login");
    expect((await demo.send("GET", "/login")).body).toContain(
      "This device was signed out, or its session timed out.",
    );
  });
});

describe("signing in with the token", () => {
  it("a first visitor reads the sign-in page, posts its form and is signed in", async () => {
    const demo = await startDemo();
    const page = await demo.send("GET", "/login");
    // Asking for the token saved the session the token is bound to: the visitor holds its id now.
    expect(page.setCookie).toMatch(/^sid=/);
    const token = csrfIn(page.body) as string;
    const posted = await demo.send("POST", "/login", {
      username: "grace",
      password: "hopper",
      _csrf: token,
    });
    expect(posted.response.status).toBe(303);
    expect(posted.response.headers.get("location")).toBe("/");
    const home = await demo.send("GET", "/");
    expect(userIn(home.body)).toBe("grace");
    expect(home.body).toContain("Welcome, grace!");
    // Sign-in gave the session a new id, so the sign-in page's token is dead from here on.
    const replay = await demo.send("POST", "/logout", { _csrf: token });
    expect(replay.response.status).toBe(403);
    expect(userIn((await demo.send("GET", "/")).body)).toBe("grace");
  });

  it("signs in and out with cookie sessions too", async () => {
    const demo = await startDemo(undefined, { store: undefined, storeLabel: "cookie" });
    await demo.signIn("ada", "lovelace");
    expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
    expect((await demo.send("POST", "/logout", {})).response.status).toBe(403);
    expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
    await demo.submit("/", "/logout");
    expect(userIn((await demo.send("GET", "/")).body)).toBeUndefined();
  });
});

describe("what anonymous GETs cost the store", () => {
  // The token of the sign-in form is bound to a session, so showing that form to a first visitor
  // saves one (login CSRF: the sign-in post must carry a token too); before the tokens it saved
  // none. The home page saved one already for its visit counter, and a members page for the flash
  // its redirect to sign-in leaves. Other pages without forms save nothing, and neither does a HEAD.
  it.each([
    ["/", 100],
    ["/login", 100],
    ["/no-such-page", 0],
    ["/private", 100],
    ["/style.css", 0],
  ])("100 first visits of %s create %i rows", async (path, rows) => {
    const demo = await startDemo();
    for (let i = 0; i < 100; i++) {
      demo.cookie = undefined;
      await demo.send("GET", path);
    }
    expect(demo.created.size).toBe(rows);
  });

  it("a HEAD of the sign-in page saves nothing, though its GET asks for a token", async () => {
    const demo = await startDemo();
    for (let i = 0; i < 10; i++) {
      const head = await demo.send("HEAD", "/login");
      expect(head.setCookie).toBeNull();
    }
    expect(demo.writes).toEqual([]);
  });
});
