/**
 * A small interleaved sampler for sub-100 µs operations.
 *
 * Why not tinybench here: tinybench times every call on its own and runs each task in one block.
 * For a few-µs operation on a shared 2-core machine, that (a) reports per-call medians that leave
 * out the garbage collection an operation causes (tinybench gave raw AES-GCM p50 14.0 µs but mean
 * 23.8 µs on the same run), and (b) lets a burst of background load land on one task only and
 * skew its ratio to the others. Here each sample is a timed batch (GC included, amortised over
 * the batch), and the samples of all cases are taken round-robin, so drift hits every case alike.
 * Many short batches beat a few long ones on a shared machine: a scheduler time slice lost to
 * another process spoils one short batch (which the median drops) instead of every long one.
 * Async cases are awaited one at a time, as a request handler would; sync cases are called bare.
 *
 * Each batch also records the process CPU time it used (`process.cpuUsage`, all threads: the
 * libuv pool that runs Web Crypto and the GC helpers count too). Wall time is the latency a caller
 * sees; CPU time is what the work costs and hardly moves when other processes share the cores.
 */
import { median } from "./report.js";

export interface Case {
  name: string;
  /** One operation. A returned promise is awaited before the next call. */
  fn: () => unknown;
  /** True when `fn` returns a promise. */
  async: boolean;
}

export interface MeasureOptions {
  /** Timed batches per case. Default 15. */
  samples?: number;
  /** Target wall time of one batch, in ms. Default 60. */
  sampleMs?: number;
  /** Untimed calls per case before calibration, in ms. Default 300. */
  warmupMs?: number;
  /** Called after each round, for progress output. */
  onRound?: (round: number, rounds: number) => void;
}

/** Keeps results reachable so the optimiser cannot drop the work. */
export let sink: unknown;

/** µs per operation of each timed batch, as wall time and as process CPU time. */
export interface Samples {
  wall: number[];
  cpu: number[];
}

async function runBatch(item: Case, count: number): Promise<number> {
  const { fn } = item;
  const start = performance.now();
  if (item.async) {
    for (let i = 0; i < count; i++) sink = await fn();
  } else {
    for (let i = 0; i < count; i++) sink = fn();
  }
  return performance.now() - start;
}

async function runTimedBatch(
  item: Case,
  count: number,
): Promise<{ wallMs: number; cpuMs: number }> {
  const cpuStart = process.cpuUsage();
  const wallMs = await runBatch(item, count);
  const cpu = process.cpuUsage(cpuStart);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function runFor(item: Case, ms: number): Promise<{ calls: number; elapsed: number }> {
  let calls = 0;
  let elapsed = 0;
  let batch = 1;
  while (elapsed < ms) {
    elapsed += await runBatch(item, batch);
    calls += batch;
    batch = Math.min(batch * 2, 4096);
  }
  return { calls, elapsed };
}

/** µs per operation for every case: one value per timed batch. */
export async function measure(
  cases: readonly Case[],
  options: MeasureOptions = {},
): Promise<Map<string, Samples>> {
  const samples = options.samples ?? 15;
  const sampleMs = options.sampleMs ?? 60;
  const warmupMs = options.warmupMs ?? 300;

  const batchSize = new Map<string, number>();
  for (const item of cases) {
    await runFor(item, warmupMs);
    // Calibrate from a median of short runs: one slow start must not size every batch.
    const perCall: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { calls, elapsed } = await runFor(item, sampleMs / 5);
      perCall.push(elapsed / calls);
    }
    batchSize.set(item.name, Math.max(1, Math.round(sampleMs / median(perCall))));
  }

  const results = new Map<string, Samples>(cases.map((item) => [item.name, { wall: [], cpu: [] }]));
  for (let round = 0; round < samples; round++) {
    // Rotate the order each round so no case always runs right after the same neighbour.
    for (let i = 0; i < cases.length; i++) {
      const item = cases[(i + round) % cases.length] as Case;
      const count = batchSize.get(item.name) as number;
      const { wallMs, cpuMs } = await runTimedBatch(item, count);
      const samples = results.get(item.name) as Samples;
      samples.wall.push((wallMs * 1000) / count);
      samples.cpu.push((cpuMs * 1000) / count);
    }
    options.onRound?.(round + 1, samples);
  }
  return results;
}

/**
 * Runs `run` for every case in `rounds` interleaved rounds, rotating the order each round so no case
 * always follows the same neighbour, and collects one value per case per round. For measurements
 * that take a fixed time each (a load test, a throughput window) rather than a calibrated batch.
 */
export async function interleave<C extends { name: string }, R>(
  cases: readonly C[],
  rounds: number,
  run: (item: C, round: number) => Promise<R>,
  onRound?: (round: number, rounds: number) => void,
): Promise<Map<string, R[]>> {
  const results = new Map<string, R[]>(cases.map((item) => [item.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < cases.length; i++) {
      const item = cases[(i + round) % cases.length] as C;
      (results.get(item.name) as R[]).push(await run(item, round));
    }
    onRound?.(round + 1, rounds);
  }
  return results;
}
