export {
  DYNAMO_CACHE_METRICS_OPTIONS,
  DynamoCacheMetrics,
  type DynamoCacheMetricsOptions,
} from './dynamo-cache.metrics.js';
export { DynamoCacheMetricsModule } from './dynamo-cache-metrics.module.js';
