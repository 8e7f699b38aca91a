/** What the reliability tests share: which servers are up, and a failure list that reads well. */
import { spawnSync } from "node:child_process";
import { expect } from "vitest";
import {
  DATABASE_URL,
  IN_CI,
  MYSQL_URL,
  REDIS_CLUSTER_NODES,
  REDIS_URL,
  serviceAvailable,
} from "../helpers/services.js";
import type { CheckResult } from "../load/lib.js";

const seed = REDIS_CLUSTER_NODES[0] ?? { host: "127.0.0.1", port: 7000 };

/** Resolved once per file: a missing server skips its tests locally and fails them in CI. */
export async function services() {
  const [redis, postgres, mysql, cluster] = await Promise.all([
    serviceAvailable("Redis", REDIS_URL),
    serviceAvailable("PostgreSQL", DATABASE_URL),
    serviceAvailable("MySQL", MYSQL_URL),
    serviceAvailable("Redis Cluster", `redis://${seed.host}:${seed.port}`),
  ]);
  const redisServer = spawnSync("redis-server", ["--version"]).status === 0;
  if (!redisServer) {
    const message = "redis-server is not installed: the private-server outage test cannot run";
    if (IN_CI) throw new Error(message);
    console.warn(`!!! SKIPPING: ${message}`);
  }
  return { redis, postgres, mysql, cluster, redisServer };
}

/** Asserts a scenario passed, showing its failures and figures when it did not. */
export function expectPassed(result: CheckResult): void {
  expect({ name: result.name, failures: result.failures }).toEqual({
    name: result.name,
    failures: [],
  });
  expect(result.ok).toBe(true);
}
