/** Finding a test's own keys on a shared Redis server or cluster, which is never flushed. */
import type { Redis } from "ioredis";

/** Bounds every SCAN walk, as the load scripts bound every loop. */
const MAX_SCAN_ROUNDS = 10_000;

/**
 * Every key that starts with `prefix` on `nodes`: one server, or each master of a cluster (SCAN
 * walks one node). SCAN, never KEYS, so a large shared keyspace is not blocked.
 */
export async function scanPrefix(
  nodes: readonly Pick<Redis, "scan">[],
  prefix: string,
): Promise<string[]> {
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = "0";
    for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
      const [next, batch] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      keys.push(...batch);
      cursor = next;
      if (cursor === "0") break;
    }
  }
  return keys;
}
