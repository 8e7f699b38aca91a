// "Remember me" in the demo app (examples/demo/app.ts): a remembered session lives by the longer
// deadlines of the `rememberMe` option (30 days idle, 30 days in all) and an ordinary one by the
// short ones (30 minutes idle, 12 hours in all), with the store and with cookie sessions, on the
// demo's `now` clock; the page and its flash messages say so.
import { describe, expect, it } from "vitest";
import type { DemoOptions } from "../../examples/demo/app.js";
import { startDemo } from "./demo-client.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const IDLE_ENDED = "Your session ended after 30m idle (30d with &quot;Remember me&quot;).";
const LIMIT_REACHED = "Your session reached its 12h limit (30d with &quot;Remember me&quot;).";

const userIn = (body: string) => /id="user">([^<]*)</.exec(body)?.[1];
const expiresIn = (body: string) =>
  Date.parse(/id="expires">[^<]*<time datetime="([^"]+)"/.exec(body)?.[1] ?? "");
const maxAgeOf = (setCookie: string | null) => /Max-Age=(\d+)/i.exec(setCookie ?? "")?.[1];

// The visitor is told which deadline ended the session in both modes: the store still holds a
// record past its deadline (until a sweep) and reports the expiry, as a cookie carries its own.
const KINDS: [string, Partial<DemoOptions>][] = [
  ["store", {}],
  ["cookie", { store: undefined, storeLabel: "cookie" }],
];

describe.each(KINDS)("with %s sessions", (_kind, options) => {
  async function signedIn(remember: boolean) {
    const clock = { now: Date.UTC(2026, 0, 5, 9) };
    const demo = await startDemo(clock, options);
    const posted = await demo.signIn("ada", "lovelace", remember);
    expect(posted.response.headers.get("location")).toBe("/");
    return { demo, clock, posted };
  }

  it("an ordinary session ends after 30 minutes idle, and the flash says so", async () => {
    const { demo, clock } = await signedIn(false);
    clock.now += 29 * MINUTE;
    expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
    clock.now += 31 * MINUTE;
    const home = await demo.send("GET", "/");
    expect(userIn(home.body)).toBeUndefined();
    expect(home.body).toContain(IDLE_ENDED);
  });

  it("a remembered session outlasts 30 minutes, and days, idle", async () => {
    const { demo, clock } = await signedIn(true);
    clock.now += 31 * MINUTE;
    expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
    clock.now += 29 * DAY;
    expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
  });

  it("an ordinary session ends after 12 hours in all, however active", async () => {
    const { demo, clock } = await signedIn(false);
    for (let t = 20 * MINUTE; t < 12 * HOUR; t += 20 * MINUTE) {
      clock.now += 20 * MINUTE;
      expect(userIn((await demo.send("GET", "/")).body), `after ${t / MINUTE}m`).toBe("ada");
    }
    clock.now += 20 * MINUTE;
    const home = await demo.send("GET", "/");
    expect(userIn(home.body)).toBeUndefined();
    expect(home.body).toContain(LIMIT_REACHED);
  });

  it("a remembered session outlives 12 hours and ends 30 days after sign-in, however active", async () => {
    const { demo, clock } = await signedIn(true);
    for (let day = 1; day < 30; day++) {
      clock.now += DAY;
      expect(userIn((await demo.send("GET", "/")).body), `day ${day}`).toBe("ada");
    }
    clock.now += DAY;
    const home = await demo.send("GET", "/");
    expect(userIn(home.body)).toBeUndefined();
    expect(home.body).toContain(LIMIT_REACHED);
  });

  it("the cookie and the page's deadline follow the kind of session", async () => {
    const plain = await signedIn(false);
    expect(plain.posted.setCookie).not.toMatch(/Max-Age|Expires/i);
    const plainHome = (await plain.demo.send("GET", "/")).body;
    expect(expiresIn(plainHome)).toBe(plain.clock.now + 30 * MINUTE);

    const remembered = await signedIn(true);
    expect(Number(maxAgeOf(remembered.posted.setCookie))).toBe((30 * DAY) / 1000);
    const home = (await remembered.demo.send("GET", "/")).body;
    expect(expiresIn(home)).toBe(remembered.clock.now + 30 * DAY);
  });
});

it("the footer states both kinds of deadline", async () => {
  const demo = await startDemo();
  const footer = /<footer>([\s\S]*?)<\/footer>/.exec((await demo.send("GET", "/")).body)?.[1];
  expect(footer).toContain(
    "sessions end after 30m idle or 12h in all; with &quot;Remember me&quot;, after 30d idle or 30d in all",
  );
});

it("the deadlines come from the demo's options, in its wording too", async () => {
  const clock = { now: Date.UTC(2026, 0, 5, 9) };
  const demo = await startDemo(clock, {
    store: undefined,
    storeLabel: "cookie",
    idleTimeout: "10m",
    rememberIdleTimeout: "2h",
    rememberAbsoluteTimeout: "1d",
  });
  await demo.signIn("ada", "lovelace", true);
  clock.now += HOUR;
  expect(userIn((await demo.send("GET", "/")).body)).toBe("ada");
  clock.now += 2 * HOUR + MINUTE;
  const home = (await demo.send("GET", "/")).body;
  expect(userIn(home)).toBeUndefined();
  expect(home).toContain("Your session ended after 10m idle (2h with &quot;Remember me&quot;).");
});
