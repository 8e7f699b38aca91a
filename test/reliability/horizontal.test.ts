/**
 * Two app processes on one store (test/load/scenarios.ts, run small; `npm run load` runs 200): a
 * client alternating between them keeps one session and loses no update.
 */
import { describe, it } from "vitest";
import { runHorizontal } from "../load/scenarios.js";
import { expectPassed, services } from "./support.js";

const up = await services();

describe.concurrent("two app processes sharing a store", () => {
  it.skipIf(!up.redis)(
    "Redis: 40 alternating increments -> 40, 40 parallel own-key writes all kept",
    async () => {
      expectPassed(await runHorizontal({ backend: "redis", increments: 40, parallel: 40 }));
    },
    60_000,
  );

  it.skipIf(!up.cluster)(
    "Redis Cluster (3 nodes): 40 alternating increments -> 40, 40 parallel own-key writes all kept",
    async () => {
      expectPassed(await runHorizontal({ backend: "redis-cluster", increments: 40, parallel: 40 }));
    },
    60_000,
  );
});
