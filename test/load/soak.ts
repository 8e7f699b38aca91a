/**
 * `npm run soak`: a steady load of 50 connections (autocannon) against a node:http app in its own
 * process, once per store (memory, SQLite, Redis), sampling the app's heap and RSS every minute.
 * Every request increments a counter in one of 50 sessions (one per connection), so every request
 * is a store write. Passes when there are zero errors, timeouts and non-2xx answers, the post-GC heap
 * grows less than --max-growth-mb, and the counters add up to the 2xx count (no lost update).
 *
 *   npm run soak                                # 10 minutes per store
 *   npm run soak -- --minutes 2                 # 2 minutes per store
 *   npm run soak -- --seconds 10 --stores memory --sample-seconds 2
 *   npm run soak -- --json soak.json            # also write every figure as JSON
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import {
  AppChild,
  type CheckResult,
  Client,
  machineLine,
  mb,
  openStore,
  printSummary,
  runTag,
  type StoreKind,
} from "./lib.js";

export interface SoakOptions {
  store: Extract<StoreKind, "memory" | "sqlite" | "redis">;
  seconds: number;
  connections?: number;
  sampleSeconds?: number;
  maxGrowthBytes?: number;
  /** Seconds of load before the baseline heap is taken; default 2. */
  warmSeconds?: number;
  log?: (line: string) => void;
}

export interface SoakSample {
  at: number;
  heapUsed: number;
  rss: number;
  /** The machine's 1-minute load average: other work on the machine skews latency. */
  load: number;
}

export async function runSoak(options: SoakOptions): Promise<CheckResult> {
  const log = options.log ?? (() => {});
  const connections = options.connections ?? 50;
  const sampleSeconds = options.sampleSeconds ?? 60;
  const maxGrowth = options.maxGrowthBytes ?? 32 * 1_048_576;
  const tag = runTag(`skload_soak_${options.store}`);
  const name = `soak node:http x ${options.store} (${connections} connections, ${options.seconds} s)`;
  const failures: string[] = [];
  let app: AppChild | undefined;
  try {
    app = await AppChild.start({ adapters: ["node"], store: { kind: options.store, tag } });
    const url = app.urls.node as string;
    // One session per connection.
    const cookies: string[] = [];
    for (let i = 0; i < connections; i++) {
      const client = new Client(url);
      const hit = await client.get("/inc?k=n");
      if (hit.status !== 200) throw new Error(`creating session ${i}: ${hit.status}`);
      cookies.push([...client.jar].map(([n, v]) => `${n}=${v}`).join("; "));
    }
    // A short warm-up, so the baseline heap includes JIT'd code and filled pools.
    await autocannon({ url: `${url}/inc?k=warm`, connections, duration: options.warmSeconds ?? 2 });
    const start = await app.stats();
    const samples: SoakSample[] = [
      { at: 0, heapUsed: start.heapUsed, rss: start.rss, load: os.loadavg()[0] ?? 0 },
    ];
    const t0 = Date.now();
    let nextCookie = 0;
    const running = autocannon({
      url: `${url}/inc?k=n`,
      connections,
      duration: options.seconds,
      timeout: 10,
      setupClient: (client: { setHeaders(h: Record<string, string>): void }) => {
        client.setHeaders({ cookie: cookies[nextCookie++ % connections] as string });
      },
    });
    const sampler = setInterval(() => {
      app
        ?.sample()
        .then((s) => {
          const load = os.loadavg()[0] ?? 0;
          samples.push({ at: Date.now() - t0, heapUsed: s.heapUsed, rss: s.rss, load });
          log(
            `  ${((Date.now() - t0) / 1000).toFixed(0)} s: heap ${mb(s.heapUsed)}, rss ${mb(s.rss)}, load ${load.toFixed(1)}`,
          );
        })
        .catch(() => undefined);
    }, sampleSeconds * 1000);
    const result = await running;
    clearInterval(sampler);
    const end = await app.stats();
    samples.push({
      at: Date.now() - t0,
      heapUsed: end.heapUsed,
      rss: end.rss,
      load: os.loadavg()[0] ?? 0,
    });

    // Every acknowledged increment is in a counter: sum of counters vs the 2xx count.
    let sum = 0;
    for (const cookie of cookies) {
      const read = await fetch(`${url}/read`, { headers: { cookie } });
      const data = (await read.json()) as { n?: number };
      sum += (data.n ?? 0) - 1; // minus the request that created the session
    }
    const ok2xx = result["2xx"];
    const errors = result.errors + result.timeouts + result.non2xx;
    if (errors > 0) {
      failures.push(
        `${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`,
      );
    }
    if (sum < ok2xx)
      failures.push(`counters sum to ${sum}, but ${ok2xx} increments were answered 2xx`);
    if (sum > ok2xx + connections)
      failures.push(`counters sum to ${sum}, over ${ok2xx} + ${connections} in flight`);
    const growth = end.heapUsed - start.heapUsed;
    if (growth > maxGrowth) failures.push(`post-GC heap grew ${mb(growth)}`);
    if (app.exited) failures.push(`app exited: ${JSON.stringify(app.exited)}`);
    const figures = {
      store: options.store,
      seconds: options.seconds,
      connections,
      requests: result.requests.total,
      requestsPerSecond: Math.round(result.requests.average),
      latencyP50Ms: result.latency.p50,
      latencyP99Ms: result.latency.p99,
      latencyMaxMs: result.latency.max,
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      countersSum: sum,
      answered2xx: ok2xx,
      heapStartGc: mb(start.heapUsed),
      heapEndGc: mb(end.heapUsed),
      heapGrowth: mb(growth),
      rssStart: mb(start.rss),
      rssEnd: mb(end.rss),
      rssMax: mb(Math.max(...samples.map((s) => s.rss))),
      samples: samples.map((s) => ({
        minute: Number((s.at / 60_000).toFixed(2)),
        heap: mb(s.heapUsed),
        rss: mb(s.rss),
        load: Number(s.load.toFixed(1)),
      })),
      loadAverageMax: Number(Math.max(...samples.map((s) => s.load)).toFixed(1)),
    };
    const detail = `${figures.requests} requests (${figures.requestsPerSecond}/s), p50 ${figures.latencyP50Ms} ms, p99 ${figures.latencyP99Ms} ms, max ${figures.latencyMaxMs} ms; ${errors} errors; counters ${sum} vs ${ok2xx} 2xx; heap (post-GC) ${figures.heapStartGc} -> ${figures.heapEndGc}, rss ${figures.rssStart} -> ${figures.rssEnd}`;
    return { name, ok: failures.length === 0, detail, failures, figures };
  } catch (err) {
    failures.push(String((err as Error).stack ?? err));
    return { name, ok: false, detail: "aborted", failures, figures: {} };
  } finally {
    await app?.stop().catch(() => undefined);
    const { cleanup, close } = await openStore({ kind: options.store, tag });
    await cleanup().catch(() => undefined);
    await close().catch(() => undefined);
  }
}

/** The per-minute samples of several soak runs as one markdown table. */
export function samplesTable(results: CheckResult[]): string {
  const lines = [
    "| store | minute | heap used | RSS | machine load (1 min) |",
    "|---|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const samples = (r.figures.samples ?? []) as Array<{
      minute: number;
      heap: string;
      rss: string;
      load: number;
    }>;
    for (const s of samples) {
      lines.push(`| ${r.figures.store} | ${s.minute} | ${s.heap} | ${s.rss} | ${s.load} |`);
    }
  }
  return lines.join("\n");
}

export function summaryTable(results: CheckResult[]): string {
  const lines = [
    "| store | duration | requests | req/s | p50 | p99 | max | errors | heap start -> end (post-GC) | RSS start -> end (max) | max load |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|",
  ];
  for (const r of results) {
    const f = r.figures as Record<string, unknown>;
    lines.push(
      `| ${f.store} | ${f.seconds} s | ${f.requests} | ${f.requestsPerSecond} | ${f.latencyP50Ms} ms | ${f.latencyP99Ms} ms | ${f.latencyMaxMs} ms | ${Number(f.errors) + Number(f.timeouts) + Number(f.non2xx)} | ${f.heapStartGc} -> ${f.heapEndGc} | ${f.rssStart} -> ${f.rssEnd} (${f.rssMax}) | ${f.loadAverageMax} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seconds = flag("seconds")
    ? Number(flag("seconds"))
    : Math.round(Number(flag("minutes") ?? 10) * 60);
  if (!(seconds > 0 && seconds <= 24 * 3600)) throw new Error("--minutes/--seconds out of range");
  const stores = (flag("stores") ?? "memory,sqlite,redis").split(",") as SoakOptions["store"][];
  const sampleSeconds = Number(flag("sample-seconds") ?? Math.min(60, Math.max(1, seconds / 5)));
  const connections = Number(flag("connections") ?? 50);
  console.log(`sessionkit soak, ${new Date().toISOString()}\n${machineLine()}`);
  console.log(
    `${connections} connections, ${seconds} s per store, samples every ${sampleSeconds} s\n`,
  );
  const results: CheckResult[] = [];
  for (const store of stores) {
    console.log(`--- ${store}`);
    const result = await runSoak({
      store,
      seconds,
      connections,
      sampleSeconds,
      log: (line) => console.log(line),
    });
    console.log(`  ${result.ok ? "ok" : "FAIL"}: ${result.detail}`);
    results.push(result);
  }
  console.log(`\n${summaryTable(results)}\n\n${samplesTable(results)}`);
  const json = flag("json");
  if (json) {
    writeFileSync(
      json,
      JSON.stringify({ at: new Date().toISOString(), machine: machineLine(), results }, null, 2),
    );
  }
  const failed = printSummary(results);
  process.exit(failed > 0 ? 1 : 0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
