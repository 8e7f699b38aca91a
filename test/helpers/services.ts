/**
 * Where the test servers are, and what to do when one is unreachable: in CI (CI=true) fail, so a
 * missing server can never pass for a green run; locally skip, loudly.
 */
import net from "node:net";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const MYSQL_URL = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
/** Comma-separated host:port seeds of the Redis Cluster. */
export const REDIS_CLUSTER_NODES = (
  process.env.REDIS_CLUSTER_NODES ?? "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"
)
  .split(",")
  .map((hostPort) => {
    const [host, port] = hostPort.trim().split(":");
    return { host: host ?? "127.0.0.1", port: Number(port) };
  });

export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Resolves true when the server at `url` accepts TCP connections. When it does not: throws in CI,
 * and locally prints a loud warning and resolves false (use with `describe.skipIf(!available)`).
 */
export async function serviceAvailable(name: string, url: string): Promise<boolean> {
  const parsed = new URL(url.includes("://") ? url : `tcp://${url}`);
  const ok = await reachable(parsed.hostname, Number(parsed.port));
  if (ok) return true;
  const message = `${name} is not reachable at ${parsed.host}: run "bash scripts/services.sh" (or set the URL variable)`;
  if (IN_CI) throw new Error(`${message}; in CI every server-backed test must run`);
  console.warn(`\n!!!!!!!!!!!!!!!!\n!!! SKIPPING ${name} tests: ${message}\n!!!!!!!!!!!!!!!!\n`);
  return false;
}
