/**
 * The HTTP group: one server process per adapter (Express, Fastify) pinned to the server core,
 * the load generator (wrk, else autocannon) in another process pinned to the client core. Every
 * route (2 adapters x 2 bodies x 5 variants, `fastPath` on a second server) runs once per round,
 * in the same order every round (interleaved), and each variant's rate is divided by its uncached
 * baseline's of the same round (paired ratios). Bodies are checked before, handler calls counted
 * around the measurement. The fifth variant is the ceiling of an interceptor: a constant one that
 * sends a JSON text the way this package sends a hit, shown beside DynamoCacheInterceptor's
 * figures (which are judged against every goal, within its reach or not).
 */
import { deepStrictEqual } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { fileURLToPath } from 'node:url';
import { processCpuUs } from './background.js';
import { LARGE_BODY, SMALL_BODY } from './bodies.js';
import { spawnOn, stopProcess } from './cores.js';
import {
  fmtRatioStat as fmtRatio,
  fmtStat,
  interleaved,
  target,
  type Contender,
  type Group,
  type Row,
  type Stat,
  type Target,
} from './harness.js';
import { loadGenerator } from './load.js';

type Adapter = 'express' | 'fastify';
type Body = 'small' | 'large';
type Variant = 'plain' | 'dynamo' | 'fast' | 'cache-manager' | 'floor';

const ADAPTERS: Adapter[] = ['express', 'fastify'];
const BODIES: Body[] = ['small', 'large'];
const VARIANTS: [Variant, string][] = [
  ['plain', 'uncached constant route (baseline)'],
  ['dynamo', 'nestjs-dynamo-cache DynamoCacheInterceptor'],
  ['fast', 'nestjs-dynamo-cache with fastPath: true'],
  ['cache-manager', '@nestjs/cache-manager CacheInterceptor'],
  ['floor', 'ceiling of an interceptor: a constant JSON text sent as a hit is, no cache'],
];
const CONNECTIONS = 20;
/**
 * Unmeasured load on a route right before each of its measured turns. A server that sat idle while
 * the others were measured answers its next turn slower (measured on Express's small body: the
 * first route after 15 s idle at 8.2k requests/s, 9.1k with this burst before it, 9.9k with no
 * idle): without it, the routes first in a server's sequence paid for that, whatever their code.
 */
const WARM_SECONDS = 1;
const ADAPTER_NAME: Record<Adapter, string> = { express: 'Express', fastify: 'Fastify' };
const SIZE = (b: Body): string =>
  b === 'small'
    ? `small JSON body (${JSON.stringify(SMALL_BODY).length} B)`
    : `48 KB JSON body (${JSON.stringify(LARGE_BODY).length.toLocaleString('en')} B)`;

interface Server {
  adapter: Adapter;
  /** Runs with the module's `fastPath` on: serves the `fast` variant (its `/dynamo` routes). */
  fast: boolean;
  child: ChildProcess;
  base: string;
  counts(): Promise<Record<string, number>>;
}

async function startServer(
  adapter: Adapter,
  endpoint: string,
  table: string,
  fast: boolean,
): Promise<Server> {
  const script = fileURLToPath(new URL('./http-server.js', import.meta.url));
  const child = spawnOn(
    'server',
    process.execPath,
    [script, JSON.stringify({ endpoint, table, adapter, fastPath: fast })],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`HTTP bench server exited with ${code}`)));
  });
  return {
    adapter,
    fast,
    child,
    base: `http://127.0.0.1:${port}`,
    counts: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve((m as { counts: Record<string, number> }).counts));
        child.send('counts');
      }),
  };
}

function fetchOnce(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    }).on('error', reject);
  });
}

/** Each route answers 200 with a JSON content type and exactly the expected body, twice. */
async function check(url: string, body: Body): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const r = await fetchOnce(url);
    if (r.status !== 200 || !r.type.startsWith('application/json')) {
      throw new Error(`${url}: status ${r.status}, content-type ${r.type}`);
    }
    deepStrictEqual(JSON.parse(r.body), body === 'small' ? SMALL_BODY : LARGE_BODY, url);
  }
}

export async function httpGroups(opts: {
  endpoint: string;
  table: string;
  quick: boolean;
}): Promise<{ groups: Group[]; generator: string }> {
  const gen = loadGenerator();
  const seconds = opts.quick ? 1 : 2;
  const rounds = opts.quick ? 3 : 7;
  const servers: Server[] = [];
  try {
    for (const adapter of ADAPTERS) {
      servers.push(await startServer(adapter, opts.endpoint, opts.table, false));
      servers.push(await startServer(adapter, opts.endpoint, opts.table, true));
    }
    const serverOf = (a: Adapter, v: Variant): Server =>
      servers.find((s) => s.adapter === a && s.fast === (v === 'fast'))!;
    const routeOf = (b: Body, v: Variant): string => `/${b}/${v === 'fast' ? 'dynamo' : v}`;
    const label = (a: Adapter, b: Body, v: Variant): string => `${a} ${b} ${v}`;
    const contenders: Contender<{
      rps: number;
      p99Ms: number;
      errors: number;
      badStatus: number;
      bytesPerRequest: number;
      serverCpuUsPerReq: number;
      serverBusy: number;
    }>[] = [];
    for (const adapter of ADAPTERS) {
      for (const body of BODIES) {
        for (const [variant] of VARIANTS) {
          const server = serverOf(adapter, variant);
          const url = `${server.base}${routeOf(body, variant)}`;
          await check(url, body);
          contenders.push({
            label: label(server.adapter, body, variant),
            run: async () => {
              await gen.run(url, WARM_SECONDS, CONNECTIONS);
              const pid = server.child.pid ?? -1;
              const cpu0 = processCpuUs(pid) ?? NaN;
              const start = performance.now();
              const r = await gen.run(url, seconds, CONNECTIONS);
              const cpu = (processCpuUs(pid) ?? NaN) - cpu0;
              return {
                ...r,
                serverCpuUsPerReq: cpu / r.requests,
                serverBusy: cpu / ((performance.now() - start) * 1000),
              };
            },
          });
        }
      }
    }
    // One unmeasured round warms every route (JIT, connections); the cached ones are filled.
    let before: Record<string, number>[] = [];
    const progress = `HTTP (${gen.name}, ${seconds} s per route)`;
    const result = await interleaved(contenders, {
      rounds,
      warmup: 1,
      progress,
      measuring: async () => {
        before = await Promise.all(servers.map((s) => s.counts()));
      },
    });
    const after = await Promise.all(servers.map((s) => s.counts()));
    const groups: Group[] = [];
    for (const server of servers.filter((x) => !x.fast)) {
      for (const body of BODIES) {
        const rows: Row[] = [];
        const base = label(server.adapter, body, 'plain');
        const detailOf = (l: string, variant: Variant): string => {
          const s = servers.indexOf(serverOf(server.adapter, variant));
          const route = routeOf(body, variant);
          const samples = result.samples[result.labels.indexOf(l)]!;
          const errors = samples.reduce((a, x) => a + x.errors + x.badStatus, 0);
          if (samples.some((x) => x.badStatus > 0)) throw new Error(`${l}: non-2xx responses`);
          const calls = (after[s]![route] ?? 0) - (before[s]![route] ?? 0);
          if (variant !== 'plain' && calls !== 0) {
            throw new Error(`${l}: the cached route ran its handler ${calls} times while measured`);
          }
          const p99 = result.stat(l, 'p99Ms');
          const bytes = result.stat(l, 'bytesPerRequest').median;
          const busy = result.stat(l, 'serverBusy').median;
          return [
            Number.isNaN(busy) ? '' : `server core busy ${(100 * busy).toFixed(0)}%`,
            `p99 ${fmtStat(p99, (v) => v.toFixed(1))} ms`,
            `${Math.round(bytes).toLocaleString('en')} B/response`,
            variant === 'plain' ? 'handler ran every request' : 'handler calls while measured: 0',
            errors ? `${errors} socket errors` : '',
          ]
            .filter(Boolean)
            .join('; ');
        };
        for (const [variant, text] of VARIANTS) {
          const l = label(server.adapter, body, variant);
          const value = result.stat(l, 'rps');
          const cpu = result.stat(l, 'serverCpuUsPerReq');
          rows.push({
            extra: [
              Number.isNaN(cpu.median) ? 'n/a' : fmtStat(cpu, (v) => v.toFixed(0)),
              Number.isNaN(cpu.median)
                ? 'n/a'
                : fmtStat(result.paired(l, base, 'serverCpuUsPerReq'), (v) => `${v.toFixed(2)}x`),
            ],
            label: text,
            unit: 'req/s',
            value,
            display: fmtStat(value, (v) => Math.round(v).toLocaleString('en')),
            ratio: result.paired(l, base, 'rps'),
            detail: detailOf(l, variant),
          });
        }
        const ours = label(server.adapter, body, 'dynamo');
        const fast = label(server.adapter, body, 'fast');
        const cm = label(server.adapter, body, 'cache-manager');
        const vsBase: Stat = result.paired(ours, base, 'rps');
        const vsCm: Stat = result.paired(ours, cm, 'rps');
        const fastVsBase: Stat = result.paired(fast, base, 'rps');
        const fastVsCm: Stat = result.paired(fast, cm, 'rps');
        // The most any interceptor reaches: the constant interceptor, of the same round.
        const floor = label(server.adapter, body, 'floor');
        const ceilingVsBase: Stat = result.paired(floor, base, 'rps');
        const ceilingVsCm: Stat = result.paired(floor, cm, 'rps');
        const where = `HTTP ${ADAPTER_NAME[server.adapter]}, ${body === 'small' ? 'small body' : '48 KB JSON'}`;
        const goal = body === 'small' ? { base: 1.0, cm: 1.15 } : { base: 3, cm: 3 };
        // DynamoCacheInterceptor (fastPath off) is judged against every goal too, whether or not
        // an interceptor can reach it: its figure is shown beside the constant interceptor's, the
        // most an interceptor sending a stored text as this package does reached in this round.
        const interceptorTargets: Target[] = [];
        const notes: string[] = [];
        const judge = (what: string, ours: Stat, ceiling: Stat, threshold: number): void => {
          interceptorTargets.push(
            target(`${where}: DynamoCacheInterceptor vs ${what}`, ours, '>=', threshold),
          );
          notes.push(
            `DynamoCacheInterceptor (fastPath off) vs ${what}: ${fmtRatio(ours)}; the constant interceptor (the ceiling above): ${fmtRatio(ceiling)}` +
              (ceiling.median >= threshold
                ? ''
                : `, below the goal of ${threshold}x as well: through Nest's interceptor chain the goal is out of reach in this run (fastPath, which answers before it, is judged above)`),
          );
        };
        judge('uncached', vsBase, ceilingVsBase, goal.base);
        judge('CacheInterceptor', vsCm, ceilingVsCm, goal.cm);
        notes.push(
          `DynamoCacheInterceptor (fastPath off) vs the ceiling: ${fmtRatio(result.paired(ours, floor, 'rps'))} (what its key, look-up and replayed headers cost on top of the chain)`,
        );
        groups.push({
          intro:
            groups.length === 0
              ? `Two Nest apps per adapter (the second with the module's \`fastPath\` on, measured on its cached routes only), each in its own process on the server core; the load generator (${gen.name}, ${CONNECTIONS} connections, keep-alive) in another process on the client core. All 20 routes (2 adapters x 2 bodies x 5 variants) run once per round in the same order, ${seconds} s each (after ${WARM_SECONDS} s of unmeasured load on the same route, so that a server idle while the others ran starts every turn alike), ${rounds} rounds after a warm-up round; each ratio is taken against the uncached route of the same adapter and body in the same round. Every route's body was checked (status 200, JSON content type, deep-equal to the expected body) before the rounds; the cached routes' handlers ran 0 times while measured. Server CPU: the server process's CPU time over the turn (/proc), divided by the requests.`
              : undefined,
          name: `HTTP ${ADAPTER_NAME[server.adapter]}, ${SIZE(body)}: GET req/s, ${CONNECTIONS} connections`,
          baseline:
            'uncached constant route (same adapter and body; the handler returns a constant object)',
          higherIsBetter: true,
          rows,
          columns: ['server CPU µs/request', 'server CPU vs baseline (paired; lower is better)'],
          notes,
          targets: [
            target(`${where}: fastPath vs uncached`, fastVsBase, '>=', goal.base),
            target(`${where}: fastPath vs CacheInterceptor`, fastVsCm, '>=', goal.cm),
            ...interceptorTargets,
          ],
        });
      }
    }
    return {
      groups,
      generator: `${gen.name}, ${CONNECTIONS} connections, ${seconds} s per route and round after ${WARM_SECONDS} s unmeasured, ${rounds} rounds after 1 warm-up round`,
    };
  } finally {
    for (const s of servers) {
      if (s.child.connected) s.child.send('stop');
      await stopProcess(s.child);
    }
  }
}
