/**
 * `sessionkit/h3`'s h3-shaped functions against h3's own, over random visits: the same handler code
 * runs on two H3 apps, one importing `useSession`, `getSession`, `updateSession`, `clearSession`,
 * `sealSession` and `unsealSession` from h3, the other from sessionkit, under each of several
 * configs (no deadline, `maxAge`, `idleTimeout`, another `name`, a `sessionHeader` of its own, no
 * cookie, ids from `generateId`),
 * and each request's sequence of calls must read the same data,
 * see an id at the same moments (a new one where h3 makes a new one), leave the client holding a
 * session cookie exactly when h3 leaves it one, and reseal or delete a browser's cookie in the same
 * responses. Browsers carry the session in the cookie; their
 * header twins send the token they were handed in `x-h3-session` instead, which h3 prefers over the
 * cookie. With `maxAge` and `idleTimeout` the clock (Date, faked in this process, which runs both
 * apps) moves between requests, onto the deadlines exactly too. h3's iron seal costs milliseconds, so
 * the runs are short; a failure names its config and seed
 * (`SESSIONKIT_STORE_SEED` replays it).
 */
import { createServer } from "node:http";
import * as h3 from "h3";
import { toNodeHandler } from "h3/node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as sk from "../../src/adapters/h3.js";
import { canonical, generator, seedsToRun } from "../../src/testing/store-model.js";
import { Client } from "../helpers/http.js";
import { type Listening, listenLoopback } from "../helpers/listen.js";

const PASSWORD = "h3-differential-password-0123456789abcdef";
let madeIds = 0;

/** h3's config without deadlines, then with each of its two (seconds). */
const CONFIGS = {
  plain: { password: PASSWORD, cookie: { secure: false } },
  maxAge: { password: PASSWORD, cookie: { secure: false }, maxAge: 120 },
  idleTimeout: { password: PASSWORD, cookie: { secure: false }, idleTimeout: 60 },
  // Another name renames the cookie and the header; a header of its own replaces that one.
  named: { password: PASSWORD, cookie: { secure: false }, name: "app" },
  ownHeader: { password: PASSWORD, cookie: { secure: false }, sessionHeader: "X-Session-Token" },
  // No cookie at all: a client keeps a session only through sealSession's tokens.
  noCookie: { password: PASSWORD, cookie: false },
  // Ids of the app's own making (both apps share the function; ids compare by position).
  ownIds: {
    password: PASSWORD,
    cookie: { secure: false },
    generateId: () => `app-session-${String(++madeIds).padStart(24, "0")}`,
  },
} satisfies Record<string, h3.SessionConfig>;

/** The cookie and the header a config has the session in, by h3's rules. */
function namesOf(config: h3.SessionConfig): { cookie: string; header: string } {
  const name = config.name || "h3";
  const header =
    typeof config.sessionHeader === "string" ? config.sessionHeader : `x-${name}-session`;
  return { cookie: name, header: header.toLowerCase() };
}

type Op =
  | { op: "use" }
  | { op: "read" }
  | { op: "update"; patch: Record<string, unknown> }
  | { op: "count"; key: string }
  | { op: "clear" }
  | { op: "get" }
  | { op: "updateSession"; patch: Record<string, unknown> }
  | { op: "touch" }
  | { op: "clearSession" }
  | { op: "seal" }
  | { op: "unseal" };

/** The four functions, as both modules export them (named apart: a linter takes use* for React hooks). */
interface Api {
  open: typeof h3.useSession;
  get: typeof h3.getSession;
  update: typeof h3.updateSession;
  clear: typeof h3.clearSession;
  seal: typeof h3.sealSession;
  unseal: typeof h3.unsealSession;
}

const apiOf = (module: typeof h3 | typeof sk): Api =>
  ({
    open: module.useSession,
    get: module.getSession,
    update: module.updateSession,
    clear: module.clearSession,
    seal: module.sealSession,
    unseal: module.unsealSession,
  }) as Api;

type Manager = Awaited<ReturnType<typeof h3.useSession>>;

/** One app: runs the request's ops in order and answers what each read, ids as they were. */
function app(api: Api, config: h3.SessionConfig): h3.H3 {
  const served = new h3.H3({ silent: true });
  served.post("/act", async (event) => {
    const ops = JSON.parse(
      Buffer.from(event.req.headers.get("x-ops") ?? "", "base64url").toString(),
    ) as Op[];
    const out: unknown[] = [];
    let sealed: string | undefined;
    let session: Manager | undefined;
    const use = async () => {
      session ??= await api.open(event, config);
      return session;
    };
    for (const op of ops) {
      switch (op.op) {
        case "use":
          session = await api.open(event, config);
          out.push(["use", session.id ?? null, canonical(session.data)]);
          break;
        case "read": {
          const s = await use();
          out.push(["read", s.id ?? null, canonical(s.data)]);
          break;
        }
        case "update":
          await (await use()).update(op.patch);
          break;
        case "count": {
          const key = op.key;
          await (await use()).update((data) => ({ [key]: ((data[key] as number) ?? 0) + 1 }));
          break;
        }
        case "clear":
          await (await use()).clear();
          break;
        case "get": {
          const got = await api.get(event, config);
          out.push(["get", got.id ?? null, canonical(got.data)]);
          break;
        }
        case "updateSession":
          await api.update(event, config, op.patch);
          break;
        case "touch":
          await api.update(event, config); // no change: h3 reseals and writes the cookie
          break;
        case "clearSession":
          await api.clear(event, config);
          break;
        case "seal":
          // The token goes to the client in the body, h3's way for clients without cookies.
          sealed = await api.seal(event, config);
          out.push(["seal", null, "a token"]);
          break;
        case "unseal": {
          const token = event.req.headers.get("x-unseal");
          try {
            if (!token) throw new Error("no token");
            const opened = await api.unseal(event, config, token);
            out.push(["unseal", opened.id ?? null, canonical(opened.data ?? {})]);
          } catch {
            out.push(["unseal", null, "refused"]);
          }
          break;
        }
      }
    }
    return JSON.stringify({ out, sealed });
  });
  return served;
}

const KEYS = ["a", "b", "ünï"] as const;
const VALUES = [1, "x", true, null, { nested: [1, 2] }, "é✓"] as const;

function randomOps(random: ReturnType<typeof generator>): Op[] {
  const ops: Op[] = [];
  const count = 1 + random.int(4);
  for (let i = 0; i < count; i++) {
    const roll = random.int(100);
    const patch = { [random.pick(KEYS)]: random.pick(VALUES) };
    if (roll < 20) ops.push({ op: "read" });
    else if (roll < 32) ops.push({ op: "update", patch });
    else if (roll < 44) ops.push({ op: "count", key: random.pick(KEYS) });
    else if (roll < 52) ops.push({ op: "use" });
    else if (roll < 62) ops.push({ op: "get" });
    else if (roll < 68) ops.push({ op: "updateSession", patch });
    else if (roll < 72) ops.push({ op: "touch" });
    else if (roll < 78) ops.push({ op: "seal" });
    else if (roll < 84) ops.push({ op: "unseal" });
    else {
      // A request's last op: after a clear, h3 reads the request's cookie again and resumes the old
      // session, where sessionkit starts a new one (the one difference docs/migrating/h3.md names).
      ops.push({ op: roll < 92 ? "clear" : "clearSession" });
      break;
    }
  }
  return ops;
}

/** A browser (cookie jar) or its header twin, on one of the two apps. */
interface Visitor {
  client: Client;
  /** The header twin's token: what the last Set-Cookie it got handed it. */
  token: string | undefined;
  byHeader: boolean;
  /**
   * A header twin's requests carry this browser's cookies too: h3 reads the header first, so the
   * cookie of another session must not win.
   */
  decoy: Client | undefined;
  /** The ids this visitor saw, in order of first sight: compared by position, not value. */
  ids: string[];
  /** The session's cookie and header. */
  names: { cookie: string; header: string };
}

/** One request's ops on one visitor: the answer with ids replaced by their first-seen position. */
async function send(visitor: Visitor, ops: Op[]) {
  const { cookie: COOKIE, header: HEADER } = visitor.names;
  const headers: Record<string, string> = {
    "x-ops": Buffer.from(JSON.stringify(ops)).toString("base64url"),
  };
  if (visitor.byHeader) {
    // The twin keeps its token itself, as a non-browser client does; the cookie is another's.
    headers.cookie = visitor.decoy?.cookieHeader() ?? "";
    if (visitor.token !== undefined) headers[HEADER] = visitor.token;
  }
  const held = visitor.client.jar.has(COOKIE);
  // The token an `unseal` op opens: the one this visitor holds.
  const holding = visitor.byHeader ? visitor.token : visitor.client.jar.get(COOKIE);
  if (holding !== undefined) headers["x-unseal"] = decodeURIComponent(holding);
  const reply = await visitor.client.post("/act", { headers });
  const { out, sealed } = JSON.parse(reply.text) as { out: unknown[][]; sealed?: string };
  if (visitor.byHeader) {
    const line = reply.setCookies.findLast((l) => l.startsWith(`${COOKIE}=`));
    if (line !== undefined) {
      const value = line.slice(COOKIE.length + 1, line.indexOf(";"));
      visitor.token = value === "" || /;\s*max-age=0/i.test(line) ? undefined : value;
    } else if (sealed !== undefined) {
      // No cookie came: the client keeps the token sealSession handed it, as an API client does.
      visitor.token = sealed;
    }
    visitor.client.jar.clear();
  }
  const answer = out.map((entry) => {
    const [op, id, data] = entry as [string, string | null | undefined, string];
    const seen =
      id === null || id === undefined || id === ""
        ? "none"
        : `id#${visitor.ids.includes(id) ? visitor.ids.indexOf(id) : visitor.ids.push(id) - 1}${
            id.startsWith("app-session-") ? " (generateId's)" : ""
          }`;
    return [op, seen, data];
  });
  const holds = visitor.byHeader ? visitor.token !== undefined : visitor.client.jar.has(COOKIE);
  // What the response did to a browser's cookie. h3 also deletes one the browser does not have
  // (sessionkit sends nothing then), and a header twin's cookie is not its session: `holds` says
  // all there is for it.
  const line = reply.setCookies.findLast((l) => l.startsWith(`${COOKIE}=`));
  const deletes =
    line !== undefined && (line.startsWith(`${COOKIE}=;`) || /;\s*max-age=0/i.test(line));
  const sent = visitor.byHeader
    ? "-"
    : line === undefined || (deletes && !held)
      ? "nothing"
      : deletes
        ? "deleted"
        : "sealed anew";
  return { status: reply.status, answer, holds, sent };
}

/** Two browsers, and a header twin of each (twin 0 sends browser 1's cookies beside its header). */
function visitorsOf(base: string, names: Visitor["names"]): Visitor[] {
  const browsers = [0, 1].map(
    (): Visitor => ({
      client: new Client(base),
      token: undefined,
      byHeader: false,
      decoy: undefined,
      ids: [],
      names,
    }),
  );
  const twins = browsers.map(
    (_, i): Visitor => ({
      client: new Client(base),
      token: undefined,
      byHeader: true,
      decoy: i === 0 ? (browsers[1] as Visitor).client : undefined,
      ids: [],
      names,
    }),
  );
  return [...browsers, ...twins];
}

describe.each(Object.entries(CONFIGS))(
  "sessionkit/h3 against h3's own session functions (%s)",
  (name, config) => {
    let theirs: Listening;
    let ours: Listening;
    beforeAll(async () => {
      theirs = await listenLoopback(createServer(toNodeHandler(app(apiOf(h3), config))));
      ours = await listenLoopback(createServer(toNodeHandler(app(apiOf(sk), config))));
    });
    afterAll(async () => {
      vi.useRealTimers();
      await theirs?.close();
      await ours?.close();
    });

    it("random requests of two browsers and their header twins read and hold the same sessions", async () => {
      // Both apps read Date, faked alone (timers and I/O stay real): the clock moves between requests
      // by whole seconds, so deadlines fall due, slide and pass exactly at their boundaries too.
      const timed = name === "maxAge" || name === "idleTimeout";
      if (timed) vi.useFakeTimers({ toFake: ["Date"], now: Date.UTC(2026, 0, 1) });
      for (const seed of seedsToRun(timed ? 3 : 4)) {
        const random = generator(seed);
        const them = visitorsOf(theirs.url, namesOf(config));
        const us = visitorsOf(ours.url, namesOf(config));
        const trace: string[] = [];
        for (let step = 0; step < 24; step++) {
          if (timed && random.chance(0.5)) {
            const seconds = random.pick([1, 29, 30, 31, 59, 60, 61, 119, 120, 121]);
            vi.setSystemTime(Date.now() + seconds * 1000);
            trace.push(`(${seconds} s later)`);
          }
          const who = random.int(them.length);
          const ops = randomOps(random);
          trace.push(`#${step} visitor ${who}: ${JSON.stringify(ops)}`);
          const expected = await send(them[who] as Visitor, ops);
          const actual = await send(us[who] as Visitor, ops);
          expect(actual, `${name}, seed ${seed}\n${trace.join("\n")}`).toEqual(expected);
        }
      }
    }, 120_000);
  },
);
