import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { requireSession, withSession } from "../../src/adapters/fetch.js";
import { testAdapter } from "../conformance/adapter.js";
import { listenLoopback } from "../helpers/listen.js";

function text(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain" } });
}

testAdapter("fetch", (sessions) => {
  const signedIn = requireSession((s) => s.has("user"), {
    redirect: "/login",
    flash: ["info", "sign in first"],
  });
  const fetch = withSession(sessions, async (request, { session }) => {
    const path = new URL(request.url).pathname;
    switch (`${request.method} ${path}`) {
      case "GET /read":
        return text(JSON.stringify(session.data));
      case "GET /count": {
        const count = ((session.get("count") as number) ?? 0) + 1;
        session.set("count", count);
        return text(String(count));
      }
      case "POST /login":
        await session.regenerate({ userId: "ada" });
        session.set("user", "ada");
        return text("ok");
      case "POST /destroy":
        session.destroy();
        return text("bye");
      case "POST /flash":
        session.flash("info", "saved");
        return text("ok");
      case "GET /flashes":
        return text(JSON.stringify(session.flashes("info")));
      case "GET /private":
        return (await signedIn(session, request)) ?? text("secret");
      case "GET /large":
        session.set("blob", "x".repeat(9000));
        return text("ok");
      case "GET /boom":
        // A fetch runtime turns a throw into its own 500 without headers; a handler that wants the
        // cookie on its error page answers it itself, as here.
        session.set("count", ((session.get("count") as number) ?? 0) + 1);
        return text("boom", 500);
      case "GET /redirect":
        session.set("went", true);
        return Response.redirect(
          new URL("/read", request.url).href.replace(/^.*\/\/[^/]+/, "http://x"),
          302,
        );
      case "GET /stream": {
        session.set("streamed", true);
        const body = new ReadableStream({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode("chunk1"));
            await new Promise((r) => setTimeout(r, 10));
            controller.enqueue(new TextEncoder().encode("chunk2"));
            controller.close();
          },
        });
        return new Response(body);
      }
      default:
        return text("not found", 404);
    }
  });
  const server = createAdaptorServer({ fetch, hostname: "127.0.0.1" });
  return listenLoopback(server as Server);
});
