/**
 * `npm run bench`: nestjs-dynamo-cache side by side with what NestJS users would otherwise pick,
 * in one process, on one in-process dynalite. Every figure is reported with its ratio to the
 * baseline of its group. `--quick` shortens every measurement (CI proves the benchmark runs).
 */
import 'reflect-metadata';
import { CreateTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BentoCache, bentostore } from 'bentocache';
import { dynamoDbDriver } from 'bentocache/drivers/dynamodb';
import { memoryDriver } from 'bentocache/drivers/memory';
import { CACHE_MANAGER, CacheModule } from '@nestjs/cache-manager';
import type { Cache } from 'cache-manager';
import dynalite from 'dynalite';
import { LRUCache } from 'lru-cache';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, type as osType, release } from 'node:os';
import type { AddressInfo } from 'node:net';
import { deserialize } from 'node:v8';
import {
  buildCacheKey,
  createCacheTable,
  DYNAMO_CACHE_CLIENT,
  DynamoCached,
  DynamoCacheModule,
  encodeKey,
} from '../lib/index.js';
import { CacheEngine } from '../lib/engine/cache-engine.js';
import { v8Serializer } from '../lib/engine/values/serializer.js';
import { countCalls } from '../test/support/call-counter.js';
import { fmtRate, fmtRatio, interleaved, measure, ratioChart } from './harness.js';
import { httpGroup } from './http.js';
import { routeMemory } from './route-memory.js';

const quick = process.argv.includes('--quick');
const MS = quick ? 100 : 1000;
const ROUNDS = quick ? 1 : 3;
const L2_COUNT = quick ? 100 : 500;
const STAMPEDE = 1000;
const MEMORY_KEYS = quick ? 100_000 : 1_000_000;

export interface Row {
  label: string;
  value: number;
  unit: string;
  display: string;
  ratio: number;
  /** Extra columns (counts) shown as is. */
  detail?: string;
}
export interface Group {
  name: string;
  baseline: string;
  higherIsBetter: boolean;
  rows: Row[];
  notes?: string[];
}

const VALUE = { from: 'EUR', to: 'USD', rate: 1.0842, at: '2026-11-25T00:00:00.000Z' };

function rows(
  baselineLabel: string,
  entries: [string, number][],
  unit: string,
  higherIsBetter = true,
  display: (v: number) => string = fmtRate,
): Row[] {
  const base = entries.find(([l]) => l === baselineLabel)?.[1] ?? 1;
  return entries.map(([label, value]) => ({
    label,
    value,
    unit,
    display: display(value),
    ratio: higherIsBetter ? value / base : base / value,
  }));
}

async function main(): Promise<void> {
  const server = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
  const clientConfig = { endpoint, region: 'us-east-1', credentials };
  const admin = new DynamoDBClient(clientConfig);
  await createCacheTable(admin, 'bench-cache');
  await admin.send(
    new CreateTableCommand({
      TableName: 'bento-cache',
      AttributeDefinitions: [{ AttributeName: 'key', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );

  let methodCalls = 0;
  @Injectable()
  class RatesService {
    @DynamoCached()
    async rate(from: string, to: string): Promise<typeof VALUE> {
      methodCalls++;
      return { ...VALUE, from, to };
    }

    @DynamoCached({ maxsize: 0, namespace: 'RatesService.rateFromL2' })
    async rateFromL2(from: string, to: string): Promise<typeof VALUE> {
      methodCalls++;
      return { ...VALUE, from, to };
    }

    async undecorated(from: string, to: string): Promise<typeof VALUE> {
      return VALUE.from === from && VALUE.to === to ? VALUE : { ...VALUE, from, to };
    }
  }
  @Module({
    imports: [
      DynamoCacheModule.forRoot({ table: 'bench-cache', clientConfig, ttl: 3600, maxsize: 10_000 }),
      CacheModule.register({ ttl: 3_600_000 }),
    ],
    providers: [RatesService],
  })
  class BenchModule {}
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  const svc = app.get(RatesService);
  const ourCounts = countCalls(app.get<DynamoDBClient>(DYNAMO_CACHE_CLIENT));

  const bentoClient = new DynamoDBClient(clientConfig);
  const bentoCounts = countCalls(bentoClient);
  const bentoL2 = () =>
    dynamoDbDriver({
      table: { name: 'bento-cache' },
      ...clientConfig,
      client: bentoClient,
    } as never);
  const bento = new BentoCache({
    default: 'two',
    stores: {
      two: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 10_000 }))
        .useL2Layer(bentoL2()),
      l2only: bentostore().useL2Layer(bentoL2()),
    },
  });
  const cm = app.get<Cache>(CACHE_MANAGER);
  const lru = new LRUCache<string, typeof VALUE>({ max: 10_000 });
  lru.set(JSON.stringify(['EUR', 'USD']), VALUE);
  const prepared = JSON.stringify(['EUR', 'USD']);

  const groups: Group[] = [];
  const log = (s: string): void => console.log(s);

  if (process.env.BENCH_ONLY === 'http') {
    const only = await httpGroup({ clientConfig, table: 'bench-cache', quick });
    report([only]);
    return;
  }

  // 1. L1 hit ------------------------------------------------------------------------------
  log('1/5 L1 hit…');
  await svc.rate('EUR', 'USD');
  await bento.getOrSet({ key: 'rate:EUR:USD', factory: async () => VALUE, ttl: '1h' });
  await cm.wrap('rate:EUR:USD', async () => VALUE, 3_600_000);
  const f = (from: string, to: string) => ({ from, to });
  const l1: [string, number][] = [];
  const { from, to } = f('EUR', 'USD');
  l1.push([
    'raw lru-cache get, JSON.stringify key, async fn (baseline)',
    (await measure(async () => lru.get(JSON.stringify([from, to])), MS, ROUNDS)).opsPerSec,
  ]);
  l1.push([
    'raw lru-cache get, prepared key, async fn',
    (await measure(async () => lru.get(prepared), MS, ROUNDS)).opsPerSec,
  ]);
  l1.push([
    'undecorated async method',
    (await measure(() => svc.undecorated(from, to), MS, ROUNDS)).opsPerSec,
  ]);
  l1.push([
    'nestjs-dynamo-cache @DynamoCached (warm)',
    (await measure(() => svc.rate(from, to), MS, ROUNDS)).opsPerSec,
  ]);
  l1.push([
    'bentocache getOrSet (memory L1 + DynamoDB L2)',
    (
      await measure(
        () => bento.getOrSet({ key: `rate:${from}:${to}`, factory: async () => VALUE, ttl: '1h' }),
        MS,
        ROUNDS,
      )
    ).opsPerSec,
  ]);
  l1.push([
    '@nestjs/cache-manager CACHE_MANAGER wrap (in-memory store)',
    (await measure(() => cm.wrap(`rate:${from}:${to}`, async () => VALUE, 3_600_000), MS, ROUNDS))
      .opsPerSec,
  ]);
  const ours1 = l1.find(([l]) => l.startsWith('nestjs'))![1];
  groups.push({
    name: 'L1 hit (sequential awaits, ops/s)',
    baseline: l1[0]![0],
    higherIsBetter: true,
    rows: rows(l1[0]![0], l1, 'ops/s'),
    notes: [
      `nestjs-dynamo-cache vs bentocache getOrSet: ${fmtRatio(ours1 / l1.find(([l]) => l.startsWith('bentocache'))![1])} (target >= 5x)`,
      `nestjs-dynamo-cache vs cache-manager wrap: ${fmtRatio(ours1 / l1.find(([l]) => l.startsWith('@nestjs/cache-manager'))![1])} (target >= 5x)`,
      `nestjs-dynamo-cache vs raw lru-cache + JSON.stringify: ${fmtRatio(ours1 / l1[0]![1])} (target >= 0.5x)`,
    ],
  });

  if (process.env.BENCH_ONLY === 'l1') {
    report(groups);
    return;
  }

  // 2. L2 hit ------------------------------------------------------------------------------
  log('2/5 L2 hit…');
  await bento
    .use('l2only')
    .getOrSet({ key: 'rate:EUR:USD:l2', factory: async () => VALUE, ttl: '1h' });
  await svc.rateFromL2('EUR', 'USD'); // one miss writes the item; every later call is an L2 hit
  const cacheKey = buildCacheKey('', 'RatesService.rateFromL2', encodeKey(['EUR', 'USD']));
  const bare = new DynamoDBClient(clientConfig);
  const before = methodCalls;
  // Interleaved rounds (A, B, C, A, B, C, …), so drift in dynalite or the GC hits all alike.
  const l2Rates = await interleaved(
    [
      [
        'bare SDK GetItem + v8 deserialize (baseline)',
        async () => {
          const out = await bare.send(
            new GetItemCommand({ TableName: 'bench-cache', Key: { cache_key: { S: cacheKey } } }),
          );
          return deserialize(out.Item!.v!.B!);
        },
      ],
      ['nestjs-dynamo-cache, empty L1 (maxsize 0)', () => svc.rateFromL2('EUR', 'USD')],
      [
        'bentocache getOrSet, L2 layer only',
        () =>
          bento
            .use('l2only')
            .getOrSet({ key: 'rate:EUR:USD:l2', factory: async () => VALUE, ttl: '1h' }),
      ],
    ],
    L2_COUNT,
    quick ? 1 : 7,
  );
  if (methodCalls !== before)
    throw new Error('the L2 benchmark recomputed: it must be all L2 hits');
  const l2: [string, number][] = l2Rates;
  const ours2 = l2[1]![1];
  groups.push({
    name: 'L2 hit (empty L1, warm DynamoDB, sequential, ops/s)',
    baseline: l2[0]![0],
    higherIsBetter: true,
    rows: rows(l2[0]![0], l2, 'ops/s'),
    notes: [
      `time per call vs bare GetItem + deserialize: ${fmtRatio(l2[0]![1] / ours2)} (target <= 1.10x)`,
      `nestjs-dynamo-cache vs bentocache L2: ${fmtRatio(ours2 / l2[2]![1])} faster (target >= 1x)`,
    ],
  });

  // 3. Cold stampede -----------------------------------------------------------------------
  log('3/5 stampede…');
  const stampede: Row[] = [];
  {
    ourCounts.reset();
    methodCalls = 0;
    await Promise.all(Array.from({ length: STAMPEDE }, () => svc.rate('NEW', 'KEY')));
    stampede.push({
      label: 'nestjs-dynamo-cache',
      value: methodCalls,
      unit: 'calls',
      display: String(methodCalls),
      ratio: 1,
      detail: `GetItem ${ourCounts.get('GetItem')}, PutItem ${ourCounts.get('PutItem')}`,
    });
  }
  {
    bentoCounts.reset();
    let calls = 0;
    await Promise.all(
      Array.from({ length: STAMPEDE }, () =>
        bento.getOrSet({ key: 'stampede:new', factory: async () => (calls++, VALUE), ttl: '1h' }),
      ),
    );
    stampede.push({
      label: 'bentocache getOrSet',
      value: calls,
      unit: 'calls',
      display: String(calls),
      ratio: calls,
      detail: `GetItem ${bentoCounts.get('GetItem')}, PutItem ${bentoCounts.get('PutItem')}`,
    });
  }
  {
    let calls = 0;
    await Promise.all(
      Array.from({ length: STAMPEDE }, () =>
        cm.wrap('stampede:new', async () => (calls++, VALUE), 3_600_000),
      ),
    );
    stampede.push({
      label: '@nestjs/cache-manager wrap',
      value: calls,
      unit: 'calls',
      display: String(calls),
      ratio: calls,
      detail: 'memory only (no DynamoDB)',
    });
  }
  groups.push({
    name: `Cold stampede: ${STAMPEDE} concurrent calls on one new key (method calls; ratio = calls / 1)`,
    baseline: 'one call',
    higherIsBetter: false,
    rows: stampede,
  });

  // 4. HTTP ----------------------------------------------------------------------------------
  log('4/5 HTTP…');
  const http = await httpGroup({ clientConfig, table: 'bench-cache', quick });
  if (http) groups.push(http);

  // 5. L1 memory -----------------------------------------------------------------------------
  log('5/5 L1 memory…');
  groups.push(await memoryGroup());

  await app.close();
  await bento.disconnect();
  bentoClient.destroy();
  bare.destroy();
  admin.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));

  report(groups);
}

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with --expose-gc');
  g();
  g();
};

async function memoryGroup(): Promise<Group> {
  const N = 100_000;
  // A DynamoDB that answers instantly with "no item": this group measures L1 memory only.
  const fakeClient = { send: async () => ({}) } as unknown as DynamoDBClient;
  const engine = (maxsize: number | null) =>
    new CacheEngine({
      client: () => fakeClient,
      table: 't',
      ttl: 3600,
      maxsize,
      keyPrefix: '',
      onError: 'bypass',
      serializer: v8Serializer,
      consistentRead: false,
      logger: { warn: () => {}, error: () => {} },
    });
  const small = (i: number) => ({ id: i, name: `user-${i}`, active: true });

  gc();
  let base = process.memoryUsage().heapUsed;
  const raw = new LRUCache<string, object>({ max: N + 1 });
  for (let i = 0; i < N; i++) raw.set(JSON.stringify(['user', i]), small(i));
  gc();
  const rawBytes = (process.memoryUsage().heapUsed - base) / N;

  const e1 = engine(null).namespace('users.get');
  gc();
  base = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i++) await e1.run(null, ['user', i], () => small(i));
  gc();
  const ourBytes = (process.memoryUsage().heapUsed - base) / N;
  if (e1.l1Size !== N) throw new Error('memory benchmark did not fill L1');

  raw.clear();
  e1.clearL1();
  gc();
  base = process.memoryUsage().heapUsed;
  const e2 = engine(10_000).namespace('users.bounded');
  for (let i = 0; i < MEMORY_KEYS; i++) await e2.run(null, ['user', i], () => small(i));
  gc();
  const boundedMb = (process.memoryUsage().heapUsed - base) / 1024 / 1024;
  const entryMb = (10_000 * ourBytes) / 1024 / 1024;
  const urls = quick ? 2_000 : 20_000;
  const route = await routeMemory(urls, gc);
  const fmtBytes = (v: number) => `${v.toFixed(0)} B`;
  return {
    name: 'L1 memory (lower is better; ratio = baseline / figure)',
    baseline: 'raw lru-cache, JSON.stringify key',
    higherIsBetter: false,
    rows: [
      ...rows(
        'raw lru-cache, JSON.stringify key',
        [
          ['raw lru-cache, JSON.stringify key', rawBytes],
          ['nestjs-dynamo-cache L1', ourBytes],
        ],
        'bytes/entry',
        false,
        fmtBytes,
      ).map((r) => ({ ...r, label: `bytes per entry (small object): ${r.label}` })),
      {
        label: `heap growth after ${MEMORY_KEYS.toLocaleString('en')} distinct keys, maxsize 10000: nestjs-dynamo-cache`,
        value: boundedMb,
        unit: 'MB',
        display: `${boundedMb.toFixed(1)} MB`,
        ratio: entryMb / Math.max(boundedMb, 0.01),
        detail: `10,000 entries x ${ourBytes.toFixed(0)} B = ${entryMb.toFixed(1)} MB expected; L1 holds ${e2.l1Size}`,
      },
      {
        label: `heap growth after ${urls.toLocaleString('en')} unique URLs to a cached route, default options (Express)`,
        value: route.mb,
        unit: 'MB',
        display: `${route.mb.toFixed(1)} MB`,
        ratio: 5 / Math.max(route.mb, 0.01),
        detail: `L1 holds ${route.l1Size} (default maxsize); ratio = 5 MB budget / figure`,
      },
    ],
  };
}

function report(groups: Group[]): void {
  const pkg = (name: string): string => {
    try {
      return (
        JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }
      ).version;
    } catch {
      return '?';
    }
  };
  const machine = {
    cpu: cpus()[0]?.model ?? '?',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    os: `${osType()} ${release()}`,
    node: process.version,
  };
  const versions = Object.fromEntries(
    [
      '@nestjs/core',
      '@aws-sdk/client-dynamodb',
      'lru-cache',
      'bentocache',
      'cache-manager',
      '@nestjs/cache-manager',
      'dynalite',
      'autocannon',
    ].map((n) => [n, pkg(n)]),
  );
  versions['nestjs-dynamo-cache'] = (
    JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
  ).version;
  const date = new Date().toISOString();
  const md: string[] = [
    `# Benchmark results${quick ? ' (quick mode: figures are indicative only)' : ''}`,
    '',
    `${date} — ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, ${machine.os}, Node ${machine.node}`,
    '',
    `Versions: ${Object.entries(versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}. DynamoDB: dynalite in-process.`,
    '',
  ];
  for (const g of groups) {
    md.push(
      `### ${g.name}`,
      '',
      `Baseline: ${g.baseline}`,
      '',
      '| | figure | ratio | |',
      '|---|---:|---:|---|',
    );
    for (const r of g.rows)
      md.push(`| ${r.label} | ${r.display} | ${fmtRatio(r.ratio)} | ${r.detail ?? ''} |`);
    md.push('');
    for (const n of g.notes ?? []) md.push(`- ${n}`);
    if (g.notes?.length) md.push('');
  }
  const out = md.join('\n');
  console.log('\n' + out);
  const dir = quick ? 'bench/results/quick' : 'bench/results';
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/latest.md`, out + '\n');
  writeFileSync(
    `${dir}/latest.json`,
    JSON.stringify({ date, quick, machine, versions, groups }, null, 2) + '\n',
  );
  const bars = groups
    .filter((g) => !g.name.startsWith('Cold stampede'))
    .flatMap((g) =>
      g.rows.map((r) => ({ group: g.name.split(/ \(|:/)[0]!, label: r.label, ratio: r.ratio })),
    );
  writeFileSync(
    `${dir}/ratios.svg`,
    ratioChart(`nestjs-dynamo-cache benchmark ratios (${date.slice(0, 10)})`, bars),
  );
  console.log(`\nwrote ${dir}/latest.md, latest.json, ratios.svg`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
