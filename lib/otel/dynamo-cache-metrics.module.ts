import { Module, type DynamicModule } from '@nestjs/common';
import {
  DYNAMO_CACHE_METRICS_OPTIONS,
  DynamoCacheMetrics,
  type DynamoCacheMetricsOptions,
} from './dynamo-cache.metrics.js';

/**
 * Registers {@link DynamoCacheMetrics}; needs `DynamoCacheModule` registered with `isGlobal: true`
 * (otherwise add `DynamoCacheMetrics` to the providers of the module that imports it).
 *
 * @example
 * @Module({
 *   imports: [
 *     DynamoCacheModule.forRoot({ table: 'app-cache', isGlobal: true }),
 *     DynamoCacheMetricsModule.forRoot({ prefix: 'app_cache' }),
 *   ],
 * })
 * export class AppModule {}
 */
@Module({})
export class DynamoCacheMetricsModule {
  /** The metrics provider, with `options`. */
  static forRoot(options: DynamoCacheMetricsOptions = {}): DynamicModule {
    return {
      module: DynamoCacheMetricsModule,
      providers: [{ provide: DYNAMO_CACHE_METRICS_OPTIONS, useValue: options }, DynamoCacheMetrics],
      exports: [DynamoCacheMetrics],
    };
  }
}
