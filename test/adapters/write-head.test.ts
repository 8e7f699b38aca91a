/**
 * The node-based adapters (node:http, Express, Koa) hold the response until the session commits. A
 * handler that answers with `res.writeHead(status, fields)` must keep the session's cookie and its
 * `Cache-Control: no-store`, and a call node:http refuses must still give a 500, never a hanging
 * request and an unhandled rejection (which ends a Node process).
 */
import { createServer, type ServerResponse } from "node:http";
import express from "express";
import Koa from "koa";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { session as expressSession } from "../../src/adapters/express.js";
import { session as koaSession } from "../../src/adapters/koa.js";
import { withSession } from "../../src/adapters/node.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { type RunningApp, SECRET } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

/** Each route writes to the session, then answers through the raw response. */
const ROUTES: Record<string, (res: ServerResponse) => void> = {
  "/fields": (res) => {
    res.writeHead(302, { Location: "/", "Set-Cookie": "flash=1" }).end();
  },
  "/pairs": (res) => {
    res.writeHead(302, ["Location", "/", "Set-Cookie", "a=1", "Set-Cookie", "b=2"]).end();
  },
  "/cacheable": (res) => {
    res.writeHead(200, "Fine", { "Cache-Control": "public, max-age=600" }).end("ok");
  },
  "/bad-field": (res) => {
    // A filename straight from user input: not Latin-1, so node:http refuses the header.
    res.writeHead(200, { "Content-Disposition": 'attachment; filename="r\u00e9sum\u2713.pdf"' });
    res.end("never");
  },
  "/bad-chunk": (res) => {
    res.end(42 as never);
  },
};

function answer(session: Session, res: ServerResponse, path: string): void {
  session.set("n", 1);
  (ROUTES[path] ?? ((r) => r.end("not found")))(res);
}

function listenOn(server: ReturnType<typeof createServer>): Promise<RunningApp> {
  return listenLoopback(server);
}

const SERVERS: Record<string, (sessions: Sessions) => Promise<RunningApp>> = {
  "node:http": (sessions) =>
    listenOn(
      createServer(
        withSession(sessions, (req, res) => answer(req.session, res, req.url as string)),
      ),
    ),
  express: (sessions) => {
    const app = express();
    app.use(expressSession(sessions));
    app.use((req, res) => answer(req.session, res, req.path));
    return listenOn(createServer(app));
  },
  koa: (sessions) => {
    const app = new Koa();
    app.silent = true; // the refused calls are reported through app's "error" event
    app.use(koaSession(sessions));
    app.use((ctx) => {
      ctx.respond = false;
      answer(ctx.session, ctx.res, ctx.path);
    });
    return listenOn(createServer(app.callback()));
  },
};

const names = (lines: string[]) => lines.map((line) => line.slice(0, line.indexOf("=")));

for (const [name, serve] of Object.entries(SERVERS)) {
  describe(`res.writeHead under the session hold: ${name}`, () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await serve(createSessions({ secret: SECRET }));
    });
    afterAll(() => app?.close());

    it("keeps the session cookie beside a Set-Cookie given to writeHead, as fields or raw pairs", async () => {
      const fields = await new Client(app.url).get("/fields");
      expect(fields.status).toBe(302);
      expect(fields.headers.get("location")).toBe("/");
      expect(names(fields.setCookies)).toEqual(["flash", "sid"]);
      const pairs = await new Client(app.url).get("/pairs");
      expect(pairs.status).toBe(302);
      expect(names(pairs.setCookies)).toEqual(["a", "b", "sid"]);
    });

    it("keeps no-store on a response that sets the session cookie, whatever writeHead says", async () => {
      const reply = await new Client(app.url).get("/cacheable");
      expect(reply.status).toBe(200);
      expect(names(reply.setCookies)).toEqual(["sid"]);
      expect(reply.headers.get("cache-control")).toBe("no-store");
    });

    it("answers 500 for a header or chunk node:http refuses, and keeps serving", async () => {
      const quiet = vi.spyOn(console, "error").mockImplementation(() => undefined);
      try {
        for (const path of ["/bad-field", "/bad-chunk"]) {
          const reply = await new Client(app.url).get(path);
          expect(reply.status, path).toBe(500);
          expect(reply.text, path).not.toContain("never");
        }
        expect((await new Client(app.url).get("/fields")).status).toBe(302);
      } finally {
        quiet.mockRestore();
      }
    });
  });
}
