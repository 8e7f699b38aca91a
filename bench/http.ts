/**
 * HTTP benchmark: requests per second and p99 latency through each framework, bare, with sessionkit
 * and with that framework's session peers, on a read-only route and a read+write route. Every server
 * runs in its own process pinned to core 0 and autocannon in another pinned to core 1 (when taskset
 * exists); all cases run in interleaved rounds. See bench/README.md.
 *
 * Run: npm run bench:http [-- --json] [-- --quick] [-- --filter=<regex on app names>]
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { APPS, type AppSpec, REDIS_PREFIX, REDIS_URL } from "./http/apps.js";
import type { LoadRequest, LoadResult } from "./http/loader.js";
import { hasTaskset, nextMessage, startChild } from "./lib/child.js";
import { CpuMonitor, cpuShareLine, processCpuSeconds } from "./lib/cpu.js";
import { interleave } from "./lib/measure.js";
import {
  type Check,
  commandLine,
  formatCheck,
  formatNumber,
  formatRate,
  formatRatio,
  loadLine,
  machineInfo,
  machineLine,
  markdownTable,
  type Summary,
  summarize,
  writeJson,
} from "./lib/report.js";

const QUICK = process.argv.includes("--quick");
const CONNECTIONS = 50;
const ROUNDS = QUICK ? 2 : 5;
const SECONDS = QUICK ? 0.15 : 2;
const WARMUP_SECONDS = QUICK ? 0.1 : 1;
const ROUTES = ["read", "write"] as const;
type Route = (typeof ROUTES)[number];
const SERVER = fileURLToPath(new URL("./http/server.ts", import.meta.url));
const LOADER = fileURLToPath(new URL("./http/loader.ts", import.meta.url));

interface Running {
  spec: AppSpec;
  child: ChildProcess;
  url: string;
  /** The Cookie header of a session written once (by one /write request). */
  cookie: string;
  /** Whether an unchanged session's read response carried Set-Cookie. */
  readSetsCookie: boolean;
}

/** The Cookie header a browser would send back: the last value set for each name. */
function cookieHeader(response: Response): string {
  const jar = new Map<string, string>();
  for (const line of response.headers.getSetCookie()) {
    const pair = line.split(";", 1)[0] as string;
    jar.set(pair.slice(0, pair.indexOf("=")), pair);
  }
  return [...jar.values()].join("; ");
}

/** Writes the session once, then checks both routes answer what they should. */
async function prepare(spec: AppSpec, child: ChildProcess, port: number): Promise<Running> {
  const url = `http://127.0.0.1:${port}`;
  const get = async (path: string, cookie?: string) => {
    const response = await fetch(url + path, { headers: cookie ? { cookie } : {} });
    const body = await response.text();
    if (response.status !== 200)
      throw new Error(`${spec.name} ${path}: HTTP ${response.status} ${body}`);
    return { response, body };
  };
  if (spec.side === "bare" || spec.side === "probe") {
    await get("/read");
    await get("/write");
    return { spec, child, url, cookie: "", readSetsCookie: false };
  }
  const first = await get("/write");
  const cookie = cookieHeader(first.response);
  if (first.body !== "1" || !cookie)
    throw new Error(`${spec.name}: the first write gave "${first.body}" and cookie "${cookie}"`);
  const read = await get("/read", cookie);
  if (read.body !== "1") throw new Error(`${spec.name}: read "${read.body}" after one write`);
  const write = await get("/write", cookie);
  if (write.body !== "2") throw new Error(`${spec.name}: the second write gave "${write.body}"`);
  return {
    spec,
    child,
    url,
    cookie,
    readSetsCookie: read.response.headers.getSetCookie().length > 0,
  };
}

interface Case {
  name: string;
  app: Running;
  route: Route;
}

let loader: ChildProcess | undefined;

async function load(item: Case, seconds: number): Promise<Sample> {
  if (!loader) throw new Error("no loader");
  const request: LoadRequest = {
    url: `${item.app.url}/${item.route}`,
    headers: item.app.cookie ? { cookie: item.app.cookie } : {},
    seconds,
    connections: CONNECTIONS,
  };
  const reply = nextMessage<LoadResult>(loader, `autocannon ${item.name}`, (seconds + 30) * 1000);
  const cpuBefore = processCpuSeconds(item.app.child.pid);
  loader.send(request);
  const result = await reply;
  const cpuAfter = processCpuSeconds(item.app.child.pid);
  const cpuUs =
    cpuBefore === undefined || cpuAfter === undefined || result.completed === 0
      ? Number.NaN
      : ((cpuAfter - cpuBefore) * 1e6) / result.completed;
  return { ...result, serverCpuUs: cpuUs };
}

interface Sample extends LoadResult {
  /** Server process CPU time per completed request, µs (user + system, from /proc; 10 ms ticks). */
  serverCpuUs: number;
}

async function deleteRedisKeys(): Promise<void> {
  const { createClient } = await import("redis");
  const client = createClient({ url: REDIS_URL });
  client.on("error", () => undefined);
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${REDIS_PREFIX}*`, COUNT: 500 })) {
      const list = (Array.isArray(keys) ? keys : [keys]) as string[];
      if (list.length > 0) await client.del(list);
    }
  } finally {
    await client.quit();
  }
}

interface RouteRow {
  rps: Summary;
  p99: Summary;
  /** Server CPU µs per request: hardly moved by other processes competing for the cores. */
  cpuUs: Summary;
  failures: number;
  /** Rounds that completed no request at all. */
  empty: number;
  samples: Sample[];
}

interface Row {
  name: string;
  framework: string;
  side: AppSpec["side"];
  store: AppSpec["store"];
  label: string;
  readSetsCookie: boolean;
  read: RouteRow;
  write: RouteRow;
  /** Median req/s over the framework's bare median, per route. */
  ofBare: Record<Route, number | undefined>;
  /** Median req/s over the best peer's (same framework, same store), per route. */
  vsBestPeer: Record<Route, number | undefined>;
  bestPeer: Record<Route, string | undefined>;
}

async function main(): Promise<void> {
  const wantJson = process.argv.includes("--json");
  const filterArg = process.argv.find((arg) => arg.startsWith("--filter="));
  const filter = filterArg ? new RegExp(filterArg.slice("--filter=".length), "i") : undefined;
  const specs = APPS.filter((spec) => !filter || filter.test(spec.name));
  const started = performance.now();
  const machine = machineInfo();
  const loadBefore = loadLine("start");
  const cpu = new CpuMonitor();
  const children: ChildProcess[] = [];
  const stop = () => {
    for (const child of children) if (child.exitCode === null) child.kill();
  };
  process.on("exit", stop);

  try {
    process.stderr.write(
      `starting ${specs.length} servers${hasTaskset ? " on core 0 and autocannon on core 1" : " (no taskset: not pinned)"}\n`,
    );
    loader = startChild(LOADER, [], 1);
    children.push(loader);
    cpu.add(loader.pid);
    const apps = await Promise.all(
      specs.map(async (spec) => {
        const child = startChild(SERVER, [spec.name], 0);
        children.push(child);
        cpu.add(child.pid);
        const { port } = await nextMessage<{ port: number }>(child, `server ${spec.name}`, 120_000);
        return prepare(spec, child, port);
      }),
    );

    const cases: Case[] = apps.flatMap((app) =>
      ROUTES.map((route) => ({ name: `${app.spec.name} ${route}`, app, route })),
    );
    process.stderr.write(`warming up ${cases.length} cases (${WARMUP_SECONDS} s each)\n`);
    for (const item of cases) await load(item, WARMUP_SECONDS);
    process.stderr.write(
      `measuring: ${ROUNDS} interleaved rounds of ${SECONDS} s per case, ${CONNECTIONS} connections\n`,
    );
    cpu.begin();
    const results = await interleave(
      cases,
      ROUNDS,
      (item) => load(item, SECONDS),
      (round, rounds) => process.stderr.write(`\rround ${round}/${rounds}`),
    );
    const share = cpu.end();
    process.stderr.write("\n");

    // ---- rows
    const routeRow = (app: Running, route: Route): RouteRow => {
      const samples = results.get(`${app.spec.name} ${route}`) ?? [];
      return {
        rps: summarize(samples.map((s) => s.rps)),
        p99: summarize(samples.map((s) => s.p99)),
        cpuUs: summarize(samples.map((s) => s.serverCpuUs).filter(Number.isFinite)),
        failures: samples.reduce((sum, s) => sum + s.failures, 0),
        empty: samples.filter((s) => s.completed === 0).length,
        samples,
      };
    };
    const rows: Row[] = apps.map((app) => ({
      name: app.spec.name,
      framework: app.spec.framework,
      side: app.spec.side,
      store: app.spec.store,
      label: app.spec.label,
      readSetsCookie: app.readSetsCookie,
      read: routeRow(app, "read"),
      write: routeRow(app, "write"),
      ofBare: { read: undefined, write: undefined },
      vsBestPeer: { read: undefined, write: undefined },
      bestPeer: { read: undefined, write: undefined },
    }));
    for (const row of rows) {
      const bare = rows.find((r) => r.framework === row.framework && r.side === "bare");
      const peers = rows.filter(
        (r) => r.framework === row.framework && r.store === row.store && r.side === "peer",
      );
      for (const route of ROUTES) {
        if (bare && row.side !== "bare")
          row.ofBare[route] = row[route].rps.median / bare[route].rps.median;
        if (row.side === "sessionkit" && peers.length > 0) {
          const best = peers.reduce((a, b) => (b[route].rps.median > a[route].rps.median ? b : a));
          row.bestPeer[route] = best.label;
          row.vsBestPeer[route] = row[route].rps.median / best[route].rps.median;
        }
      }
    }

    const pct = (value: number | undefined) =>
      value === undefined ? "-" : `${Math.round(value * 100)}%`;
    const table = markdownTable(
      [
        "framework",
        "setup",
        "read req/s",
        "min-max",
        "p99 ms",
        "CPU µs/req",
        "write req/s",
        "min-max",
        "p99 ms",
        "CPU µs/req",
        "of bare (r / w)",
        "vs best peer (r / w)",
      ],
      rows.map((r) => {
        const bad = r.read.failures + r.write.failures;
        const empty = r.read.empty + r.write.empty;
        const flags = [
          bad > 0 ? `${bad} failed responses` : "",
          empty > 0 ? `${empty} rounds without a response` : "",
        ].filter(Boolean);
        return [
          r.framework,
          `${r.label}${flags.length > 0 ? ` [${flags.join(", ")}]` : ""}`,
          formatRate(r.read.rps.median),
          `${formatRate(r.read.rps.min)}-${formatRate(r.read.rps.max)}`,
          formatNumber(r.read.p99.median),
          formatRate(r.read.cpuUs.median),
          formatRate(r.write.rps.median),
          `${formatRate(r.write.rps.min)}-${formatRate(r.write.rps.max)}`,
          formatNumber(r.write.p99.median),
          formatRate(r.write.cpuUs.median),
          r.side === "bare" ? "(ceiling)" : `${pct(r.ofBare.read)} / ${pct(r.ofBare.write)}`,
          r.vsBestPeer.read === undefined
            ? "-"
            : `${formatRatio(r.vsBestPeer.read)} / ${formatRatio(r.vsBestPeer.write)}`,
        ];
      }),
      [
        "left",
        "left",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
      ],
    );

    // ---- checks
    const checks: Check[] = [];
    const find = (
      framework: string,
      side: AppSpec["side"],
      store: AppSpec["store"],
      label?: RegExp,
    ) =>
      rows.find(
        (r) =>
          r.framework === framework &&
          r.side === side &&
          r.store === store &&
          (!label || label.test(r.label)),
      );
    const cpuRatio = (row: Row, other: Row, route: Route) =>
      formatRatio(other[route].cpuUs.median / row[route].cpuUs.median);
    const routesDetail = (row: Row, other: Row) =>
      ROUTES.map(
        (route) =>
          `${route} ${formatRatio(row[route].rps.median / other[route].rps.median)} (${formatRate(row[route].rps.median)} vs ${formatRate(other[route].rps.median)} req/s; CPU/req ${cpuRatio(row, other, route)})`,
      ).join(", ");
    for (const row of rows.filter(
      (r) => r.side === "sessionkit" && r.vsBestPeer.read !== undefined,
    )) {
      const beats = ROUTES.every((route) => {
        const ratio = row.vsBestPeer[route];
        return ratio !== undefined && Number.isFinite(ratio) && ratio > 1;
      });
      checks.push({
        label: `${row.framework}, ${row.store}: ${row.label} beats the best peer on read and write`,
        pass: beats,
        detail: ROUTES.map((route) => {
          const best = rows.find((r) => r.label === row.bestPeer[route]) as Row;
          return `${route} ${formatRatio(row.vsBestPeer[route])} vs ${best.label} (${formatRate(row[route].rps.median)} vs ${formatRate(best[route].rps.median)} req/s; CPU/req ${cpuRatio(row, best, route)})`;
        }).join("; "),
      });
    }
    const expressCookie = find("express", "sessionkit", "cookie");
    const expressBare = find("express", "bare", "none");
    if (expressCookie && expressBare) {
      for (const [route, target] of [
        ["read", 0.85],
        ["write", 0.75],
      ] as const) {
        const share = expressCookie.ofBare[route] ?? Number.NaN;
        checks.push({
          label: `Express, cookie sessions keep >= ${target * 100}% of bare Express on ${route}`,
          pass: share >= target,
          detail: `${pct(share)} (${formatRate(expressCookie[route].rps.median)} vs ${formatRate(expressBare[route].rps.median)} req/s; by CPU/req ${pct(expressBare[route].cpuUs.median / expressCookie[route].cpuUs.median)}; target >= ${target * 100}%)`,
        });
      }
    }
    for (const store of ["memory", "redis"] as const) {
      const ours = find("express", "sessionkit", store);
      const theirs = find("express", "peer", store);
      if (!ours || !theirs) continue;
      const pass = ROUTES.every(
        (route) => ours[route].rps.median >= 1.5 * theirs[route].rps.median,
      );
      checks.push({
        label: `Express, ${store} store: ${ours.label} >= 1.5x ${theirs.label} on read and write`,
        pass,
        detail: `${routesDetail(ours, theirs)}; target >= 1.5x`,
      });
    }
    // A peer too slow to answer within a round (h3's own useSession: PBKDF2 on every request, 50
    // requests in flight) is a fact about the peer, reported under the table; a sessionkit or bare
    // server with an empty round, or any non-2xx, spoils the run.
    const failed = rows.filter(
      (r) =>
        r.read.failures + r.write.failures > 0 ||
        (r.side !== "peer" && r.read.empty + r.write.empty > 0),
    );
    if (failed.length > 0) {
      checks.push({
        label:
          "every response was a 2xx, and every round of sessionkit and bare servers completed requests",
        pass: false,
        detail: failed
          .map(
            (r) =>
              `${r.label}: ${r.read.failures} read and ${r.write.failures} write failures, ${r.read.empty + r.write.empty} empty rounds`,
          )
          .join("; "),
      });
    }

    const seconds = (performance.now() - started) / 1000;
    const loadEnd = loadLine("end", { ownLoad: 2 });
    const lines = [
      "# sessionkit HTTP benchmark",
      "",
      machineLine(machine),
      `Command: ${commandLine()}`,
      loadBefore,
      loadEnd,
      cpuShareLine(share, "includes the Redis server two Express rows use"),
      `Method: autocannon ${CONNECTIONS} connections, GET /read (session written once before, its cookie sent; the handler reads a key) and GET /write (increments a counter); ${hasTaskset ? "each server in its own process on core 0, autocannon on core 1 (taskset)" : "not pinned (no taskset)"}; ${ROUNDS} interleaved rounds of ${SECONDS} s per case after ${WARMUP_SECONDS} s warm-up; median and min-max of the rounds' req/s, median of their p99 latencies. Run took ${seconds.toFixed(1)} s.`,
      "",
      table,
      "",
      ...checks.map(formatCheck),
      "",
      "Notes:",
      "- sessionkit rows: createSessions({ secret }) with defaults (encrypted cookie, AES-256-GCM) or with memoryStore() / redisStore() (node-redis); its framework adapter.",
      "- Peers with defaults as documented: express-session { resave: false, saveUninitialized: false }; @fastify/session with @fastify/cookie (its own MemoryStore); @fastify/secure-session with a 32-byte key; h3's useSession (iron); hono-sessions CookieStore (iron, encryptionKey) and MemoryStore (no encryptionKey, its cheapest setup).",
      `- Read responses that set a cookie on an unchanged session: ${
        rows
          .filter((r) => r.readSetsCookie)
          .map((r) => r.label)
          .join(", ") || "none"
      }.`,
      "- The write route of a cookie session re-seals the cookie on every request; the client keeps sending the first cookie, so every request does the same work.",
      `- Peers with rounds in which no request completed (their medians count those rounds as 0 req/s): ${
        rows
          .filter((r) => r.side === "peer" && r.read.empty + r.write.empty > 0)
          .map((r) => `${r.label} (${r.read.empty} read, ${r.write.empty} write)`)
          .join(", ") || "none"
      }.`,
      "- The Redis server runs unpinned on the same two cores; the Redis rows share them with it.",
      "- CPU µs/req: the server process's user+system CPU time over the requests it completed in the round (from /proc, 10 ms ticks), median of the rounds. Ratios marked CPU/req compare it (peer's over sessionkit's, so above 1x favours sessionkit): a verdict that holds on CPU time is not an artefact of other processes competing for the cores.",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);

    if (wantJson) {
      const file = fileURLToPath(new URL("./results/http.json", import.meta.url));
      await writeJson(file, {
        benchmark: "http",
        machine,
        command: commandLine(),
        method: {
          connections: CONNECTIONS,
          rounds: ROUNDS,
          seconds: SECONDS,
          warmupSeconds: WARMUP_SECONDS,
          pinned: hasTaskset,
          unit: "req/s",
        },
        rows,
        checks,
        load: { start: loadBefore, end: loadEnd },
        cpu: share,
        seconds,
      });
      process.stderr.write(`wrote ${file}\n`);
    }
  } finally {
    stop();
    if (specs.some((spec) => spec.store === "redis"))
      await deleteRedisKeys().catch(() => undefined);
  }
}

await main();
