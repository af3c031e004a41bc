import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  DynamoCached,
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import {
  DYNAMO_CACHE_METRICS_OPTIONS,
  DynamoCacheMetrics,
  DynamoCacheMetricsModule,
  type DynamoCacheMetricsOptions,
} from '../lib/otel/index.js';
import { countCalls, testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { until } from './support/waits.js';

/* DynamoCacheMetrics (nestjs-dynamo-cache/otel): OpenTelemetry counters and a latency histogram. */

/** A reader that collects on demand (cumulative temporality, the SDK default). */
class OnDemandReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const MISSING_TABLE = `missing-otel-${process.pid}`;

@Injectable()
class Catalog {
  calls = 0;
  failing = false;
  /** While set, a computation waits for it. */
  gate: Promise<void> | undefined;

  @DynamoCached({ ttl: 600, grace: 600 })
  async product(id: string): Promise<string> {
    this.calls++;
    if (this.failing) throw new Error('catalog down');
    await this.gate;
    return `product ${id}`;
  }
}

@Injectable()
class Prices {
  @DynamoCached({ ttl: 600 })
  async price(id: string): Promise<number> {
    return id.length;
  }
}

/** A namespace on a table that does not exist: every DynamoDB call fails. */
@Injectable()
class Broken {
  @DynamoCached({ ttl: 600, table: MISSING_TABLE })
  async fetch(id: string): Promise<string> {
    return `fetched ${id}`;
  }
}

const CN = 'Catalog.product';
const PN = 'Prices.price';
const BN = 'Broken.fetch';

/** The metrics a reader holds now, by instrument name. */
async function collect(reader: MetricReader): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const out = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) out.set(metric.descriptor.name, metric);
  }
  return out;
}

/** A counter's data points as `{ 'attr=value,…': sum }` (attributes sorted by name). */
function sums(data: Map<string, MetricData>, name: string): Record<string, number> {
  const metric = data.get(name);
  if (metric === undefined) return {};
  expect(metric.dataPointType).toBe(DataPointType.SUM);
  expect(metric.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE);
  const out: Record<string, number> = {};
  for (const point of metric.dataPoints) {
    const label = Object.entries(point.attributes)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',');
    out[label] = (out[label] ?? 0) + (point.value as number);
  }
  return out;
}

/** The histogram's recordings, counted by `operation` and by `operation/table/outcome`. */
function durations(data: Map<string, MetricData>, name: string) {
  const metric = data.get(name);
  const byOperation: Record<string, number> = {};
  const byAll: Record<string, number> = {};
  if (metric === undefined) return { byOperation, byAll, unit: undefined };
  expect(metric.dataPointType).toBe(DataPointType.HISTOGRAM);
  for (const point of metric.dataPoints) {
    const { operation, table, outcome } = point.attributes as Record<string, string>;
    const value = point.value as { count: number; min?: number };
    expect(value.min).toBeGreaterThanOrEqual(0);
    byOperation[operation!] = (byOperation[operation!] ?? 0) + value.count;
    const key = `${operation}/${table}/${outcome}`;
    byAll[key] = (byAll[key] ?? 0) + value.count;
  }
  return { byOperation, byAll, unit: metric.descriptor.unit };
}

describe(`OpenTelemetry metrics (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const providers: MeterProvider[] = [];

  afterEach(async () => {
    await Promise.all(providers.splice(0).map((p) => p.shutdown()));
    metrics.disable();
  });

  /** A MeterProvider with an on-demand reader, shut down after the test. */
  function meter() {
    const reader = new OnDemandReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    providers.push(meterProvider);
    return { reader, meterProvider };
  }

  type Wiring =
    | { via: 'module'; options: DynamoCacheMetricsOptions }
    | { via: 'token'; options: DynamoCacheMetricsOptions }
    | { via: 'none' };

  /** An application with the three services and DynamoCacheMetrics wired as `wiring` says. */
  async function app(table: string, wiring: Wiring, extra: Partial<DynamoCacheModuleOptions> = {}) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const options: DynamoCacheModuleOptions = { table, client, l1MaxAge: 60, ...extra };
    const moduleRef = await Test.createTestingModule(
      wiring.via === 'module'
        ? {
            imports: [
              DynamoCacheModule.forRoot({ ...options, isGlobal: true }),
              DynamoCacheMetricsModule.forRoot(wiring.options),
            ],
            providers: [Catalog, Prices, Broken],
          }
        : {
            imports: [DynamoCacheModule.forRoot(options)],
            providers: [
              Catalog,
              Prices,
              Broken,
              DynamoCacheMetrics,
              ...(wiring.via === 'token'
                ? [{ provide: DYNAMO_CACHE_METRICS_OPTIONS, useValue: wiring.options }]
                : []),
            ],
          },
    ).compile();
    moduleRef.useLogger(false);
    await moduleRef.init();
    fx.apps.push(moduleRef);
    return {
      catalog: moduleRef.get(Catalog),
      prices: moduleRef.get(Prices),
      broken: moduleRef.get(Broken),
      cache: moduleRef.get(DynamoCacheService),
      calls,
    };
  }

  it('exact counts per namespace and layer in two applications, and one duration per DynamoDB call', async () => {
    const table = await fx.dynamo.table();
    const ma = meter();
    const mb = meter();
    // A through DynamoCacheMetricsModule.forRoot, B through the options token.
    const a = await app(table, { via: 'module', options: { meterProvider: ma.meterProvider } });
    const b = await app(table, { via: 'token', options: { meterProvider: mb.meterProvider } });

    // A: misses, then L1 hits, in two namespaces.
    expect(await a.catalog.product('p1')).toBe('product p1'); // miss, write
    expect(await a.catalog.product('p1')).toBe('product p1'); // L1
    expect(await a.catalog.product('p1')).toBe('product p1'); // L1
    expect(await a.prices.price('x')).toBe(1); // miss, write
    expect(await a.prices.price('x')).toBe(1); // L1
    expect(await a.prices.price('yy')).toBe(2); // miss, write

    // B: L2 hits of what A wrote, then an L1 hit.
    expect(await b.catalog.product('p1')).toBe('product p1'); // L2
    expect(await b.catalog.product('p1')).toBe('product p1'); // L1
    expect(await b.prices.price('x')).toBe(1); // L2
    expect(await b.prices.price('yy')).toBe(2); // L2

    // A refused write: A starts computing p2, B computes and writes it meanwhile; A's
    // conditional PutItem then finds B's newer item.
    let open!: () => void;
    a.catalog.gate = new Promise<void>((resolve) => (open = resolve));
    const slow = a.catalog.product('p2'); // miss
    await until(() => a.catalog.calls === 2, 'A computing p2');
    expect(await b.catalog.product('p2')).toBe('product p2'); // miss, write (B)
    open();
    expect(await slow).toBe('product p2'); // refused
    a.catalog.gate = undefined;

    // A stale hit: p1 expired, the method failing, within grace.
    await a.cache.expire(CN, ['p1']);
    a.catalog.failing = true;
    expect(await a.catalog.product('p1')).toBe('product p1'); // miss (the attempt), stale
    a.catalog.failing = false;

    // Writes and deletes through the service.
    await a.cache.set(CN, ['p3'], 'manual'); // write
    await a.cache.delete(PN, ['x']); // delete (tombstone)
    await a.cache.deleteMany(PN, [['yy'], ['zzz']]); // 2 deletes
    await a.cache.clear(CN); // delete (marker)

    // An error under onError 'bypass': its table does not exist; the call is still served.
    expect(await a.broken.fetch('k')).toBe('fetched k'); // miss; GetItem and PutItem fail

    await a.cache.settle();
    await b.cache.settle();
    const da = await collect(ma.reader);
    const db = await collect(mb.reader);

    expect(sums(da, 'dynamo_cache.hits')).toEqual({
      [`layer=l1,namespace=${CN}`]: 2,
      [`layer=l1,namespace=${PN}`]: 1,
    });
    expect(sums(da, 'dynamo_cache.misses')).toEqual({
      [`namespace=${CN}`]: 3,
      [`namespace=${PN}`]: 2,
      [`namespace=${BN}`]: 1,
    });
    expect(sums(da, 'dynamo_cache.stale_hits')).toEqual({ [`namespace=${CN}`]: 1 });
    expect(sums(da, 'dynamo_cache.writes')).toEqual({
      [`namespace=${CN}`]: 2,
      [`namespace=${PN}`]: 2,
    });
    expect(sums(da, 'dynamo_cache.refused_writes')).toEqual({ [`namespace=${CN}`]: 1 });
    expect(sums(da, 'dynamo_cache.deletes')).toEqual({
      [`namespace=${CN}`]: 1,
      [`namespace=${PN}`]: 3,
    });
    expect(sums(da, 'dynamo_cache.errors')).toEqual({
      [`namespace=${BN},operation=GetItem`]: 1,
      [`namespace=${BN},operation=PutItem`]: 1,
    });

    expect(sums(db, 'dynamo_cache.hits')).toEqual({
      [`layer=l1,namespace=${CN}`]: 1,
      [`layer=l2,namespace=${CN}`]: 1,
      [`layer=l2,namespace=${PN}`]: 2,
    });
    expect(sums(db, 'dynamo_cache.misses')).toEqual({ [`namespace=${CN}`]: 1 });
    expect(sums(db, 'dynamo_cache.writes')).toEqual({ [`namespace=${CN}`]: 1 });
    for (const name of ['stale_hits', 'refused_writes', 'deletes', 'errors']) {
      expect(sums(db, `dynamo_cache.${name}`)).toEqual({});
    }

    // The counters agree with the cache's own statistics.
    const sa = a.cache.stats().namespaces;
    expect([sa[CN]?.l1Hits, sa[CN]?.misses, sa[CN]?.staleHits, sa[CN]?.l2Refused]).toEqual([
      2, 3, 1, 1,
    ]);
    expect([sa[PN]?.l2Deletes, sa[BN]?.l2Errors]).toEqual([3, 2]);

    // The histogram: one recording per DynamoDB call each application made.
    const ha = durations(da, 'dynamo_cache.dynamodb.duration');
    const hb = durations(db, 'dynamo_cache.dynamodb.duration');
    expect(ha.unit).toBe('ms');
    expect(ha.byOperation).toEqual(a.calls.counts);
    expect(hb.byOperation).toEqual(b.calls.counts);
    // GetItem: p1, yy... by hand: A read p1, x, yy, p2, p1 (stale), k; B read p1, x, yy, p2.
    expect(a.calls.get('GetItem')).toBe(6);
    expect(b.calls.get('GetItem')).toBe(4);
    // PutItem: A wrote p1, x, yy, p2 (refused), set p3, tombstone x, the CN marker, and k
    // (failed); B wrote p2.
    expect(a.calls.get('PutItem')).toBe(8);
    expect(b.calls.get('PutItem')).toBe(1);
    expect(ha.byAll[`GetItem/${MISSING_TABLE}/error`]).toBe(1);
    expect(ha.byAll[`PutItem/${MISSING_TABLE}/error`]).toBe(1);
    expect(ha.byAll[`GetItem/${table}/ok`]).toBe(5);
    expect(ha.byAll[`PutItem/${table}/ok`]).toBe(7);
    // Failures only on the missing table.
    expect(
      Object.entries(ha.byAll)
        .filter(([k]) => k.endsWith('/error'))
        .map(([k]) => k)
        .sort(),
    ).toEqual([`GetItem/${MISSING_TABLE}/error`, `PutItem/${MISSING_TABLE}/error`]);
    expect(Object.keys(hb.byAll).every((k) => k.includes(`/${table}/ok`))).toBe(true);
  });

  it('prefix: dynamo_cache by default, the given one otherwise', async () => {
    const table = await fx.dynamo.table();
    const plain = meter();
    const custom = meter();
    const a = await app(table, { via: 'module', options: { meterProvider: plain.meterProvider } });
    const b = await app(table, {
      via: 'token',
      options: { meterProvider: custom.meterProvider, prefix: 'orders_cache' },
    });
    for (const c of [a, b]) {
      await c.prices.price('x');
      await c.prices.price('x');
      await c.cache.settle();
    }
    const names = async (reader: MetricReader) => [...(await collect(reader)).keys()].sort();
    expect(await names(plain.reader)).toEqual(
      expect.arrayContaining([
        'dynamo_cache.dynamodb.duration',
        'dynamo_cache.hits',
        'dynamo_cache.misses',
        'dynamo_cache.writes',
      ]),
    );
    expect((await names(plain.reader)).every((n) => n.startsWith('dynamo_cache.'))).toBe(true);
    const customNames = await names(custom.reader);
    // B's first call was an L2 hit of A's entry, its second an L1 hit: no miss, no write.
    expect(customNames).toEqual(
      expect.arrayContaining(['orders_cache.dynamodb.duration', 'orders_cache.hits']),
    );
    expect(customNames.every((n) => n.startsWith('orders_cache.'))).toBe(true);
    expect(sums(await collect(custom.reader), 'orders_cache.hits')).toEqual({
      [`layer=l1,namespace=${PN}`]: 1,
      [`layer=l2,namespace=${PN}`]: 1,
    });
  });

  it('no SDK registered: the global no-op is used and nothing throws; a global provider registered later is used by new applications', async () => {
    metrics.disable();
    const table = await fx.dynamo.table();
    const a = await app(table, { via: 'none' });
    expect(await a.catalog.product('p1')).toBe('product p1');
    expect(await a.catalog.product('p1')).toBe('product p1');
    await a.cache.set(CN, ['p2'], 'manual');
    await a.cache.delete(CN, ['p2']);
    await a.cache.expire(CN, ['p1']);
    a.catalog.failing = true;
    expect(await a.catalog.product('p1')).toBe('product p1'); // stale
    a.catalog.failing = false;
    expect(await a.broken.fetch('k')).toBe('fetched k'); // errors
    await a.cache.settle();
    expect(a.cache.stats().namespaces[CN]).toMatchObject({
      l1Hits: 1,
      misses: 2,
      staleHits: 1,
      l2Writes: 2,
      l2Deletes: 1,
    });

    // With a global provider (and still no options): instruments come from it.
    const global = meter();
    expect(metrics.setGlobalMeterProvider(global.meterProvider)).toBe(true);
    const b = await app(table, { via: 'module', options: {} });
    expect(await b.prices.price('x')).toBe(1);
    await b.cache.settle();
    const data = await collect(global.reader);
    expect(sums(data, 'dynamo_cache.misses')).toEqual({ [`namespace=${PN}`]: 1 });
    expect(sums(data, 'dynamo_cache.writes')).toEqual({ [`namespace=${PN}`]: 1 });
    // A, booted before it was registered, keeps its no-op instruments (OpenTelemetry's metrics
    // API has no proxy): nothing of it reaches the global provider.
    await a.catalog.product('p3');
    await a.cache.settle();
    expect(sums(await collect(global.reader), 'dynamo_cache.misses')).toEqual({
      [`namespace=${PN}`]: 1,
    });
  });
});
