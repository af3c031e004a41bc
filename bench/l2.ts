/**
 * The L2 group: hits that only DynamoDB can answer, under concurrency 1, 16 and 64, against a
 * DynamoDB server in another process on the other core (so a client's CPU time is its own). N
 * distinct keys are written first; each contender (see l2-contenders.ts: the bare SDK, this
 * library, bentocache) then runs `c` concurrent workers over them, key after key, for a fixed time
 * per round, in interleaved rounds.
 *
 * At concurrency 1 (latency) each contender runs in a process of its own, as an application
 * using it would, and they take turns of a tenth of a second; the same contenders alternating
 * every few calls in this one process are measured as well and reported beside it.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { deepStrictEqual } from 'node:assert';
import { processCpuUs } from './background.js';
import type { Backend } from './dynamo-backend.js';
import {
  alternated,
  concurrentRate,
  fmtRate,
  fmtRatio,
  fmtStat,
  interleaved,
  invert,
  rowsOf,
  takeTurns,
  target,
  type Contender,
  type Group,
  type InterleavedResult,
} from './harness.js';
import {
  BARE,
  BENTO,
  BENTO_TABLE,
  checked,
  clientConfig,
  eachKey,
  item,
  l2Contenders,
  LABELS,
  OURS,
  TABLE,
  type ContenderLabel,
} from './l2-contenders.js';
import { startContender, type ContenderProcess } from './l2-process.js';
import { createCacheTable } from '../lib/index.js';

/** Calls per turn at concurrency 1 in this process (see alternated): a few milliseconds. */
const C1_CHUNK = 10;
/** A turn at concurrency 1 with a process per contender, ms. */
const C1_TURN_MS = 100;

export interface L2Options {
  quick: boolean;
  keys: number;
  concurrencies: readonly number[];
  /** Milliseconds per contender and round. */
  ms: number;
  rounds: number;
}

type L2Sample = {
  opsPerSec: number;
  cpuUsPerOp: number;
  /** The DynamoDB server's CPU per op (its own process), NaN where /proc is not readable. */
  serverCpuUsPerOp: number;
  callsPerOp: number;
  keysPerCall: number;
};

export async function l2Groups(backend: Backend, opts: L2Options): Promise<Group[]> {
  const admin = new DynamoDBClient(clientConfig(backend.endpoint));
  await createCacheTable(admin, TABLE);
  await admin.send(
    new CreateTableCommand({
      TableName: BENTO_TABLE,
      AttributeDefinitions: [{ AttributeName: 'key', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  admin.destroy();
  const N = opts.keys;
  const here = await l2Contenders(backend.endpoint, N);
  // Ours through the method: N misses, N computations, N writes.
  await here.fill();
  // Every contender reads every key once, compared whole with what was written.
  for (const [label, op] of here.ops) {
    await eachKey(N, 16, async (k) => deepStrictEqual(await op(k), item(k), `${label}, key ${k}`));
  }
  here.resetComputations();
  const serverCpu = (): number => processCpuUs(backend.pid) ?? NaN;

  const groups: Group[] = [];
  for (const c of opts.concurrencies) {
    /** Calls per op by command, in the last round of each contender. */
    const mix: Record<string, string> = {};
    const sampleOf = (
      label: string,
      t: { ops: number; ms: number; cpuUs: number; probed: number },
      counts: Record<string, number>,
      calls: number,
      readKeys: number,
    ): L2Sample => {
      mix[label] = Object.entries(counts)
        .map(([name, n]) => `${name} ${(n / t.ops).toFixed(3)}`)
        .join(', ');
      return {
        opsPerSec: (t.ops / t.ms) * 1000,
        cpuUsPerOp: t.cpuUs / t.ops,
        serverCpuUsPerOp: t.probed / t.ops,
        callsPerOp: calls / t.ops,
        keysPerCall: readKeys / Math.max(1, calls),
      };
    };
    let result: InterleavedResult<L2Sample>;
    /** At concurrency 1: the contenders alternating within this one process. */
    let oneProcess: InterleavedResult<L2Sample> | undefined;
    if (c === 1) {
      result = await ownProcesses(backend, opts, N, sampleOf);
      oneProcess = await alternated<L2Sample>(
        [...here.ops].map(([label, op]) => {
          const counter = here.counters.get(label)!;
          return {
            label,
            begin: () => counter.reset(),
            op: checked(label, op, N),
            end: (t) => sampleOf(label, t, counter.counts, counter.total(), counter.readKeys()),
          };
        }),
        {
          rounds: opts.rounds,
          warmup: 1,
          ms: opts.ms,
          chunk: C1_CHUNK,
          probe: serverCpu,
          progress: `L2 ${backend.kind}, concurrency 1, one process`,
        },
      );
    } else {
      const contenders: Contender<L2Sample>[] = [...here.ops].map(([label, op]) => ({
        label,
        run: async () => {
          const counter = here.counters.get(label)!;
          counter.reset();
          const server0 = serverCpu();
          const r = await concurrentRate(checked(label, op, N), c, opts.ms);
          const probed = serverCpu() - server0;
          return sampleOf(
            label,
            { ops: r.ops, ms: r.ops / (r.opsPerSec / 1000), cpuUs: r.cpuUsPerOp * r.ops, probed },
            counter.counts,
            counter.total(),
            counter.readKeys(),
          );
        },
      }));
      result = await interleaved(contenders, {
        rounds: opts.rounds,
        warmup: 1,
        progress: `L2 ${backend.kind}, concurrency ${c}`,
      });
    }
    const { method, factory } = here.computations();
    if (method !== 0 || factory !== 0) {
      throw new Error(
        `L2 ${backend.kind} c=${c}: ${method} method and ${factory} factory calls: not all hits`,
      );
    }
    const rows = rowsOf(result, BARE, 'opsPerSec', {
      unit: 'ops/s',
      higherIsBetter: true,
      fmt: fmtRate,
    });
    for (const row of rows) {
      const cpu = result.stat(row.label, 'cpuUsPerOp');
      const cpuRatio = result.paired(row.label, BARE, 'cpuUsPerOp');
      const server = result.stat(row.label, 'serverCpuUsPerOp');
      const calls = result.stat(row.label, 'callsPerOp');
      const keys = result.stat(row.label, 'keysPerCall');
      row.extra = [
        fmtStat(cpu, (v) => v.toFixed(1)),
        fmtStat(cpuRatio, fmtRatio),
        `${calls.median.toFixed(3)} (${keys.median.toFixed(1)} keys/call)`,
        Number.isNaN(server.median) ? 'n/a' : fmtStat(server, (v) => v.toFixed(0)),
      ];
      row.detail = `per op, last round: ${mix[row.label] ?? ''}`;
    }
    const where = `L2 ${backend.kind}, c=${c}`;
    const targets =
      c === 1
        ? [
            target(
              `${where}: time per hit vs bare GetItem + v8 deserialize`,
              result.paired(BARE, OURS, 'opsPerSec'),
              '<=',
              1.05,
            ),
          ]
        : [
            target(
              `${where}: throughput vs bentocache`,
              result.paired(OURS, BENTO, 'opsPerSec'),
              '>=',
              2,
            ),
            target(
              `${where}: CPU per hit vs bentocache`,
              result.paired(OURS, BENTO, 'cpuUsPerOp'),
              '<=',
              0.5,
            ),
          ];
    const notes = [
      `nestjs-dynamo-cache vs bare SDK, time per hit: ${fmtStat(result.paired(BARE, OURS, 'opsPerSec'), fmtRatio)}; CPU per hit: ${fmtStat(result.paired(OURS, BARE, 'cpuUsPerOp'), fmtRatio)}`,
      `nestjs-dynamo-cache vs bentocache, throughput: ${fmtStat(result.paired(OURS, BENTO, 'opsPerSec'), fmtRatio)}; CPU per hit: ${fmtStat(result.paired(OURS, BENTO, 'cpuUsPerOp'), fmtRatio)} (bentocache ÷ ours: ${fmtStat(invert(result.paired(OURS, BENTO, 'cpuUsPerOp')), fmtRatio)})`,
    ];
    if (oneProcess !== undefined) {
      const per = (label: string): string =>
        `${fmtStat(oneProcess.paired(BARE, label, 'opsPerSec'), fmtRatio)} the time, ${fmtStat(oneProcess.paired(label, BARE, 'cpuUsPerOp'), fmtRatio)} the CPU`;
      notes.push(
        `The same three in this one process, taking turns every ${C1_CHUNK} calls (so they share its heap, JIT and event loop; not what an application sees, and not what the target is judged on), vs the bare SDK: nestjs-dynamo-cache ${per(OURS)}; bentocache ${per(BENTO)}; bare SDK ${fmtRate(oneProcess.stat(BARE, 'opsPerSec').median)} here vs ${fmtRate(result.stat(BARE, 'opsPerSec').median)} in a process of its own`,
      );
    }
    groups.push({
      intro:
        c === opts.concurrencies[0]
          ? `Each contender runs c concurrent workers over ${N.toLocaleString('en')} distinct pre-written keys, one key after the other (concurrent calls ask for different keys), for ${opts.ms} ms per turn; ${backend.label} runs in its own process on the other core. At concurrency 1 (latency) each contender runs in a process of its own, as an application using it would, and they take turns of ${C1_TURN_MS} ms within a round until each has run ${opts.ms} ms, so the server's drift falls on all alike; CPU is each process's own. The three SDK clients get the options DynamoCacheModule gives its own client (cacheMiddleware: true, 1 s connection and socket timeouts), and each counts its calls (test/support/call-counter.ts). Every value was compared whole once before the rounds (in every process), and its id on every call; 0 method and 0 factory calls while measured.`
          : undefined,
      name: `L2 hit, ${backend.label}, concurrency ${c}: ${N.toLocaleString('en')} distinct keys, ops/s`,
      baseline: BARE,
      higherIsBetter: true,
      rows,
      columns: [
        c === 1 ? 'client CPU µs/op (its process)' : 'client CPU µs/op (this process)',
        'client CPU vs baseline (paired; lower is better)',
        'DynamoDB calls/op',
        'DynamoDB server CPU µs/op (its process)',
      ],
      targets,
      notes,
    });
  }

  await here.close();
  return groups;
}

/** Concurrency 1 with each contender in a process of its own, taking turns (see takeTurns). */
async function ownProcesses(
  backend: Backend,
  opts: L2Options,
  keys: number,
  sampleOf: (
    label: string,
    t: { ops: number; ms: number; cpuUs: number; probed: number },
    counts: Record<string, number>,
    calls: number,
    readKeys: number,
  ) => L2Sample,
): Promise<InterleavedResult<L2Sample>> {
  const children = new Map<ContenderLabel, ContenderProcess>();
  try {
    for (const label of LABELS) {
      children.set(label, await startContender({ endpoint: backend.endpoint, label, keys }));
    }
    const result = await takeTurns<L2Sample>(
      LABELS.map((label) => {
        const child = children.get(label)!;
        return {
          label,
          begin: async () => {
            await child.ask({ type: 'round' });
          },
          turn: async (ms) => child.ask({ type: 'turn', ms }),
          end: async (t) => {
            const stats = await child.ask({ type: 'stats' });
            if (stats.method !== 0 || stats.factory !== 0) {
              throw new Error(
                `L2 ${backend.kind} c=1, ${label}: ${stats.method} method and ${stats.factory} factory calls: not all hits`,
              );
            }
            return sampleOf(label, t, stats.counts, stats.calls, stats.readKeys);
          },
        };
      }),
      {
        rounds: opts.rounds,
        warmup: 1,
        ms: opts.ms,
        turnMs: C1_TURN_MS,
        probe: () => processCpuUs(backend.pid) ?? NaN,
        progress: `L2 ${backend.kind}, concurrency 1, a process each`,
      },
    );
    return result;
  } finally {
    for (const child of children.values()) await child.stop();
  }
}
