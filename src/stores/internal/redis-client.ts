/**
 * The one seam between the Redis store's logic and the four client kinds (ioredis `Redis` and
 * `Cluster`, node-redis client and cluster): telling them apart by shape, routing a command, one
 * sender per master for SCAN, EVALSHA with its NOSCRIPT fallback, and the per-command timeout.
 */
import { ConfigError, StoreUnavailableError } from "../../errors.js";
import type { Script } from "./redis-scripts.js";

/**
 * The part of an ioredis `Redis` or `Cluster` the store uses. Structural, so that neither driver's
 * types are needed to compile against this module.
 */
export interface IoredisClientLike {
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
  readonly status: string;
  readonly isCluster?: boolean;
  nodes?(role?: "master" | "slave" | "all"): IoredisClientLike[];
}

/** The part of a node-redis client (`createClient`) the store uses. */
export interface NodeRedisClientLike {
  sendCommand(args: string[]): Promise<unknown>;
  readonly isOpen: boolean;
}

/** The part of a node-redis cluster (`createCluster`) the store uses. */
export interface NodeRedisClusterLike {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
  ): Promise<unknown>;
  readonly masters: readonly unknown[];
  nodeClient(node: never): Promise<NodeRedisClientLike>;
}

/** Any client `redisStore` accepts. */
export type RedisClientLike = IoredisClientLike | NodeRedisClientLike | NodeRedisClusterLike;

type Sender = (args: string[]) => Promise<unknown>;

/** Commands as the store sends them, each bounded by `commandTimeout`. */
export interface RedisClient {
  /** Sends one command; `key` routes it on a cluster. */
  send(args: string[], key: string | undefined): Promise<unknown>;
  /** Runs a one-key script by its SHA, loading it with EVAL when the server's cache lacks it. */
  evalScript(script: Script, key: string, args: string[]): Promise<unknown>;
  /** One sender per master, for SCAN. */
  masters(): Promise<Sender[]>;
}

/** How the four client kinds send a command, before any timeout. */
interface Commands {
  send(args: string[], key: string | undefined): Promise<unknown>;
  masters(): Promise<Sender[]>;
}

/**
 * Wraps the client the user passed in; throws `ConfigError` for anything that is not a supported
 * client, or an ioredis client with a `keyPrefix`.
 */
export function createRedisClient(client: unknown, commandTimeout: number | false): RedisClient {
  const commands = commandsFor(client);

  function withTimeout<R>(promise: Promise<R>): Promise<R> {
    if (commandTimeout === false) return promise;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const cause = new Error(`no reply from Redis within ${commandTimeout} ms`);
        cause.name = "TimeoutError";
        reject(
          new StoreUnavailableError(
            `the redis store got no reply within ${commandTimeout} ms; check the server or raise commandTimeout`,
            { cause },
          ),
        );
      }, commandTimeout);
    });
    // Promise.race keeps a handler on the losing command, so its late rejection is not unhandled.
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  function send(args: string[], key: string | undefined): Promise<unknown> {
    let sent: Promise<unknown>;
    try {
      sent = commands.send(args, key);
    } catch (err) {
      // A driver may throw synchronously (e.g. a closed node-redis client).
      sent = Promise.reject(err);
    }
    return withTimeout(sent);
  }

  async function evalScript(s: Script, key: string, args: string[]): Promise<unknown> {
    try {
      return await send(["EVALSHA", s.sha, "1", key, ...args], key);
    } catch (err) {
      // NOSCRIPT is the protocol's error code (the reply's first word), not prose: after a restart
      // or on another cluster node the script cache is empty, and EVAL refills it.
      if (!isNoScript(err)) throw err;
      return send(["EVAL", s.source, "1", key, ...args], key);
    }
  }

  async function masters(): Promise<Sender[]> {
    return (await commands.masters()).map((sender) => (args) => withTimeout(sender(args)));
  }

  return { send, evalScript, masters };
}

function ioredisCommands(client: IoredisClientLike): Commands {
  const call = (c: IoredisClientLike) => (args: string[]) =>
    c.call(args[0] as string, ...args.slice(1));
  return {
    // ioredis finds the key (EVALSHA's included) and the slot itself.
    send: (args) => call(client)(args),
    masters: async () =>
      client.isCluster === true && client.nodes ? client.nodes("master").map(call) : [call(client)],
  };
}

function nodeRedisCommands(client: NodeRedisClientLike): Commands {
  return {
    send: (args) => client.sendCommand(args),
    masters: async () => [(args) => client.sendCommand(args)],
  };
}

function nodeRedisClusterCommands(cluster: NodeRedisClusterLike): Commands {
  return {
    // Never "readonly": with `useReplicas` a lagging replica could still show a destroyed session.
    send: (args, key) => cluster.sendCommand(key, false, args),
    masters: async () => {
      const clients = await Promise.all(cluster.masters.map((m) => cluster.nodeClient(m as never)));
      return clients.map((c) => (args: string[]) => c.sendCommand(args));
    },
  };
}

/** Tells the four client kinds apart by shape, so no driver is imported to check `instanceof`. */
function commandsFor(client: unknown): Commands {
  const c = client as Record<string, unknown> | null;
  if (c && typeof c.call === "function" && typeof c.status === "string") {
    const options = c.options as
      | { keyPrefix?: string; redisOptions?: { keyPrefix?: string } }
      | undefined;
    if (options?.keyPrefix || options?.redisOptions?.keyPrefix) {
      throw new ConfigError(
        'redisStore: the ioredis client has a keyPrefix; remove it and pass the "prefix" option instead',
      );
    }
    return ioredisCommands(c as unknown as IoredisClientLike);
  }
  if (c && typeof c.sendCommand === "function") {
    if (typeof c.nodeClient === "function" && "masters" in c) {
      return nodeRedisClusterCommands(c as unknown as NodeRedisClusterLike);
    }
    return nodeRedisCommands(c as unknown as NodeRedisClientLike);
  }
  throw new ConfigError(
    'redisStore: "client" must be an ioredis Redis or Cluster, or a node-redis client or cluster',
  );
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}
