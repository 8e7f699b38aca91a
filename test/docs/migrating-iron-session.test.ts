/**
 * docs/migrating/iron-session.md, walked as a user would. iron-session is not among this repository's
 * packages, so the old app cannot run here: the app below is the guide's migration (to
 * sessionkit/express, as the guide shows) of a typical iron-session app on Express:
 * `getIronSession(req, res, { password, cookieName: "app" })`, a counter saved with
 * `await session.save()`, sign-in setting `session.userId` and a flash-like message, "remember me" as
 * iron's default lasting cookie and `updateConfig({ cookieOptions: { maxAge: undefined } })` when the
 * box is unticked, sign-out with `session.destroy()`. The scenario asserts what that app did for its
 * users under iron-session.
 */
import { createServer } from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { session } from "../../src/adapters/express.js";
import { createSessions } from "../../src/manager.js";
import { Client, cookieLine } from "../helpers/http.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";

const PASSWORD = "migrating-iron-session-password-0123456789";
const FOURTEEN_DAYS_S = 14 * 86_400;

interface Page {
  user: string | null;
  visits: number;
  flash: string | null;
}

/** The app after, by the guide. */
function migratedApp() {
  const sessions = createSessions({
    secret: PASSWORD,
    idleTimeout: "14d", // iron's ttl default: sessions lasted 14 days from the last save
    cookie: { name: "app_session" },
  });
  const app = express();
  app.use(session(sessions));
  app.get("/", (req, res) => {
    const visits = ((req.session.get("visits") as number | undefined) ?? 0) + 1;
    req.session.set("visits", visits); // was session.visits = ...; await session.save()
    const [flash] = req.session.flashes("info");
    res.json({ user: req.session.userId ?? null, visits, flash: flash ?? null } satisfies Page);
  });
  app.get("/me", (req, res) => {
    res.status(req.session.userId === undefined ? 401 : 200).json({ user: req.session.userId });
  });
  app.post("/login", async (req, res) => {
    const user = String(req.query.user);
    await req.session.regenerate({ userId: user }); // committed for you, no save()
    req.session.flash("info", `Welcome, ${user}`);
    if (req.query.remember !== "on") req.session.rememberMe(false); // was updateConfig(maxAge: undefined)
    res.redirect(303, "/");
  });
  app.post("/logout", (req, res) => {
    req.session.destroy(); // was session.destroy()
    res.redirect(303, "/");
  });
  return app;
}

const page = async (client: Client) => JSON.parse((await client.get("/")).text) as Page;

describe("after: sessionkit/express replacing getIronSession, by the guide", () => {
  let server: Listening;
  beforeAll(async () => {
    server = await listenLoopback(createServer(migratedApp()));
  });
  afterAll(() => server.close());

  it("sets no cookie until something is saved", async () => {
    const reply = await new Client(server.url).get("/me");
    expect(reply.status).toBe(401);
    expect(reply.setCookies).toEqual([]);
  });

  it("counts visits in a cookie lasting iron's 14 days, renewed as it is used", async () => {
    const client = new Client(server.url);
    const first = await client.get("/");
    expect(JSON.parse(first.text).visits).toBe(1);
    expect(cookieLine(first.setCookies, "app_session")?.lifetime).toBe(FOURTEEN_DAYS_S);
    expect((await page(client)).visits).toBe(2);
    expect((await page(client)).visits).toBe(3);
  });

  it("signs in keeping the data (iron re-seals the same data) and shows the flash once", async () => {
    const client = new Client(server.url);
    await page(client);
    const before = client.jar.get("app_session") as string;
    const login = await client.post("/login?user=ada&remember=on");
    expect(login.status).toBe(303);
    const set = cookieLine(login.setCookies, "app_session");
    expect(set?.value).not.toBe(before);
    expect(set?.lifetime).toBe(FOURTEEN_DAYS_S); // remembered: iron's default lasting cookie
    expect(await page(client)).toEqual({ user: "ada", visits: 2, flash: "Welcome, ada" });
    expect(await page(client)).toEqual({ user: "ada", visits: 3, flash: null });
  });

  it('without "remember me" the cookie goes when the browser closes, and stays so', async () => {
    const client = new Client(server.url);
    const login = await client.post("/login?user=ada");
    expect(cookieLine(login.setCookies, "app_session")?.lifetime).toBeUndefined();
    const next = await client.get("/");
    expect(cookieLine(next.setCookies, "app_session")?.lifetime).toBeUndefined();
    expect((await client.get("/me")).status).toBe(200);
  });

  it("signs out: the cookie is cleared; a copy still opens until its deadline, as an iron seal", async () => {
    const client = new Client(server.url);
    await client.post("/login?user=ada&remember=on");
    const signedIn = client.jar.get("app_session") as string;
    const logout = await client.post("/logout");
    expect(logout.status).toBe(303);
    expect(cookieLine(logout.setCookies, "app_session")?.lifetime).toBe(0);
    expect(client.jar.has("app_session")).toBe(false);
    expect((await client.get("/me")).status).toBe(401);
    const replay = new Client(server.url);
    replay.jar.set("app_session", signedIn);
    expect((await replay.get("/me")).status).toBe(200);
  });

  it("an old iron cookie under the old name is left alone, and the visitor starts anew", async () => {
    const client = new Client(server.url);
    client.jar.set("app", "Fe26.2**0123456789abcdef*old-seal");
    const reply = await client.get("/me");
    expect(reply.status).toBe(401);
    expect(reply.setCookies).toEqual([]);
  });
});
