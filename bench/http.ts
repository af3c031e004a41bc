import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import autocannon from 'autocannon';
import { fork } from 'node:child_process';
import { fmtRatio } from './harness.js';
import type { Group, Row } from './run.js';

async function rps(
  url: string,
  seconds: number,
): Promise<{ rps: number; errors: number; non2xx: number }> {
  const result = await autocannon({ url, connections: 20, duration: seconds, pipelining: 1 });
  return { rps: result.requests.average, errors: result.errors, non2xx: result.non2xx };
}

/** Requests per second of the same constant GET route: uncached, DynamoCacheInterceptor, CacheInterceptor. */
export async function httpGroup(opts: {
  clientConfig: DynamoDBClientConfig;
  table: string;
  quick: boolean;
}): Promise<Group> {
  const child = fork(new URL('./http-server.js', import.meta.url), [
    JSON.stringify({ endpoint: opts.clientConfig.endpoint, table: opts.table }),
  ]);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`HTTP bench server exited with ${code}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const seconds = opts.quick ? 1 : 3;
    const rounds = opts.quick ? 1 : 5;
    // Warm every route (fills both caches) before measuring.
    for (const path of ['/plain', '/dynamo', '/cache-manager']) await rps(base + path, 1);
    const routes = [
      ['uncached constant route (baseline)', '/plain'],
      ['nestjs-dynamo-cache DynamoCacheInterceptor', '/dynamo'],
      ['@nestjs/cache-manager CacheInterceptor', '/cache-manager'],
    ] as const;
    // Interleaved rounds, median per route: the machine's drift hits every route alike.
    const runs = routes.map((): Awaited<ReturnType<typeof rps>>[] => []);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < routes.length; i++)
        runs[i]!.push(await rps(base + routes[i]![1], seconds));
    }
    const results: [string, string, Awaited<ReturnType<typeof rps>>][] = routes.map(
      ([label, path], i) => {
        const sorted = [...runs[i]!].sort((x, y) => x.rps - y.rps);
        return [label, path, sorted[Math.floor(sorted.length / 2)]!];
      },
    );
    const baseline = results[0]![2].rps;
    const rows: Row[] = results.map(([label, , r]) => ({
      label,
      value: r.rps,
      unit: 'req/s',
      display: `${Math.round(r.rps).toLocaleString('en')} req/s`,
      ratio: r.rps / baseline,
      detail: r.errors || r.non2xx ? `${r.errors} errors, ${r.non2xx} non-2xx` : '',
    }));
    const ours = results[1]![2].rps;
    const cm = results[2]![2].rps;
    return {
      name: 'HTTP: cached GET route, Express, 20 connections (req/s, median of interleaved runs)',
      baseline: 'the same route uncached',
      higherIsBetter: true,
      rows,
      notes: [
        `DynamoCacheInterceptor vs CacheInterceptor: ${fmtRatio(ours / cm)} (target >= 1.0x)`,
        `DynamoCacheInterceptor vs uncached constant route: ${fmtRatio(ours / baseline)} (target >= 0.8x)`,
      ],
    };
  } finally {
    child.send('stop');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}
