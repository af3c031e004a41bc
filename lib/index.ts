export * from './decorators/index.js';
export {
  DYNAMO_CACHE_CLIENT,
  DYNAMO_CACHE_OPTIONS,
  DYNAMO_CACHED_METADATA,
  NO_DYNAMO_CACHE_METADATA,
} from './dynamo-cache.constants.js';
export { DynamoCacheInterceptor, type DynamoCacheRouteKey } from './dynamo-cache.interceptor.js';
export { DynamoCacheRouteResponse } from './http/cached-response.js';
export { DEFAULT_MAXSIZE } from './dynamo-cache-options.resolver.js';
export { DynamoCacheModule } from './dynamo-cache.module.js';
export {
  DynamoCacheService,
  type DynamoCacheNamespaceOptions,
  type DynamoCacheReadOptions,
  type DynamoCacheSetOptions,
  type DynamoCacheWrapOptions,
} from './dynamo-cache.service.js';
export { verifyCacheTable, type VerifyCacheTableOptions } from './engine/l2/verify-cache-table.js';
export {
  createCacheTable,
  type CreateCacheTableOptions,
  type CreateCacheTableResult,
} from './engine/l2/create-cache-table.js';
export type { DynamoCacheBus, DynamoCacheBusMessage } from './engine/invalidation/cache-bus.js';
export type { TagsOption, TtlOption } from './engine/namespace/entry-policy.js';
export {
  DEFAULT_COMPUTE_TIMEOUT_MS,
  DEFAULT_GRACE_BACKOFF,
  DEFAULT_L1_MAX_AGE,
  type CacheLookup,
  type OnErrorPolicy,
} from './engine/namespace/cache-namespace.js';
export type { ClassRef } from './engine/values/class-record.js';
export type {
  CacheEvent,
  CacheEventListener,
  CacheEventType,
} from './engine/namespace/cache-events.js';
export type { CacheStats, CacheStatsSnapshot } from './engine/namespace/cache-stats.js';
export type { L2Call } from './engine/l2/l2-store.js';
export { v8Serializer, type CacheSerializer } from './engine/values/serializer.js';
export {
  CircuitOpenError,
  type CircuitBreakerOptions,
  type CircuitState,
} from './engine/l2/circuit-breaker.js';
export { L2TimeoutError } from './engine/l2/l2-timeout.js';
export { DEFAULT_LEASE, type LeaseOptions, type LeaseSettings } from './engine/l2/cache-lease.js';
export { encodeKey, buildCacheKey } from './engine/keys/cache-key.js';
export * from './errors.js';
export * from './interfaces/index.js';
