/**
 * A short soak (test/load/soak.ts; `npm run soak` runs 10 minutes per store): 50 connections of
 * steady writes against node:http on the memory, SQLite and Redis stores, zero errors, counters that
 * add up, a bounded heap.
 */
import { describe, it } from "vitest";
import { runSoak } from "../load/soak.js";
import { expectPassed, services } from "./support.js";

const up = await services();

describe.concurrent("soak, 50 connections, ~8 s per store", () => {
  for (const store of ["memory", "sqlite", "redis"] as const) {
    it.skipIf(store === "redis" && !up.redis)(
      `${store} store`,
      async () => {
        expectPassed(await runSoak({ store, seconds: 6, sampleSeconds: 2, warmSeconds: 1 }));
      },
      60_000,
    );
  }
});
