/**
 * The long fuzz run: `npm run fuzz` (1 000 000 cases), `npm run fuzz -- --cases 100000`,
 * `--seed N` to replay. The same properties as test/fuzz/fuzz.test.ts, on the node:crypto backend
 * (tsx resolves #crypto-backend with the "node" condition). Every case runs; failures are counted,
 * not stopped at, and the first few are printed. Exit code 1 on any failure.
 */
import fc from "fast-check";
import { createFuzzSuite, shareCases } from "./properties.js";

function option(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const cases = Number(option("cases") ?? 1_000_000);
const seed = Number(option("seed") ?? Date.now() % 2 ** 31);
if (!Number.isSafeInteger(cases) || cases < 1) {
  console.error("--cases must be a positive whole number");
  process.exit(2);
}

const started = performance.now();
const suite = await createFuzzSuite();
const shares = shareCases(suite.properties, cases);
let ran = 0;
let failed = 0;
let forgeries = 0;
const examples: string[] = [];

console.log(
  `sessionkit fuzz: ${cases} cases, seed ${seed}, backend ${(await import("#crypto-backend")).backend.name}`,
);
for (const [index, property] of suite.properties.entries()) {
  const runs = shares[index] as number;
  const t0 = performance.now();
  let propertyFailed = 0;
  // The predicate never returns false: every case runs and is counted, none is shrunk.
  const details = await fc.check(
    fc.asyncProperty(property.arbitrary, async (c) => {
      ran++;
      const outcome = await suite.check(c);
      if (!outcome.ok) {
        failed++;
        propertyFailed++;
        if (outcome.forgery) forgeries++;
        if (examples.length < 5 || (outcome.forgery && examples.length < 10)) {
          examples.push(outcome.message);
        }
      }
      return true;
    }),
    { numRuns: runs, seed: seed + index },
  );
  if (details.failed) {
    // Only a throw from the harness itself lands here.
    failed++;
    examples.push(`${property.name}: harness error ${String(details.errorInstance)}`);
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`  ${property.name}: ${runs} cases, ${propertyFailed} failed, ${seconds} s`);
}

for (const example of examples) console.log(`\nFAILURE ${example}`);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`\ncases: ${ran}`);
console.log(`failures: ${failed}`);
console.log(`forgeries accepted: ${forgeries}`);
console.log(`time: ${seconds} s`);
console.log(`${ran - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
