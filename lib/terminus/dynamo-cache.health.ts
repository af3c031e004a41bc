import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { DYNAMO_CACHE_CLIENT, DYNAMO_CACHE_OPTIONS } from '../dynamo-cache.constants.js';
import { CacheEngine } from '../engine/cache-engine.js';
import { PARTITION_KEY } from '../engine/l2/item-codec.js';
import type { ResolvedDynamoCacheOptions } from '../interfaces/dynamo-cache-module-options.interface.js';
import { timerDelay } from '../engine/timer-delay.js';

/**
 * Options of {@link DynamoCacheHealthIndicator.isHealthy}.
 *
 * @example
 * const options: DynamoCacheHealthOptions = { timeout: 500, table: 'sessions-cache' };
 */
export interface DynamoCacheHealthOptions {
  /** Milliseconds the read may take before the cache is reported down. Default 1000. */
  timeout?: number;
  /** The table to check. Default: the module's. */
  table?: string;
}

/**
 * A `@nestjs/terminus` health indicator for the cache's DynamoDB table: down while its circuit
 * breaker is open, otherwise the outcome of one real read (a `GetItem` of a key no entry uses),
 * bounded by `timeout`. Details: the table, the region, the circuit state and the read's latency.
 * Import `TerminusModule` and add this class to the module's providers.
 *
 * @example
 * import { DynamoCacheHealthIndicator } from 'nestjs-dynamo-cache/terminus';
 *
 * @Controller('health')
 * export class HealthController {
 *   constructor(private readonly health: HealthCheckService, private readonly cache: DynamoCacheHealthIndicator) {}
 *
 *   @Get()
 *   @HealthCheck()
 *   check() {
 *     return this.health.check([() => this.cache.isHealthy('cache', { timeout: 500 })]);
 *   }
 * }
 */
@Injectable()
export class DynamoCacheHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Inject(CacheEngine) private readonly engine: CacheEngine,
    @Inject(DYNAMO_CACHE_CLIENT) private readonly client: DynamoDBClient,
    @Inject(DYNAMO_CACHE_OPTIONS) private readonly options: ResolvedDynamoCacheOptions,
  ) {}

  /** Reports `key` up or down (see the class). Never throws: a failure is a `down` result. */
  async isHealthy<const Key extends string>(
    key: Key,
    { timeout = 1000, table = this.options.table }: DynamoCacheHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.indicators.check(key);
    const circuit = this.engine.circuit(table);
    const region = await this.client.config.region().catch(() => 'unknown');
    const details = { table, region, circuit };
    if (circuit === 'open') {
      return indicator.down({
        ...details,
        message: 'circuit breaker open: DynamoDB is being skipped',
      });
    }
    const started = performance.now();
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.client.send(
          new GetItemCommand({
            TableName: table,
            Key: { [PARTITION_KEY]: { S: `${this.options.keyPrefix}#health#` } },
          }),
          { abortSignal: abort.signal },
        ),
        new Promise<never>((_, reject) => {
          const fail = (): void => reject(new Error(`no answer within ${timeout} ms`));
          timer = setTimeout(fail, timerDelay(timeout));
        }),
      ]);
    } catch (err) {
      abort.abort();
      return indicator.down({
        ...details,
        latencyMs: Math.round(performance.now() - started),
        message: (err as Error)?.message ?? String(err),
      });
    } finally {
      clearTimeout(timer);
    }
    return indicator.up({ ...details, latencyMs: Math.round(performance.now() - started) });
  }
}
