import type { LeaseOptions } from '../engine/l2/cache-lease.js';

/**
 * Options of `@DynamoCached(options)`; each one overrides the module's.
 *
 * @example
 * @DynamoCached({ ttl: 60, maxsize: 500, namespace: 'rates.v2', key: (q: Query) => q.id })
 */
export interface DynamoCachedOptions {
  /** Seconds an entry lives; `null` = never expires. */
  ttl?: number | null;
  /** L1 capacity for this method; `null` = unbounded; `0` = no L1. */
  maxsize?: number | null;
  /** Another DynamoDB table for this method's items. */
  table?: string;
  /** The namespace part of `cache_key`; default `ClassName.methodName` (routes too). */
  namespace?: string;
  /**
   * Derives the key material from the arguments; default the argument list. Provider methods
   * only: a route's key comes from `DynamoCacheInterceptor.trackBy` (override it in a subclass).
   */
  key?: (...args: never[]) => unknown;
  /**
   * Routes only: request headers whose values join the key material. Declaring it also allows
   * caching requests that carry `Authorization` or `Cookie`.
   */
  vary?: string[];
  /**
   * Provider methods only: overrides the module's `lease` (cross-process single-flight) for this
   * method: `true`, `false` or `{ ttlMs?, waitMs?, pollMs? }`.
   *
   * @example
   * @DynamoCached({ ttl: 3600, lease: { waitMs: 30_000, ttlMs: 60_000 } }) // a slow report
   */
  lease?: LeaseOptions | boolean;
}
