/**
 * Parallel requests of one session through every adapter and store (test/load/scenarios.ts, run at
 * 30 parallel requests; `npm run load` runs 200): own keys all survive, the same key ends with one
 * acknowledged value (last writer wins), and with the `lock` option parallel increments all count.
 */
import { describe, it } from "vitest";
import { ADAPTERS, type StoreKind } from "../load/lib.js";
import { runConcurrency } from "../load/scenarios.js";
import { expectPassed, services } from "./support.js";

const up = await services();
const available: Record<string, boolean> = {
  memory: true,
  sqlite: true,
  postgres: up.postgres,
  mysql: up.mysql,
  redis: up.redis,
};

describe.concurrent("one session, 30 parallel requests, every adapter", () => {
  for (const store of ["memory", "sqlite", "postgres", "mysql", "redis"] as StoreKind[]) {
    it.skipIf(!available[store])(
      `${store} store: no own key lost, last writer wins on one key`,
      async () => {
        const results = await runConcurrency({ stores: [store], adapters: [...ADAPTERS], n: 30 });
        for (const result of results) expectPassed(result);
      },
      60_000,
    );
  }
});
