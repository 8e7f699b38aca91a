/**
 * Secrets (DESIGN invariant 7): rotation by list or by `{ id: secret }`, retired keys refused, and
 * every misconfiguration a ConfigError at createSessions whose message says what to change and never
 * echoes a secret.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createSessions, isSessionError } from "../../src/index.js";
import type { SessionsOptions } from "../../src/options.js";
import { harness, jarToken, keyIdOf, OTHER_SECRET, SECRET, THIRD_SECRET } from "./harness.js";

/** The key id a manager with this primary secret stamps on new tokens. */
async function primaryKeyId(secret: SessionsOptions["secret"]): Promise<string> {
  const h = harness({ secret });
  await h.request((s) => s.set("probe", true));
  return keyIdOf(jarToken(h.jar) as string);
}

describe("secret rotation", () => {
  it("opens a token sealed with an older listed secret and re-seals it with the first on the same response", async () => {
    const old = harness({ secret: OTHER_SECRET });
    await old.request((s) => s.set("user", "ada"));
    const oldToken = jarToken(old.jar) as string;
    const oldKid = keyIdOf(oldToken);

    const rotated = harness({ secret: [SECRET, OTHER_SECRET] });
    const { session, setCookies, headers } = await rotated.request(() => {}, {
      cookie: `sid=${oldToken}`,
    });
    expect(session.isNew).toBe(false);
    expect(session.get("user")).toBe("ada");
    expect(rotated.invalid).toEqual([]);
    expect(setCookies).toHaveLength(1);
    const newKid = keyIdOf(setCookies[0]?.value as string);
    expect(newKid).toBe(await primaryKeyId(SECRET));
    expect(newKid).not.toBe(oldKid);
    expect(headers.get("cache-control")).toBe("no-store");
  });

  it("does not re-seal a token that the primary secret already sealed", async () => {
    const h = harness({ secret: [SECRET, OTHER_SECRET] });
    await h.request((s) => s.set("user", "ada"));
    const { lines } = await h.request();
    expect(lines).toEqual([]);
  });

  it("rotates with the { id: secret } form and stamps the explicit key id", async () => {
    const old = harness({ secret: { v1: OTHER_SECRET } });
    await old.request((s) => s.set("user", "ada"));
    const oldToken = jarToken(old.jar) as string;
    expect(keyIdOf(oldToken)).toBe("v1");

    const rotated = harness({ secret: { v2: SECRET, v1: OTHER_SECRET } });
    const { session, setCookies } = await rotated.request(() => {}, { cookie: `sid=${oldToken}` });
    expect(session.get("user")).toBe("ada");
    expect(setCookies.map((c) => keyIdOf(c.value))).toEqual(["v2"]);
  });

  it("re-seals a rotated signed token with the primary key as well", async () => {
    const old = harness({ secret: OTHER_SECRET, mode: "signed" });
    await old.request((s) => s.set("user", "ada"));
    const rotated = harness({ secret: [SECRET, OTHER_SECRET], mode: "signed" });
    const { session, setCookies } = await rotated.request(() => {}, {
      cookie: `sid=${jarToken(old.jar)}`,
    });
    expect(session.get("user")).toBe("ada");
    expect(keyIdOf(setCookies[0]?.value as string)).toBe(await primaryKeyId(SECRET));
  });

  it("refuses a token of a retired (removed) secret as unknown-key", async () => {
    const old = harness({ secret: [OTHER_SECRET, THIRD_SECRET] });
    await old.request((s) => s.set("user", "ada"));
    const retiredToken = jarToken(old.jar) as string;
    const current = harness({ secret: [SECRET, THIRD_SECRET] });
    const { session } = await current.request(() => {}, { cookie: `sid=${retiredToken}` });
    expect(session.isNew).toBe(true);
    expect(session.get("user")).toBeUndefined();
    expect(current.invalid).toEqual(["unknown-key"]);
  });
});

describe("ConfigError at createSessions", () => {
  const secrets = [SECRET, OTHER_SECRET, THIRD_SECRET];

  function configError(options: unknown): ConfigError {
    let caught: unknown;
    try {
      createSessions(options as SessionsOptions);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(isSessionError(caught, "ERR_CONFIG")).toBe(true);
    const err = caught as ConfigError;
    expect(err.code).toBe("ERR_CONFIG");
    expect(err.message.startsWith("sessionkit: ")).toBe(true);
    const raw = JSON.stringify(options) ?? "";
    for (const secret of [...secrets, SHORT_SECRET]) {
      if (raw.includes(secret)) expect(err.message).not.toContain(secret);
    }
    // No fragment of a secret either: an 8-character window of any secret never appears.
    for (const secret of [...secrets, SHORT_SECRET]) {
      for (let i = 0; i + 8 <= secret.length; i++)
        expect(err.message).not.toContain(secret.slice(i, i + 8));
    }
    return err;
  }

  const SHORT_SECRET = "too-short-secret-123";

  it("refuses a secret shorter than 32 characters, naming the minimum and how to make one", () => {
    const err = configError({ secret: SHORT_SECRET });
    expect(err.message).toMatch(/shorter than 32 characters/);
    expect(err.message).toMatch(/sessionkit secret/);
  });

  it("refuses a short secret inside a list, naming its position", () => {
    const err = configError({ secret: [SECRET, SHORT_SECRET] });
    expect(err.message).toMatch(/secret #2 is shorter than 32/);
  });

  it("refuses a missing secret", () => {
    expect(configError({}).message).toMatch(/"secret" option is required/);
    expect(configError({ secret: "" }).message).toMatch(/"secret" option is required/);
    expect(configError({ secret: [] }).message).toMatch(/at least one secret/);
  });

  it("refuses a duplicated secret", () => {
    expect(configError({ secret: [SECRET, OTHER_SECRET, SECRET] }).message).toMatch(
      /secret #3 is listed twice; remove the duplicate/,
    );
    expect(configError({ secret: { a: SECRET, b: SECRET } }).message).toMatch(/listed twice/);
  });

  it("refuses a map of several secrets with whole-number ids, whose order JavaScript changes", async () => {
    // Written newest first, but enumerated { 1, 2 }: the old secret would seal.
    const err = configError({ secret: { 2: SECRET, 1: OTHER_SECRET } });
    expect(err.message).toMatch(/key id "1" in "secret" is a whole number/);
    expect(err.message).toMatch(/e\.g\. \{ v2: next, v1: previous \}/);
    expect(configError({ secret: { v2: SECRET, 0: OTHER_SECRET } }).message).toMatch(/key id "0"/);
    // One secret has no order to lose, and ids that only look numeric keep the order written.
    expect(await primaryKeyId({ 1: SECRET })).toBe("1");
    expect(await primaryKeyId({ "02": SECRET, "01": OTHER_SECRET })).toBe("02");
    expect(await primaryKeyId({ v2: SECRET, v1: OTHER_SECRET })).toBe("v2");
  });

  it("refuses the { secret: id } form written the wrong way round without echoing the secret", () => {
    const err = configError({ secret: { [SECRET]: "v1" } });
    expect(err.message).toMatch(/key id/);
  });

  it("says at the first new session when a custom generateId makes ids the load side refuses", async () => {
    const h = harness({ generateId: () => "too:short" });
    const err = await h
      .request((s) => s.set("n", 1))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/"generateId" returned an id .*16 to 128 characters/);
  });

  it("refuses a header transport named like a header HTTP already uses", () => {
    for (const header of ["cookie", "Set-Cookie", "authorization", "host"]) {
      expect(() => createSessions({ secret: SECRET, header })).toThrow(
        /"header" cannot be .*use a name of your own/,
      );
    }
    expect(() => createSessions({ secret: SECRET, header: "x-session" })).not.toThrow();
  });

  it("refuses an unknown option with a did-you-mean", () => {
    expect(configError({ secret: SECRET, idleTimout: "1h" }).message).toBe(
      'sessionkit: unknown option "idleTimout"; did you mean "idleTimeout"?',
    );
    expect(configError({ secret: SECRET, cookie: { sameSte: "lax" } }).message).toMatch(
      /unknown cookie option "sameSte"; did you mean "sameSite"\?/,
    );
  });

  it("refuses an unknown option holding a secret without echoing its value", () => {
    const err = configError({ secrets: SECRET });
    expect(err.message).toMatch(/did you mean "secret"/);
  });

  it("refuses a bad duration, naming the option and the accepted forms", () => {
    for (const bad of ["7 days", "", "-1h", "1y", 0, -5, Number.NaN]) {
      const err = configError({ secret: SECRET, idleTimeout: bad });
      expect(err.message).toMatch(
        /"idleTimeout" must be a positive number of seconds or a duration such as "30m"/,
      );
    }
    expect(configError({ secret: SECRET, touchInterval: "soon" }).message).toMatch(
      /"touchInterval"/,
    );
  });

  it("refuses a __Host- cookie name with a domain", () => {
    const err = configError({
      secret: SECRET,
      cookie: { name: "__Host-sid", domain: "example.com" },
    });
    expect(err.message).toMatch(/__Host- cookie name requires path "\/" and no domain/);
  });

  it("refuses sameSite none with secure false", () => {
    const err = configError({ secret: SECRET, cookie: { sameSite: "none", secure: false } });
    expect(err.message).toMatch(/sameSite "none" requires cookie.secure; remove secure: false/);
  });

  it("refuses a __Host- cookie name with secure false", () => {
    const err = configError({ secret: SECRET, cookie: { name: "__Host-sid", secure: false } });
    expect(err.message).toMatch(/requires cookie.secure/);
  });

  it("accepts a valid configuration", () => {
    const sessions = createSessions({
      secret: { v2: SECRET, v1: OTHER_SECRET },
      idleTimeout: "1h30m",
      absoluteTimeout: 86_400,
      cookie: { name: "__Host-app" },
    });
    expect(sessions.cookieName).toBe("__Host-app");
  });
});

describe("touchInterval against idleTimeout", () => {
  it("refuses a touchInterval that is not shorter than idleTimeout at start-up", async () => {
    // With touchInterval >= idleTimeout a visitor who only reads could never slide the idle deadline:
    // every session would end idleTimeout after its last write, however active the visitor.
    const make = (touchInterval: string) => () =>
      createSessions({ secret: SECRET, idleTimeout: "30m", touchInterval });
    expect(make("1h")).toThrow(ConfigError);
    expect(make("30m")).toThrow(/touchInterval/);
    expect(make("29m")).not.toThrow();
  });
});

describe("cookie name prefixes", () => {
  // Browsers match __Host- and __Secure- case-insensitively (RFC 6265bis, httpwg/http-extensions
  // #2236): a "__host-" cookie without Secure, or with a Domain or another Path, is dropped whole.
  it("holds a prefix spelled in any case to the prefix's rules at start-up", () => {
    const make = (cookie: Record<string, unknown>) => () =>
      createSessions({ secret: SECRET, cookie });
    expect(make({ name: "__host-sid", path: "/app" })).toThrow(ConfigError);
    expect(make({ name: "__HOST-sid", domain: "example.com" })).toThrow(ConfigError);
    expect(make({ name: "__secure-sid", secure: false })).toThrow(ConfigError);
  });

  it("sends Secure for a lower-case __secure- name even on plain-http localhost", async () => {
    const h = harness({ cookie: { name: "__secure-sid" } });
    const { setCookies } = await h.request((s) => s.set("n", 1), { url: "http://localhost:3000/" });
    expect(setCookies[0]?.attributes).toContain("Secure");
  });
});
