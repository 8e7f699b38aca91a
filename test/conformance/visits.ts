/**
 * Random visits through an adapter over real HTTP, against the same visits served by the core
 * manager directly (src/testing/store-differential.ts does this for stores). The adapter's app has a
 * route `POST /act` that runs `act` on its session: the actions come base64url-encoded JSON in the
 * `x-actions` header, and the route answers what the handler saw and what each action read. The
 * adapter's cookies (its jar) must bring back the same sessions as the core's, request by request;
 * and each browser has a twin on the header transport, whose token must do the same.
 */
import { expect, it } from "vitest";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import {
  type Action,
  type Browser,
  HEADER,
  type HeaderClient,
  keepHeaderToken,
  randomAction,
  runActions,
  VISIT_OPTIONS,
  visit,
  visitByHeader,
} from "../../src/testing/store-differential.js";
import { canonical, generator, seedsToRun } from "../../src/testing/store-model.js";
import { Client } from "../helpers/http.js";
import type { RunningApp } from "./adapter.js";

const SECRET = "adapter-visits-secret-0123456789abcdefgh";

/** A trace line with long strings (the chunking values) cut short. */
function short(text: string): string {
  return text.replace(/"([^"]{40})[^"]{20,}"/g, (_, head: string) => `"${head}…"`);
}

/** What the `/act` route answers: the session as the handler saw it, and what each action read. */
export async function act(session: Session, header: string | null | undefined): Promise<string> {
  const actions = JSON.parse(Buffer.from(header ?? "", "base64url").toString()) as Action[];
  return JSON.stringify(await runActions(session, actions, []));
}

/** Whether a response's session header is absent, says "forget the token" (empty), or brings one. */
function headerSays(headers: Headers): string {
  const value = headers.get(HEADER);
  return value === null ? "nothing" : value === "" ? "forget" : "a token";
}

/** The visits: `serve` builds the adapter's app (with `/act`) on the sessions it is given. */
export function testVisits(serve: (sessions: Sessions) => Promise<RunningApp>): void {
  // Cookie sessions, and sessions in a memory store (one store per world, on the same clock).
  it.each(["cookie", "memory store"])(
    "random visits, by cookie and by header, read as they do through the core manager (%s)",
    async (mode) => {
      let clock = Date.now();
      const options = { secret: SECRET, now: () => clock, header: HEADER, ...VISIT_OPTIONS };
      const withStore = () =>
        mode === "cookie" ? options : { ...options, store: memoryStore({ now: () => clock }) };
      const app = await serve(createSessions(withStore()));
      try {
        const core = createSessions(withStore());
        const [seed = 0] = seedsToRun(1);
        const random = generator(seed);
        const browsers = Array.from({ length: 2 }, () => ({
          client: new Client(app.url),
          core: { cookies: new Map<string, string>(), tokens: [] } as Browser,
          // The browser's twin without cookies: its jar must stay empty, its token is its session.
          byHeader: {
            client: new Client(app.url),
            http: { token: "", tokens: [] } as HeaderClient,
            core: { token: "", tokens: [] } as HeaderClient,
          },
        }));
        const trace: string[] = [];
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

          const reply = await browser.client.post("/act", { headers: { "x-actions": encoded } });
          const expected = await visit(core, browser.core, actions);
          expect(reply.status, context).toBe(200);
          expect(canonical(JSON.parse(reply.text)), context).toBe(
            canonical({ seen: expected.seen, results: expected.results }),
          );
          // A cookie the adapter dropped or left behind may read the same today and not tomorrow.
          expect([...browser.client.jar.keys()].sort(), `cookies: ${context}`).toEqual(
            [...browser.core.cookies.keys()].sort(),
          );

          const { byHeader } = browser;
          const headed = await byHeader.client.post("/act", {
            headers: { "x-actions": encoded, [HEADER]: byHeader.http.token },
          });
          const expectedHeaded = await visitByHeader(core, byHeader.core, actions);
          const headerContext = `header client: ${context}`;
          expect(headed.status, headerContext).toBe(200);
          expect(headed.setCookies, headerContext).toEqual([]);
          expect(canonical(JSON.parse(headed.text)), headerContext).toBe(
            canonical({ seen: expectedHeaded.seen, results: expectedHeaded.results }),
          );
          expect(headerSays(headed.headers), headerContext).toBe(
            headerSays(expectedHeaded.headers),
          );
          keepHeaderToken(byHeader.http, headed.headers);

          const ms = random.int(10) === 0 ? 10 * 60_000 + 1 : random.int(200_000);
          trace.push(`clock +${ms}`);
          clock += ms;
        }
      } finally {
        await app.close();
      }
    },
  );
}
