/**
 * Attacks with tokens that authenticate somewhere, just not here: another mode, another manager
 * sharing the store and the secret, a guessed id, a planted header token; and what a failing store's
 * error can tell a log reader. Every one of these held: the tests pin the verdicts down.
 */
import { describe, expect, it, vi } from "vitest";
import { StoreUnavailableError } from "../../src/errors.js";
import type { SessionStore } from "../../src/stores/store.js";
import { counterIds, harness, jarToken, storeHarness } from "../core/harness.js";

async function tokenOf(h: ReturnType<typeof harness>) {
  await h.request((s) => s.set("user", "ada"));
  return jarToken(h.jar) as string;
}

async function verdict(h: ReturnType<typeof harness>, token: string) {
  h.invalid.length = 0;
  const { session } = await h.request(() => {}, { cookie: `sid=${token}`, keepJar: true });
  return session.isNew ? h.invalid.join(",") : `opened:${String(session.get("user"))}`;
}

describe("a token valid in one configuration, sent to another with the same secret and name", () => {
  it("no format opens in another mode: e1, s1 and i1 are each refused by the other two", async () => {
    const encrypted = harness();
    const signed = harness({ mode: "signed" });
    const stored = storeHarness();
    const tokens = {
      e1: await tokenOf(encrypted),
      s1: await tokenOf(signed),
      i1: await tokenOf(stored),
    };
    const table: Record<string, string> = {};
    for (const [mode, h] of Object.entries({ e1: encrypted, s1: signed, i1: stored })) {
      for (const [format, token] of Object.entries(tokens)) {
        table[`${format} -> ${mode}`] = await verdict(h, token);
      }
    }
    expect(table).toEqual({
      "e1 -> e1": "opened:ada",
      "s1 -> e1": "malformed",
      "i1 -> e1": "malformed",
      "e1 -> s1": "malformed",
      "s1 -> s1": "opened:ada",
      "i1 -> s1": "malformed",
      "e1 -> i1": "malformed",
      "s1 -> i1": "malformed",
      "i1 -> i1": "opened:ada",
    });
  });

  it("an i1 token re-labelled s1 (same HMAC key) does not verify: the version is under the MAC", async () => {
    const stored = storeHarness();
    const signed = harness({ mode: "signed", store: undefined });
    const token = await tokenOf(stored);
    const [, kid, id, mac] = token.split(".") as [string, string, string, string];
    // The id is base64url, so it is also a syntactically valid s1 payload.
    expect(await verdict(signed, `s1.${kid}.${id}.${mac}`)).toBe("tampered");
  });

  it("two managers sharing one store and secret, with different cookie names, cannot use each other's ids", async () => {
    const a = storeHarness({ cookie: { name: "app_a" } });
    const b = harness({ store: a.sessions.store, cookie: { name: "app_b" } });
    await a.request((s) => s.set("user", "ada"));
    const tokenA = a.jar.cookies.get("app_a") as string;
    b.invalid.length = 0;
    const { session } = await b.request(() => {}, { cookie: `app_b=${tokenA}`, keepJar: true });
    expect(session.isNew).toBe(true);
    expect(b.invalid).toEqual(["tampered"]);
  });
});

describe("store mode with predictable ids (a custom generateId)", () => {
  it("knowing the next id is not enough: without the MAC the store is never asked", async () => {
    const ids = counterIds("predictable-ids-");
    const h = storeHarness({ generateId: ids });
    const own = await tokenOf(h);
    const store = h.sessions.store as SessionStore;
    // The victim signs in next and gets the id the attacker can predict.
    const victim = harness({ store, generateId: () => "predictable-ids-0001" });
    await victim.request((s) => s.set("user", "victim"));
    const get = vi.spyOn(store, "get");
    const [version, kid, , mac] = own.split(".") as [string, string, string, string];
    const forged = [
      "predictable-ids-0001", // the raw id as the cookie
      `${version}.${kid}.predictable-ids-0001.${mac}`, // the id with the attacker's own MAC
      `${version}.${kid}.predictable-ids-0001.${"A".repeat(43)}`,
      `${version}.${kid}.predictable-ids-0001`,
    ];
    const verdicts = [];
    for (const token of forged) verdicts.push(await verdict(h, token));
    expect(verdicts).toEqual(["malformed", "tampered", "tampered", "malformed"]);
    expect(get).not.toHaveBeenCalled();
  });
});

describe("fixation through the header transport (store mode)", () => {
  it("a token planted in a client's header opens nothing once the victim signs in with regenerate", async () => {
    const h = storeHarness({ header: "x-session" });
    // The attacker makes a session of their own and plants its token in the victim's client.
    const first = await h.request((s) => s.set("cart", 1), {
      cookie: "",
      headers: { "x-session": "" },
    });
    const planted = first.headers.get("x-session") as string;
    expect(planted.startsWith("i1.")).toBe(true);
    const signIn = await h.request((s) => s.regenerate({ userId: "victim" }), {
      cookie: "",
      headers: { "x-session": planted },
    });
    const victimToken = signIn.headers.get("x-session") as string;
    expect(victimToken).not.toBe(planted);
    h.invalid.length = 0;
    const replay = await h.request(() => {}, { cookie: "", headers: { "x-session": planted } });
    expect(replay.session.isNew).toBe(true);
    expect(replay.session.userId).toBeUndefined();
    expect(h.invalid).toEqual(["unknown-session"]);
  });
});

describe("what a failing store's error can tell a log reader", () => {
  it("a store that echoes its key in its error carries only the hash, never the id or token", async () => {
    const h = storeHarness();
    const token = await tokenOf(h);
    const { session } = await h.request(() => {}, { keepJar: true });
    const store = h.sessions.store as SessionStore;
    vi.spyOn(store, "get").mockImplementation(async (key) => {
      throw new Error(`connection lost while reading ${key}`);
    });
    const error = await h.request(() => {}, { keepJar: true }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    const cause = (error as Error).cause as Error;
    const said = `${String(error)} ${cause.message} ${JSON.stringify(error)}`;
    expect(said).toContain("connection lost");
    expect(said).not.toContain(session.id);
    expect(said).not.toContain(token);
  });
});
