/**
 * Run: node --import tsx test/runtimes/workerd.ts
 * Bundles test/runtimes/worker.ts (dist/ inside) with esbuild under the conditions wrangler uses for
 * Workers ("workerd", "worker", "browser"; no "node"), starts it in workerd through miniflare on
 * 127.0.0.1, fetches the report over HTTP and prints it.
 */

import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { printReport, type Report } from "./checks.js";

const bundle = await build({
  entryPoints: [fileURLToPath(new URL("./worker.ts", import.meta.url))],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  conditions: ["workerd", "worker", "browser"],
  mainFields: ["module", "main"],
  target: "es2022",
  logLevel: "error",
});
const script = bundle.outputFiles[0]?.text ?? "";
const mf = new Miniflare({
  modules: true,
  script,
  compatibilityDate: "2025-09-01",
  host: "127.0.0.1",
  port: 0,
});
let failed = 1;
try {
  const url = await mf.ready;
  const response = await fetch(url);
  const report = (await response.json()) as Report;
  printReport(`workerd via miniflare at ${url.host}`, report);
  failed = report.failed;
} catch (err) {
  console.error(err);
  console.log("0 passed, 1 failed");
} finally {
  await mf.dispose();
}
process.exit(failed === 0 ? 0 : 1);
