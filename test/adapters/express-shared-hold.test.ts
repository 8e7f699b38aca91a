/**
 * On Express the response hold sits on Express's own response object, beneath every app's and
 * sub-app's `app.response`, rather than on each response (see `sharedHolding` in
 * src/adapters/internal/node-response.ts). These pin what that placement must keep: responses that
 * change prototype in a mounted sub-app, responses no session holds, an app whose own response
 * methods sit between, and two Express majors in one process.
 */
import { ServerResponse } from "node:http";
import express from "express";
import express4 from "express4";
import { describe, expect, it } from "vitest";
import { session } from "../../src/adapters/express.js";
import { createSessions } from "../../src/manager.js";
import { SECRET, switchableStore } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";
import { listen, untyped } from "./express-app.js";

const MAJORS = [
  ["Express 5", express],
  ["Express 4", express4 as unknown as typeof express],
] as const;

describe.each(MAJORS)("the shared response hold on %s", (_major, createApp) => {
  it("commits a session a mounted sub-app's or an app-called-as-a-handler's route changes, streamed or sent", async () => {
    const sub = createApp();
    sub.get("/send", (req, res) => {
      untyped(req).set("where", "sub");
      res.send("sub answered");
    });
    sub.get("/stream", (req, res) => {
      untyped(req).set("where", "stream");
      res.write("one ");
      res.end("two");
    });
    const app = createApp();
    app.use(session(createSessions({ secret: SECRET, store: switchableStore() })));
    app.use("/sub", sub);
    // Called, not mounted: its responses take its own prototype, which does not inherit the app's.
    const called = createApp();
    called.get("/called", (req, res) => {
      untyped(req).set("where", "called");
      res.send("called answered");
    });
    app.use((req, res, next) => called(req, res, next));
    app.get("/read", (req, res) => {
      res.send(String(untyped(req).get("where")));
    });
    const running = await listen(app);
    try {
      for (const [path, body, where] of [
        ["/sub/send", "sub answered", "sub"],
        ["/sub/stream", "one two", "stream"],
        ["/called", "called answered", "called"],
      ] as const) {
        const client = new Client(running.url);
        const reply = await client.get(path);
        expect(reply.text).toBe(body);
        expect(reply.setCookies).toHaveLength(1);
        expect((await client.get("/read")).text).toBe(where);
      }
    } finally {
      await running.close();
    }
  });

  it("leaves responses no session holds as they were: routes before the session, another app", async () => {
    const sessions = createSessions({ secret: SECRET, store: switchableStore() });
    const app = createApp();
    app.get("/before", (_req, res) => {
      res.writeHead(201, { "x-before": "yes" });
      res.write("a");
      res.end("b");
    });
    app.use(session(sessions));
    app.get("/after", (req, res) => {
      untyped(req).set("n", 1);
      res.send("after");
    });
    const other = createApp();
    other.get("/", (_req, res) => {
      res.status(202).send("other");
    });
    const running = await listen(app);
    const otherRunning = await listen(other);
    try {
      const client = new Client(running.url);
      expect((await client.get("/after")).setCookies).toHaveLength(1); // the hold is in place now
      const before = await client.get("/before");
      expect([before.status, before.text, before.headers.get("x-before")]).toEqual([
        201,
        "ab",
        "yes",
      ]);
      expect(before.setCookies).toEqual([]);
      const plain = await new Client(otherRunning.url).get("/");
      expect([plain.status, plain.text, plain.setCookies]).toEqual([202, "other", []]);
    } finally {
      await running.close();
      await otherRunning.close();
    }
  });

  it("holds an app whose own response methods sit between its responses and Express's", async () => {
    const app = createApp();
    // An app-level end that bypasses everything beneath it: a hold placed below would never see it.
    (app.response as unknown as { end: unknown }).end = function (
      this: ServerResponse,
      ...args: unknown[]
    ) {
      this.setHeader("x-own-end", "yes");
      return (ServerResponse.prototype.end as (...a: unknown[]) => unknown).apply(this, args);
    };
    app.use(session(createSessions({ secret: SECRET, store: switchableStore() })));
    app.get("/write", (req, res) => {
      untyped(req).set("n", 2);
      res.send("written");
    });
    app.get("/read", (req, res) => {
      res.send(String(untyped(req).get("n")));
    });
    const running = await listen(app);
    try {
      const client = new Client(running.url);
      const reply = await client.get("/write");
      expect(reply.headers.get("x-own-end")).toBe("yes");
      expect(reply.setCookies).toHaveLength(1);
      expect((await client.get("/read")).text).toBe("2");
    } finally {
      await running.close();
    }
  });

  it("answers a store outage while committing through a wrapper mounted before the session", async () => {
    const store = switchableStore();
    const app = createApp();
    // Mounted after an earlier request put the hold in place, the wrapper captures the held
    // methods beneath it: the 503 must still pass through it, once.
    app.use((_req, res, next) => {
      const end = res.end;
      res.end = function (this: ServerResponse, ...args: unknown[]) {
        this.setHeader("x-wrapped", String(Number(this.getHeader("x-wrapped") ?? 0) + 1));
        return (end as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof res.end;
      next();
    });
    app.use(session(createSessions({ secret: SECRET, store })));
    app.get("/write", (req, res) => {
      untyped(req).set("n", 1);
      if (req.query.down) store.down = true;
      res.send("saved");
    });
    const running = await listen(app);
    try {
      const client = new Client(running.url);
      expect((await client.get("/write")).text).toBe("saved");
      const reply = await client.get("/write?down=1");
      expect(reply.status).toBe(503);
      expect(reply.headers.get("x-wrapped")).toBe("1");
      expect(reply.setCookies).toEqual([]);
    } finally {
      await running.close();
    }
  });
});

it("holds responses of Express 4 and Express 5 apps in one process, each on its own base", async () => {
  const apps = MAJORS.map(([, createApp]) => {
    const app = createApp();
    app.use(session(createSessions({ secret: SECRET, store: switchableStore() })));
    app.get("/", (req, res) => {
      untyped(req).set("n", 1);
      res.send("ok");
    });
    return app;
  });
  const running = await Promise.all(apps.map((app) => listen(app)));
  try {
    for (const server of running)
      expect((await new Client(server.url).get("/")).setCookies).toHaveLength(1);
  } finally {
    await Promise.all(running.map((server) => server.close()));
  }
});
