/**
 * Session fixation (OWASP: "Renew the Session ID After Any Privilege Level Change"), end to end over
 * real HTTP through the node:http adapter, with the memory store.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backend } from "#crypto-backend";
import { withSession } from "../../src/adapters/node.js";
import { hashSessionId } from "../../src/crypto/id.js";
import { createSessions } from "../../src/index.js";
import { type MemoryStore, memoryStore } from "../../src/stores/memory.js";
import { SECRET } from "../core/harness.js";
import { Client } from "../helpers/http.js";

function send(res: ServerResponse, body: unknown): void {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(body));
}

function makeApp(store: MemoryStore) {
  const sessions = createSessions({ secret: SECRET, store });
  return withSession(sessions, async (req, res) => {
    const { session } = req;
    switch (`${req.method} ${req.url}`) {
      case "GET /visit":
        session.set("cart", 1);
        return send(res, "ok");
      case "POST /login":
        await session.regenerate({ userId: "alice" });
        session.set("user", "alice");
        return send(res, "ok");
      default:
        return send(res, { user: session.get("user") ?? null, isNew: session.isNew });
    }
  });
}

let base: string;
let close: () => Promise<void>;
const store = memoryStore();
// A second server sharing the secret but not the store: its ids are unknown to ours.
const elsewhereStore = memoryStore();
let elsewhere: string;
let closeElsewhere: () => Promise<void>;

async function listen(app: ReturnType<typeof makeApp>) {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

beforeAll(async () => {
  const a = await listen(makeApp(store));
  base = a.url;
  close = a.close;
  const b = await listen(makeApp(elsewhereStore));
  elsewhere = b.url;
  closeElsewhere = b.close;
});
afterAll(async () => {
  await close();
  await closeElsewhere();
});

/** The session id inside an i1 token (i1.<kid>.<id>.<mac>). */
const idOf = (token: string) => token.split(".")[2] as string;
const storedKeys = () => [...store.rawEntries()].map(([key]) => key);

describe("session fixation, over HTTP with the node adapter and the memory store", () => {
  it("an id planted before sign-in is dead after regenerate; the old id opens nothing", async () => {
    const attacker = new Client(base);
    await attacker.get("/visit");
    const planted = attacker.jar.get("sid") as string;
    expect(planted).toMatch(/^i1\./);

    // The victim signs in with the attacker's cookie planted in their browser.
    const victim = new Client(base);
    victim.jar.set("sid", planted);
    const login = await victim.post("/login");
    expect(login.status).toBe(200);
    const issued = victim.jar.get("sid") as string;
    expect(issued).toBeDefined();
    expect(idOf(issued)).not.toBe(idOf(planted));
    expect(await victim.get("/me").then((r) => JSON.parse(r.text))).toEqual({
      user: "alice",
      isNew: false,
    });

    // The planted id no longer exists server-side: neither its hash nor the raw id is stored.
    const plantedKey = await hashSessionId(backend, idOf(planted));
    expect(storedKeys()).not.toContain(plantedKey);

    // The attacker replays the planted cookie: a fresh, empty session. The dead id is not cleared
    // (a clearing line racing a sign-in would delete the new cookie); it opens nothing.
    const replay = await attacker.get("/me");
    expect(JSON.parse(replay.text)).toEqual({ user: null, isNew: true });
    expect(replay.setCookies).toEqual([]);
  });

  it("an id the server never issued is not adopted (strict mode): sign-in gets a new id", async () => {
    // A validly signed token from another server sharing the secret: unknown to our store.
    const foreign = new Client(elsewhere);
    await foreign.get("/visit");
    const planted = foreign.jar.get("sid") as string;

    const victim = new Client(base);
    victim.jar.set("sid", planted);
    const before = storedKeys().length;
    const probe = await victim.get("/me");
    expect(JSON.parse(probe.text)).toEqual({ user: null, isNew: true });
    // Nothing was created for the unknown id.
    expect(storedKeys()).toHaveLength(before);

    victim.jar.set("sid", planted);
    await victim.post("/login");
    const issued = victim.jar.get("sid") as string;
    expect(idOf(issued)).not.toBe(idOf(planted));
    expect(storedKeys()).not.toContain(await hashSessionId(backend, idOf(planted)));
  });
});
