import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CacheEngine } from './engine/cache-engine.js';
import type { CacheLookup } from './engine/namespace/cache-namespace.js';
import type { CacheStatsSnapshot } from './engine/namespace/cache-stats.js';
import type { CircuitState } from './engine/l2/circuit-breaker.js';
import { LazyDynamoClient } from './engine/l2/lazy-client.js';

/**
 * Per-namespace overrides of the module's settings, for names used through
 * {@link DynamoCacheService}. A namespace's settings are fixed at its first use in the process
 * (options given later are ignored, and `get`, `lookup` and `delete` take none, so a namespace
 * they touch first gets the module's settings): pass the same options to every `wrap` and `set`.
 *
 * @example
 * const sessions: DynamoCacheNamespaceOptions = { ttl: 900, maxsize: 10_000, table: 'sessions-cache' };
 * await cache.set('sessions', [sessionId], session, sessions);
 */
export interface DynamoCacheNamespaceOptions {
  /** Seconds an entry lives; `null` = never expires. Default: the module's. */
  ttl?: number | null;
  /** L1 capacity; `null` = unbounded; `0` = no L1. Default: the module's. */
  maxsize?: number | null;
  /** Another DynamoDB table. Default: the module's. */
  table?: string;
}

/**
 * The cache, programmatically, on the same keys and items as `@DynamoCached`: a namespace plus an
 * argument list identify an entry, so `get('RatesService.rate', ['EUR', 'USD'])` reads what the
 * decorated `RatesService.rate('EUR', 'USD')` stored.
 *
 * @example
 * const user = await cache.wrap('users.byId', [id], () => this.repo.find(id), { ttl: 300 });
 * await cache.delete('users.byId', [id]);
 */
@Injectable()
export class DynamoCacheService implements OnApplicationShutdown {
  constructor(
    @Inject(CacheEngine) private readonly engine: CacheEngine,
    @Inject(LazyDynamoClient) private readonly client: LazyDynamoClient,
  ) {}

  /** Returns the cached value for `args`, or computes it with `fn` and stores it in both layers. */
  wrap<T>(
    namespace: string,
    args: readonly unknown[],
    fn: () => T | Promise<T>,
    options?: DynamoCacheNamespaceOptions,
  ): Promise<T> {
    return this.ns(namespace, options).run(undefined, args, fn as () => T | Promise<T>);
  }

  /** The cached value, or `undefined` on a miss (use {@link lookup} to cache `undefined` itself). */
  async get<T = unknown>(namespace: string, args: readonly unknown[]): Promise<T | undefined> {
    const found = await this.ns(namespace).get<T>(args);
    return found.hit ? found.value : undefined;
  }

  /** Like {@link get}, but tells a cached `undefined` from a miss. */
  lookup<T = unknown>(namespace: string, args: readonly unknown[]): Promise<CacheLookup<T>> {
    return this.ns(namespace).get<T>(args);
  }

  /** Stores `value` for `args` in L1 and L2. */
  set(
    namespace: string,
    args: readonly unknown[],
    value: unknown,
    options?: DynamoCacheNamespaceOptions,
  ): Promise<void> {
    return this.ns(namespace, options).set(args, value);
  }

  /** Removes the entry from this process's L1 and from DynamoDB. */
  delete(namespace: string, args: readonly unknown[]): Promise<void> {
    return this.ns(namespace).delete(args);
  }

  /** Counters per namespace and in total: L1 hits, L2 hits, misses, L2 errors, writes, deletes. */
  stats(): CacheStatsSnapshot {
    return this.engine.stats();
  }

  /**
   * The circuit breaker's state for a table (the module's by default): `'open'` while DynamoDB is
   * being skipped after a run of failures, `'half-open'` while one probe call decides.
   *
   * @example
   * @Get('health')
   * health() {
   *   return { cache: this.cache.circuitState() === 'closed' ? 'up' : 'degraded' };
   * }
   */
  circuitState(table?: string): CircuitState {
    return table === undefined ? this.engine.circuit() : this.engine.circuit(table);
  }

  /** Lets writes in flight finish, then destroys the client if the module created it. */
  async onApplicationShutdown(): Promise<void> {
    await this.engine.drain();
    this.client.destroy();
  }

  private ns(namespace: string, options?: DynamoCacheNamespaceOptions) {
    return this.engine.namespace(namespace, options);
  }
}
