/**
 * Random visits through an adapter over real HTTP, against the same visits served by the core
 * manager directly (src/testing/store-differential.ts does this for stores). The adapter's app has a
 * route `POST /act` that runs `act` on its session: the actions come base64url-encoded JSON in the
 * `x-actions` header, and the route answers what the handler saw and what each action read. The
 * adapter's cookies (its jar) must bring back the same sessions as the core's, request by request.
 */
import { expect, it } from "vitest";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import {
  type Action,
  type Browser,
  randomAction,
  runActions,
  VISIT_OPTIONS,
  visit,
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

/** The visits: `serve` builds the adapter's app (with `/act`) on the sessions it is given. */
export function testVisits(serve: (sessions: Sessions) => Promise<RunningApp>): void {
  // Cookie sessions, and sessions in a memory store (one store per world, on the same clock).
  it.each(["cookie", "memory store"])(
    "random visits read as they do through the core manager (%s)",
    async (mode) => {
      let clock = Date.now();
      const options = { secret: SECRET, now: () => clock, ...VISIT_OPTIONS };
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
          const header = Buffer.from(JSON.stringify(actions)).toString("base64url");
          const reply = await browser.client.post("/act", { headers: { "x-actions": header } });
          const expected = await visit(core, browser.core, actions);
          const context = `seed ${seed} (SESSIONKIT_STORE_SEED replays it), after:\n${trace.slice(-8).join("\n")}`;
          expect(reply.status, context).toBe(200);
          expect(canonical(JSON.parse(reply.text)), context).toBe(
            canonical({ seen: expected.seen, results: expected.results }),
          );
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
