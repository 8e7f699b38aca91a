// HEAD on the demo app (examples/demo/app.ts), in process on a loopback port: every GET route answers
// HEAD with GET's status and headers and no body, and a HEAD changes nothing in the session.
import { describe, expect, it } from "vitest";
import { startDemo } from "./demo-client.js";

const visitsIn = (body: string) =>
  Number(/id="visits"[^>]*>.*?<strong>(\d+)<\/strong>/s.exec(body)?.[1]);

describe("the demo answers HEAD as GET, without a body", () => {
  it.each([
    ["/", 200],
    ["/login", 200],
    ["/style.css", 200],
    ["/private", 303],
    ["/devices", 303],
    ["/no-such-page", 404],
  ])("HEAD %s: GET's status and headers, no body", async (path, status) => {
    const demo = await startDemo();
    // HEAD first: it leaves no cookie, so the GET after it is a first visit too, the same page.
    const head = await demo.send("HEAD", path);
    const get = await demo.send("GET", path);
    expect(get.response.status).toBe(status);
    expect(head.response.status).toBe(status);
    expect(head.body).toBe("");
    const names = ["content-type", "content-length", "content-security-policy", "location"];
    // The Cache-Control: no-store that comes with a Set-Cookie is GET's alone: a HEAD commits nothing.
    if (!get.setCookie) names.push("cache-control");
    for (const name of names) {
      expect(head.response.headers.get(name), name).toBe(get.response.headers.get(name));
    }
  });

  it("HEAD of a members page a signed-in visitor may see is a 200 with the page's length", async () => {
    const demo = await startDemo();
    await demo.signIn();
    for (const path of ["/private", "/devices"]) {
      const head = await demo.send("HEAD", path);
      const get = await demo.send("GET", path);
      expect(head.response.status).toBe(200);
      expect(head.body).toBe("");
      expect(Number(head.response.headers.get("content-length"))).toBe(Buffer.byteLength(get.body));
    }
  });
});

describe("a HEAD changes nothing in the session", () => {
  it("does not count a visit", async () => {
    const demo = await startDemo();
    expect(visitsIn((await demo.send("GET", "/")).body)).toBe(1);
    await demo.send("HEAD", "/");
    await demo.send("HEAD", "/");
    expect(visitsIn((await demo.send("GET", "/")).body)).toBe(2);
  });

  it("does not read a flash message away, nor leave one", async () => {
    const demo = await startDemo();
    await demo.signIn();
    await demo.send("HEAD", "/");
    // A HEAD of a members page signed out would leave "Sign in to see that page." on a GET.
    await demo.submit("/private", "/logout");
    await demo.send("HEAD", "/private");
    const home = await demo.send("GET", "/");
    expect(home.body).toContain("You are signed out.");
    expect(home.body).not.toContain("Sign in to see that page.");
  });

  it("sends no Set-Cookie and writes nothing to the store, even when a GET would slide the deadline", async () => {
    const demo = await startDemo();
    const fresh = await demo.send("HEAD", "/");
    expect(fresh.setCookie).toBeNull();
    expect(demo.writes).toEqual([]);

    await demo.signIn();
    await demo.send("GET", "/");
    demo.writes.length = 0;
    // Past the touch interval a GET that writes nothing still slides the idle deadline (a touch).
    demo.clock.now += 10 * 60_000;
    for (const path of ["/", "/login", "/private", "/devices", "/style.css", "/nowhere"]) {
      const head = await demo.send("HEAD", path);
      expect(head.setCookie, path).toBeNull();
    }
    expect(demo.writes).toEqual([]);
    // The session is still there, signed in; the GET that follows is the request that slides it.
    const get = await demo.send("GET", "/private");
    expect(get.response.status).toBe(200);
    expect(demo.writes).toEqual(["touch"]);
  });
});
