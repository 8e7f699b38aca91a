/**
 * The app side of the random visits (visits.ts): the manager every world is served with, and what
 * an app's `/act` route answers. Apart from visits.ts because it imports no vitest: the Next.js
 * fixture (test/fixtures/next-app/lib/visits.js) bundles this file into its routes, so its answers
 * and its options are these, not a copy that could drift.
 */
import { Buffer } from "node:buffer";
import { createSessions, type Sessions } from "../../src/manager.js";
import type { Session } from "../../src/session.js";
import { memoryStore } from "../../src/stores/memory.js";
import {
  type Action,
  HEADER,
  runActions,
  VISIT_OPTIONS,
} from "../../src/testing/store-differential.js";

/** Cookie sessions, or sessions in a memory store: one manager (and one store) per world. */
export type VisitWorld = "cookie" | "store";

const SECRET = "adapter-visits-secret-0123456789abcdefgh";

/** A world's manager on `now`, the clock its store reads too, with the header transport on. */
export function createVisitSessions(world: VisitWorld, now: () => number): Sessions {
  const options = { secret: SECRET, now, header: HEADER, ...VISIT_OPTIONS };
  return createSessions(world === "cookie" ? options : { ...options, store: memoryStore({ now }) });
}

/** What the `/act` route answers: the session as the handler saw it, and what each action read. */
export async function act(session: Session, header: string | null | undefined): Promise<string> {
  const actions = JSON.parse(Buffer.from(header ?? "", "base64url").toString()) as Action[];
  return JSON.stringify(await runActions(session, actions, []));
}

/** What a read-only render shows of the session: what `act` answers for no actions. */
export async function look(session: Session): Promise<string> {
  return JSON.stringify(await runActions(session, [], []));
}
