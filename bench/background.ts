/**
 * How busy the machine was with other work while the benchmark ran: CPU time of every process
 * that is neither this one, nor one of its descendants (the DynamoDB servers, the HTTP servers,
 * the load generator), nor one of its ancestors (npm), read from /proc between two turns of a
 * group (never during a measured turn: the scan costs CPU on this process's core). Linux only;
 * elsewhere nothing is reported. A process that started and ended between two scans is missed,
 * so the figure is a lower bound.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

interface Proc {
  ppid: number;
  ticks: number;
}

function scan(): Map<number, Proc> | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const procs = new Map<number, Proc>();
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // After the command (in parentheses, may hold spaces): state ppid … utime(14) stime(15).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    procs.set(Number(name), {
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
    });
  }
  return procs;
}

/**
 * CPU time (user + system, every thread) a process has used so far, in microseconds, from
 * /proc/<pid>/stat (10 ms resolution); `undefined` where /proc is not there.
 */
export function processCpuUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / HZ;
  } catch {
    return undefined;
  }
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

const HZ = clockTicks();

export interface BackgroundLoad {
  /** Other processes' CPU time, in percent of the machine's (all cores) over the section. */
  percentOfMachine: number;
  /** The same, in cores' worth (1 = one core fully busy). */
  cores: number;
}

export class BackgroundMonitor {
  private readonly hz = HZ;
  private readonly cpus = availableParallelism();
  private last: Map<number, Proc> | undefined = scan();
  private section = '';
  private sectionStart = performance.now();
  private sectionTicks = 0;
  private readonly done = new Map<string, BackgroundLoad>();
  private totalTicks = 0;
  private readonly started = performance.now();

  get available(): boolean {
    return this.last !== undefined;
  }

  /** Reads /proc and adds other processes' CPU time since the last sample. */
  sample(): void {
    const now = scan();
    if (!now || !this.last) return;
    const ours = new Set<number>();
    // Ancestors of this process.
    for (let pid = process.pid; pid > 1 && !ours.has(pid); pid = now.get(pid)?.ppid ?? 0) {
      ours.add(pid);
    }
    // Descendants: a process whose parent chain reaches this one.
    const isOurs = (pid: number, depth = 0): boolean => {
      if (pid === process.pid) return true;
      const p = now.get(pid);
      if (!p || p.ppid <= 1 || depth > 20) return false;
      return isOurs(p.ppid, depth + 1);
    };
    let ticks = 0;
    for (const [pid, p] of now) {
      if (ours.has(pid) || isOurs(pid)) continue;
      const before = this.last.get(pid)?.ticks ?? 0;
      ticks += Math.max(0, p.ticks - before);
    }
    this.last = now;
    this.sectionTicks += ticks;
    this.totalTicks += ticks;
  }

  private load(ticks: number, ms: number): BackgroundLoad {
    const cores = ticks / this.hz / (ms / 1000);
    return { cores, percentOfMachine: (100 * cores) / this.cpus };
  }

  /** Closes the current section (if any) and opens `name`. */
  enter(name: string): void {
    this.sample();
    if (this.section) {
      this.done.set(
        this.section,
        this.load(this.sectionTicks, performance.now() - this.sectionStart),
      );
    }
    this.section = name;
    this.sectionStart = performance.now();
    this.sectionTicks = 0;
  }

  /** Other processes' load over the next `ms` milliseconds (before the run: is it quiet?). */
  async probe(ms: number): Promise<BackgroundLoad | undefined> {
    if (!this.available) return undefined;
    this.sample();
    const ticks = this.totalTicks;
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.sample();
    return this.load(this.totalTicks - ticks, performance.now() - start);
  }

  /** Per section, and `total` over the whole run. */
  results(): Record<string, BackgroundLoad> {
    this.enter('');
    return {
      ...Object.fromEntries(this.done),
      total: this.load(this.totalTicks, performance.now() - this.started),
    };
  }
}

/** The run's monitor; the interleaved runner samples it between turns. */
export const background = new BackgroundMonitor();
