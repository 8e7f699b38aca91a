// The demo's routes on sessionkit/node: sign-in with regenerate and "Remember me", a counter, a
// preference, flash messages, guarded members pages and "your devices" with names and revoke.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import {
  type Guard,
  requireSameOrigin,
  requireSession,
  type SessionRequest,
  withSession,
} from "../../src/adapters/node.js";
import {
  createSessions,
  isSessionError,
  type SessionStore,
  type Sessions,
} from "../../src/index.js";
import { ACCOUNTS, devicesBody, homeBody, layout, loginBody, privateBody, STYLE } from "./views.js";

export const demoSchema = z.object({
  visits: z.number().int().default(0),
  theme: z.enum(["light", "dark", "sepia"]).default("light"),
});
type DemoData = z.infer<typeof demoSchema>;

export interface DemoOptions {
  secret: string | string[];
  store: SessionStore | undefined;
  storeLabel: string;
  idleTimeout?: string;
  absoluteTimeout?: string;
  now?: () => number;
}

export function createDemoSessions(options: DemoOptions): Sessions<DemoData> {
  return createSessions({
    secret: options.secret,
    schema: demoSchema,
    store: options.store,
    idleTimeout: options.idleTimeout ?? "30m",
    absoluteTimeout: options.absoluteTimeout ?? "12h",
    // Browser-session cookies, gone when the browser closes, unless "Remember me" was ticked at sign-in.
    cookie: { persistent: false },
    ...(options.now ? { now: options.now } : {}),
  });
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) break;
  }
  return new URLSearchParams(body);
}

// frame-ancestors: a page that frames the demo could trick a click on "Sign out everywhere", and
// requireSameOrigin cannot tell, since that click is the demo's own form post (OWASP Clickjacking
// Defense Cheat Sheet). The rest keeps any markup that slips past escaping from loading or running.
const CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

// Content-Length as well: a HEAD, which node:http answers without the body, still says how long
// the page is.
function html(res: ServerResponse, body: string, status = 200): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "content-security-policy": CSP,
  });
  res.end(body);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location });
  res.end();
}

const pathOf = (req: IncomingMessage) => (req.url ?? "/").split("?")[0] as string;
// A HEAD takes the route of its GET (see `head` below for what it may change).
const routeOf = (req: IncomingMessage) =>
  `${req.method === "HEAD" ? "GET" : req.method} ${pathOf(req)}`;
const isMembersOnly = (path: string) =>
  path === "/private" || path === "/devices" || path.startsWith("/devices/");

export function createDemoApp(sessions: Sessions<DemoData>, options: DemoOptions) {
  const timeouts = `sessions end after ${options.idleTimeout ?? "30m"} idle or ${options.absoluteTimeout ?? "12h"} in all`;

  // CSRF: SameSite=Lax keeps the cookie off other sites' form posts, but another port of this host or
  // a sibling subdomain is the same site; this refuses every state-changing request from another origin.
  const sameOrigin = requireSameOrigin<DemoData>();
  const signedIn = requireSession<DemoData>((s) => s.userId !== undefined, {
    redirect: "/login",
    flash: ["warning", "Sign in to see that page."],
  });

  // session.invalidReason says why the cookie this request brought was refused: tell the visitor,
  // rather than show a signed-out page without a word. A guard that only adds a flash lets it through.
  const explainEnd: Guard<DemoData> = (session) => {
    const reason = session.invalidReason;
    const idle = options.idleTimeout ?? "30m";
    const absolute = options.absoluteTimeout ?? "12h";
    if (reason === "expired-idle") session.flash("info", `Your session ended after ${idle} idle.`);
    if (reason === "expired-absolute")
      session.flash("info", `Your session reached its ${absolute} limit.`);
    if (reason === "unknown-session") session.flash("info", "This device was signed out.");
  };

  const page = (req: SessionRequest<DemoData>, title: string, body: string) =>
    layout(
      {
        title,
        user: req.session.userId,
        flashes: req.session.flashEntries(),
        storeLabel: options.storeLabel,
        timeouts,
        theme: req.session.get("theme") ?? "light",
      },
      body,
    );

  const everyone = async (req: SessionRequest<DemoData>, res: ServerResponse) => {
    const { session } = req;
    switch (routeOf(req)) {
      case "GET /style.css":
        res.writeHead(200, {
          "content-type": "text/css",
          "content-length": Buffer.byteLength(STYLE),
          "cache-control": "max-age=60",
        });
        return res.end(STYLE);
      case "GET /": {
        const visits = (session.get("visits") ?? 0) + 1;
        session.set("visits", visits);
        const theme = session.get("theme") ?? "light";
        const body = homeBody(visits, theme, session.userId, session.expiresAt, options.storeLabel);
        return html(res, page(req, "Home", body));
      }
      case "POST /preference": {
        const theme = (await readForm(req)).get("theme");
        const parsed = demoSchema.shape.theme.safeParse(theme);
        if (parsed.success) {
          session.set("theme", parsed.data);
          session.flash("success", `Theme set to ${parsed.data}.`);
        } else session.flash("error", "Unknown theme.");
        return redirect(res, "/");
      }
      case "GET /login":
        return html(res, page(req, "Sign in", loginBody()));
      case "POST /login": {
        const form = await readForm(req);
        const username = form.get("username") ?? "";
        if (!Object.hasOwn(ACCOUNTS, username) || ACCOUNTS[username] !== form.get("password")) {
          session.flash("error", "Wrong username or password.");
          return redirect(res, "/login");
        }
        // A new id at sign-in: an id planted before it is dead from here on (session fixation).
        await session.regenerate({ userId: username });
        session.rememberMe(form.get("remember") === "on");
        session.flash("success", `Welcome, ${username}!`);
        return redirect(res, "/");
      }
      case "POST /logout":
        session.destroy();
        session.flash("info", "You are signed out.");
        return redirect(res, "/");
      default:
        return html(res, page(req, "Not found", "<p>No such page.</p>"), 404);
    }
  };

  // Only reached through the signedIn guard: session.userId is set.
  const members = async (req: SessionRequest<DemoData>, res: ServerResponse) => {
    const { session } = req;
    const user = session.userId as string;
    const route = routeOf(req);
    if (route === "GET /private") return html(res, page(req, "Members", privateBody(user)));
    if (route === "GET /devices") {
      const devices = sessions.store
        ? await sessions.listByUser(user, { current: session })
        : undefined;
      return html(res, page(req, "Your devices", devicesBody(devices)));
    }
    // Cookie sessions live only in each browser: nothing to name, list or revoke.
    if (req.method !== "POST" || !sessions.store) return redirect(res, "/devices");
    switch (route) {
      case "POST /devices/label": {
        const label = (await readForm(req)).get("label")?.trim();
        session.setLabel(label || undefined);
        session.flash("success", label ? "Device name saved." : "Device name removed.");
        return redirect(res, "/devices");
      }
      case "POST /devices/revoke": {
        const handle = (await readForm(req)).get("handle") ?? "";
        const done = await sessions.revoke(user, handle);
        session.flash(
          done ? "success" : "warning",
          done ? "Device signed out." : "That device was already signed out.",
        );
        return redirect(res, "/devices");
      }
      case "POST /devices/others": {
        const count = await sessions.destroyByUser(user, { except: session });
        session.flash("success", `Signed out ${count} other device${count === 1 ? "" : "s"}.`);
        return redirect(res, "/devices");
      }
      case "POST /devices/everywhere":
        await sessions.destroyByUser(user);
        session.destroy();
        session.flash("info", "Signed out everywhere.");
        return redirect(res, "/login");
      default:
        return redirect(res, "/devices");
    }
  };

  const open = withSession(sessions, everyone, { guards: [explainEnd, sameOrigin] });
  const guarded = withSession(sessions, members, { guards: [explainEnd, sameOrigin, signedIn] });

  // HEAD answers what its GET would, status and headers (node:http sends no body for a HEAD), and
  // changes nothing: HEAD is a safe method (RFC 9110, 9.2.1 and 9.3.2), and a link checker or a
  // `curl -I` carrying the visitor's cookie must not count a visit, read a flash away, leave one
  // (the guards' "Sign in to see that page."), or slide the idle deadline. So the GET route runs on
  // a session loaded and never committed: whatever it or its guards change is dropped, with no
  // Set-Cookie and no store write, for every GET route without each one having to remember. The
  // one store write a HEAD can cause is load's own deletion of a record past its deadline or
  // unreadable, as on any request. (sameOrigin is left out: it lets every HEAD through. The demo
  // takes no session lock, so an uncommitted session holds nothing.)
  const head = async (req: IncomingMessage, res: ServerResponse) => {
    const request = req as SessionRequest<DemoData>;
    const membersOnly = isMembersOnly(pathOf(req));
    try {
      request.session = await sessions.load(req);
      for (const guard of membersOnly ? [explainEnd, signedIn] : [explainEnd]) {
        const denied = await guard(request.session, undefined);
        if (denied) {
          const length = (await denied.arrayBuffer()).byteLength;
          res.writeHead(denied.status, {
            ...Object.fromEntries(denied.headers),
            "content-length": length,
          });
          return res.end();
        }
      }
      await (membersOnly ? members : everyone)(request, res);
    } catch (err) {
      // node:http ignores the handler's promise: answer here, as withSession does for a GET.
      if (res.headersSent) return res.destroy();
      if (isSessionError(err, "ERR_STORE_UNAVAILABLE")) {
        res.writeHead(503, { "retry-after": "5", "cache-control": "no-store" });
      } else {
        console.error(err);
        res.writeHead(500);
      }
      res.end();
    }
  };

  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "HEAD") return head(req, res);
    return isMembersOnly(pathOf(req)) ? guarded(req, res) : open(req, res);
  };
}
