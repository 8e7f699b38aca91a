/**
 * Random visits through an adapter over real HTTP, against the same visits served by the core
 * manager directly (src/testing/store-differential.ts does this for stores). The adapter's app has a
 * route `POST /act` that runs `act` (visit-app.ts) on its session: the actions come base64url-encoded
 * JSON in the `x-actions` header, and the route answers what the handler saw and what each action
 * read. The adapter's cookies (its jar) must bring back the same sessions as the core's, request by
 * request; and each browser has a twin on the header transport, whose token must do the same.
 */
import { expect, it } from "vitest";
import type { Sessions } from "../../src/manager.js";
import {
  type Action,
  type Browser,
  HEADER,
  type HeaderClient,
  keepHeaderToken,
  randomAction,
  visit,
  visitByHeader,
} from "../../src/testing/store-differential.js";
import { canonical, generator, seedsToRun } from "../../src/testing/store-model.js";
import { Client, type Reply } from "../helpers/http.js";
import type { RunningApp } from "./adapter.js";
import { createVisitSessions, look, type VisitWorld } from "./visit-app.js";

export { act } from "./visit-app.js";

/** A trace line with long strings (the chunking values) cut short. */
function short(text: string): string {
  return text.replace(/"([^"]{40})[^"]{20,}"/g, (_, head: string) => `"${head}…"`);
}

/** Whether a response's session header is absent, says "forget the token" (empty), or brings one. */
function headerSays(headers: Headers): string {
  const value = headers.get(HEADER);
  return value === null ? "nothing" : value === "" ? "forget" : "a token";
}

/** Where the visits of one world go, and the core manager that serves them too. */
export interface VisitTarget {
  /** The app's address: each browser, and each header twin, is a cookie jar of its own on it. */
  url: string;
  /**
   * Sends one request's actions (`encoded`, the `x-actions` header's value) with `headers` from
   * `client`; answers the reply and what `act` answered in it.
   */
  send(client: Client, encoded: string, headers: Record<string, string>): Promise<Answered>;
  /** The core manager on the same options, reading the same clock. */
  core: Sessions;
  /** Moves the clock the app and `core` read, by `ms`. */
  advance(ms: number): void | Promise<void>;
  /** False where the header transport does not reach the session (a Server Action): no twins. */
  byHeader: boolean;
}

/** A reply, and what `act` answered in it. */
export interface Answered {
  reply: Reply;
  answer: string;
  /**
   * What a read later in the same request saw (`look`), from the cookies the commit had just set:
   * Next renders the page into a Server Action's answer when the action set cookies.
   */
  rendered?: string | undefined;
}

/** How every adapter's app is reached: `POST /act`, its body what `act` answered. */
export async function postAct(
  client: Client,
  encoded: string,
  headers: Record<string, string>,
): Promise<Answered> {
  const reply = await client.post("/act", { headers: { "x-actions": encoded, ...headers } });
  return { reply, answer: reply.text };
}

/**
 * Random visits of two browsers (and their header twins) to `target`, each request served by the
 * core too: what the handler saw and read, the cookies kept and the header's word must agree; and
 * a read later in the request, where the app answers one, must see what the core loads from the
 * cookies its browser keeps. Answers how many such reads were compared.
 */
export async function runVisits(target: VisitTarget): Promise<{ rendered: number }> {
  const { core } = target;
  const [seed = 0] = seedsToRun(1);
  const random = generator(seed);
  const browsers = Array.from({ length: 2 }, () => ({
    client: new Client(target.url),
    core: { cookies: new Map<string, string>(), tokens: [] } as Browser,
    // The browser's twin without cookies: its jar must stay empty, its token is its session.
    byHeader: {
      client: new Client(target.url),
      http: { token: "", tokens: [] } as HeaderClient,
      core: { token: "", tokens: [] } as HeaderClient,
    },
  }));
  const trace: string[] = [];
  let rendered = 0;
  for (let request = 0; request < 60; request++) {
    const index = random.int(browsers.length);
    const browser = browsers[index] as (typeof browsers)[number];
    // CSRF tokens differ between the two; JSON (the header's form) leaves out an undefined
    // value, so both run the actions as decoded.
    const actions = JSON.parse(
      JSON.stringify(
        Array.from({ length: random.int(4) }, () => randomAction(random, "v")).filter(
          (action) => action.kind !== "csrfToken" && action.kind !== "verifyCsrfToken",
        ),
      ),
    ) as Action[];
    trace.push(`browser ${index}: ${short(canonical(actions))}`);
    const encoded = Buffer.from(JSON.stringify(actions)).toString("base64url");
    const context = `seed ${seed} (SESSIONKIT_STORE_SEED replays it), after:\n${trace.slice(-8).join("\n")}`;

    const { reply, answer, rendered: read } = await target.send(browser.client, encoded, {});
    const expected = await visit(core, browser.core, actions);
    expect(reply.status, context).toBe(200);
    expect(canonical(JSON.parse(answer)), context).toBe(
      canonical({ seen: expected.seen, results: expected.results }),
    );
    // A cookie the adapter dropped or left behind may read the same today and not tomorrow.
    expect([...browser.client.jar.keys()].sort(), `cookies: ${context}`).toEqual(
      [...browser.core.cookies.keys()].sort(),
    );
    if (read !== undefined) {
      const cookie = [...browser.core.cookies]
        .map(([name, value]) => `${name}=${value}`)
        .join("; ");
      const reread = await core.load(new Headers(cookie ? { cookie } : {}));
      expect(canonical(JSON.parse(read)), `read after the commit: ${context}`).toBe(
        canonical(JSON.parse(await look(reread))),
      );
      rendered++;
    }

    const { byHeader } = browser;
    if (target.byHeader) {
      const headed = await target.send(byHeader.client, encoded, {
        [HEADER]: byHeader.http.token,
      });
      const expectedHeaded = await visitByHeader(core, byHeader.core, actions);
      const headerContext = `header client: ${context}`;
      expect(headed.reply.status, headerContext).toBe(200);
      expect(headed.reply.setCookies, headerContext).toEqual([]);
      expect(canonical(JSON.parse(headed.answer)), headerContext).toBe(
        canonical({ seen: expectedHeaded.seen, results: expectedHeaded.results }),
      );
      expect(headerSays(headed.reply.headers), headerContext).toBe(
        headerSays(expectedHeaded.headers),
      );
      keepHeaderToken(byHeader.http, headed.reply.headers);
    }

    const ms = random.int(10) === 0 ? 10 * 60_000 + 1 : random.int(200_000);
    trace.push(`clock +${ms}`);
    await target.advance(ms);
  }
  return { rendered };
}

/** The visits: `serve` builds the adapter's app (with `/act`) on the sessions it is given. */
export function testVisits(serve: (sessions: Sessions) => Promise<RunningApp>): void {
  it.each([
    ["cookie", "cookie"],
    ["memory store", "store"],
  ] as const)(
    "random visits, by cookie and by header, read as they do through the core manager (%s)",
    async (_label, world: VisitWorld) => {
      let clock = Date.now();
      const now = () => clock;
      const app = await serve(createVisitSessions(world, now));
      try {
        await runVisits({
          url: app.url,
          send: postAct,
          core: createVisitSessions(world, now),
          advance: (ms) => {
            clock += ms;
          },
          byHeader: true,
        });
      } finally {
        await app.close();
      }
    },
  );
}
