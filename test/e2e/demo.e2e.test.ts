// The demo app (examples/demo) in a real browser: Chromium driven by playwright-core, the demo run
// as a child process on a free port with its SQLite file and secret in a temporary directory.

import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Browser,
  type BrowserContext,
  type Cookie,
  chromium,
  type Page,
} from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { DemoProcess, freePort } from "./demo-process.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) {
  if (process.env.CI === "true") {
    throw new Error(
      `No Chromium at ${CHROMIUM}: CI must run the browser tests (apt-get install chromium)`,
    );
  }
  console.warn(
    `\n*** SKIPPING the browser end-to-end tests: no Chromium at ${CHROMIUM} ` +
      "(apt-get install chromium, or set CHROMIUM_PATH). With CI=true this is a failure. ***\n",
  );
}

const SHOTS = fileURLToPath(new URL("../../test-results/e2e/", import.meta.url));
const COOKIE = "sid";

describe.skipIf(!HAVE_CHROMIUM)("the demo in Chromium", () => {
  let browser: Browser;
  let demo: DemoProcess;
  let dataRoot: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    dataRoot = await mkdtemp(join(tmpdir(), "sessionkit-e2e-"));
    await mkdir(SHOTS, { recursive: true });
    demo = new DemoProcess(await freePort(), join(dataRoot, "data"));
    await demo.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  });

  /** A fresh browser profile: its own cookies, as a separate device would have. */
  async function device(userAgent?: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({
      viewport: { width: 1000, height: 700 },
      ...(userAgent ? { userAgent } : {}),
    });
    contexts.push(context);
    return { context, page: await context.newPage() };
  }

  const at = (path: string) => `${demo.url}${path}`;
  const pathOf = (page: Page) => new URL(page.url()).pathname;

  /** Clicks a submit button and waits for the page the form's redirect lands on. */
  async function submit(page: Page, button: string): Promise<void> {
    await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest() && r.status() === 200),
      page.click(button),
    ]);
    await page.waitForLoadState("load");
  }

  async function signIn(
    page: Page,
    username: string,
    password: string,
    remember = false,
  ): Promise<void> {
    await page.goto(at("/login"));
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', password);
    if (remember) await page.check('input[name="remember"]');
    await submit(page, 'form[action="/login"] button');
  }

  const flashes = (page: Page) => page.locator(".flash").allTextContents();
  const visits = async (page: Page) => Number(await page.locator("#visits strong").textContent());
  const signedInAs = async (page: Page) =>
    (await page.locator("#user").count()) === 0 ? undefined : page.locator("#user").textContent();
  const sessionCookie = (cookies: Cookie[]) => cookies.find((c) => c.name === COOKIE);
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  test("signs in with a demo account and out again", async () => {
    const { page } = await device();
    await page.goto(at("/"));
    expect(await page.textContent("main")).toContain("You are not signed in.");
    // The stylesheet is served and applied: the header is dark.
    const headerColour = await page.$eval("header", (h) => getComputedStyle(h).backgroundColor);
    expect(headerColour).toBe("rgb(29, 35, 48)");
    await shot(page, "home-signed-out");

    await page.goto(at("/login"));
    const login = await page.textContent("main");
    expect(login).toContain("ada");
    expect(login).toContain("lovelace");
    expect(login).toContain("grace");
    expect(login).toContain("hopper");
    await shot(page, "login");

    await page.fill('input[name="username"]', "ada");
    await page.fill('input[name="password"]', "lovelace");
    await submit(page, 'form[action="/login"] button');
    expect(pathOf(page)).toBe("/");
    expect(await signedInAs(page)).toBe("ada");
    expect(await flashes(page)).toEqual(["Welcome, ada!"]);
    expect(await page.textContent("footer")).toMatch(/30m idle or 12h in all/);
    // The page shows session.expiresAt: this visit wrote, so the idle deadline is 30 minutes out.
    const endsAt = Date.parse((await page.getAttribute("#expires time", "datetime")) ?? "");
    expect(Math.abs(endsAt - (Date.now() + 30 * 60_000))).toBeLessThan(60_000);
    await shot(page, "home-signed-in");

    await submit(page, 'form[action="/logout"] button');
    expect(await signedInAs(page)).toBeUndefined();
    expect(await flashes(page)).toEqual(["You are signed out."]);
  });

  test("the visit counter survives reloads", async () => {
    const { page } = await device();
    await page.goto(at("/"));
    expect(await visits(page)).toBe(1);
    await page.reload();
    expect(await visits(page)).toBe(2);
    await page.reload();
    expect(await visits(page)).toBe(3);
    await signIn(page, "grace", "hopper");
    // Sign-in changes the id but keeps the data: the count goes on.
    expect(await visits(page)).toBe(4);
  });

  test("a flash shows once: after the action, not after a reload", async () => {
    const { page } = await device();
    await signIn(page, "grace", "hopper");
    await page.selectOption('select[name="theme"]', "dark");
    await submit(page, 'form[action="/preference"] button');
    expect(await flashes(page)).toEqual(["Theme set to dark."]);
    expect(await page.locator(".flash-success").isVisible()).toBe(true);
    expect(await page.textContent("#theme")).toBe("dark");
    expect(await page.getAttribute("body", "class")).toBe("theme-dark");

    await page.reload();
    expect(await flashes(page)).toEqual([]);
    // The preference itself stays.
    expect(await page.textContent("#theme")).toBe("dark");
    await shot(page, "home-dark-theme");
  });

  test("the members page redirects to /login when signed out", async () => {
    const { page } = await device();
    const response = await page.goto(at("/private"));
    expect(pathOf(page)).toBe("/login");
    expect(response?.request().redirectedFrom()?.url()).toBe(at("/private"));
    expect(await flashes(page)).toEqual(["Sign in to see that page."]);

    await signIn(page, "grace", "hopper");
    await page.goto(at("/private"));
    expect(pathOf(page)).toBe("/private");
    expect(await page.textContent("h1")).toBe("Members");
    await shot(page, "members");
  });

  test("two devices of ada: 'sign out other devices' ends the other one", async () => {
    const laptop = await device();
    const phone = await device();
    await signIn(laptop.page, "ada", "lovelace");
    // Earlier tests left ada signed in elsewhere: start from this one device.
    await laptop.page.goto(at("/devices"));
    await submit(laptop.page, 'form[action="/devices/others"] button');

    await signIn(phone.page, "ada", "lovelace");
    expect(await signedInAs(phone.page)).toBe("ada");

    await laptop.page.goto(at("/devices"));
    const rows = laptop.page.locator("#devices tbody tr");
    expect(await rows.count()).toBe(2);
    expect(await rows.allTextContents()).toEqual([
      expect.stringMatching(/Headless Chrome \d+.*\(this device\)/s),
      expect.stringMatching(/Headless Chrome \d+/),
    ]);
    await shot(laptop.page, "devices");

    await submit(laptop.page, 'form[action="/devices/others"] button');
    expect(pathOf(laptop.page)).toBe("/devices");
    expect(await flashes(laptop.page)).toEqual(["Signed out 1 other device."]);
    expect(await rows.count()).toBe(1);

    await phone.page.reload();
    expect(await signedInAs(phone.page)).toBeUndefined();
    expect(await phone.page.textContent("main")).toContain("You are not signed in.");
    await laptop.page.goto(at("/"));
    expect(await signedInAs(laptop.page)).toBe("ada");
  });

  test("'sign out everywhere' ends every session of the user", async () => {
    const laptop = await device();
    const phone = await device();
    await signIn(laptop.page, "ada", "lovelace");
    await signIn(phone.page, "ada", "lovelace");
    await laptop.page.goto(at("/devices"));
    expect(await laptop.page.locator("#devices tbody tr").count()).toBeGreaterThanOrEqual(2);

    await submit(laptop.page, 'form[action="/devices/everywhere"] button');
    expect(pathOf(laptop.page)).toBe("/login");
    expect(await flashes(laptop.page)).toEqual(["Signed out everywhere."]);

    await laptop.page.goto(at("/"));
    expect(await signedInAs(laptop.page)).toBeUndefined();
    await phone.page.reload();
    expect(await signedInAs(phone.page)).toBeUndefined();
    await phone.page.goto(at("/devices"));
    expect(pathOf(phone.page)).toBe("/login");
  });

  test("the session cookie is HttpOnly and SameSite=Lax in the browser", async () => {
    const { context, page } = await device();
    await signIn(page, "ada", "lovelace");
    const cookie = sessionCookie(await context.cookies(demo.url));
    expect(cookie).toMatchObject({
      name: COOKIE,
      httpOnly: true,
      sameSite: "Lax",
      path: "/",
      domain: "localhost",
      // Plain http on localhost: no Secure, or the browser would not send it back.
      secure: false,
    });
    // HttpOnly at work: page scripts cannot see it.
    expect(await page.evaluate(() => document.cookie)).not.toContain(`${COOKIE}=`);
  });

  test("without Remember me the cookie ends with the browser; with it, it lasts the remembered 30 days", async () => {
    const plain = await device();
    await signIn(plain.page, "ada", "lovelace");
    expect(await signedInAs(plain.page)).toBe("ada");
    // Playwright reports a browser-session cookie (no Max-Age, no Expires) as expires -1.
    expect(sessionCookie(await plain.context.cookies(demo.url))?.expires).toBe(-1);
    // An ordinary session's idle deadline is 30 minutes out.
    const plainEnds = Date.parse(
      (await plain.page.getAttribute("#expires time", "datetime")) ?? "",
    );
    expect(Math.abs(plainEnds - (Date.now() + 30 * 60_000))).toBeLessThan(60_000);

    const remembered = await device();
    const before = Date.now() / 1000;
    await signIn(remembered.page, "grace", "hopper", true);
    expect(await signedInAs(remembered.page)).toBe("grace");
    const expires = sessionCookie(await remembered.context.cookies(demo.url))?.expires ?? -1;
    // The rememberMe option gives a remembered session 30 days idle and 30 days in all.
    const THIRTY_DAYS_S = 30 * 24 * 3600;
    expect(expires).toBeGreaterThan(before + THIRTY_DAYS_S - 60);
    expect(expires).toBeLessThan(Date.now() / 1000 + THIRTY_DAYS_S + 60);
    const endsAt = Date.parse(
      (await remembered.page.getAttribute("#expires time", "datetime")) ?? "",
    );
    expect(Math.abs(endsAt - (Date.now() + THIRTY_DAYS_S * 1000))).toBeLessThan(60_000);
    // Still remembered after the next write (the choice travels with the session).
    await remembered.page.reload();
    expect(sessionCookie(await remembered.context.cookies(demo.url))?.expires).toBeGreaterThan(
      before + THIRTY_DAYS_S - 60,
    );
  });

  test("a first visitor signs in with the CSRF token the sign-in form carries", async () => {
    const { page } = await device();
    await page.goto(at("/login"));
    const token = await page.inputValue('form[action="/login"] input[name="_csrf"]');
    expect(token).toMatch(/^c1\./);
    await page.fill('input[name="username"]', "ada");
    await page.fill('input[name="password"]', "lovelace");
    const [posted] = await Promise.all([
      page.waitForRequest((r) => r.url() === at("/login") && r.method() === "POST"),
      submit(page, 'form[action="/login"] button'),
    ]);
    expect(new URLSearchParams(posted.postData() ?? "").get("_csrf")).toBe(token);
    expect(await signedInAs(page)).toBe("ada");
    // Every form of the signed-in pages carries a token too.
    for (const path of ["/", "/devices"]) {
      await page.goto(at(path));
      const forms = page.locator('form[method="post"]');
      expect(await forms.count()).toBeGreaterThan(0);
      expect(await page.locator('form[method="post"]:not(:has(input[name="_csrf"]))').count()).toBe(
        0,
      );
    }
  });

  test("a form posted without its token is refused with a page, and nothing changes", async () => {
    const { page } = await device();
    await signIn(page, "grace", "hopper");
    await page.goto(at("/"));
    // A form as an old page or another tool would post it: the demo's own, its token taken out.
    await page.locator('form[action="/logout"] input[name="_csrf"]').evaluate((i) => i.remove());
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === at("/logout")),
      page.click('form[action="/logout"] button'),
    ]);
    await page.waitForLoadState("load");
    expect(response.status()).toBe(403);
    expect(await page.textContent("h1")).toBe("Form refused");
    expect(await page.textContent("main")).toContain("nothing was changed");
    await shot(page, "csrf-refused");
    await page.goto(at("/"));
    expect(await signedInAs(page)).toBe("grace");
  });

  test("sign-in changes the session cookie, and the old value is dead (fixation)", async () => {
    const victim = await device();
    await victim.page.goto(at("/"));
    const before = sessionCookie(await victim.context.cookies(demo.url))?.value;
    expect(before).toBeTruthy();

    await signIn(victim.page, "ada", "lovelace");
    const after = sessionCookie(await victim.context.cookies(demo.url))?.value;
    expect(after).toBeTruthy();
    expect(after).not.toBe(before);

    // An attacker who planted (or kept) the pre-sign-in value gets nothing with it.
    const attacker = await device();
    await attacker.context.addCookies([{ name: COOKIE, value: before as string, url: demo.url }]);
    await attacker.page.goto(at("/"));
    expect(await signedInAs(attacker.page)).toBeUndefined();
    await attacker.page.goto(at("/private"));
    expect(pathOf(attacker.page)).toBe("/login");
  });

  test("the session survives a restart of the demo (SQLite)", async () => {
    const { page } = await device();
    await signIn(page, "grace", "hopper");
    await page.reload();
    const count = await visits(page);
    expect(count).toBeGreaterThanOrEqual(2);

    await demo.restart();
    await page.reload();
    expect(await signedInAs(page)).toBe("grace");
    expect(await visits(page)).toBe(count + 1);
    await page.goto(at("/private"));
    expect(pathOf(page)).toBe("/private");
  });

  test("a form on another port of the same host cannot sign the visitor out (CSRF, same site)", async () => {
    // Ports do not make another site: SameSite=Lax sends the cookie with this post, so only the
    // demo's requireSameOrigin guard stands between the page and the visitor's session.
    const port = await freePort();
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(
        `<form method="post" action="${at("/logout")}"></form><script>document.forms[0].submit()</script>`,
      );
    });
    evil.listen(port, "127.0.0.1");
    await once(evil, "listening");
    try {
      const { page } = await device();
      await signIn(page, "ada", "lovelace");
      expect(await signedInAs(page)).toBe("ada");
      const [posted] = await Promise.all([
        page.waitForResponse((r) => r.url() === at("/logout")),
        page.goto(`http://localhost:${port}/`),
      ]);
      const sent = await posted.request().allHeaders();
      expect(sent["sec-fetch-site"]).toBe("same-site");
      expect(sent.cookie).toContain(`${COOKIE}=`);
      expect(posted.status()).toBe(403);
      await page.goto(at("/"));
      expect(await signedInAs(page)).toBe("ada");
    } finally {
      evil.close();
    }
  });

  test("the home page says what the demo shows and where to try it", async () => {
    const { page } = await device();
    await page.goto(at("/"));
    const tour = page.getByRole("region", { name: "What this demo shows" });
    expect(await tour.isVisible()).toBe(true);
    // Each feature names the library call behind it, so a reader knows what to look up.
    const text = (await tour.textContent()) ?? "";
    for (const call of [
      "regenerate",
      "rememberMe",
      "flash",
      "listByUser",
      "revoke",
      "requireSameOrigin",
      "csrfToken",
      "requireCsrfToken",
    ]) {
      expect(text).toContain(call);
    }
    const links = await tour
      .locator("a")
      .evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    expect(links).toEqual(expect.arrayContaining(["/login", "/devices", "/private"]));
    await shot(page, "home-tour");
  });

  test("the Remember me checkbox sits on one line with its text", async () => {
    const { page } = await device();
    await page.goto(at("/login"));
    const box = await page.locator('input[name="remember"]').boundingBox();
    const label = await page.locator('label:has(input[name="remember"])').boundingBox();
    if (!box || !label) throw new Error("no Remember me checkbox");
    // Stacked (checkbox above its text) the label is two lines high.
    expect(label.height).toBeLessThan(2 * box.height + 8);
    expect(box.x).toBeLessThanOrEqual(label.x + 4);
  });

  test("/devices signed out redirects to sign-in with a message", async () => {
    const { page } = await device();
    await page.goto(at("/devices"));
    expect(pathOf(page)).toBe("/login");
    expect(await flashes(page)).toEqual(["Sign in to see that page."]);
  });

  test("revoking one device signs that browser out on its next request", async () => {
    const laptop = await device();
    const phone = await device(
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    );
    await signIn(laptop.page, "grace", "hopper");
    await signIn(phone.page, "grace", "hopper");
    await phone.page.goto(at("/private"));
    expect(pathOf(phone.page)).toBe("/private");

    await laptop.page.goto(at("/devices"));
    // Each button names its device, so a screen reader hears which one it signs out.
    const other = laptop.page.getByRole("button", { name: "Sign out Safari 17 on iOS" });
    expect(await other.count()).toBe(1);
    const before = await laptop.page.locator("#devices tbody tr").count();
    await Promise.all([
      laptop.page.waitForResponse((r) => r.request().isNavigationRequest() && r.status() === 200),
      other.click(),
    ]);
    expect(await flashes(laptop.page)).toEqual(["Device signed out."]);
    expect(await laptop.page.locator("#devices tbody tr").count()).toBe(before - 1);

    // The phone holds its old cookie; the server no longer knows it, and the phone is told why.
    await phone.page.goto(at("/private"));
    expect(pathOf(phone.page)).toBe("/login");
    expect(await flashes(phone.page)).toEqual([
      "This device was signed out, or its session timed out.",
      "Sign in to see that page.",
    ]);
    await phone.page.goto(at("/"));
    expect(await signedInAs(phone.page)).toBeUndefined();
    await laptop.page.goto(at("/private"));
    expect(pathOf(laptop.page)).toBe("/private");
  });

  test("a device name is shown to the user's other devices, as text (no markup runs)", async () => {
    const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
    const laptop = await device();
    const phone = await device();
    for (const d of [laptop, phone]) d.page.on("dialog", (dialog) => dialog.dismiss());
    await signIn(laptop.page, "grace", "hopper");
    await signIn(phone.page, "grace", "hopper");
    await phone.page.goto(at("/devices"));
    await phone.page.fill('input[name="label"]', hostile);
    await submit(phone.page, 'form[action="/devices/label"] button');
    expect(await flashes(phone.page)).toEqual(["Device name saved."]);
    expect(await phone.page.inputValue('input[name="label"]')).toBe(hostile);

    await laptop.page.goto(at("/devices"));
    expect(await laptop.page.locator("#devices tbody").textContent()).toContain(hostile);
    expect(await laptop.page.locator("#devices img, #devices script").count()).toBe(0);
    expect(
      await laptop.page.evaluate(() => (window as { __pwned?: number }).__pwned),
    ).toBeUndefined();
    // The revoke button is named after the device's name.
    expect(
      await laptop.page.getByRole("button", { name: `Sign out ${hostile}`, exact: false }).count(),
    ).toBe(1);
    await shot(laptop.page, "devices-named");
  });

  test("a user agent with markup is shown as text on the devices page", async () => {
    const laptop = await device();
    const odd = await device("<script>window.__ua=1</script>");
    await signIn(laptop.page, "ada", "lovelace");
    await signIn(odd.page, "ada", "lovelace");
    await laptop.page.goto(at("/devices"));
    expect(await laptop.page.locator("#devices tbody").textContent()).toContain("<script>");
    expect(await laptop.page.evaluate(() => (window as { __ua?: number }).__ua)).toBeUndefined();
  });

  test("a tampered session cookie gives a fresh session, not an error", async () => {
    const { context, page } = await device();
    await signIn(page, "ada", "lovelace");
    const cookie = sessionCookie(await context.cookies(demo.url));
    if (!cookie) throw new Error("no session cookie");
    const flipped = `${cookie.value.slice(0, -2)}${cookie.value.endsWith("AA") ? "BB" : "AA"}`;
    await context.addCookies([{ ...cookie, value: flipped }]);
    const response = await page.goto(at("/"));
    expect(response?.status()).toBe(200);
    expect(await signedInAs(page)).toBeUndefined();
    expect(await visits(page)).toBe(1);
    expect(sessionCookie(await context.cookies(demo.url))?.value).not.toBe(flipped);
  });

  test("another page cannot frame the demo (clickjacking of its sign-out buttons)", async () => {
    // requireSameOrigin cannot see this: a click inside the frame is the demo's own form post.
    const port = await freePort();
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<iframe src="${at("/devices")}" width="800" height="500"></iframe>`);
    });
    evil.listen(port, "127.0.0.1");
    await once(evil, "listening");
    try {
      const { page } = await device();
      await signIn(page, "ada", "lovelace");
      // goto waits for the page's load event, which waits for the frame.
      await page.goto(`http://localhost:${port}/`);
      const shown = await page.frameLocator("iframe").locator("#devices").count();
      await shot(page, "framed");
      expect(shown).toBe(0);
    } finally {
      evil.close();
    }
  });

  test("a wrong password shows an error flash and does not sign in", async () => {
    const { page } = await device();
    await signIn(page, "ada", "not-the-password");
    expect(pathOf(page)).toBe("/login");
    expect(await flashes(page)).toEqual(["Wrong username or password."]);
    expect(await page.locator(".flash-error").isVisible()).toBe(true);
    await page.goto(at("/"));
    expect(await signedInAs(page)).toBeUndefined();
  });
});
