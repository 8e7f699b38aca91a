/**
 * `npm run load`: the outage, concurrency and horizontal-scale scenarios at full size, then a summary
 * ending in "N passed, N failed" (exit code 1 when any failed).
 *
 *   npm run load                       # everything
 *   npm run load -- --only outage      # outage | concurrency | horizontal (comma-separated)
 *   npm run load -- --small            # the sizes the vitest files use
 *   npm run load -- --json out.json    # also write every figure as JSON
 */
import { writeFileSync } from "node:fs";
import { ADAPTERS, type CheckResult, machineLine, printSummary, STORES } from "./lib.js";
import { runConcurrency, runHorizontal, runOutage } from "./scenarios.js";

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? "") : undefined;
};
const small = args.includes("--small");
const only = new Set((flag("only") ?? "outage,concurrency,horizontal").split(","));
const log = (line: string) => console.log(line);

const size = small
  ? {
      clientsPerAdapter: 3,
      warmMs: 1000,
      outageMs: 1500,
      recoverMs: 2500,
      n: 50,
      increments: 40,
      parallel: 40,
    }
  : {
      clientsPerAdapter: 10,
      warmMs: 3000,
      outageMs: 5000,
      recoverMs: 5000,
      n: 200,
      increments: 200,
      parallel: 200,
    };

console.log(`sessionkit load run, ${new Date().toISOString()}\n${machineLine()}\n`);
const results: CheckResult[] = [];
const started = Date.now();

if (only.has("outage")) {
  for (const store of ["redis", "postgres"] as const) {
    console.log(`--- outage: ${store}`);
    const result = await runOutage({ store, ...size, log });
    console.log(`  ${result.ok ? "ok" : "FAIL"}: ${result.detail}`);
    results.push(result);
  }
}
if (only.has("concurrency")) {
  console.log(`--- concurrency: ${size.n} parallel requests of one session`);
  results.push(
    ...(await runConcurrency({ stores: [...STORES], adapters: [...ADAPTERS], n: size.n, log })),
  );
}
if (only.has("horizontal")) {
  for (const backend of ["redis", "redis-cluster"] as const) {
    console.log(`--- horizontal: ${backend}`);
    const result = await runHorizontal({ backend, ...size, log });
    console.log(`  ${result.ok ? "ok" : "FAIL"}: ${result.detail}`);
    results.push(result);
  }
}

const json = flag("json");
if (json) {
  writeFileSync(
    json,
    JSON.stringify({ at: new Date().toISOString(), machine: machineLine(), results }, null, 2),
  );
}
console.log(`\n(${((Date.now() - started) / 1000).toFixed(1)} s)`);
const failed = printSummary(results);
process.exit(failed > 0 ? 1 : 0);
