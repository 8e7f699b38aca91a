// The demo's routes on sessionkit/node: sign-in with regenerate and "Remember me" (longer deadlines),
// a counter, a preference, flash messages, CSRF tokens in every form, guarded members pages and
// "your devices" with names and revoke.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import {
  type Guard,
  requireCsrfToken,
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
import {
  ACCOUNTS,
  devicesBody,
  forbiddenBody,
  homeBody,
  layout,
  loginBody,
  privateBody,
  STYLE,
} from "./views.js";

export const demoSchema = z.object({
  visits: z.number().int().default(0),
  theme: z.enum(["light", "dark", "sepia"]).default("light"),
});
type DemoData = z.infer<typeof demoSchema>;

export interface DemoOptions {
  secret: string | string[];
  store: SessionStore | undefined;
  storeLabel: string;
  /** An ordinary session's deadlines. Default "30m" idle, "12h" in all. */
  idleTimeout?: string;
  absoluteTimeout?: string;
  /** The deadlines of a session signed in with "Remember me". Default "30d" idle, "30d" in all. */
  rememberIdleTimeout?: string;
  rememberAbsoluteTimeout?: string;
  now?: () => number;
}

const TIMEOUTS = Object.freeze({
  idleTimeout: "30m",
  absoluteTimeout: "12h",
  rememberIdleTimeout: "30d",
  rememberAbsoluteTimeout: "30d",
});

export function createDemoSessions(options: DemoOptions): Sessions<DemoData> {
  const timeouts = { ...TIMEOUTS, ...definedOf(options) };
  return createSessions({
    secret: options.secret,
    schema: demoSchema,
    store: options.store,
    idleTimeout: timeouts.idleTimeout,
    absoluteTimeout: timeouts.absoluteTimeout,
    // A shared computer's browser is left signed in for minutes; a device its owner vouched for
    // ("Remember me", session.rememberMe(true) at sign-in) for weeks.
    rememberMe: {
      idleTimeout: timeouts.rememberIdleTimeout,
      absoluteTimeout: timeouts.rememberAbsoluteTimeout,
    },
    // Browser-session cookies, gone when the browser closes, unless "Remember me" was ticked at sign-in.
    cookie: { persistent: false },
    ...(options.now ? { now: options.now } : {}),
  });
}

/** The timeouts `options` sets, so one left undefined keeps its default. */
function definedOf(options: DemoOptions): Partial<typeof TIMEOUTS> {
  return Object.fromEntries(
    Object.keys(TIMEOUTS)
      .map((key) => [key, options[key as keyof typeof TIMEOUTS]])
      .filter(([, value]) => value !== undefined),
  );
}

const FORM_MAX_CHARS = 10_000;
type FormRequest = IncomingMessage & { body?: unknown };

// node:http reads no body, and requireCsrfToken finds a form's _csrf field only in req.body: every
// POST's form is read there first, as express.urlencoded() would, for the guard and the route alike.
async function readBody(req: FormRequest): Promise<void> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > FORM_MAX_CHARS) break;
  }
  req.body = body;
}

function formOf(req: FormRequest): URLSearchParams {
  return new URLSearchParams(typeof req.body === "string" ? req.body : "");
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
  const t = { ...TIMEOUTS, ...definedOf(options) };
  const timeouts = `sessions end after ${t.idleTimeout} idle or ${t.absoluteTimeout} in all; with "Remember me", after ${t.rememberIdleTimeout} idle or ${t.rememberAbsoluteTimeout} in all`;
  /** A remembered session's deadline beside an ordinary one's: an ended session's kind is unknown. */
  const orRemembered = (ordinary: string, remembered: string) =>
    ordinary === remembered ? "" : ` (${remembered} with "Remember me")`;

  // CSRF: SameSite=Lax keeps the cookie off other sites' form posts, but another port of this host or
  // a sibling subdomain is the same site; this refuses every state-changing request from another origin.
  const sameOrigin = requireSameOrigin<DemoData>();
  // And, in depth (OWASP CSRF Prevention Cheat Sheet, synchronizer token pattern), every POST must
  // carry the _csrf field of a form this session was shown: a check that rests on no request header,
  // for browsers that send no Origin or Sec-Fetch-Site. Its refusal is a page, and changes nothing.
  const tokenChecked = requireCsrfToken<DemoData>();
  const csrf: Guard<DemoData> = async (session, request) => {
    if (!(await tokenChecked(session, request))) return undefined;
    const refused = layout(
      {
        title: "Form refused",
        user: session.userId,
        flashes: [],
        storeLabel: options.storeLabel,
        timeouts,
        theme: session.get("theme") ?? "light",
        csrf: undefined,
      },
      forbiddenBody(),
    );
    return new Response(refused, {
      status: 403,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": CSP,
        "cache-control": "no-store",
      },
    });
  };
  const signedIn = requireSession<DemoData>((s) => s.userId !== undefined, {
    redirect: "/login",
    flash: ["warning", "Sign in to see that page."],
  });

  // session.invalidReason says why the cookie this request brought was refused: tell the visitor,
  // rather than show a signed-out page without a word. A guard that only adds a flash lets it through.
  const explainEnd: Guard<DemoData> = (session) => {
    const reason = session.invalidReason;
    // The reason does not say whether the session was remembered: name both deadlines.
    const idle = `${t.idleTimeout} idle${orRemembered(t.idleTimeout, t.rememberIdleTimeout)}`;
    const limit = `${t.absoluteTimeout} limit${orRemembered(t.absoluteTimeout, t.rememberAbsoluteTimeout)}`;
    if (reason === "expired-idle") session.flash("info", `Your session ended after ${idle}.`);
    if (reason === "expired-absolute") session.flash("info", `Your session reached its ${limit}.`);
    // The demo's stores (SQLite, memory) still hold a record past its deadline until a sweep, so a
    // timeout is reported as one of the two above; a store that drops it at the deadline (Redis), or
    // a sweep that got there first, leaves only "unknown-session", hence the wording.
    if (reason === "unknown-session") {
      session.flash("info", "This device was signed out, or its session timed out.");
    }
  };

  /**
   * The session's CSRF token for a page with forms: every page of a signed-in visitor (the sign-out
   * button), and the home and sign-in pages. Asking saves a first visitor's session (the token is
   * bound to a seed the session keeps), so a page without forms does not ask: a crawler's GET of a
   * 404 leaves no row.
   */
  const tokenFor = (req: SessionRequest<DemoData>, forms: boolean) =>
    forms || req.session.userId !== undefined ? req.session.csrfToken() : undefined;

  const page = async (
    req: SessionRequest<DemoData>,
    title: string,
    body: (csrf: string | undefined) => string,
    forms = false,
  ) => {
    const csrf = await tokenFor(req, forms);
    return layout(
      {
        title,
        user: req.session.userId,
        flashes: req.session.flashEntries(),
        storeLabel: options.storeLabel,
        timeouts,
        theme: req.session.get("theme") ?? "light",
        csrf,
      },
      body(csrf),
    );
  };

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
        const body = (csrf: string | undefined) =>
          homeBody(visits, theme, session.userId, session.expiresAt, options.storeLabel, csrf);
        return html(res, await page(req, "Home", body, true));
      }
      case "POST /preference": {
        const theme = formOf(req).get("theme");
        const parsed = demoSchema.shape.theme.safeParse(theme);
        if (parsed.success) {
          session.set("theme", parsed.data);
          session.flash("success", `Theme set to ${parsed.data}.`);
        } else session.flash("error", "Unknown theme.");
        return redirect(res, "/");
      }
      // Login CSRF: a forged sign-in would put the visitor in the attacker's account, so the sign-in
      // form carries a token too, and a first visitor's GET of this page saves a session for it
      // (a store row, or a cookie, per visit, as the home page's visit counter already does).
      case "GET /login":
        return html(res, await page(req, "Sign in", loginBody, true));
      case "POST /login": {
        const form = formOf(req);
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
        return html(res, await page(req, "Not found", () => "<p>No such page.</p>"), 404);
    }
  };

  // Only reached through the signedIn guard: session.userId is set.
  const members = async (req: SessionRequest<DemoData>, res: ServerResponse) => {
    const { session } = req;
    const user = session.userId as string;
    const route = routeOf(req);
    if (route === "GET /private") {
      return html(res, await page(req, "Members", () => privateBody(user)));
    }
    if (route === "GET /devices") {
      const devices = sessions.store
        ? await sessions.listByUser(user, { current: session })
        : undefined;
      return html(res, await page(req, "Your devices", (csrf) => devicesBody(devices, csrf)));
    }
    // Cookie sessions live only in each browser: nothing to name, list or revoke.
    if (req.method !== "POST" || !sessions.store) return redirect(res, "/devices");
    switch (route) {
      case "POST /devices/label": {
        const label = formOf(req).get("label")?.trim();
        session.setLabel(label || undefined);
        session.flash("success", label ? "Device name saved." : "Device name removed.");
        return redirect(res, "/devices");
      }
      case "POST /devices/revoke": {
        const handle = formOf(req).get("handle") ?? "";
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

  // GET and HEAD pass csrf (safe methods). On the members pages signedIn comes first: a device
  // signed out elsewhere that posts a stale form is sent to sign in, as on a GET, not refused.
  const open = withSession(sessions, everyone, { guards: [explainEnd, sameOrigin, csrf] });
  const guarded = withSession(sessions, members, {
    guards: [explainEnd, sameOrigin, signedIn, csrf],
  });

  // HEAD answers what its GET would, status and headers (node:http sends no body for a HEAD), and
  // changes nothing: HEAD is a safe method (RFC 9110, 9.2.1 and 9.3.2), and a link checker or a
  // `curl -I` carrying the visitor's cookie must not count a visit, read a flash away, leave one
  // (the guards' "Sign in to see that page."), or slide the idle deadline. So the GET route runs on
  // a session loaded and never committed: whatever it or its guards change is dropped, with no
  // Set-Cookie and no store write, for every GET route without each one having to remember. The
  // one store write a HEAD can cause is load's own deletion of a record past its deadline or
  // unreadable, as on any request. (sameOrigin and csrf are left out: they let every HEAD through.
  // The demo takes no session lock, so an uncommitted session holds nothing; the CSRF token a page
  // asks for saves a first visitor's session only on commit, so a HEAD saves nothing for it.)
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

  return async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "HEAD") return head(req, res);
    if (req.method === "POST") {
      try {
        await readBody(req);
      } catch {
        // The client went away mid-body: nobody is left to answer.
        return res.destroy();
      }
    }
    return isMembersOnly(pathOf(req)) ? guarded(req, res) : open(req, res);
  };
}
