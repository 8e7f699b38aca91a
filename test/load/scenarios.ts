/**
 * The reliability scenarios, sized by their options: `npm run load` runs them large, the vitest files
 * in test/reliability run them small. Each returns CheckResults with the figures it measured.
 *
 * - outage:      steady load through node:http and express while the store fails (a private,
 *                AOF-durable redis-server killed -9 and restarted; or every PostgreSQL connection of
 *                the app killed with pg_terminate_backend, again and again); 503s fast, no hang, no
 *                crash, no leak, recovery by itself, and no acknowledged write lost.
 * - concurrency: n parallel requests of one session through every adapter and store: each changing
 *                its own key (none lost), then all the same key (last writer wins).
 * - horizontal:  two app processes on one Redis (or the Redis Cluster); a client alternating between
 *                them keeps one session and loses no update.
 */
import { createSessions } from "../../src/manager.js";
import {
  type AdapterName,
  AppChild,
  type CheckResult,
  type ChildStats,
  Client,
  DATABASE_URL,
  type Hit,
  mb,
  openStore,
  PrivateRedis,
  percentile,
  runTag,
  SECRET,
  type StoreKind,
  sleep,
  startApp,
} from "./lib.js";

type Log = (line: string) => void;
const quiet: Log = () => {};

// ---------------------------------------------------------------------------------------------
// Outage
// ---------------------------------------------------------------------------------------------

export interface OutageOptions {
  store: "redis" | "postgres";
  adapters?: AdapterName[];
  /** Clients per adapter; each has its own session and increments its own key. */
  clientsPerAdapter: number;
  warmMs: number;
  outageMs: number;
  recoverMs: number;
  /** A request during the outage must be answered within this (the "quickly" of "503 quickly"). */
  maxOutageLatencyMs?: number;
  /** Post-GC heap growth from before the outage to after recovery that counts as a leak. */
  maxHeapGrowthBytes?: number;
  log?: Log;
}

interface LoadClient {
  adapter: AdapterName;
  key: string;
  client: Client;
  lastAck: number;
  hits: Hit[];
  regressions: string[];
}

export async function runOutage(options: OutageOptions): Promise<CheckResult> {
  const log = options.log ?? quiet;
  const adapters = options.adapters ?? (["node", "express"] as AdapterName[]);
  const maxOutageLatencyMs = options.maxOutageLatencyMs ?? 3000;
  const maxHeapGrowth = options.maxHeapGrowthBytes ?? 16 * 1_048_576;
  const tag = runTag(`skload_outage_${options.store}`);
  const name = `outage ${options.store} (${adapters.join("+")}, ${adapters.length * options.clientsPerAdapter} clients, ${options.outageMs} ms)`;
  const failures: string[] = [];
  let redis: PrivateRedis | undefined;
  let app: AppChild | undefined;
  let admin: any;
  try {
    if (options.store === "redis") redis = await PrivateRedis.start(true);
    app = await AppChild.start({
      adapters,
      store: {
        kind: options.store,
        tag,
        redisUrl: redis?.url,
        applicationName: tag,
      },
    });
    const urls = app.urls;
    const clients: LoadClient[] = adapters.flatMap((adapter) =>
      Array.from({ length: options.clientsPerAdapter }, (_, i) => ({
        adapter,
        key: `c${i}`,
        client: new Client(urls[adapter] as string),
        lastAck: 0,
        hits: [],
        regressions: [],
      })),
    );
    const quietBefore = await app.stats();
    let stop = false;
    const loop = async (c: LoadClient) => {
      for (let i = 0; i < 1_000_000 && !stop; i++) {
        const hit = await c.client.get(`/inc?k=${c.key}`);
        c.hits.push(hit);
        if (hit.status === 200) {
          const value = Number(hit.text);
          if (!(value > c.lastAck)) {
            c.regressions.push(
              `${c.adapter}/${c.key}: got ${value} after acknowledged ${c.lastAck}`,
            );
          }
          c.lastAck = Math.max(c.lastAck, value);
        } else {
          await sleep(20);
        }
      }
    };
    const running = clients.map(loop);
    await sleep(options.warmMs);
    const beforeOutage = await app.stats();

    // The outage.
    const outageStart = Date.now();
    let kills = 0;
    if (redis) {
      await redis.kill();
      log(`  redis-server on ${redis.port} killed (-9)`);
      await sleep(options.outageMs);
      await redis.restart();
      log("  redis-server restarted (AOF, appendfsync always)");
    } else {
      const { default: pg } = await import("pg");
      admin = new pg.Client({ connectionString: DATABASE_URL, application_name: `${tag}_admin` });
      await admin.connect();
      const until = Date.now() + options.outageMs;
      for (let round = 0; round < 100_000 && Date.now() < until; round++) {
        const result = await admin.query(
          "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1",
          [tag],
        );
        kills += result.rows[0]?.n ?? 0;
        await sleep(10);
      }
      log(`  ${kills} PostgreSQL connections of the app terminated over ${options.outageMs} ms`);
    }
    const outageEnd = Date.now();

    await sleep(options.recoverMs);
    const afterRecovery = await app.stats();
    stop = true;
    await Promise.all(running);
    await sleep(200);
    const quietAfter = await app.stats();

    // Verify every acknowledged value through a fresh read of each client's own session.
    let lost = 0;
    let extra = 0;
    for (const c of clients) {
      const read = await c.client.get("/read");
      const data = read.status === 200 ? (JSON.parse(read.text) as Record<string, number>) : {};
      const stored = data[c.key] ?? 0;
      if (read.status !== 200 || stored < c.lastAck) {
        lost++;
        failures.push(
          `${c.adapter}/${c.key}: read ${read.status} ${read.text.slice(0, 80)}, acknowledged ${c.lastAck}`,
        );
      } else if (stored > c.lastAck) extra += stored - c.lastAck;
      failures.push(...c.regressions);
    }

    // Classify the requests.
    const hits = clients.flatMap((c) => c.hits.map((hit) => ({ ...hit, adapter: c.adapter })));
    const during = hits.filter((h) => h.startedAt >= outageStart && h.startedAt < outageEnd);
    const statusCount = (list: Hit[]) => {
      const counts: Record<string, number> = {};
      for (const h of list) counts[h.status] = (counts[h.status] ?? 0) + 1;
      return counts;
    };
    const recovery: Record<string, number> = {};
    for (const adapter of adapters) {
      const first = hits
        .filter((h) => h.adapter === adapter && h.status === 200 && h.startedAt >= outageEnd)
        .sort((a, b) => a.startedAt - b.startedAt)[0];
      if (!first) failures.push(`${adapter}: no 2xx after the outage ended`);
      else recovery[adapter] = first.startedAt + first.ms - outageEnd;
    }
    const recoveredAt = outageEnd + Math.max(0, ...Object.values(recovery));
    const afterGrace = hits.filter((h) => h.startedAt > recoveredAt + 1000);
    const badAfter = afterGrace.filter((h) => h.status !== 200);
    if (badAfter.length > 0) {
      failures.push(
        `${badAfter.length} non-200 answers more than 1 s after recovery: ${JSON.stringify(statusCount(badAfter))}`,
      );
    }
    // Answered before the outage began (a request in flight at the kill may fairly get a 503).
    const before = hits.filter((h) => h.startedAt + h.ms < outageStart);
    const badBefore = before.filter((h) => h.status !== 200);
    if (badBefore.length > 0)
      failures.push(`${badBefore.length} non-200 answers before the outage`);
    const unexpected = hits.filter((h) => h.status !== 200 && h.status !== 503);
    if (unexpected.length > 0) {
      failures.push(
        `${unexpected.length} answers neither 200 nor 503 (0 = connection error, -1 = 10 s timeout): ${JSON.stringify(statusCount(unexpected))}; first: ${unexpected[0]?.error ?? unexpected[0]?.text.slice(0, 80)}`,
      );
    }
    const duringMax = Math.max(0, ...during.map((h) => h.ms));
    const during503 = during.filter((h) => h.status === 503);
    const max503 = Math.max(0, ...during503.map((h) => h.ms));
    if (duringMax > maxOutageLatencyMs) {
      failures.push(
        `slowest answer during the outage took ${duringMax.toFixed(0)} ms (bound ${maxOutageLatencyMs})`,
      );
    }
    if (options.store === "redis" && during503.length === 0)
      failures.push("no 503 during the outage");
    if (app.exited) failures.push(`app process exited: ${JSON.stringify(app.exited)}`);
    const growth = afterRecovery.heapUsed - beforeOutage.heapUsed;
    if (growth > maxHeapGrowth) failures.push(`post-GC heap grew ${mb(growth)} across the outage`);
    const timers = (s: ChildStats) => s.resources.Timeout ?? 0;
    // pg keeps one idle timer per pooled connection (at most 10 here); a leak grows with requests.
    if (timers(quietAfter) > timers(quietBefore) + 15) {
      failures.push(`live timers ${timers(quietBefore)} before, ${timers(quietAfter)} after`);
    }

    const figures = {
      requests: hits.length,
      statusesDuringOutage: statusCount(during),
      statusesOverall: statusCount(hits),
      maxLatencyDuringOutageMs: Math.round(duringMax),
      max503LatencyMs: Math.round(max503),
      p50_503LatencyMs: Number(
        percentile(
          during503.map((h) => h.ms),
          50,
        ).toFixed(1),
      ),
      p99LatencyBeforeOutageMs: Number(
        percentile(
          before.map((h) => h.ms),
          99,
        ).toFixed(1),
      ),
      recoveryMsByAdapter: Object.fromEntries(
        Object.entries(recovery).map(([k, v]) => [k, Math.round(v)]),
      ),
      acknowledgedWrites: hits.filter((h) => h.status === 200).length,
      lostAcknowledged: lost,
      unacknowledgedThatLanded: extra,
      pgConnectionsKilled: options.store === "postgres" ? kills : undefined,
      heapBeforeOutage: mb(beforeOutage.heapUsed),
      heapAfterRecovery: mb(afterRecovery.heapUsed),
      heapGrowth: mb(growth),
      rssBefore: mb(beforeOutage.rss),
      rssAfter: mb(afterRecovery.rss),
      timersQuietBefore: timers(quietBefore),
      timersQuietAfter: timers(quietAfter),
      errorsLoggedByApp: quietAfter.errorsLogged,
      appAlive: !app.exited,
    };
    const detail = `${hits.length} requests; during outage ${JSON.stringify(figures.statusesDuringOutage)}, max ${figures.maxLatencyDuringOutageMs} ms (503 p50 ${figures.p50_503LatencyMs} ms); recovered in ${JSON.stringify(figures.recoveryMsByAdapter)} ms; ${figures.acknowledgedWrites} acknowledged writes, ${lost} lost, ${extra} unacknowledged landed; heap ${figures.heapBeforeOutage} -> ${figures.heapAfterRecovery}; timers ${figures.timersQuietBefore} -> ${figures.timersQuietAfter}`;
    return { name, ok: failures.length === 0, detail, failures, figures };
  } catch (err) {
    failures.push(`threw: ${(err as Error).stack ?? err}`);
    return { name, ok: false, detail: "aborted", failures, figures: {} };
  } finally {
    await admin?.end().catch(() => undefined);
    const stderr = app?.stderr ?? "";
    await app?.stop().catch(() => undefined);
    if (options.store === "postgres") {
      const { cleanup, close } = await openStore({ kind: "postgres", tag });
      await cleanup().catch(() => undefined);
      await close().catch(() => undefined);
    }
    await redis?.stop().catch(() => undefined);
    if (stderr.trim()) log(`  app stderr (first 500 chars): ${stderr.slice(0, 500)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Concurrency: one session, n parallel requests
// ---------------------------------------------------------------------------------------------

export interface ConcurrencyOptions {
  stores: StoreKind[];
  adapters: AdapterName[];
  /** Parallel requests per round. */
  n: number;
  log?: Log;
}

export async function runConcurrency(options: ConcurrencyOptions): Promise<CheckResult[]> {
  const log = options.log ?? quiet;
  const results: CheckResult[] = [];
  for (const kind of options.stores) {
    const tag = runTag(`skload_conc_${kind}`);
    let opened: Awaited<ReturnType<typeof openStore>> | undefined;
    try {
      opened = await openStore({ kind, tag });
      const sessions = createSessions({ secret: SECRET, store: opened.store, idleTimeout: "1h" });
      for (const adapter of options.adapters) {
        results.push(await concurrencyOn(adapter, kind, sessions, options.n));
        log(
          `  ${results.at(-1)?.ok ? "ok  " : "FAIL"} ${results.at(-1)?.name}: ${results.at(-1)?.detail}`,
        );
      }
      if (opened.store.lock) {
        results.push(await lockedIncrements(kind, opened.store, options.n));
        log(
          `  ${results.at(-1)?.ok ? "ok  " : "FAIL"} ${results.at(-1)?.name}: ${results.at(-1)?.detail}`,
        );
      }
    } catch (err) {
      results.push({
        name: `concurrency ${kind}`,
        ok: false,
        detail: "aborted",
        failures: [String((err as Error).stack ?? err)],
        figures: {},
      });
    } finally {
      await opened?.close().catch(() => undefined);
      await opened?.cleanup().catch(() => undefined);
    }
  }
  return results;
}

/** With the `lock` option, n parallel read-modify-write increments of one key all count. */
async function lockedIncrements(
  kind: StoreKind,
  store: Awaited<ReturnType<typeof openStore>>["store"],
  n: number,
): Promise<CheckResult> {
  const name = `concurrency node x ${kind} with lock (${n} parallel increments of one key)`;
  const failures: string[] = [];
  const sessions = createSessions({
    secret: SECRET,
    store,
    idleTimeout: "1h",
    lock: { wait: "20s", ttl: "30s" },
  });
  const app = await startApp("node", sessions);
  try {
    const client = new Client(app.url);
    await client.get("/inc?k=seed");
    const t0 = performance.now();
    const hits = await Promise.all(
      Array.from({ length: n }, () => client.get("/inc?k=counter", { timeoutMs: 30_000 })),
    );
    const ms = performance.now() - t0;
    const bad = hits.filter((h) => h.status !== 200);
    if (bad.length > 0)
      failures.push(
        `${bad.length} increments not 200: ${bad[0]?.status} ${bad[0]?.text.slice(0, 60)}`,
      );
    const values = hits
      .filter((h) => h.status === 200)
      .map((h) => Number(h.text))
      .sort((a, b) => a - b);
    const distinct = new Set(values).size;
    if (distinct !== values.length)
      failures.push(`${values.length - distinct} increments answered a value twice`);
    const counter = Number(
      (JSON.parse((await client.get("/read")).text) as Record<string, unknown>).counter,
    );
    if (counter !== n) failures.push(`counter ${counter}, expected ${n}`);
    const figures = { counter, ms: Math.round(ms) };
    return {
      name,
      ok: failures.length === 0,
      detail: `counter ${counter}/${n} in ${figures.ms} ms`,
      failures,
      figures,
    };
  } finally {
    await app.close();
  }
}

async function concurrencyOn(
  adapter: AdapterName,
  kind: StoreKind,
  sessions: ReturnType<typeof createSessions<any>>,
  n: number,
): Promise<CheckResult> {
  const name = `concurrency ${adapter} x ${kind} (${n} parallel)`;
  const failures: string[] = [];
  const app = await startApp(adapter, sessions);
  try {
    const client = new Client(app.url);
    const seed = await client.get("/inc?k=seed");
    if (seed.status !== 200 || client.jar.size === 0) {
      failures.push(`seed request: ${seed.status} ${seed.text.slice(0, 80)}`);
      return { name, ok: false, detail: "no session", failures, figures: {} };
    }
    const cookieBefore = [...client.jar].join();

    // Own keys: every one must survive.
    const t0 = performance.now();
    const own = await Promise.all(
      Array.from({ length: n }, (_, i) => client.get(`/set?k=k${i}&v=${i}`)),
    );
    const ownMs = performance.now() - t0;
    const ownBad = own.filter((h) => h.status !== 200);
    if (ownBad.length > 0)
      failures.push(
        `${ownBad.length} own-key writes not 200: ${ownBad[0]?.status} ${ownBad[0]?.text.slice(0, 80)}`,
      );
    const data = JSON.parse((await client.get("/read")).text) as Record<string, unknown>;
    const lostKeys = Array.from({ length: n }, (_, i) => i).filter(
      (i) => data[`k${i}`] !== String(i),
    );
    if (lostKeys.length > 0)
      failures.push(`${lostKeys.length} of ${n} own keys lost, e.g. k${lostKeys[0]}`);
    if (data.seed !== 1) failures.push(`seed key changed: ${JSON.stringify(data.seed)}`);
    if ([...client.jar].join() !== cookieBefore) failures.push("the session cookie changed");

    // Same key: last writer wins; the result is one of the acknowledged values.
    const arrival: number[] = [];
    const same = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        client.get(`/set?k=same&v=${i}`).then((hit) => {
          if (hit.status === 200) arrival.push(i);
          return hit;
        }),
      ),
    );
    const sameBad = same.filter((h) => h.status !== 200);
    if (sameBad.length > 0) failures.push(`${sameBad.length} same-key writes not 200`);
    const after = JSON.parse((await client.get("/read")).text) as Record<string, unknown>;
    const winner = Number(after.same);
    if (!arrival.includes(winner))
      failures.push(`same key holds ${after.same}, not an acknowledged value`);
    const lastAnswered = arrival.at(-1);

    // Read-modify-write of one key without a lock: an observation, not a check (documented).
    const incs = await Promise.all(Array.from({ length: n }, () => client.get("/inc?k=counter")));
    const incOk = incs.filter((h) => h.status === 200).length;
    const counter = Number(
      (JSON.parse((await client.get("/read")).text) as Record<string, unknown>).counter,
    );
    const figures = {
      ownKeysLost: lostKeys.length,
      ownRoundMs: Math.round(ownMs),
      sameKeyWinner: winner,
      sameKeyWinnerWasLastAnswered: winner === lastAnswered,
      parallelIncrementsAcknowledged: incOk,
      counterAfterParallelIncrements: counter,
    };
    const detail = `${n} own-key writes in ${figures.ownRoundMs} ms, ${lostKeys.length} lost; same key -> v=${winner} (${winner === lastAnswered ? "the last answered" : `last answered was ${lastAnswered}`}); ${n} unlocked increments -> ${counter}`;
    return { name, ok: failures.length === 0, detail, failures, figures };
  } catch (err) {
    failures.push(String((err as Error).stack ?? err));
    return { name, ok: false, detail: "aborted", failures, figures: {} };
  } finally {
    await app.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Horizontal scale: two processes, one store
// ---------------------------------------------------------------------------------------------

export interface HorizontalOptions {
  backend: "redis" | "redis-cluster";
  /** Sequential increments, alternating between the processes. */
  increments: number;
  /** Parallel own-key writes, alternating between the processes. */
  parallel: number;
  log?: Log;
}

export async function runHorizontal(options: HorizontalOptions): Promise<CheckResult> {
  const log = options.log ?? quiet;
  const tag = runTag(`skload_hz_${options.backend.replace("-", "_")}`);
  const name = `horizontal 2 processes x ${options.backend} (${options.increments} alternating, ${options.parallel} parallel)`;
  const failures: string[] = [];
  const children: AppChild[] = [];
  try {
    const config = { adapters: ["node" as AdapterName], store: { kind: options.backend, tag } };
    children.push(...(await Promise.all([AppChild.start(config), AppChild.start(config)])));
    const [a, b] = children.map((c) => c.urls.node as string) as [string, string];
    log(`  processes ${children.map((c) => c.pid).join(", ")} at ${a}, ${b}`);
    const client = new Client(a);
    const t0 = performance.now();
    let wrong = 0;
    for (let i = 0; i < options.increments; i++) {
      const hit = await client.get("/inc?k=n", { base: i % 2 === 0 ? a : b });
      if (hit.status !== 200 || Number(hit.text) !== i + 1) {
        wrong++;
        if (wrong <= 3)
          failures.push(
            `increment ${i + 1} via ${i % 2 ? "B" : "A"}: ${hit.status} ${hit.text.slice(0, 60)}`,
          );
      }
    }
    const sequentialMs = performance.now() - t0;
    const readA = JSON.parse((await client.get("/read", { base: a })).text) as Record<
      string,
      unknown
    >;
    const readB = JSON.parse((await client.get("/read", { base: b })).text) as Record<
      string,
      unknown
    >;
    if (readA.n !== options.increments || readB.n !== options.increments) {
      failures.push(
        `counter reads ${readA.n} on A and ${readB.n} on B, expected ${options.increments}`,
      );
    }

    const parallel = await Promise.all(
      Array.from({ length: options.parallel }, (_, i) =>
        client.get(`/set?k=p${i}&v=${i}`, { base: i % 2 === 0 ? a : b }),
      ),
    );
    const bad = parallel.filter((h) => h.status !== 200);
    if (bad.length > 0) failures.push(`${bad.length} parallel writes not 200`);
    const final = JSON.parse((await client.get("/read", { base: b })).text) as Record<
      string,
      unknown
    >;
    const lost = Array.from({ length: options.parallel }, (_, i) => i).filter(
      (i) => final[`p${i}`] !== String(i),
    );
    if (lost.length > 0)
      failures.push(`${lost.length} of ${options.parallel} parallel own-key writes lost`);
    if (final.n !== options.increments)
      failures.push(`counter became ${final.n} after the parallel round`);
    for (const [i, child] of children.entries()) {
      if (child.exited) failures.push(`process ${i ? "B" : "A"} exited`);
    }
    const figures = {
      alternatingIncrements: options.increments,
      counter: final.n,
      wrongIncrementAnswers: wrong,
      sequentialMsPerRequest: Number((sequentialMs / options.increments).toFixed(2)),
      parallelWritesLost: lost.length,
    };
    const detail = `counter ${final.n}/${options.increments} (${figures.sequentialMsPerRequest} ms/request), ${wrong} wrong answers; ${options.parallel} parallel own-key writes across both, ${lost.length} lost`;
    return { name, ok: failures.length === 0, detail, failures, figures };
  } catch (err) {
    failures.push(String((err as Error).stack ?? err));
    return { name, ok: false, detail: "aborted", failures, figures: {} };
  } finally {
    await Promise.all(children.map((c) => c.stop().catch(() => undefined)));
    const { cleanup, close } = await openStore({ kind: options.backend, tag });
    await cleanup().catch(() => undefined);
    await close();
  }
}
