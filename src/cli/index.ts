#!/usr/bin/env node
/**
 * The `sessionkit` command: `secret`, `inspect`, `purge`, `migrate`. Every check it makes is the
 * library's own (token opener, key ring, record decoder, stores); it never prints a secret.
 *
 * @example
 * ```sh
 * npx sessionkit secret
 * SESSIONKIT_SECRET=... npx sessionkit inspect "e1.Ab12Cd.…"
 * npx sessionkit purge --store postgres://app@db/app
 * ```
 * @module
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { backend } from "#crypto-backend";
import { INSPECT_USAGE, inspectCommand } from "./inspect.js";
import { type CliIo, describeError, EXIT, UsageError } from "./io.js";
import { MIGRATE_USAGE, PURGE_USAGE, storeCommand } from "./store.js";

export type { CliIo } from "./io.js";

/** 256 bits, as OWASP and the `secret` option ask (>= 32 characters once encoded). */
const SECRET_BYTES = 32;

const SECRET_USAGE = `Usage: sessionkit secret

Prints a fresh random secret: ${SECRET_BYTES} bytes from the platform CSPRNG, base64url (43 characters).
Put it in your secret store and pass it as createSessions({ secret }). To rotate, put the new secret
first and keep the old one after it until the old cookies have expired.`;

export const USAGE = `Usage: sessionkit <command> [options]

Commands:
  secret                        print a fresh 32-byte secret (base64url)
  inspect <token>               open a session token with $SESSIONKIT_SECRET and print what it holds
  purge --store <url>           delete expired sessions from a SQL store, printing how many
  migrate --store <url>         create the session table and indexes in a SQL store

Run "sessionkit <command> --help" for a command's options.`;

const COMMANDS: Readonly<
  Record<string, { usage: string; run(argv: string[], io: CliIo): Promise<number> }>
> = Object.freeze({
  secret: { usage: SECRET_USAGE, run: secretCommand },
  inspect: { usage: INSPECT_USAGE, run: inspectCommand },
  purge: { usage: PURGE_USAGE, run: (argv, io) => storeCommand("purge", argv, io) },
  migrate: { usage: MIGRATE_USAGE, run: (argv, io) => storeCommand("migrate", argv, io) },
});

/**
 * Runs the CLI on `argv` (without node and the script) and resolves the exit code: 0 done, 1 refused
 * input or a runtime failure, 2 bad arguments (the usage then goes to stderr).
 *
 * @example
 * ```ts
 * const code = await main(["secret"], { stdout: (t) => out.push(t), stderr: console.error, env: {}, readStdin });
 * ```
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" && rest[0] ? COMMANDS[rest[0]] : undefined;
    io.stdout(`${topic?.usage ?? USAGE}\n`);
    return EXIT.ok;
  }
  if (name === undefined || name.startsWith("-")) {
    io.stderr(
      `${name === undefined ? "sessionkit: a command is required" : `sessionkit: unknown option ${name}`}\n\n${USAGE}\n`,
    );
    return EXIT.usage;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.stderr(`sessionkit: unknown command "${name}"\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`sessionkit ${name}: ${err.message}\n\n${err.usage}\n`);
      return EXIT.usage;
    }
    io.stderr(`sessionkit ${name} failed: ${describeError(err)}\n`);
    return EXIT.failed;
  }
}

async function secretCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
    io.stdout(`${SECRET_USAGE}\n`);
    return EXIT.ok;
  }
  if (argv.length > 0)
    throw new UsageError(`secret takes no arguments (got ${argv[0]})`, SECRET_USAGE);
  io.stdout(`${backend.encodeBase64Url(backend.randomBytes(SECRET_BYTES))}\n`);
  return EXIT.ok;
}

function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
  };
}

/** True when this file is the program node runs (also through npm's bin symlink), not an import. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sessionkit: ${describeError(err)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
