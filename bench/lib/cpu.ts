/**
 * How much CPU the rest of the machine used while a benchmark ran: the machine's busy time from
 * `/proc/stat` minus the busy time of the benchmark's own processes from `/proc/<pid>/stat`.
 * The 1-minute load average lags by a minute and counts the benchmark itself; this does neither,
 * so a benchmark that saturates the cores on purpose (an HTTP server and its load generator) can
 * still tell whether something else competed with it. Linux only; elsewhere it reports nothing.
 */
import { readFileSync } from "node:fs";

/** Kernel clock ticks per second (USER_HZ); 100 on every mainstream Linux build. */
const TICKS_PER_SECOND = 100;

interface Snapshot {
  at: number;
  machineBusy: number;
  own: Map<number, number>;
}

function machineBusyTicks(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const [user, nice, system, , , irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return [user, nice, system, irq, softirq, steal].reduce<number>((sum, v) => sum + (v ?? 0), 0);
  } catch {
    return undefined;
  }
}

function processTicks(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state is field 3, utime 14 and stime 15 (1-based, over the whole line).
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far, or undefined without /proc. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const ticks = processTicks(pid);
  return ticks === undefined ? undefined : ticks / TICKS_PER_SECOND;
}

export interface CpuShare {
  /** Seconds between start and stop. */
  seconds: number;
  /** Average cores the benchmark's own processes kept busy. */
  ownCores: number;
  /** Average cores everything else kept busy (other users, and servers the benchmark talks to). */
  otherCores: number;
}

/** Tracks the benchmark's processes; `add` the pid of each child you start. */
export class CpuMonitor {
  private readonly pids = new Set<number>([process.pid]);
  private start: Snapshot | undefined;
  /** Ticks of processes that have exited since start (their last reading). */
  private readonly last = new Map<number, number>();

  add(pid: number | undefined): void {
    if (pid !== undefined) this.pids.add(pid);
  }

  private snapshot(): Snapshot | undefined {
    const machineBusy = machineBusyTicks();
    if (machineBusy === undefined) return undefined;
    const own = new Map<number, number>();
    for (const pid of this.pids) {
      const ticks = processTicks(pid) ?? this.last.get(pid);
      if (ticks !== undefined) {
        own.set(pid, ticks);
        this.last.set(pid, ticks);
      }
    }
    return { at: performance.now(), machineBusy, own };
  }

  begin(): void {
    this.start = this.snapshot();
  }

  /** Call now and then during a long run so a child that exits is still counted. */
  sample(): void {
    this.snapshot();
  }

  end(): CpuShare | undefined {
    const start = this.start;
    const stop = this.snapshot();
    if (!start || !stop) return undefined;
    const seconds = (stop.at - start.at) / 1000;
    let ownTicks = 0;
    for (const [pid, ticks] of stop.own) ownTicks += ticks - (start.own.get(pid) ?? 0);
    const busyTicks = stop.machineBusy - start.machineBusy;
    const toCores = (ticks: number) => ticks / TICKS_PER_SECOND / seconds;
    return {
      seconds,
      ownCores: toCores(ownTicks),
      otherCores: Math.max(0, toCores(busyTicks - ownTicks)),
    };
  }
}

/** "CPU outside this benchmark: 0.12 cores on average over 212 s (...)" */
export function cpuShareLine(share: CpuShare | undefined, others: string): string {
  if (!share) return "CPU outside this benchmark: not measured (no /proc)";
  return `CPU outside this benchmark's processes: ${share.otherCores.toFixed(2)} cores on average over ${share.seconds.toFixed(0)} s (${others}); its own processes: ${share.ownCores.toFixed(2)} cores`;
}
