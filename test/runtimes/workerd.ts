/**
 * Run: node --import tsx test/runtimes/workerd.ts
 * Starts test/runtimes/worker.ts (dist/ inside) in workerd through miniflare (test/helpers/workerd.ts),
 * fetches the report over HTTP and prints it.
 */

import { fileURLToPath } from "node:url";
import { startWorker } from "../helpers/workerd.js";
import { printReport, type Report } from "./checks.js";

let failed = 1;
let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
try {
  worker = await startWorker(fileURLToPath(new URL("./worker.ts", import.meta.url)));
  const response = await fetch(worker.url);
  const report = (await response.json()) as Report;
  printReport(`workerd via miniflare at ${worker.url.host}`, report);
  failed = report.failed;
} catch (err) {
  console.error(err);
  console.log("0 passed, 1 failed");
} finally {
  await worker?.dispose();
}
process.exit(failed === 0 ? 0 : 1);
