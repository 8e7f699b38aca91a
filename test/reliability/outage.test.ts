/**
 * Store outages under steady load through node:http and express (test/load/scenarios.ts, run small;
 * `npm run load` runs it at 20 clients and a 5 s outage): fast 503s, no hang, no crash, no leak,
 * recovery by itself, and no acknowledged write lost.
 */
import { describe, it } from "vitest";
import { runOutage } from "../load/scenarios.js";
import { expectPassed, services } from "./support.js";

const up = await services();
const size = { clientsPerAdapter: 3, warmMs: 800, outageMs: 1500, recoverMs: 2000 };

describe.concurrent("store outage under load (node:http + express)", () => {
  it.skipIf(!up.redisServer)(
    "a private AOF redis-server killed -9 and restarted: 503s, recovery, nothing acknowledged lost",
    async () => {
      expectPassed(await runOutage({ store: "redis", ...size }));
    },
    60_000,
  );

  it.skipIf(!up.postgres)(
    "every PostgreSQL connection of the app terminated, repeatedly: 503s, recovery, nothing acknowledged lost",
    async () => {
      expectPassed(await runOutage({ store: "postgres", ...size }));
    },
    60_000,
  );
});
