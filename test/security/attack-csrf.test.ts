/**
 * Attempts on the CSRF tokens and `requireCsrfToken`: the compare is the backend's constant-time
 * one, the key is the token's own (not the cookie-signing key), the header-transport pass lends
 * nothing to a browser's cookie session, a seed's token is no id's, and no token, id, seed or secret
 * reaches an error, an event, a log line or a refusal.
 */

import { afterEach, describe, expect, it, vi } from "vitest";
import { backend } from "#crypto-backend";
import { createKeyring } from "../../src/crypto/keyring.js";
import { requireCsrfToken } from "../../src/csrf.js";
import { createSessions, type Session, type SessionEvent } from "../../src/index.js";
import { closeSession, type SessionState } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import { harness, jarToken, SECRET } from "../core/harness.js";

const HERE = "https://app.example.com/transfer";

async function savedSession(h: ReturnType<typeof harness>) {
  let token = "";
  await h.request(async (s) => {
    token = await s.csrfToken();
  });
  let session: Session | undefined;
  await h.request((s) => {
    session = s;
  });
  return { token, session: session as Session };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("CSRF tokens under attack", () => {
  it("the verdict is the backend's constant-time verify (timingSafeEqual / subtle.verify), not a string compare", async () => {
    const h = harness();
    const { token, session } = await savedSession(h);
    const verify = vi.spyOn(backend, "verify");
    expect(await session.verifyCsrfToken(token)).toBe(true);
    expect(verify).toHaveBeenCalledTimes(1);
    // The MAC handed to it is the unmasked one: 43 characters of base64url, not the token.
    const [, message, mac] = verify.mock.calls[0] as [unknown, string, string];
    expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(token).not.toContain(mac);
    // The session's seed is tried first: its tokens are the ones handed out.
    expect(message).toBe(`sid\0seed\0${(session as SessionState).meta.csrf}`);
    // Were the backend to say no, the genuine token is refused: nothing else decides.
    verify.mockReturnValue(false);
    expect(await session.verifyCsrfToken(token)).toBe(false);
  });

  it("a MAC made with the cookie-signing key over the same message is refused (keys per purpose)", async () => {
    const h = harness();
    const { session } = await savedSession(h);
    const ring = await createKeyring([{ id: undefined, secret: SECRET }], backend);
    const seed = (session as SessionState).meta.csrf;
    for (const message of [`sid\0seed\0${seed}`, `sid\0${session.id}`]) {
      const mac = backend.decodeBase64Url(
        await backend.sign(ring.primary.hmac, message),
        true,
      ) as Uint8Array;
      // Masked with a zero pad, so the token carries that MAC as it is.
      const bytes = new Uint8Array(64);
      bytes.set(mac, 32);
      const forged = `c1.${ring.primary.id}.${backend.encodeBase64Url(bytes)}`;
      expect(await session.verifyCsrfToken(forged)).toBe(false);
    }
  });

  it("the session's CSRF seed, or a token of another session's, is no token", async () => {
    const h = harness();
    const { session } = await savedSession(h);
    const { token: others } = await savedSession(harness());
    const seed = (session as SessionState).meta.csrf as string;
    expect(seed).toMatch(/^[A-Za-z0-9_-]{22}$/);
    for (const candidate of [seed, `c1.${seed}`, others]) {
      expect(await session.verifyCsrfToken(candidate)).toBe(false);
    }
  });

  it("a seed that spells another session's id opens nothing there (a seed's message is not an id's)", async () => {
    const a = harness();
    const { token, session } = await savedSession(a);
    const seed = (session as SessionState).meta.csrf as string;
    // Same secret and cookie name; its next session's id is A's seed, 22 base64url characters.
    const b = harness({ generateId: () => seed });
    let verdict = true;
    await b.request((s) => s.set("n", 1));
    await b.request(async (s) => {
      expect(s.id).toBe(seed);
      verdict = await s.verifyCsrfToken(token);
    });
    expect(verdict).toBe(false);
    expect(await session.verifyCsrfToken(token)).toBe(true);
  });

  it("the session's own cookie, or parts of it, is no CSRF token", async () => {
    const h = harness({ store: memoryStore({ now: () => Date.UTC(2025, 0, 1) }) });
    const { session } = await savedSession(h);
    const cookie = jarToken(h.jar) as string;
    const [, kid, , mac] = cookie.split(".");
    for (const candidate of [cookie, session.id, `c1.${kid}.${mac}`, `c1.${kid}.${session.id}`]) {
      expect(await session.verifyCsrfToken(candidate)).toBe(false);
    }
  });

  it("a header naming the token twice, or two headers, is refused", async () => {
    const h = harness();
    const { token } = await savedSession(h);
    const headers = new Headers({ cookie: h.jar.header() ?? "" });
    headers.append("x-csrf-token", token);
    headers.append("x-csrf-token", token);
    const request = new Request(HERE, { method: "POST", headers });
    const session = await h.sessions.load(request);
    expect((await requireCsrfToken()(session, request))?.status).toBe(403);
  });

  it("the header-transport pass lends nothing to a cookie: an empty session header starts a fresh session", async () => {
    const h = harness({ header: "x-session" });
    await savedSession(h);
    // What a cross-site page cannot send anyway (a custom header needs a CORS preflight), and even
    // if it could: the request then runs on a new, empty session, not the cookie's.
    const request = new Request(HERE, {
      method: "POST",
      headers: { cookie: h.jar.header() ?? "", "x-session": "" },
    });
    const session = await h.sessions.load(request);
    expect(await requireCsrfToken()(session, request)).toBeUndefined();
    expect(session.isNew).toBe(true);
    expect(session.data).toEqual({});
  });

  it("no token, id or secret in an error, an event, a log line or a refusal", async () => {
    const logged: string[] = [];
    for (const method of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        logged.push(args.map(String).join(" "));
      });
    }
    const events: SessionEvent[] = [];
    const reasons: string[] = [];
    const h = harness({
      onEvent: (event) => events.push(event),
      onInvalid: (reason) => reasons.push(reason),
    });
    const { token, session } = await savedSession(h);
    const said: string[] = [];
    // Refusals of every kind.
    const guard = requireCsrfToken();
    for (const header of [undefined, token.slice(0, -1), `${token}x`, "x".repeat(500)]) {
      const headers = new Headers({ cookie: h.jar.header() ?? "" });
      if (header !== undefined) headers.set("x-csrf-token", header);
      const request = new Request(HERE, { method: "POST", headers });
      const denied = await guard(await h.sessions.load(request), request);
      said.push(
        await (denied as Response).text(),
        JSON.stringify([...(denied as Response).headers]),
      );
    }
    // Errors: a new session's token asked for too late, and bad options naming a token or secret.
    await h.request(async (s) => {
      s.destroy();
      closeSession(s);
      said.push(String(await s.csrfToken().catch((err: unknown) => (err as Error).message)));
    });
    for (const options of [{ [token]: true }, { [SECRET]: 1 }, { header: token }, { field: 7 }]) {
      try {
        requireCsrfToken(options as never);
      } catch (err) {
        said.push((err as Error).message);
      }
    }
    said.push(...logged, JSON.stringify(events), JSON.stringify(reasons));
    const text = said.join("\n");
    expect(said.length).toBeGreaterThan(8);
    const seed = (session as SessionState).meta.csrf as string;
    expect(seed).toBeDefined();
    for (const secret of [token, token.split(".")[2] as string, session.id, seed, SECRET]) {
      expect(text).not.toContain(secret);
    }
  });

  it("tokens of one manager do not open another's sessions with the same secret and cookie name but another store", async () => {
    const a = createSessions({ secret: SECRET, store: memoryStore() });
    const b = createSessions({ secret: SECRET, store: memoryStore() });
    const sa = await a.load(new Request(HERE));
    const sb = await b.load(new Request(HERE));
    const token = await sa.csrfToken();
    // Different sessions in each: the token is bound to the session's own seed, whatever else is
    // shared.
    expect(await sb.verifyCsrfToken(token)).toBe(false);
    expect(await sa.verifyCsrfToken(token)).toBe(true);
  });
  it("of two urlencoded `_csrf` fields the first counts: a forged one first refuses, the token first passes", async () => {
    const h = harness();
    const { token } = await savedSession(h);
    const verdict = async (body: string) => {
      const request = new Request(HERE, {
        method: "POST",
        headers: {
          cookie: h.jar.header() ?? "",
          "content-type": "application/x-www-form-urlencoded",
        },
        body,
      });
      const denied = await requireCsrfToken()(await h.sessions.load(request), request);
      return denied ? denied.status : "pass";
    };
    const field = encodeURIComponent(token);
    expect(await verdict(`_csrf=forged&_csrf=${field}`)).toBe(403);
    expect(await verdict(`_csrf=${field}&_csrf=forged`)).toBe("pass");
  });

  it("a multipart `_csrf` that is a file holding the token is no token", async () => {
    const h = harness();
    const { token } = await savedSession(h);
    const form = new FormData();
    form.append("_csrf", new Blob([token]), "token.txt");
    const request = new Request(HERE, {
      method: "POST",
      headers: { cookie: h.jar.header() ?? "" },
      body: form,
    });
    const session = await h.sessions.load(request);
    expect(((await requireCsrfToken()(session, request)) as Response).status).toBe(403);
    // The same token as a text field passes: the refusal is the file's doing.
    const text = new FormData();
    text.append("_csrf", token);
    const ok = new Request(HERE, {
      method: "POST",
      headers: { cookie: h.jar.header() ?? "" },
      body: text,
    });
    expect(await requireCsrfToken()(await h.sessions.load(ok), ok)).toBeUndefined();
  });

  // Open, pinned: OWASP's synchronizer token binds to the session the browser presents, so a
  // session planted in the browser brings its own tokens. Rails and Django share this; `__Host-`
  // names (which no other host can set) and `regenerate()` at sign-in are the answer.
  it("a session cookie a sibling subdomain tossed in front of the visitor's brings its own tokens (login CSRF; __Host- stops it)", async () => {
    const h = harness();
    const { session: victim } = await savedSession(h);
    let planted = "";
    const attacker = await h.request(
      async (s) => {
        planted = await s.csrfToken();
      },
      { cookie: "", keepJar: true },
    );
    const tossed = (attacker.lines[0] as string).split(";", 1)[0] as string;
    // Set for the parent domain on a longer path, the tossed cookie is sent first.
    const request = new Request(HERE, {
      method: "POST",
      headers: { cookie: `${tossed}; ${h.jar.header()}`, "x-csrf-token": planted },
    });
    const session = await h.sessions.load(request);
    expect(session.id).not.toBe(victim.id);
    expect(await requireCsrfToken()(session, request)).toBeUndefined();
  });

  // Open, pinned: asking a new visitor's session for a token saves it, so every anonymous view of
  // a page with a form is a store record. On a memory store at its bound the least recently used go
  // first: as many anonymous views as `maxSessions` sign every quiet visitor out.
  it("anonymous views of a form each save a store session, and on a full memory store they evict signed-in visitors", async () => {
    const store = memoryStore({ maxSessions: 20 });
    const sessions = createSessions({ secret: SECRET, store });
    const signIn = await sessions.load(new Request(HERE));
    await signIn.regenerate({ userId: "alice" });
    const out = new Headers();
    await sessions.commit(signIn, out);
    const alice = (out.get("set-cookie") as string).split(";", 1)[0] as string;
    for (let i = 0; i < 20; i++) {
      const anonymous = await sessions.load(new Request(HERE));
      await anonymous.csrfToken();
      await sessions.commit(anonymous, new Headers());
    }
    expect(store.size).toBe(20);
    const back = await sessions.load(new Request(HERE, { headers: { cookie: alice } }));
    expect(back.userId).toBeUndefined();
    expect(back.isNew).toBe(true);
  });
});
