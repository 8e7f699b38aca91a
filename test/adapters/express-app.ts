import { createServer } from "node:http";
import type express from "express";
import { expect } from "vitest";
import { guard, requireSession, session } from "../../src/adapters/express.js";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { type RunningApp, SECRET, switchableStore } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

/** Serves an Express app on a free loopback port. */
export function listen(app: express.Express): Promise<RunningApp> {
  return listenLoopback(createServer(app));
}

// The matrix drives untyped sessions: widen whatever data type a type test registered.
export const untyped = (req: express.Request): Session => req.session;

/** The adapter matrix's app, on the Express given (5 from "express", 4 from "express4"). */
export function matrixApp(createApp: typeof express, sessions: Sessions): Promise<RunningApp> {
  const app = createApp();
  app.use(session(sessions));
  const signedIn = requireSession((s) => s.has("user"), {
    redirect: "/login",
    flash: ["info", "sign in first"],
  });

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
  app.post("/act", async (req, res) => {
    res.type("json").send(await act(untyped(req), req.get("x-actions")));
  });
  app.get("/private", guard(signedIn), (_req, res) => {
    res.send("secret");
  });
  app.get("/large", (req, res) => {
    untyped(req).set("blob", "x".repeat(8000));
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
}

/**
 * A parent app answers for a session a mounted sub-app loaded. Express gives a response the parent's
 * prototype back when it leaves the sub-app; the hold sits on the response itself, so it still holds.
 */
export async function expectParentAnswersForSubApp(createApp: typeof express): Promise<void> {
  const sub = createApp();
  sub.use(session(createSessions({ secret: SECRET, store: switchableStore() })));
  sub.use((req, _res, next) => {
    untyped(req).set("visited", true);
    next();
  });
  const parent = createApp();
  parent.use("/sub", sub);
  parent.get("/sub/page", (_req, res) => {
    res.send("parent answered");
  });
  const running = await listen(parent);
  try {
    const reply = await new Client(running.url).get("/sub/page");
    expect(reply.status).toBe(200);
    expect(reply.text).toBe("parent answered");
    expect(reply.setCookies.map((line) => line.split("=")[0])).toEqual(["sid"]);
  } finally {
    await running.close();
  }
}
