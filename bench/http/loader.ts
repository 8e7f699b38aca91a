/**
 * The load generator in its own process (pinned to its own core by bench/http.ts): runs autocannon
 * for each `{ url, headers, seconds, connections }` it receives over IPC and answers a summary.
 */
// autocannon ships no types; a specifier TypeScript does not resolve keeps this file independent
// of any ambient declaration elsewhere in the repository.
const autocannonModule = "autocannon";
const autocannon = (await import(autocannonModule)).default as (options: {
  url: string;
  headers: Record<string, string>;
  connections: number;
  duration: number;
  sampleInt: number;
}) => Promise<{
  requests: { total: number };
  latency: { p50: number; p99: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}>;

export interface LoadRequest {
  url: string;
  headers: Record<string, string>;
  seconds: number;
  connections: number;
}

export interface LoadResult {
  /** Completed requests per second over the run. */
  rps: number;
  p50: number;
  p99: number;
  completed: number;
  seconds: number;
  /** Responses that were not 2xx, plus errors and timeouts: any of these spoils the run. */
  failures: number;
}

if (!process.send) {
  console.error("started by bench/http.ts");
  process.exit(2);
}
process.on("disconnect", () => process.exit(0));
process.on("message", async (message: LoadRequest) => {
  const result = await autocannon({
    url: message.url,
    headers: message.headers,
    connections: message.connections,
    duration: message.seconds,
    // Samples every 100 ms: the run stops at the first sample after `duration`, so this bounds the overrun.
    sampleInt: 100,
  });
  const reply: LoadResult = {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    completed: result.requests.total,
    seconds: result.duration,
    failures: result.non2xx + result.errors + result.timeouts,
  };
  process.send?.(reply);
});
