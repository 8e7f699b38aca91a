/**
 * While the node-based adapters hold a response for the commit, `res.headersSent` must say what it
 * says unheld: true once the handler has begun to answer. Express's final handler and Koa's error
 * handler read it to decide whether an error still gets a response of its own; a false there
 * appended an error page to a body already begun, under the page's Content-Length, so a keep-alive
 * connection would read the rest as the next response.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect } from "node:net";
import express from "express";
import Koa from "koa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { session as expressSession } from "../../src/adapters/express.js";
import { session as koaSession } from "../../src/adapters/koa.js";
import { withSession } from "../../src/adapters/node.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import type { SessionStore } from "../../src/stores/store.js";
import { SECRET, switchableStore } from "../conformance/adapter.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

/** `/sent` answers what `headersSent` said after the first write; `/late` throws after one. */
function answer(session: Session, res: ServerResponse, path: string): void {
  session.set("n", 1);
  res.write("partial;");
  if (path === "/sent") {
    res.end(`headersSent=${res.headersSent}`);
    return;
  }
  throw new Error("after the body began");
}

function listenOn(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  return listenLoopback(createServer(handler), { closeConnections: true });
}

const SERVERS: Record<string, (sessions: Sessions) => ReturnType<typeof listenOn>> = {
  "node:http": (sessions) =>
    listenOn(withSession(sessions, (req, res) => answer(req.session, res, req.url as string))),
  express: (sessions) => {
    const app = express();
    app.use(expressSession(sessions));
    app.use((req, res) => answer(req.session, res, req.path));
    return listenOn(app);
  },
  koa: (sessions) => {
    const app = new Koa();
    app.silent = true;
    app.use(koaSession(sessions));
    app.use((ctx) => {
      ctx.respond = false;
      answer(ctx.session, ctx.res, ctx.path);
    });
    return listenOn(app.callback());
  },
};

/** A store whose writes take a network round trip: the hold is still pending when the handler throws. */
function slowStore(): SessionStore {
  const store = switchableStore();
  const set = store.set;
  store.set = async (...args) => {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return set(...args);
  };
  return store;
}

/** What the server sends on a keep-alive connection for one request, within `ms`. */
function rawExchange(port: number, path: string, ms = 400): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    const done = () => {
      socket.destroy();
      resolve(received);
    };
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      received += chunk;
    });
    socket.on("close", done);
    socket.on("error", done);
    setTimeout(done, ms);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  });
}

for (const [name, serve] of Object.entries(SERVERS)) {
  describe(`headersSent under the session hold: ${name}`, () => {
    let app: Awaited<ReturnType<typeof listenOn>>;
    const console_error = console.error;
    beforeAll(async () => {
      console.error = () => undefined; // the thrown errors are expected
      app = await serve(createSessions({ secret: SECRET, store: slowStore() }));
    });
    afterAll(async () => {
      console.error = console_error;
      await app?.close();
    });

    it("reports the headers sent once the handler has written", async () => {
      const reply = await new Client(app.url).get("/sent");
      expect(reply.text).toBe("partial;headersSent=true");
      expect(reply.setCookies.map((l) => l.split("=")[0])).toEqual(["sid"]);
    });

    it("does not append an error page to a body already begun", async () => {
      const wire = await rawExchange(app.port, "/late");
      expect(wire).not.toMatch(/Internal Server Error|<!DOCTYPE/i);
    });
  });
}
