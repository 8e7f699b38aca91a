/**
 * Shared reporting for every benchmark under `bench/`: the machine line, summary statistics and a
 * Markdown table. Nothing here knows what is being measured; each benchmark builds its own rows.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname } from "node:path";

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  date: string;
}

/** What the numbers were measured on: quote it beside every figure. */
export function machineInfo(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? "unknown CPU",
    cores: list.length,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    date: new Date().toISOString(),
  };
}

export function machineLine(machine: Machine = machineInfo()): string {
  return `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node} (${machine.platform}), ${machine.date}`;
}

/**
 * The 1-minute load average against the core count. Other processes on the machine share its
 * cores; a figure taken while the load exceeds the core count is a figure of contention.
 */
export function loadLine(label: string, options: LoadLineOptions = {}): string {
  const [one] = loadavg();
  const cores = cpus().length;
  const own = options.ownLoad ?? 0;
  const busy = (one ?? 0) - own > cores * 0.75;
  const note = own > 0 ? ` (this benchmark itself keeps ~${own} cores busy)` : "";
  return `Load (${label}): ${(one ?? 0).toFixed(2)} on ${cores} cores${note}${busy ? " -- WARNING: the machine is busy, figures are noisy; rerun when idle" : ""}`;
}

export interface LoadLineOptions {
  /**
   * Load the benchmark causes by itself (e.g. 2 for a server and a load generator each keeping a
   * core busy): it is subtracted before deciding whether other processes were competing.
   */
  ownLoad?: number;
}

/** The command as the user typed it when run through npm, else the node argv. */
export function commandLine(): string {
  // `npx` sets npm_lifecycle_event to "npx": only a real `npm run <script>` is reported as such.
  const event = process.env.npm_lifecycle_event;
  const script = event && event !== "npx" ? event : undefined;
  const extra = process.argv.slice(2).join(" ");
  if (script) return `npm run ${script}${extra ? ` -- ${extra}` : ""}`;
  return process.argv.map((arg) => (arg.includes(" ") ? JSON.stringify(arg) : arg)).join(" ");
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  samples: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.min(...values);
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.max(...values);
}

export function summarize(values: readonly number[]): Summary {
  return { median: median(values), min: min(values), max: max(values), samples: values.length };
}

/** Three significant digits, no exponent: 0.412, 4.12, 41.2, 412, 4120. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value === 0) return "0";
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
  return value.toLocaleString("en-US", {
    minimumFractionDigits: Math.min(digits, 3),
    maximumFractionDigits: Math.min(digits, 3),
  });
}

export function formatRange(summary: Summary): string {
  return `${formatNumber(summary.min)}-${formatNumber(summary.max)}`;
}

export function formatRate(perSecond: number): string {
  return Number.isFinite(perSecond) ? Math.round(perSecond).toLocaleString("en-US") : "n/a";
}

export function formatRatio(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio) ? "-" : `${formatNumber(ratio)}x`;
}

export type Align = "left" | "right";

/** A Markdown table; cells are escaped for `|`. */
export function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
): string {
  const escapeCell = (cell: string) => cell.replace(/\|/g, "\\|");
  const all = [headers, ...rows].map((row) => row.map(escapeCell));
  const widths = headers.map((_, col) => Math.max(3, ...all.map((row) => (row[col] ?? "").length)));
  const pad = (cell: string, col: number) =>
    align[col] === "right"
      ? cell.padStart(widths[col] as number)
      : cell.padEnd(widths[col] as number);
  const line = (row: readonly string[]) =>
    `| ${headers.map((_, col) => pad(row[col] ?? "", col)).join(" | ")} |`;
  const rule = `| ${widths
    .map((width, col) => (align[col] === "right" ? `${"-".repeat(width - 1)}:` : "-".repeat(width)))
    .join(" | ")} |`;
  return [line(all[0] as string[]), rule, ...all.slice(1).map(line)].join("\n");
}

export interface Check {
  label: string;
  pass: boolean;
  /** The measured figure against the target, e.g. "1.12x (target <= 1.3x)". */
  detail: string;
}

export function formatCheck(check: Check): string {
  return `${check.pass ? "PASS" : "FAIL"}  ${check.label}: ${check.detail}`;
}

const JSON_WIDTH = 100;

/**
 * JSON laid out the way the repository's formatter (Biome, line width 100) lays it out, so a results
 * file can be committed as written: objects expanded, number arrays packed into lines. Numbers are
 * rounded to 0.001 (a nanosecond, for µs figures).
 */
export function formatJson(value: unknown, indent = 0, prefix = 0): string {
  const pad = " ".repeat(indent);
  const inner = " ".repeat(indent + 2);
  if (typeof value === "number")
    return String(Number.isFinite(value) ? Math.round(value * 1000) / 1000 : null);
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    if (value.every((item) => typeof item === "number")) {
      const items = value.map((item) => formatJson(item));
      const flat = `[${items.join(", ")}]`;
      // +1 for a trailing comma the caller may add.
      if (prefix + flat.length + 1 <= JSON_WIDTH) return flat;
      const lines: string[] = [];
      let line = "";
      for (const item of items) {
        const next = line ? `${line} ${item},` : `${item},`;
        if (inner.length + next.length > JSON_WIDTH && line) {
          lines.push(line);
          line = `${item},`;
        } else line = next;
      }
      lines.push(line.slice(0, -1));
      return `[\n${lines.map((l) => inner + l).join("\n")}\n${pad}]`;
    }
    return `[\n${value.map((item) => inner + formatJson(item, indent + 2, inner.length)).join(",\n")}\n${pad}]`;
  }
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  if (entries.length === 0) return "{}";
  const body = entries.map(([key, item]) => {
    const head = `${inner}${JSON.stringify(key)}: `;
    return head + formatJson(item, indent + 2, head.length);
  });
  return `{\n${body.join(",\n")}\n${pad}}`;
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${formatJson(value)}\n`);
}
