import type { LeaseOptions } from '../engine/l2/cache-lease.js';
import type { TagsOption, TtlOption } from '../engine/namespace/entry-policy.js';
import type { ClassRef } from '../engine/values/class-record.js';

/**
 * Options of `@DynamoCached(options)`; each one overrides the module's.
 *
 * @example
 * @DynamoCached({ ttl: 60, maxsize: 500, namespace: 'rates.v2', key: (q: Query) => q.id })
 */
export interface DynamoCachedOptions {
  /**
   * Seconds an entry lives; `null` = never expires; or a function of the result (a route's: its
   * body) returning either, so each entry gets its own.
   *
   * @example
   * @DynamoCached({ ttl: (user: User | null) => (user === null ? 30 : 3600) })
   */
  ttl?: TtlOption;
  /**
   * Seconds an entry is kept past its ttl (in both layers): while recomputing it fails (the method
   * rejects, DynamoDB fails) the stale value is served instead of the error. Default 0 (off).
   *
   * @example
   * @DynamoCached({ ttl: 60, grace: 24 * 3600, graceBackoff: 30 }) // survives a day of outage
   */
  grace?: number;
  /** Seconds between two attempts of a failing method while its stale value is served. Default 10. */
  graceBackoff?: number;
  /**
   * Soft timeout, in milliseconds: with a stale value in grace, a call whose recomputation takes
   * longer answers with the stale value and lets the computation finish in the background (it
   * then writes both layers). `0` = stale-while-revalidate: answer at once, refresh behind.
   *
   * @example
   * @DynamoCached({ ttl: 60, grace: 3600, timeout: 0 }) // never wait once computed
   */
  timeout?: number;
  /**
   * Tags of each entry, for `DynamoCacheService.deleteByTag`: fixed, or a function of the result
   * and the arguments (a route's: its body and key material).
   *
   * @example
   * @DynamoCached({ ttl: 300, tags: (order: Order) => [`customer:${order.customerId}`] })
   */
  tags?: TagsOption;
  /**
   * Seconds an L1 entry is served before it is checked against DynamoDB (a read of its `t` and
   * invalidation markers, no value): the longest another process's `delete`, `set`, `expire`,
   * `clear` or `deleteByTag` goes unseen here. `null` = never check (trust the ttl). Default: the
   * module's (5).
   */
  l1MaxAge?: number | null;
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
   * Routes and resolvers: request headers whose values join the key material. A request carrying a
   * credential (`Authorization`, `Proxy-Authorization`, `Cookie`, the module's `privateHeaders`)
   * is only cached when `vary` names every credential it carries: then each user gets an entry.
   *
   * @example
   * @DynamoCached({ ttl: 60, vary: ['authorization'] }) // one entry per Authorization value
   */
  vary?: string[];
  /**
   * Routes only: which query parameters join the key. `'all'` (default), or an allow-list of
   * parameter names (`[]`: the query string is ignored), so junk parameters cannot multiply
   * entries. Parameters are sorted by name either way (`?a=1&b=2` and `?b=2&a=1` share an entry).
   *
   * @example
   * @DynamoCached({ ttl: 300, query: ['page', 'sort'] })
   */
  query?: 'all' | readonly string[];
  /**
   * Routes only: the response statuses that may be stored. Default `[200]`. A hit is replayed
   * with the status of the miss.
   *
   * @example
   * @DynamoCached({ ttl: 60, statuses: [200, 404] }) // also remember "not found" for a minute
   */
  statuses?: readonly number[];
  /**
   * Provider methods only: overrides the module's `lease` (cross-process single-flight) for this
   * method: `true`, `false` or `{ ttlMs?, waitMs?, pollMs? }`.
   *
   * @example
   * @DynamoCached({ ttl: 3600, lease: { waitMs: 30_000, ttlMs: 60_000 } }) // a slow report
   */
  lease?: LeaseOptions | boolean;
  /**
   * Classes whose instances this method returns, so that a process that has not computed one yet
   * restores them from DynamoDB (with their prototypes: getters, methods, `instanceof`,
   * `@Exclude()`). Classes known to class-transformer, TypeORM or `@nestjs/graphql` metadata, and
   * classes this process has computed, are found without it.
   *
   * @example
   * @DynamoCached({ ttl: 300, types: [User, Address, Order] })
   * async profile(id: string): Promise<User> { ... }
   */
  types?: readonly ClassRef[];
  /**
   * Milliseconds a computation of this method holds its key (default: the module's, one minute):
   * later calls start their own, and its result is returned but not cached. At most 1e13.
   *
   * @example
   * @DynamoCached({ ttl: 3600, computeTimeout: 5 * 60_000 }) // a slow report
   */
  computeTimeout?: number;
  /**
   * A result for which this returns `true` is returned to the caller but stored in neither layer.
   * Called with the result and the method's arguments (a route's: its key material).
   *
   * @example
   * @DynamoCached({ ttl: 300, unless: (orders: Order[]) => orders.length === 0 })
   */
  unless?: (value: never, ...args: never[]) => boolean;
}
