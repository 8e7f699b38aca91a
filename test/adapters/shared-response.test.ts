/**
 * A handler may return the same Response object to many requests (a module-level 204, a cached
 * page). The session's Set-Cookie must go on a copy: written into the shared object, one visitor's
 * cookie would reach every later visitor, who would then be signed in as them.
 */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { withSession } from "../../src/adapters/fetch.js";
import { type SessionEnv, sessionMiddleware } from "../../src/adapters/hono.js";
import { createSessions } from "../../src/manager.js";
import { memoryStore } from "../../src/stores/memory.js";
import { SECRET } from "../conformance/adapter.js";

const handlers = {
  fetch: (shared: Response) => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore() });
    return withSession(sessions, (_request, { session }) => {
      session.set("visitor", crypto.randomUUID());
      return shared;
    });
  },
  hono: (shared: Response) => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore() });
    const app = new Hono<SessionEnv>();
    app.use(sessionMiddleware(sessions));
    app.get("/", (c) => {
      c.get("session").set("visitor", crypto.randomUUID());
      return shared;
    });
    return (request: Request) => app.fetch(request);
  },
};

describe("a Response object returned to several requests", () => {
  for (const [name, make] of Object.entries(handlers)) {
    it(`${name}: each visitor gets only their own cookie; the shared object stays clean`, async () => {
      const shared = new Response(null, { status: 204, headers: { "x-kept": "1" } });
      const handle = make(shared);
      const first = await handle(new Request("http://localhost/"));
      const second = await handle(new Request("http://localhost/"));
      const a = first.headers.getSetCookie();
      const b = second.headers.getSetCookie();
      expect(a).toHaveLength(1);
      expect(b).toHaveLength(1);
      expect(a[0]).not.toBe(b[0]);
      expect(shared.headers.getSetCookie()).toEqual([]);
      // The copy keeps what the handler's Response said.
      expect(second.status).toBe(204);
      expect(second.headers.get("x-kept")).toBe("1");
    });
  }
});
