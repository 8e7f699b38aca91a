/**
 * What a client can put into the metadata a store session records for a "your devices" page: the
 * user agent, the IP address the adapter reports, a label. The library's part is to store and return
 * them bounded and as strings; rendering them is the page's. Findings are `it.fails`, each with the
 * problem and the fix.
 */
import { createServer } from "node:http";
import express from "express";
import { describe, expect, it } from "vitest";
import { session } from "../../src/adapters/express.js";
import { createSessions } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";
import { SECRET } from "../core/harness.js";
import { listenLoopback } from "../helpers/listen.js";

/** Signs alice in through Express with `trust proxy` on, sending `headers`; returns her devices. */
async function signInThroughExpress(headers: Record<string, string>) {
  const sessions = createSessions({ secret: SECRET, store: memoryStore() });
  const app = express();
  // A common setting behind a load balancer: req.ip is then the left-most X-Forwarded-For entry.
  app.set("trust proxy", true);
  app.use(session(sessions));
  app.post("/login", async (req, res) => {
    await req.session.regenerate({ userId: "alice" });
    res.send("ok");
  });
  const server = await listenLoopback(createServer(app));
  try {
    const response = await fetch(`${server.url}/login`, { method: "POST", headers });
    expect(response.status).toBe(200);
  } finally {
    await server.close();
  }
  return sessions.listByUser("alice");
}

describe("the IP address a devices page shows", () => {
  // FINDING: the user agent is cut to 256 characters (readTransport) and a label to 100
  // (setLabel), but the IP address is stored as the adapter reports it (commitSession:
  // `meta.ip = plainIp(ip)`). With Express's `trust proxy` (or Koa's `proxy`, or a fetch `ip`
  // option reading a header such as cf-connecting-ip), that is a client-chosen header value: any
  // text up to the server's header limit (16 KB in Node), markup included, stored
  // in every session row and listed back as the "IP address".
  // Fix: accept an address only in address form, e.g. `/^[0-9A-Fa-f:.]{2,45}(?:%[\w.-]{1,32})?$/`
  // (45 = the longest IPv6 text, with an IPv6 zone id), and record none otherwise. Which proxy to
  // trust stays the framework's setting; docs/SECURITY.md can say so under "Limits".
  it("a forged X-Forwarded-For entry is not stored as the IP when it is no address", async () => {
    const forged = `<b>${"A".repeat(8000)}</b>`;
    const devices = await signInThroughExpress({ "x-forwarded-for": `${forged}, 10.0.0.1` });
    expect(devices).toHaveLength(1);
    const ip = devices[0]?.ip;
    expect(ip === undefined || ip.length <= 45).toBe(true);
  });

  it("a user agent of 8 KB is stored cut to 256 characters (holds)", async () => {
    const devices = await signInThroughExpress({ "user-agent": `Mozilla/5.0 ${"x".repeat(8000)}` });
    expect(devices[0]?.userAgent?.length).toBe(256);
  });
});

describe("labels and flash levels", () => {
  it("a label is cut to 100 characters, kept as text with its control and bidi characters (holds)", async () => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore() });
    const s = await sessions.load(new Headers());
    await s.regenerate({ userId: "alice" });
    s.setLabel(`\u202eevil\n<script>${"L".repeat(100_000)}`);
    await sessions.commit(s, new Headers());
    const [device] = await sessions.listByUser("alice");
    expect(device?.label).toHaveLength(100);
    expect(device?.label?.startsWith("\u202eevil\n<script>")).toBe(true);
  });

  it("flash levels named like data keys or prototype members stay apart from data (holds)", async () => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore() });
    const s = await sessions.load(new Headers());
    s.set("role", "user");
    s.flash("role", "admin");
    s.flash("__proto__", "x");
    s.flash("constructor", "y");
    const out = new Headers();
    await sessions.commit(s, out);
    const cookie = out.getSetCookie()[0]?.split(";")[0] as string;
    const next = await sessions.load(new Headers({ cookie }));
    expect(next.data).toEqual({ role: "user" });
    expect(next.flashes("constructor")).toEqual(["y"]);
    expect(next.flashes("__proto__")).toEqual(["x"]);
    expect(next.flashes("role")).toEqual(["admin"]);
    expect(next.flashes("toString")).toEqual([]);
  });
});
