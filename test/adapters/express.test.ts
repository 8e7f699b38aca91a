import express from "express";
import { describe, expect, it } from "vitest";
import { guard, requireSession, session, sessionErrors } from "../../src/adapters/express.js";
import { StoreUnavailableError } from "../../src/errors.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { SECRET, switchableStore, testAdapter } from "../conformance/adapter.js";
import { echoRequest, expectGuardSawRequest } from "../helpers/guard.js";
import { Client } from "../helpers/http.js";
import { expectParentAnswersForSubApp, listen, matrixApp, untyped } from "./express-app.js";

testAdapter("express", (sessions) => matrixApp(express, sessions));

describe("sessionkit/express specifics", () => {
  it("answers 503 in place of the response when the store fails while committing", async () => {
    const store = switchableStore();
    const app = express();
    app.use(session(createSessions({ secret: SECRET, store })));
    app.get("/write", (req, res) => {
      untyped(req).set("n", 1);
      store.down = true;
      res.json({ saved: true });
    });
    const running = await listen(app);
    try {
      const reply = await new Client(running.url).get("/write");
      expect(reply.status).toBe(503);
      expect(reply.headers.get("retry-after")).toBe("5");
      expect(reply.setCookies).toEqual([]);
    } finally {
      await running.close();
    }
  });

  it("answers 503 through sessionErrors() for a store error a handler throws, and passes other errors on", async () => {
    const app = express();
    app.use(session(createSessions({ secret: SECRET, store: switchableStore() })));
    app.get("/devices", () => {
      throw new StoreUnavailableError("the store is down");
    });
    app.get("/other", () => {
      throw new Error("other");
    });
    app.use(sessionErrors());
    const running = await listen(app);
    try {
      const client = new Client(running.url);
      const down = await client.get("/devices");
      expect(down.status).toBe(503);
      expect(down.headers.get("retry-after")).toBe("5");
      expect((await client.get("/other")).status).toBe(500);
    } finally {
      await running.close();
    }
  });

  it("commits before the headers behind another middleware that wrapped res.end, and beside a second session", async () => {
    const app = express();
    // What compression or on-headers do: own-property wrappers installed before the session's.
    app.use((_req, res, next) => {
      const end = res.end;
      res.end = function (this: express.Response, ...args: unknown[]) {
        res.setHeader("x-wrapped", "yes");
        return (end as (...a: unknown[]) => express.Response).apply(this, args);
      } as typeof res.end;
      next();
    });
    app.use(session(createSessions({ secret: SECRET, store: switchableStore() })));
    app.use((req, res, next) => {
      res.locals.first = req.session;
      next();
    });
    const other = createSessions({ secret: SECRET, cookie: { name: "other" } });
    app.use((req, res, next) => {
      // A second manager's session on the same response: both must commit before the headers.
      session(other)(req, res, (err?: unknown) => {
        if (err) return next(err);
        res.locals.other = req.session;
        next();
      });
    });
    app.get("/write", (_req, res) => {
      (res.locals.first as Session).set("a", 1);
      (res.locals.other as Session).set("b", 2);
      res.send("ok");
    });
    const running = await listen(app);
    try {
      const reply = await new Client(running.url).get("/write");
      expect(reply.status).toBe(200);
      expect(reply.headers.get("x-wrapped")).toBe("yes");
      expect(reply.setCookies.map((line) => line.split("=")[0]).sort()).toEqual(["other", "sid"]);
    } finally {
      await running.close();
    }
  });

  it("holds a response a parent app answers for a mounted sub-app's session, and leaves an app without sessions untouched", async () => {
    await expectParentAnswersForSubApp(express);
    const plain = express();
    plain.get("/", (_req, res) => {
      res.write("plain ");
      res.end("app");
    });
    const running = await listen(plain);
    try {
      const reply = await new Client(running.url).get("/");
      expect(reply.text).toBe("plain app");
      expect(reply.setCookies).toEqual([]);
    } finally {
      await running.close();
    }
  });

  it("hands guards the request: method, URL as the client asked it (under a mounted router), headers", async () => {
    const app = express();
    app.use(session(createSessions({ secret: SECRET })));
    const area = express.Router();
    area.delete("/item", guard(echoRequest), (_req, res) => {
      res.send("never");
    });
    app.use("/area", area);
    const running = await listen(app);
    try {
      await expectGuardSawRequest(running.url, "/area/item?x=1");
    } finally {
      await running.close();
    }
  });

  it("runs the guards option for every request before the routes", async () => {
    const app = express();
    const closed = requireSession(() => false, { status: 403 });
    app.use(session(createSessions({ secret: SECRET }), { guards: [closed] }));
    app.get("/", (_req, res) => {
      res.send("never");
    });
    const running = await listen(app);
    try {
      const reply = await new Client(running.url).get("/");
      expect(reply.status).toBe(403);
      expect(reply.text).toBe("Forbidden");
    } finally {
      await running.close();
    }
  });
});
