import { type ParseArgsConfig, parseArgs } from "node:util";

/** Where a command writes and what it reads: the process by default, a recorder in tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Environment variables (`SESSIONKIT_SECRET`). */
  env: Readonly<Record<string, string | undefined>>;
  /** The whole of standard input, for `inspect -`. */
  readStdin(): Promise<string>;
}

/** Exit codes: 0 done, 1 refused input or a runtime failure, 2 a usage error. */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2 });

/** Bad arguments: the message and the command's usage go to stderr, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * `node:util` parseArgs in strict mode, with its errors (unknown flag, missing value) turned into a
 * `UsageError` carrying the command's usage text.
 */
export function parseCommandArgs(
  argv: string[],
  options: Options,
  usage: string,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError((err as Error).message, usage);
    }
    throw err;
  }
}

/** The text of a failure for a terminal: the message, and the cause's message one level down. */
export function describeError(err: unknown, redact: readonly string[] = []): string {
  const parts = [messageOf(err)];
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  if (cause !== undefined) parts.push(`cause: ${messageOf(cause)}`);
  let text = parts.join("\n  ");
  // A connection URL's password must never reach the terminal, even if a driver echoes it.
  for (const secret of redact) if (secret) text = text.split(secret).join("***");
  return text;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const message = (err.message || err.name).replace(/^sessionkit: /, "");
    return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(err);
}
