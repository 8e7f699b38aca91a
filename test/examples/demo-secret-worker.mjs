// A worker thread of demo-server.test.ts: calls the demo's demoSecret once per round, all workers
// released together by an Atomics barrier, so their first starts on one data dir really overlap.
import { parentPort, workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

const { demoSecret } = await tsImport(workerData.module, import.meta.url);
// [0]: the round the main thread has released; [1]: arrivals so far
const barrier = new Int32Array(workerData.barrier);
const secrets = [];
for (let round = 0; round < workerData.rounds; round++) {
  Atomics.add(barrier, 1, 1);
  Atomics.wait(barrier, 0, round);
  try {
    secrets.push(demoSecret(`${workerData.root}/${round}`));
  } catch (err) {
    secrets.push(`error: ${err.message}`);
  }
}
parentPort.postMessage(secrets);
