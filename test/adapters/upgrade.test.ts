/**
 * A WebSocket upgrade never reaches a request handler, so no adapter loads its session: the
 * `upgrade` handler hands Node's IncomingMessage to `sessions.load` itself and decides from the
 * session whether to switch protocols. Over real HTTP on loopback, with a store session.
 */
import { createServer, request as httpRequest, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withSession } from "../../src/adapters/node.js";
import { createSessions } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";

const SECRET = "upgrade-test-secret-0123456789abcdefghijkl";
const store = memoryStore();
const sessions = createSessions({ secret: SECRET, store });
const seen: unknown[] = [];

const server = createServer(
  withSession(sessions, async (req, res) => {
    if (req.url === "/login") await req.session.regenerate({ userId: "ada" });
    res.end("ok");
  }),
);
server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
  sessions.load(req).then(
    (session) => {
      seen.push(session.userId);
      socket.end(
        session.userId
          ? "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
          : "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      );
    },
    () => socket.destroy(),
  );
});

let listening: Listening;
beforeAll(async () => {
  listening = await listenLoopback(server, { closeConnections: true });
});
afterAll(() => listening.close());

/** Asks to upgrade; resolves the status the server answered with. */
function upgrade(cookie?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${listening.url}/live`, {
      headers: { connection: "Upgrade", upgrade: "websocket", ...(cookie ? { cookie } : {}) },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("a WebSocket upgrade reads the session from Node's IncomingMessage", () => {
  it("refuses a visitor who is not signed in and lets a signed-in one switch protocols", async () => {
    expect(await upgrade()).toBe(401);
    const login = await fetch(`${listening.url}/login`);
    const cookie = login.headers.getSetCookie()[0]?.split(";")[0];
    expect(cookie).toMatch(/^sid=i1\./);
    expect(await upgrade(cookie)).toBe(101);
    expect(seen).toEqual([undefined, "ada"]);
    // The session's cookie, tampered, opens nothing.
    const tampered = `${cookie?.slice(0, -2)}${cookie?.endsWith("AA") ? "BB" : "AA"}`;
    expect(await upgrade(tampered)).toBe(401);
  });
});

describe("sessions.load with a Node request outside any adapter", () => {
  it("reads its header record, builds its URL and records its socket's address", async () => {
    const own = createSessions({ secret: SECRET, store: memoryStore() });
    const req = {
      headers: { host: "localhost:3000", "user-agent": "probe/1", accept: ["a", "b"] },
      url: "/socket",
      socket: { remoteAddress: "10.0.0.7" },
    };
    const first = await own.load(req);
    await first.regenerate({ userId: "grace" });
    const headers = new Headers();
    await own.commit(first, headers);
    // Plain http on localhost: no Secure attribute, as for any request the adapters read.
    const line = headers.getSetCookie()[0] as string;
    expect(line).not.toContain("Secure");
    const [listed] = await own.listByUser("grace");
    expect(listed).toMatchObject({ ip: "10.0.0.7", userAgent: "probe/1" });
    const again = await own.load({
      ...req,
      headers: { ...req.headers, cookie: line.split(";")[0] },
    });
    expect(again.userId).toBe("grace");
  });
});
