import { createServer, type ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { requireSession, withSession } from "../../src/adapters/node.js";
import type { Guard } from "../../src/guard.js";
import { createSessions } from "../../src/manager.js";
import { type RunningApp, SECRET, testAdapter } from "../conformance/adapter.js";
import { act } from "../conformance/visits.js";
import { echoRequest, expectGuardSawRequest } from "../helpers/guard.js";
import { Client } from "../helpers/http.js";
import { listenLoopback } from "../helpers/listen.js";

function listen(server: ReturnType<typeof createServer>): Promise<RunningApp> {
  return listenLoopback(server);
}

function send(res: ServerResponse, body: string, status = 200): void {
  res.statusCode = status;
  res.setHeader("content-type", "text/plain");
  res.end(body);
}

testAdapter("node:http", (sessions) => {
  const signedIn = requireSession((s) => s.has("user"), {
    redirect: "/login",
    flash: ["info", "sign in first"],
  });
  const app = withSession(sessions, async (req, res) => {
    const { session } = req;
    const path = req.url?.split("?")[0];
    switch (`${req.method} ${path}`) {
      case "GET /read":
        return send(res, JSON.stringify(session.data));
      case "GET /count": {
        const count = ((session.get("count") as number) ?? 0) + 1;
        session.set("count", count);
        return send(res, String(count));
      }
      case "POST /login":
        await session.regenerate({ userId: "ada" });
        session.set("user", "ada");
        return send(res, "ok");
      case "POST /destroy":
        session.destroy();
        return send(res, "bye");
      case "POST /flash":
        session.flash("info", "saved");
        return send(res, "ok");
      case "GET /flashes":
        return send(res, JSON.stringify(session.flashes("info")));
      case "POST /act":
        return send(res, await act(session, req.headers["x-actions"] as string | undefined));
      case "GET /private": {
        const denied = await signedIn(session, undefined);
        if (denied) {
          res.writeHead(denied.status, { location: denied.headers.get("location") as string });
          return res.end();
        }
        return send(res, "secret");
      }
      case "GET /large":
        session.set("blob", "x".repeat(8000));
        return send(res, "ok");
      case "GET /boom":
        session.set("count", ((session.get("count") as number) ?? 0) + 1);
        throw new Error("boom");
      case "GET /redirect":
        session.set("went", true);
        res.writeHead(302, { location: "/read" });
        return res.end();
      case "GET /stream":
        session.set("streamed", true);
        res.write("chunk1");
        setTimeout(() => res.end("chunk2"), 10);
        return;
      default:
        return send(res, "not found", 404);
    }
  });
  return listen(createServer(app));
});

describe("sessionkit/node specifics", () => {
  // The node-based adapters build the guard's Request on first use (but for its method): it must
  // still be a Request everywhere a guard or undici looks at it.
  it("hands guards a Request that is one: instanceof, clone, body, a Request or Response built from it", async () => {
    const seen: unknown[] = [];
    const guard: Guard = async (_session, request) => {
      if (!request) return new Response("no request", { status: 500 });
      const early = request.url; // read before anything builds the Request
      const copy = new Request(request);
      (request as Request & { note?: string }).note = "kept";
      seen.push(
        request instanceof Request,
        Object.prototype.toString.call(request),
        request.method,
        new URL(request.url).pathname,
        early === copy.url,
        request.headers.get("x-probe"),
        "x-probe" in request ? "in" : "has?",
        "headers" in request,
        copy.url === request.url,
        copy.method,
        request.bodyUsed,
        request.signal instanceof AbortSignal,
        await request.clone().text(),
        (request as Request & { note?: string }).note,
      );
      return new Response(null, { status: 204 });
    };
    const app = withSession(createSessions({ secret: SECRET }), (_req, res) => send(res, "never"), {
      guards: [guard],
    });
    const running = await listen(createServer(app));
    try {
      const reply = await new Client(running.url).request("/a/./x/../b?c=%41", {
        method: "PUT",
        headers: { "x-probe": "probe-value" },
      });
      expect(reply.status).toBe(204);
      expect(seen).toEqual([
        true,
        "[object Request]",
        "PUT",
        "/a/b",
        true,
        "probe-value",
        "has?",
        true,
        true,
        "PUT",
        false,
        true,
        "",
        "kept",
      ]);
    } finally {
      await running.close();
    }
  });

  it("hands guards the request: method, URL, headers", async () => {
    const app = withSession(createSessions({ secret: SECRET }), (_req, res) => send(res, "never"), {
      guards: [echoRequest],
    });
    const running = await listen(createServer(app));
    try {
      await expectGuardSawRequest(running.url, "/area/item?x=1");
    } finally {
      await running.close();
    }
  });
});
