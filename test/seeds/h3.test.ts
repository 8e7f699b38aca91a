/**
 * The h3 seed ("Handle Session") run as written, on the real h3 2.x package: the five examples in
 * test/seeds/h3/ differ from the document only in their import lines and in declaring `app`
 * (`createApp()`, which the document leaves out). Each is served on 127.0.0.1 over real HTTP.
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { H3 } from "h3";
import { toNodeHandler } from "h3/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unsealSession } from "../../src/adapters/h3.js";
import { Client } from "../helpers/http.js";
import { app as clearApp } from "./h3/clear.js";
import { app as countApp } from "./h3/count.js";
import { app as initializeApp } from "./h3/initialize.js";
import { app as optionsApp } from "./h3/options.js";
import { app as readApp } from "./h3/read.js";

const PASSWORD = "80d42cfb-1cd2-462c-8f17-e3237d9027e9";
const SEVEN_DAYS_S = 60 * 60 * 24 * 7;
const servers: Array<ReturnType<typeof createServer>> = [];
const urls: Record<string, string> = {};

function serve(app: H3): Promise<string> {
  const server = createServer(toNodeHandler(app));
  servers.push(server);
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
}

beforeAll(async () => {
  const apps = {
    initialize: initializeApp,
    read: readApp,
    count: countApp,
    clear: clearApp,
    options: optionsApp,
  };
  for (const [name, app] of Object.entries(apps)) urls[name] = await serve(app as H3);
});
afterAll(() => Promise.all(servers.map((s) => new Promise((done) => s.close(done)))));

const url = (name: string) => urls[name] as string;
const cookieValue = (line: string) => line.slice(line.indexOf("=") + 1, line.indexOf(";"));
const attributes = (line: string) =>
  line
    .split(";")
    .slice(1)
    .map((a) => a.trim().toLowerCase());
const event = { req: new Request("http://127.0.0.1/") };

describe("h3 seed: Handle Session", () => {
  it("initialises a session and sends a Set-Cookie named h3 with an encrypted value", async () => {
    const reply = await new Client(url("initialize")).get("/");
    // The example returns nothing, so h3 answers 404 (real h3 does the same) and keeps the cookie on it.
    expect(reply.status).toBe(404);
    expect(reply.setCookies).toHaveLength(1);
    const line = reply.setCookies[0] as string;
    expect(line.startsWith("h3=")).toBe(true);
    expect(cookieValue(line)).toMatch(/^e1\./);
    expect(attributes(line)).toEqual(
      expect.arrayContaining(["path=/", "httponly", "secure", "samesite=lax"]),
    );
    expect(await unsealSession(event, { password: PASSWORD }, cookieValue(line))).toMatchObject({
      data: {},
    });
  });

  it("reads session.data, an empty object when there is no data", async () => {
    const client = new Client(url("read"));
    const first = await client.get("/");
    expect(first.status).toBe(200);
    expect(JSON.parse(first.text)).toEqual({});
    const again = await client.get("/");
    expect(JSON.parse(again.text)).toEqual({});
    expect(again.setCookies).toEqual([]);
  });

  it("counts visits with session.update when the cookie is sent back", async () => {
    const client = new Client(url("count"));
    for (const n of [1, 2, 3]) {
      expect((await client.get("/")).text).toBe(
        `Hello world! You have visited this page ${n} times.`,
      );
    }
    const sealed = client.jar.get("h3") as string;
    // Encrypted: the count is not readable in the cookie, but the password opens it.
    expect(
      Buffer.from(sealed.split(".").pop() as string, "base64url").toString("latin1"),
    ).not.toContain("count");
    expect((await unsealSession(event, { password: PASSWORD }, sealed)).data).toEqual({ count: 3 });
  });

  it("does not count for a client that keeps no cookies, as the document's curl note says", async () => {
    const count = url("count");
    for (let i = 0; i < 2; i++) {
      expect(await (await fetch(`${count}/`)).text()).toBe(
        "Hello world! You have visited this page 1 times.",
      );
    }
  });

  it("clears the session at /clear with an empty h3 cookie", async () => {
    const counter = new Client(url("count"));
    await counter.get("/");
    const reply = await new Client(url("clear")).get("/clear", {
      headers: { cookie: counter.cookieHeader() },
    });
    expect(reply.status).toBe(200);
    expect(reply.text).toBe("Session cleared");
    expect(reply.setCookies).toHaveLength(1);
    const line = reply.setCookies[0] as string;
    expect(line.startsWith("h3=;")).toBe(true);
    expect(attributes(line)).toContain("max-age=0");
  });

  it("lets the x-h3-session header take precedence over the cookie", async () => {
    const browser = new Client(url("count"));
    await browser.get("/");
    const other = new Client(url("count"));
    for (let i = 0; i < 5; i++) await other.get("/");
    const reply = await browser.get("/", {
      headers: { "x-h3-session": other.jar.get("h3") as string },
    });
    expect(reply.text).toBe("Hello world! You have visited this page 6 times.");
    // The token came in the header; the updated session goes out as the h3 cookie, as h3 does.
    expect(reply.setCookies.map((l) => l.split("=")[0])).toEqual(["h3"]);
  });

  it("applies the options: cookie name and attributes, and maxAge as the cookie's Max-Age", async () => {
    const client = new Client(url("options"));
    const first = await client.get("/");
    expect(JSON.parse(first.text)).toEqual({});
    expect(first.setCookies).toHaveLength(1);
    const line = first.setCookies[0] as string;
    expect(line.startsWith("my-session=")).toBe(true);
    expect(cookieValue(line)).toMatch(/^e1\./);
    expect(attributes(line)).toEqual(
      expect.arrayContaining(["httponly", "secure", "samesite=strict", "path=/"]),
    );
    // Seconds left until createdAt + maxAge, floored by the core: the milliseconds between load and
    // commit can take one second off.
    const maxAge = Number(
      attributes(line)
        .find((a) => a.startsWith("max-age="))
        ?.slice("max-age=".length),
    );
    expect(maxAge).toBeGreaterThanOrEqual(SEVEN_DAYS_S - 1);
    expect(maxAge).toBeLessThanOrEqual(SEVEN_DAYS_S);
    // The renamed cookie is read back: the session continues and nothing is re-sent.
    const again = await client.get("/");
    expect(again.setCookies).toEqual([]);
  });
});
