import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { describe, expect, it } from "vitest";
import { guard, requireSession, session, sessionErrors } from "../../src/adapters/express.js";
import { StoreUnavailableError } from "../../src/errors.js";
import { createSessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { type RunningApp, SECRET, switchableStore, testAdapter } from "../conformance/adapter.js";
import { echoRequest, expectGuardSawRequest } from "../helpers/guard.js";
import { Client } from "../helpers/http.js";

function listen(app: express.Express): Promise<RunningApp> {
  return new Promise((resolve) => {
    const server: Server = app.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

// The matrix drives untyped sessions: widen whatever data type a type test registered.
const untyped = (req: express.Request): Session => req.session;

testAdapter("express", (sessions) => {
  const app = express();
  app.use(session(sessions));
  const signedIn = requireSession((s) => s.has("user"), { redirect: "/login" });

  app.get("/read", (req, res) => {
    res.type("text").send(JSON.stringify(req.session.data));
  });
  app.get("/count", (req, res) => {
    const s = untyped(req);
    const count = ((s.get("count") as number) ?? 0) + 1;
    s.set("count", count);
    res.type("text").send(String(count));
  });
  app.post("/login", async (req, res) => {
    await req.session.regenerate({ userId: "ada" });
    untyped(req).set("user", "ada");
    res.send("ok");
  });
  app.post("/destroy", (req, res) => {
    req.session.destroy();
    res.send("bye");
  });
  app.post("/flash", (req, res) => {
    req.session.flash("info", "saved");
    res.send("ok");
  });
  app.get("/flashes", (req, res) => {
    res.json(req.session.flashes("info"));
  });
  app.get("/private", guard(signedIn), (_req, res) => {
    res.send("secret");
  });
  app.get("/large", (req, res) => {
    untyped(req).set("blob", "x".repeat(9000));
    res.send("ok");
  });
  app.get("/boom", (req) => {
    const s = untyped(req);
    s.set("count", ((s.get("count") as number) ?? 0) + 1);
    throw new Error("boom");
  });
  app.get("/redirect", (req, res) => {
    untyped(req).set("went", true);
    res.redirect(302, "/read");
  });
  app.get("/stream", (req, res) => {
    untyped(req).set("streamed", true);
    res.write("chunk1");
    setTimeout(() => res.end("chunk2"), 10);
  });
  return listen(app);
});

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

  it("holds through Express's shared response prototype: a parent app answering for a sub-app's session, an app without sessions untouched", async () => {
    // The hold lives on express.response, below every app's own response prototype: a response
    // that leaves a sub-app gets its parent's prototype back, and must still be held.
    const sub = express();
    sub.use(session(createSessions({ secret: SECRET, store: switchableStore() })));
    sub.use((req, _res, next) => {
      untyped(req).set("visited", true);
      next();
    });
    const parent = express();
    parent.use("/sub", sub);
    parent.get("/sub/page", (_req, res) => {
      res.send("parent answered");
    });
    const plain = express();
    plain.get("/", (_req, res) => {
      res.write("plain ");
      res.end("app");
    });
    const [withSub, withoutSessions] = await Promise.all([listen(parent), listen(plain)]);
    try {
      const reply = await new Client(withSub.url).get("/sub/page");
      expect(reply.status).toBe(200);
      expect(reply.text).toBe("parent answered");
      expect(reply.setCookies.map((line) => line.split("=")[0])).toEqual(["sid"]);
      const again = await new Client(withoutSessions.url).get("/");
      expect(again.text).toBe("plain app");
      expect(again.setCookies).toEqual([]);
    } finally {
      await Promise.all([withSub.close(), withoutSessions.close()]);
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
