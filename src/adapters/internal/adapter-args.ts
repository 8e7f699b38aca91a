/**
 * The checks every adapter's entry function runs once, when the app mounts it: a misspelt option
 * (`guard:` for `guards:`) would otherwise leave every route unguarded without a word, and something
 * that is not a manager would fail only on the first request, as a 500 with a TypeError.
 */
import { ConfigError } from "../../errors.js";
import { rejectUnknown } from "../../internal/unknown-options.js";

/**
 * Throws a ConfigError unless `sessions` has a manager's `load` and `commit`, saying what was passed
 * instead. Never echoes the value: an options object would bring its secret.
 */
export function checkSessions(where: string, sessions: unknown): void {
  const value = sessions as Record<string, unknown> | null | undefined;
  if (typeof value?.load === "function" && typeof value.commit === "function") return;
  throw new ConfigError(
    `${where} needs the manager createSessions() returns as its first argument, but ${describe(value)}`,
  );
}

/**
 * Throws a ConfigError for an options value that is not an object, an unknown key (with a
 * did-you-mean), `guards` that are not a list of functions or an `ip` that is not a function.
 */
export function checkOptions(where: string, options: unknown, known: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigError(`${where} takes its options as an object: { ${known.join(", ")} }`);
  }
  rejectUnknown(options, known, `${where} option`);
  const { guards, ip } = options as { guards?: unknown; ip?: unknown };
  if (
    guards !== undefined &&
    !(Array.isArray(guards) && guards.every((guard) => typeof guard === "function"))
  ) {
    throw new ConfigError(
      `${where}: "guards" must be a list of guard functions, e.g. { guards: [requireSession(...)] }`,
    );
  }
  if (ip !== undefined && typeof ip !== "function") {
    throw new ConfigError(
      `${where}: "ip" must be a function returning the client's address, not a header name or an address`,
    );
  }
}

function describe(value: Record<string, unknown> | null | undefined): string {
  if (value === undefined || value === null) {
    return `got ${value}: is the manager created after this line, or not exported where it is made?`;
  }
  if (typeof value === "function") {
    return "got a function: pass createSessions({ ... })'s result, not createSessions or the adapter itself";
  }
  if (typeof value !== "object") return `got a ${typeof value}`;
  if (typeof value.register === "function" && typeof value.addHook === "function") {
    return "got a Fastify instance: register the plugin the adapter returns, app.register(session(sessions))";
  }
  if (typeof value.get === "function" && typeof value.patch === "function") {
    return "got a session store: pass createSessions({ secret, store }) instead";
  }
  if ("secret" in value || "store" in value || "cookie" in value) {
    return "got createSessions' options: pass createSessions(options) instead";
  }
  if ("headers" in value || "req" in value) {
    return "got a request or context: call the adapter with your manager when mounting it, e.g. app.use(session(sessions))";
  }
  return "got an object without load() and commit()";
}

/** Throws a ConfigError unless `handler` is a function (withSession(sessions, options) forgot it). */
export function checkHandler(where: string, handler: unknown): void {
  if (typeof handler !== "function") {
    throw new ConfigError(`${where} takes (sessions, handler, options?): the handler is missing`);
  }
}
