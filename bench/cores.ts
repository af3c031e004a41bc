/**
 * Which core runs what. With two cores or more and `taskset` on the PATH, the servers (DynamoDB,
 * the HTTP app under test) run on one core and their clients (this process, the load generator)
 * on another, so a client's CPU figure is its own and the two sides never take turns on one core.
 * Without them the benchmark still runs, unpinned, and says so in its results.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface CorePlan {
  /** `true` when processes are pinned with taskset. */
  readonly pinned: boolean;
  /** The core of the servers (DynamoDB, the HTTP app), when pinned. */
  readonly server: number;
  /** The core of the clients (this process, the load generator), when pinned. */
  readonly client: number;
  /** One line for the results. */
  readonly description: string;
}

let plan: CorePlan | undefined;

/** The plan of this run (decided once: two cores and taskset, or no pinning). */
export function corePlan(): CorePlan {
  if (plan) return plan;
  const cores = availableParallelism();
  const taskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  if (cores >= 2 && taskset && process.env.BENCH_NO_PIN !== '1') {
    plan = {
      pinned: true,
      server: 0,
      client: 1,
      description:
        'servers (DynamoDB, the HTTP app) pinned to core 0, clients (this process, the load generator) to core 1, with taskset',
    };
  } else {
    const why =
      process.env.BENCH_NO_PIN === '1'
        ? 'BENCH_NO_PIN=1'
        : cores < 2
          ? `${cores} core available`
          : 'no taskset on the PATH';
    plan = {
      pinned: false,
      server: -1,
      client: -1,
      description: `NOT pinned (${why}): servers and clients share the cores, so CPU figures include contention`,
    };
  }
  return plan;
}

/** Pins this process (every thread) to the client core. */
export function pinSelf(): void {
  const p = corePlan();
  if (!p.pinned) return;
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(p.client), String(process.pid)], {
    stdio: 'ignore',
  });
  if (r.status !== 0) throw new Error('taskset could not pin the benchmark process');
}

/**
 * Starts `command` on `side`'s core (`taskset -c`), or unpinned when the plan says so. A process
 * started from this (pinned) one would otherwise inherit the client core.
 */
export function spawnOn(
  side: 'server' | 'client',
  command: string,
  args: readonly string[],
  options: SpawnOptions,
): ChildProcess {
  const p = corePlan();
  const child = p.pinned
    ? spawn(
        'taskset',
        ['-c', String(side === 'server' ? p.server : p.client), command, ...args],
        options,
      )
    : spawn(command, args, options);
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    // However the benchmark ends (error, Ctrl-C), no server it started outlives it.
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
    process.once('SIGINT', () => process.exit(130));
    process.once('SIGTERM', () => process.exit(143));
  }
  return child;
}

/** The processes started by {@link spawnOn} that have not exited. */
const running = new Set<ChildProcess>();
let cleanupInstalled = false;

/** SIGTERM, then SIGKILL after `graceMs` if the process lingers. */
export function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}
