/**
 * One behaviour matrix for every adapter, over real HTTP on loopback. Each adapter's test provides
 * `serve(sessions)`: an app in its framework's own idiom with the routes below, listening on 127.0.0.1.
 *
 *   GET  /read       -> 200, body JSON.stringify(session.data); writes nothing
 *   GET  /count      -> count += 1, body String(count)
 *   POST /login      -> regenerate({ userId: "ada" }), set user "ada", body "ok"
 *   POST /destroy    -> destroy(), body "bye"
 *   POST /flash      -> flash("info", "saved"), body "ok"
 *   GET  /flashes    -> body JSON.stringify(flashes("info"))
 *   GET  /private    -> guarded: no "user" -> 303 to /login with flash("info", "sign in first") (the
 *                       adapter's guard mechanism, requireSession's flash); else body "secret"
 *   GET  /large      -> set "blob" to "x".repeat(8000), body "ok"
 *   GET  /boom       -> count += 1, then throw new Error("boom") (the framework's error response)
 *   GET  /redirect   -> set "went" true, then a 302 redirect to /read
 *   GET  /stream     -> set "streamed" true, then a streamed body "chunk1chunk2" written in two parts
 *   POST /act        -> the actions of the `x-actions` header, through `act` (visits.ts): random visits,
 *                       by cookie and by the header transport, read as they do through the core manager
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/errors.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import { applyPatch, type SessionStore, type StoredSession } from "../../src/stores/store.js";
import { Client } from "../helpers/http.js";
import { testVisits } from "./visits.js";

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

// The matrix drives untyped sessions through every adapter.
export type ServeApp = (sessions: Sessions<any>) => Promise<RunningApp>;

export const SECRET = "adapter-matrix-secret-0123456789abcdef";
export const HEADER = "x-session";

/** A store kept in a Map that can be switched off, to prove the 503 lane without a real server. */
export function switchableStore(): SessionStore & { down: boolean } {
  const rows = new Map<string, { session: StoredSession; expiresAt: number }>();
  const store = {
    name: "switchable",
    down: false,
    check() {
      if (store.down) throw new StoreUnavailableError("the switchable store is down");
    },
    async get(key: string) {
      store.check();
      return rows.get(key)?.session;
    },
    async set(key: string, session: StoredSession, expiresAt: number) {
      store.check();
      rows.set(key, { session: structuredClone(session), expiresAt });
    },
    async patch(key: string, patch: Parameters<SessionStore["patch"]>[1], expiresAt: number) {
      store.check();
      const row = rows.get(key);
      if (!row) return false;
      rows.set(key, { session: applyPatch(row.session, patch), expiresAt });
      return true;
    },
    async touch(key: string, touchedAt: number, expiresAt: number) {
      store.check();
      const row = rows.get(key);
      if (!row) return false;
      row.session.meta.touchedAt = touchedAt;
      row.expiresAt = expiresAt;
      return true;
    },
    async delete(key: string) {
      store.check();
      rows.delete(key);
    },
  };
  return store;
}

function cookieAttributes(line: string): string[] {
  return line
    .split(";")
    .slice(1)
    .map((a) => a.trim().toLowerCase());
}

export function testAdapter(name: string, serve: ServeApp): void {
  describe(`adapter conformance: ${name}`, () => {
    // Random visits against the core manager, through the app's `POST /act` (visits.ts).
    describe("random visits", () => testVisits(serve));
    describe("cookie sessions", () => {
      let app: RunningApp;
      beforeAll(async () => {
        app = await serve(createSessions({ secret: SECRET, header: HEADER }));
      });
      afterAll(() => app?.close());

      it("gives a new visitor no cookie until a write", async () => {
        const client = new Client(app.url);
        const reply = await client.get("/read");
        expect(reply.status).toBe(200);
        expect(reply.text).toBe("{}");
        expect(reply.setCookies).toEqual([]);
      });

      it("counts across requests with secure cookie attributes on the wire", async () => {
        const client = new Client(app.url);
        const first = await client.get("/count");
        expect(first.text).toBe("1");
        expect(first.setCookies).toHaveLength(1);
        const attributes = cookieAttributes(first.setCookies[0] as string);
        expect(attributes).toContain("httponly");
        expect(attributes).toContain("samesite=lax");
        expect(attributes).toContain("path=/");
        // 127.0.0.1 over plain http: Secure would make the cookie undeliverable.
        expect(attributes).not.toContain("secure");
        expect(first.headers.get("cache-control")).toBe("no-store");
        expect((await client.get("/count")).text).toBe("2");
        expect((await client.get("/count")).text).toBe("3");
      });

      it("sends no Set-Cookie for an unchanged session", async () => {
        const client = new Client(app.url);
        await client.get("/count");
        const reply = await client.get("/read");
        expect(JSON.parse(reply.text)).toEqual({ count: 1 });
        expect(reply.setCookies).toEqual([]);
      });

      it("reads a flash message once", async () => {
        const client = new Client(app.url);
        await client.post("/flash");
        expect(JSON.parse((await client.get("/flashes")).text)).toEqual(["saved"]);
        expect(JSON.parse((await client.get("/flashes")).text)).toEqual([]);
      });

      it("redirects a guarded page with 303 before the handler runs", async () => {
        const client = new Client(app.url);
        const denied = await client.get("/private");
        expect(denied.status).toBe(303);
        expect(denied.headers.get("location")).toBe("/login");
        // The denial committed the session: the page redirected to reads the guard's flash, once.
        expect(JSON.parse((await client.get("/flashes")).text)).toEqual(["sign in first"]);
        expect(JSON.parse((await client.get("/flashes")).text)).toEqual([]);
        await client.post("/login");
        const allowed = await client.get("/private");
        expect(allowed.status).toBe(200);
        expect(allowed.text).toBe("secret");
      });

      it("destroys the session and clears its cookie", async () => {
        const client = new Client(app.url);
        await client.get("/count");
        const reply = await client.post("/destroy");
        expect(reply.setCookies.some((l) => /^sid=;/.test(l) && /max-age=0/i.test(l))).toBe(true);
        expect(client.jar.size).toBe(0);
        expect((await client.get("/read")).text).toBe("{}");
      });

      it("splits a large session into chunk cookies and joins them on read", async () => {
        const client = new Client(app.url);
        const reply = await client.get("/large");
        // 8000 bytes of data seal to ~10.8 KB: three chunks of at most 4000 bytes each.
        const names = reply.setCookies.map((l) => l.split("=")[0]);
        expect(names).toEqual(["sid.0", "sid.1", "sid.2"]);
        for (const line of reply.setCookies)
          expect(line.split(";")[0]?.length).toBeLessThanOrEqual(4096);
        const read = JSON.parse((await client.get("/read")).text);
        expect(read.blob).toHaveLength(8000);
      });

      it("commits the cookie on a thrown error's response", async () => {
        const client = new Client(app.url);
        const reply = await client.get("/boom");
        expect(reply.status).toBeGreaterThanOrEqual(500);
        expect(reply.setCookies).toHaveLength(1);
        expect(JSON.parse((await client.get("/read")).text)).toEqual({ count: 1 });
      });

      it("commits the cookie on a redirect", async () => {
        const client = new Client(app.url);
        const reply = await client.get("/redirect");
        expect(reply.status).toBe(302);
        expect(reply.setCookies).toHaveLength(1);
        expect(JSON.parse((await client.get("/read")).text)).toEqual({ went: true });
      });

      it("commits the cookie before a streamed body", async () => {
        const client = new Client(app.url);
        const reply = await client.get("/stream");
        expect(reply.text).toBe("chunk1chunk2");
        expect(reply.setCookies).toHaveLength(1);
        expect(JSON.parse((await client.get("/read")).text)).toEqual({ streamed: true });
      });

      it("carries the session in the header transport, which wins over the cookie", async () => {
        const browser = new Client(app.url);
        await browser.get("/count");
        const first = await new Client(app.url).get("/count", { headers: { [HEADER]: "" } });
        expect(first.setCookies).toEqual([]);
        const token = first.headers.get(HEADER) as string;
        expect(token).toMatch(/^e1\./);
        const second = await browser.get("/count", { headers: { [HEADER]: token } });
        expect(second.text).toBe("2");
        expect(second.setCookies).toEqual([]);
        expect(second.headers.get(HEADER)).toMatch(/^e1\./);
      });
    });

    describe("store sessions", () => {
      let app: RunningApp;
      const store = switchableStore();
      beforeAll(async () => {
        app = await serve(createSessions({ secret: SECRET, store }));
      });
      afterAll(() => app?.close());

      it("regenerate changes the id and the old cookie opens nothing", async () => {
        const client = new Client(app.url);
        await client.get("/count");
        const before = client.jar.get("sid");
        await client.post("/login");
        const after = client.jar.get("sid");
        expect(after).toBeDefined();
        expect(after).not.toBe(before);
        const replay = await new Client(app.url).get("/read", {
          headers: { cookie: `sid=${before}` },
        });
        expect(replay.text).toBe("{}");
        expect(JSON.parse((await client.get("/read")).text)).toEqual({ count: 1, user: "ada" });
      });

      it("answers 503 while the store is down and recovers when it is back", async () => {
        const client = new Client(app.url);
        await client.get("/count");
        store.down = true;
        try {
          const reply = await client.get("/count");
          expect(reply.status).toBe(503);
          expect(reply.headers.get("retry-after")).toBe("5");
        } finally {
          store.down = false;
        }
        expect((await client.get("/count")).text).toBe("2");
      });
    });
  });
}
