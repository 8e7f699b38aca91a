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

/**
 * Per-command options passed to node-redis. `timeout` is node-redis' own bound on a command that
 * waits in its queue (v5 and later; v4 ignores it).
 */
export interface NodeRedisCommandOptions {
  timeout?: number;
}

/** The part of a node-redis client (`createClient`) the store uses. */
export interface NodeRedisClientLike {
  sendCommand(args: string[], options?: NodeRedisCommandOptions): Promise<unknown>;
  readonly isOpen: boolean;
  /** Connected and past the handshake; absent on clients older than node-redis 4. */
  readonly isReady?: boolean;
}

/** The part of a node-redis cluster (`createCluster`) the store uses. */
export interface NodeRedisClusterLike {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: NodeRedisCommandOptions,
  ): Promise<unknown>;
  readonly masters: readonly unknown[];
  readonly isReady?: boolean;
  nodeClient(node: never): Promise<NodeRedisClientLike>;
}

/** Any client `redisStore` accepts. */
export type RedisClientLike = IoredisClientLike | NodeRedisClientLike | NodeRedisClusterLike;

type Sender = (args: string[]) => Promise<unknown>;

/** Commands as the store sends them, each bounded by `commandTimeout`. */
export interface RedisClient {
  /** Sends one command; `key` routes it on a cluster. */
  send(args: string[], key: string | undefined): Promise<unknown>;
  /**
   * Runs a script by its SHA, loading it with EVAL when the server's cache lacks it. `keys` are its
   * KEYS (the first routes it on a cluster, where they must share its slot).
   */
  evalScript(script: Script, keys: string | readonly string[], args: string[]): Promise<unknown>;
  /** Whether the client is a cluster's, where a script reaches only keys of one slot. */
  readonly isCluster: boolean;
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
  const commands = commandsFor(client, commandTimeout);

  const withTimeout =
    commandTimeout === false
      ? <R>(promise: Promise<R>) => promise
      : createDeadlines(commandTimeout, () => {
          const cause = new Error(`no reply from Redis within ${commandTimeout} ms`);
          cause.name = "TimeoutError";
          return new StoreUnavailableError(
            `the redis store got no reply within ${commandTimeout} ms; check the server or raise commandTimeout`,
            { cause },
          );
        });

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

  async function evalScript(
    s: Script,
    keys: string | readonly string[],
    args: string[],
  ): Promise<unknown> {
    const named = typeof keys === "string" ? [keys] : keys;
    const key = named[0];
    const count = String(named.length);
    try {
      return await send(["EVALSHA", s.sha, count, ...named, ...args], key);
    } catch (err) {
      // NOSCRIPT is the protocol's error code (the reply's first word), not prose: after a restart
      // or on another cluster node the script cache is empty, and EVAL refills it.
      if (!isNoScript(err)) throw err;
      return send(["EVAL", s.source, count, ...named, ...args], key);
    }
  }

  async function masters(): Promise<Sender[]> {
    const senders = await withTimeout(commands.masters());
    // A cluster client knows no master while no node answers (ioredis empties its list): an outage,
    // not an empty keyspace.
    if (senders.length === 0) throw new Error("the Redis client knows no master node to scan");
    return senders.map((sender) => (args) => withTimeout(sender(args)));
  }

  return { send, evalScript, masters, isCluster: isCluster(client) };
}

/** One pending command: when it times out, and how to fail it (`undefined` once settled). */
interface Deadline {
  readonly at: number;
  reject: ((err: unknown) => void) | undefined;
  next: Deadline | undefined;
}

/**
 * Bounds each command's promise by `timeoutMs`. Every command gets the same bound, so deadlines come
 * in the order commands are sent: one FIFO list and one timer for its oldest entry replace a
 * `setTimeout` and `clearTimeout` per command. A connection answers in order, so settled entries
 * leave from the front at once and the list stays as short as the commands in flight. The timer runs
 * only while a command is pending. A command that timed out keeps its handlers, so its late
 * rejection is never unhandled.
 */
function createDeadlines(
  timeoutMs: number,
  timedOut: () => Error,
): <R>(promise: Promise<R>) => Promise<R> {
  let head: Deadline | undefined;
  let tail: Deadline | undefined;
  let pending = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function dropSettled(): void {
    while (head !== undefined && head.reject === undefined) head = head.next;
    if (head === undefined) tail = undefined;
  }

  function fire(): void {
    timer = undefined;
    const at = performance.now();
    while (head !== undefined && head.at <= at) {
      const reject = head.reject;
      head.reject = undefined;
      head = head.next;
      if (reject) {
        pending--;
        reject(timedOut());
      }
    }
    dropSettled();
    if (head !== undefined) timer = setTimeout(fire, Math.max(1, head.at - at));
  }

  function settle(entry: Deadline): void {
    entry.reject = undefined;
    if (--pending === 0) {
      clearTimeout(timer);
      timer = undefined;
      head = tail = undefined;
    } else if (entry === head) {
      dropSettled();
    }
  }

  return <R>(promise: Promise<R>) =>
    new Promise<R>((resolve, reject) => {
      const entry: Deadline = { at: performance.now() + timeoutMs, reject, next: undefined };
      if (tail === undefined) head = entry;
      else tail.next = entry;
      tail = entry;
      pending++;
      timer ??= setTimeout(fire, timeoutMs);
      promise.then(
        (value) => {
          if (entry.reject === undefined) return; // timed out already
          settle(entry);
          resolve(value);
        },
        (err: unknown) => {
          if (entry.reject === undefined) return;
          settle(entry);
          reject(err);
        },
      );
    });
}

function ioredisCommands(client: IoredisClientLike): Commands {
  const call = (c: IoredisClientLike) => (args: string[]) =>
    c.call(...(args as [string, ...string[]]));
  return {
    // ioredis finds the key (EVALSHA's included) and the slot itself.
    send: (args) => call(client)(args),
    masters: async () =>
      client.isCluster === true && client.nodes ? client.nodes("master").map(call) : [call(client)],
  };
}

/**
 * The options node-redis gets with each command. node-redis 5+ bounds every command that waits in
 * its queue with an `AbortSignal.timeout` of its own (5 s unless configured), made for every command:
 * on Node that signal costs more client CPU than the rest of a GET round trip. Once the client is
 * ready a command leaves the queue on the next write, so while ready the store's own (cheaper) timer
 * is the bound and node-redis gets `timeout: 0` (none). While the client is not ready (reconnecting,
 * commands held in its offline queue) node-redis gets the store's `commandTimeout`, so a command the
 * store has given up on is also dropped from the queue instead of being replayed on reconnect. With
 * `commandTimeout: false` the client's own settings apply unchanged.
 */
function nodeRedisOptions(
  target: { readonly isReady?: boolean },
  commandTimeout: number | false,
): () => NodeRedisCommandOptions | undefined {
  if (commandTimeout === false) return () => undefined;
  const ready: NodeRedisCommandOptions = Object.freeze({ timeout: 0 });
  const queued: NodeRedisCommandOptions = Object.freeze({ timeout: commandTimeout });
  return () => (target.isReady === false ? queued : ready);
}

function nodeRedisCommands(client: NodeRedisClientLike, commandTimeout: number | false): Commands {
  const options = nodeRedisOptions(client, commandTimeout);
  return {
    send: (args) => client.sendCommand(args, options()),
    masters: async () => [(args) => client.sendCommand(args, options())],
  };
}

function nodeRedisClusterCommands(
  cluster: NodeRedisClusterLike,
  commandTimeout: number | false,
): Commands {
  const options = nodeRedisOptions(cluster, commandTimeout);
  return {
    // Never "readonly": with `useReplicas` a lagging replica could still show a destroyed session.
    send: (args, key) => cluster.sendCommand(key, false, args, options()),
    masters: async () => {
      const clients = await Promise.all(cluster.masters.map((m) => cluster.nodeClient(m as never)));
      return clients.map((c) => {
        const nodeOptions = nodeRedisOptions(c, commandTimeout);
        return (args: string[]) => c.sendCommand(args, nodeOptions());
      });
    },
  };
}

/** Tells the four client kinds apart by shape, so no driver is imported to check `instanceof`. */
function commandsFor(client: unknown, commandTimeout: number | false): Commands {
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
    // node-redis sends nothing before connect(): every request would answer 503 with "The client is
    // closed". `isOpen` turns true as connect() is called (before it resolves) and false on close.
    if (c.isOpen === false) {
      throw new ConfigError(
        "redisStore: the node-redis client is not open; call await client.connect() before creating the store (or pass the client that connect() resolves to)",
      );
    }
    if (isNodeRedisCluster(c)) {
      return nodeRedisClusterCommands(c as unknown as NodeRedisClusterLike, commandTimeout);
    }
    return nodeRedisCommands(c as unknown as NodeRedisClientLike, commandTimeout);
  }
  if (typeof c?.then === "function") {
    throw new ConfigError(
      'redisStore: "client" got a Promise; await client.connect() first and pass the client itself',
    );
  }
  throw new ConfigError(
    'redisStore: "client" must be an ioredis Redis or Cluster, or a node-redis client or cluster',
  );
}

function isNodeRedisCluster(c: Record<string, unknown>): boolean {
  return typeof c.nodeClient === "function" && "masters" in c;
}

/** An ioredis `Cluster` or a node-redis cluster (told apart as `commandsFor` does). */
function isCluster(client: unknown): boolean {
  const c = client as Record<string, unknown>;
  return c.isCluster === true || isNodeRedisCluster(c);
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}
