/**
 * Builds and serves the Next.js fixture app (test/fixtures/next-app) for test/adapters/next.test.ts:
 * `next build` then `next start` on a free loopback port, as a child process of the test, and the
 * ways a browser talks to it (pages, the RSC fetch of a Server Action, a form post without JS).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Client, Reply } from "../helpers/http.js";
import { freePort } from "../helpers/redis-server.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const APP = "test/fixtures/next-app";
/**
 * Each run builds into a directory of its own (under the fixture's git-ignored .cache): two test
 * runs on one checkout would otherwise rebuild one directory under each other's server.
 */
const DIST = `.cache/next-${process.pid}`;
const NEXT_BIN = "node_modules/next/dist/bin/next";

export interface NextApp {
  url: string;
  /** Milliseconds `next build` took. */
  buildMs: number;
  /** Milliseconds from spawning `next start` to its first answer. */
  startMs: number;
  /** The id Next gave each exported Server Action of the fixture, by export name. */
  actions: Map<string, string>;
  /** Everything `next build` and `next start` printed, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function run(args: string[], output: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [NEXT_BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  return child;
}

/** Builds the fixture and starts it; throws (never skips) when either fails. */
export async function startNextApp(): Promise<NextApp> {
  const output: string[] = [];
  const log = () => output.join("");
  const env = { NODE_ENV: "production", NEXT_FIXTURE_DIST: DIST };
  const removeBuild = () => rm(`${ROOT}${APP}/${DIST}`, { recursive: true, force: true });
  let started = performance.now();
  const build = run(["build", APP], output, env);
  const [code] = await once(build, "exit");
  if (code !== 0) {
    await removeBuild();
    throw new Error(`next build failed (exit ${code}):\n${log()}`);
  }
  const buildMs = performance.now() - started;

  const manifest = JSON.parse(
    await readFile(`${ROOT}${APP}/${DIST}/server/server-reference-manifest.json`, "utf8"),
  ) as { node: Record<string, { exportedName?: string }> };
  const actions = new Map<string, string>();
  for (const [id, entry] of Object.entries(manifest.node)) {
    if (entry.exportedName) actions.set(entry.exportedName, id);
  }

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  started = performance.now();
  const server = run(
    ["start", APP, "--port", String(port), "--hostname", "127.0.0.1"],
    output,
    env,
  );
  const exited = once(server, "exit");
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill("SIGTERM");
      await exited;
    }
    await removeBuild();
  };
  for (let attempt = 0; ; attempt++) {
    if (server.exitCode !== null) {
      await removeBuild();
      throw new Error(`next start exited:\n${log()}`);
    }
    try {
      await fetch(`${url}/api/control`);
      break;
    } catch {
      if (attempt > 300) {
        await stop();
        throw new Error(`next start did not answer within 30 s:\n${log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { url, buildMs, startMs: performance.now() - started, actions, log, stop };
}

/**
 * Calls a Server Action as Next's client router does: a POST to the page with the action's id in
 * `Next-Action` and its arguments encoded as React's `encodeReply` encodes plain values (JSON).
 */
export function callAction(
  client: Client,
  app: NextApp,
  page: string,
  name: string,
  args: unknown[],
  headers: Record<string, string> = {},
): Promise<Reply> {
  const id = app.actions.get(name);
  if (!id) throw new Error(`no Server Action named ${name} in the build`);
  return client.post(page, {
    headers: {
      "next-action": id,
      accept: "text/x-component",
      "content-type": "text/plain;charset=UTF-8",
      ...headers,
    },
    body: JSON.stringify(args),
  });
}

/**
 * The value a Server Action returned, from its RSC answer (row `0` points at it: `"a":"$@<row>"`).
 * A string of 1024 characters or more is a row of its own, referenced as `"$<row>"`.
 */
export function actionResult(reply: Reply): unknown {
  const rows = flightRows(reply.text);
  const root = JSON.parse(rows.get("0") ?? "null") as { a?: string } | null;
  const ref = root?.a;
  if (typeof ref !== "string" || !ref.startsWith("$@")) return undefined;
  return resolveText(rows, JSON.parse(rows.get(ref.slice(2)) ?? "null"));
}

/**
 * The text of the element with this `id` in the page an action's answer carries (Next renders it
 * when the action set cookies), or undefined when the answer carries no render. Unlike `shown`,
 * any text: quotes, and 1024 characters or more (a row of its own).
 */
export function renderedText(reply: Reply, id: string): string | undefined {
  const rows = flightRows(reply.text);
  const element = new RegExp(`"id":${JSON.stringify(id)},"children":("(?:[^"\\\\]|\\\\.)*")`);
  for (const row of rows.values()) {
    const found = element.exec(row)?.[1];
    if (found !== undefined) return resolveText(rows, JSON.parse(found)) as string;
  }
  return undefined;
}

/** A Flight value with its text reference resolved: "$$..." escapes a "$", "$<hex>" is a text row. */
function resolveText(rows: Map<string, string>, value: unknown): unknown {
  if (typeof value !== "string" || !value.startsWith("$")) return value;
  return value.startsWith("$$") ? value.slice(1) : rows.get(value.slice(1));
}

/**
 * The rows of a React Flight answer by id: `<id>:<json>` ended by a newline, or a text row
 * `<id>:T<hex byte length>,<text>` with no newline after, whose text may hold newlines.
 */
function flightRows(text: string): Map<string, string> {
  const bytes = Buffer.from(text);
  const rows = new Map<string, string>();
  let at = 0;
  while (at < bytes.length) {
    const colon = bytes.indexOf(":", at);
    if (colon < 0) break;
    const id = bytes.subarray(at, colon).toString();
    if (bytes[colon + 1] === "T".charCodeAt(0)) {
      const comma = bytes.indexOf(",", colon);
      const end = comma + 1 + Number.parseInt(bytes.subarray(colon + 2, comma).toString(), 16);
      rows.set(id, bytes.subarray(comma + 1, end).toString());
      at = end;
    } else {
      const newline = bytes.indexOf("\n", colon);
      const end = newline < 0 ? bytes.length : newline;
      rows.set(id, bytes.subarray(colon + 1, end).toString());
      at = end + 1;
    }
  }
  return rows;
}

/**
 * A value the fixture's pages print as `<p id="...">`: from the HTML of a page, or from the RSC
 * payload an action's answer carries (the page rendered again in the same request).
 */
export function shown(text: string, id: string): string | undefined {
  const html = new RegExp(`<p id="${id}">([^<]*)</p>`).exec(text);
  if (html) return html[1];
  const rsc = new RegExp(`"id":"${id}","children":(?:"([^"]*)"|([^,}\\]]*))`).exec(text);
  return rsc ? (rsc[1] ?? rsc[2]) : undefined;
}

/** The hidden fields and action of a form on a page, as a browser without JavaScript posts them. */
export function formFields(html: string, index: number): FormData {
  const forms = html.match(/<form[\s\S]*?<\/form>/g) ?? [];
  const form = forms[index];
  if (!form) throw new Error(`no form #${index} on the page`);
  const data = new FormData();
  for (const input of form.match(/<input[^>]*>/g) ?? []) {
    const name = /name="([^"]*)"/.exec(input)?.[1];
    if (!name) continue;
    if (/type="checkbox"/.test(input)) continue;
    const value = /value="([^"]*)"/.exec(input)?.[1] ?? "";
    data.append(name, value.replaceAll("&quot;", '"').replaceAll("&amp;", "&"));
  }
  return data;
}
