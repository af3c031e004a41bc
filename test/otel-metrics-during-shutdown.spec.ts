import { Injectable, type BeforeApplicationShutdown, type Provider } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { CacheEngine } from '../lib/engine/cache-engine.js';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import {
  DYNAMO_CACHE_METRICS_OPTIONS,
  DynamoCacheMetrics,
  DynamoCacheMetricsModule,
} from '../lib/otel/index.js';
import { sleep } from './support/apps.js';
import { countCalls, useTestDynamo } from './support/dynamo-server.js';
import { until } from './support/waits.js';

/*
 * DynamoCacheMetrics counts what the cache does while the application shuts down: the writes of
 * computations still running at close(), and of other providers' shutdown hooks, are drained
 * after Nest's onModuleDestroy. It stops counting once the cache has closed, and leaves nothing
 * listening.
 */

class OnDemandReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** Each counter's total, and the histogram's recordings by operation. */
async function totals(reader: MetricReader): Promise<Record<string, number>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const out: Record<string, number> = {};
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics as MetricData[]) {
      for (const point of metric.dataPoints) {
        const name = metric.descriptor.name;
        if (typeof point.value === 'number') out[name] = (out[name] ?? 0) + point.value;
        else {
          const key = `${name}/${String(point.attributes.operation)}`;
          out[key] = (out[key] ?? 0) + (point.value as { count: number }).count;
        }
      }
    }
  }
  return out;
}

@Injectable()
class Reports {
  started = 0;
  @DynamoCached({ ttl: 600 })
  async report(id: string): Promise<string> {
    this.started++;
    await sleep(400);
    return `report ${id}`;
  }
}

/** Writes through the cache in its own shutdown hook, after Nest's onModuleDestroy. */
@Injectable()
class LastWords implements BeforeApplicationShutdown {
  constructor(private readonly cache: DynamoCacheService) {}
  async beforeApplicationShutdown(): Promise<void> {
    await this.cache.set('last.words', ['k'], 'goodbye', { ttl: 600 });
  }
}

describe.each(['provider', 'module'] as const)(
  'OpenTelemetry metrics during shutdown (DynamoCacheMetrics as a %s)',
  (wiring) => {
    const fx = useTestDynamo();
    const meterProviders: MeterProvider[] = [];

    afterEach(async () => {
      await Promise.all(meterProviders.splice(0).map((p) => p.shutdown()));
    });

    async function boot(): Promise<{
      app: TestingModule;
      reader: OnDemandReader;
      calls: ReturnType<typeof countCalls>;
    }> {
      const table = await fx.dynamo.table('otel-shutdown');
      const reader = new OnDemandReader();
      const meterProvider = new MeterProvider({ readers: [reader] });
      meterProviders.push(meterProvider);
      const client = fx.dynamo.client();
      const calls = countCalls(client);
      const cache = DynamoCacheModule.forRoot({ table, client, isGlobal: true });
      const providers: Provider[] = [Reports, LastWords];
      const app = await Test.createTestingModule(
        wiring === 'module'
          ? { imports: [cache, DynamoCacheMetricsModule.forRoot({ meterProvider })], providers }
          : {
              imports: [cache],
              providers: [
                ...providers,
                DynamoCacheMetrics,
                { provide: DYNAMO_CACHE_METRICS_OPTIONS, useValue: { meterProvider } },
              ],
            },
      ).compile();
      app.useLogger(false);
      await app.init();
      return { app, reader, calls };
    }

    it('a computation running at close() and a write in another provider’s shutdown hook: their miss, writes and DynamoDB calls are counted', async () => {
      const { app, reader, calls } = await boot();
      const cache = app.get(DynamoCacheService);
      const reports = app.get(Reports);
      const call = reports.report('a');
      await until(() => reports.started === 1, 'the computation to start');
      await app.close();
      expect(await call).toBe('report a');

      // What the cache itself counted: one miss, two writes (the report, the last words).
      expect(cache.stats().total).toMatchObject({ misses: 1, l2Writes: 2 });
      const counted = await totals(reader);
      expect(counted['dynamo_cache.misses']).toBe(1);
      expect(counted['dynamo_cache.writes']).toBe(2);
      // One duration per DynamoDB call, those made during close() included.
      expect(calls.counts).toEqual({ GetItem: 1, PutItem: 2 });
      expect(counted['dynamo_cache.dynamodb.duration/GetItem']).toBe(1);
      expect(counted['dynamo_cache.dynamodb.duration/PutItem']).toBe(2);
    });

    it('once close() has ended: nothing more is counted, and nothing is left listening to the cache', async () => {
      const { app, reader } = await boot();
      const engine = app.get(CacheEngine);
      const reports = app.get(Reports);
      expect(await reports.report('a')).toBe('report a');
      await app.close();
      const before = await totals(reader);
      expect(before['dynamo_cache.misses']).toBe(1);
      expect(engine.events.active).toBe(false);

      // After close the cache is bypassed: the method answers, and no metric moves.
      expect(await reports.report('b')).toBe('report b');
      expect(await totals(reader)).toEqual(before);
    });
  },
);
