import { Inject, Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { metrics, type Counter, type MeterProvider } from '@opentelemetry/api';
import { CacheEngine } from '../engine/cache-engine.js';
import type { CacheEvent, CacheEventType } from '../engine/namespace/cache-events.js';

/** Injection token of {@link DynamoCacheMetricsOptions}. */
export const DYNAMO_CACHE_METRICS_OPTIONS = Symbol('DYNAMO_CACHE_METRICS_OPTIONS');

/**
 * Options of {@link DynamoCacheMetrics}.
 *
 * @example
 * const options: DynamoCacheMetricsOptions = { meterProvider, prefix: 'orders_cache' };
 */
export interface DynamoCacheMetricsOptions {
  /** Where the instruments come from. Default: the global one (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Prefix of every instrument's name. Default `'dynamo_cache'`. */
  prefix?: string;
}

/**
 * OpenTelemetry metrics of the cache, through `@opentelemetry/api` (a no-op until an SDK is
 * registered): counters `{prefix}.hits` (attributes `namespace`, `layer`), `{prefix}.misses`,
 * `{prefix}.stale_hits`, `{prefix}.writes`, `{prefix}.refused_writes`, `{prefix}.deletes`,
 * `{prefix}.errors` (`namespace`, `operation`), and the histogram `{prefix}.dynamodb.duration`
 * (milliseconds; `operation`, `table`, `outcome`). Add it to the providers of a module that sees
 * `DynamoCacheModule` (or use {@link DynamoCacheMetricsModule} with `DynamoCacheModule` global).
 * It counts until the cache has closed, at the end of the application's shutdown: what the cache
 * does while the shutdown drains its writes and computations in flight is counted too.
 *
 * @example
 * import { DynamoCacheMetrics } from 'nestjs-dynamo-cache/otel';
 *
 * @Module({ imports: [DynamoCacheModule.forRoot({ table: 'app-cache' })], providers: [DynamoCacheMetrics] })
 * export class AppModule {}
 */
@Injectable()
export class DynamoCacheMetrics implements OnModuleInit {
  private readonly stops: (() => void)[] = [];
  private readonly logger = new Logger('DynamoCacheMetrics');

  constructor(
    @Inject(CacheEngine) private readonly engine: CacheEngine,
    @Optional()
    @Inject(DYNAMO_CACHE_METRICS_OPTIONS)
    private readonly options: DynamoCacheMetricsOptions | null = null,
  ) {}

  /**
   * Creates the instruments and starts counting. A meter that cannot make them leaves the
   * application without these metrics (one warning), never without its start.
   */
  onModuleInit(): void {
    try {
      this.start();
    } catch (err) {
      this.stop();
      this.logger.warn(
        `OpenTelemetry metrics are off: the meter failed to create its instruments (${(err as Error)?.message ?? String(err)})`,
      );
    }
  }

  private start(): void {
    // Stopped when the engine closes, not in a Nest hook of this provider: onModuleDestroy runs
    // before DynamoCacheService drains what is in flight, and a shutdown hook has no fixed order
    // with its drains (this provider may sit in any module). The engine closes after the last.
    this.stops.push(this.engine.onClose(() => this.stop()));
    const prefix = this.options?.prefix ?? 'dynamo_cache';
    const meter = (this.options?.meterProvider ?? metrics.getMeterProvider()).getMeter(
      'nestjs-dynamo-cache',
    );
    const counter = (name: string, description: string): Counter =>
      meter.createCounter(`${prefix}.${name}`, { description });
    const counted: [CacheEventType, Counter][] = [
      ['hit', counter('hits', 'Calls answered from the cache, by layer (l1, l2)')],
      ['miss', counter('misses', 'Calls that ran the method (or found nothing)')],
      ['stale', counter('stale_hits', 'Calls answered with a value past its ttl, within grace')],
      ['write', counter('writes', 'Items written to DynamoDB')],
      [
        'refused',
        counter('refused_writes', 'Writes DynamoDB refused: a newer item or invalidation'),
      ],
      ['delete', counter('deletes', 'Entries invalidated in DynamoDB (tombstones, markers)')],
    ];
    for (const [type, instrument] of counted) {
      this.stops.push(
        this.engine.events.on(type, (e: CacheEvent) =>
          instrument.add(
            1,
            e.layer === undefined
              ? { namespace: e.namespace }
              : { namespace: e.namespace, layer: e.layer },
          ),
        ),
      );
    }
    const errors = counter('errors', 'DynamoDB calls that failed');
    this.stops.push(
      this.engine.events.on('error', (e) =>
        errors.add(1, { namespace: e.namespace, operation: e.error?.operation ?? 'unknown' }),
      ),
    );
    const duration = meter.createHistogram(`${prefix}.dynamodb.duration`, {
      description: 'Duration of the DynamoDB calls the cache makes',
      unit: 'ms',
    });
    this.stops.push(
      this.engine.observeCalls((call) =>
        duration.record(call.durationMs, {
          operation: call.operation,
          table: call.table,
          outcome: call.failed ? 'error' : 'ok',
        }),
      ),
    );
  }

  private stop(): void {
    for (const stop of this.stops.splice(0)) stop();
  }
}
