/**
 * A cookie session at the default maxSize must still reach a Node server on Node's own defaults:
 * Node refuses a request whose header section passes 16 KB (431, before any handler runs), and a
 * browser sends the session's chunk cookies with its other headers and the site's other cookies. At
 * the former default (16 000 bytes) 300 bytes of other cookies were enough for a 431 on every
 * request: the visitor could not even reach a sign-out page.
 */
import { createServer } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { withSession } from "../../src/adapters/node.js";
import { isSessionError } from "../../src/errors.js";
import { createSessions } from "../../src/manager.js";
import type { RunningApp } from "../conformance/adapter.js";
import { listenLoopback } from "../helpers/listen.js";

const sessions = createSessions({ secret: "header-room-secret-0123456789abcdefghij" });
let app: RunningApp;

beforeAll(async () => {
  app = await listenLoopback(
    createServer(
      withSession(sessions, (req, res) => {
        const size = Number(new URL(req.url ?? "/", "http://x").searchParams.get("size") ?? 0);
        try {
          if (size > 0) req.session.set("blob", "x".repeat(size));
          res.end(String((req.session.get("blob") as string | undefined)?.length ?? 0));
        } catch (err) {
          res.statusCode = isSessionError(err, "ERR_SESSION_TOO_LARGE") ? 413 : 500;
          res.end();
        }
      }),
    ),
  );
});
afterAll(() => app?.close());

it("a session as large as the default maxSize allows comes back with 3 KB of other headers", async () => {
  // The largest blob the default maxSize takes, found by halving.
  let fits = 0;
  let tooLarge = 64_000;
  let cookie = "";
  while (tooLarge - fits > 16) {
    const size = Math.floor((fits + tooLarge) / 2);
    const reply = await fetch(`${app.url}/?size=${size}`);
    await reply.text();
    if (reply.status === 413) tooLarge = size;
    else {
      expect(reply.status).toBe(200);
      fits = size;
      cookie = reply.headers
        .getSetCookie()
        .map((line) => line.split(";")[0])
        .join("; ");
    }
  }
  expect(fits).toBeGreaterThan(4000); // chunked: more than one cookie's worth
  const other = `_ga=${"a".repeat(1500)}; theme=dark; consent=${"b".repeat(500)}`;
  const reply = await fetch(`${app.url}/`, {
    headers: {
      cookie: `${cookie}; ${other}`,
      "user-agent": `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 ${"c".repeat(200)}`,
      accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
      "accept-language": "en-GB,en;q=0.9",
      referer: `${app.url}/${"d".repeat(600)}`,
    },
  });
  expect(reply.status).toBe(200);
  expect(await reply.text()).toBe(String(fits));
});
