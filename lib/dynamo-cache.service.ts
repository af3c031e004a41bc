import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import {
  assertComputeTimeout,
  assertEntryTtl,
  assertFreshness,
  assertMaxsize,
  assertTypes,
  assertUnless,
  namespaceProblem,
  tableProblem,
} from './dynamo-cache-options.resolver.js';
import { DynamoCacheError } from './errors.js';
import { tagsProblem, type TagsOption, type TtlOption } from './engine/namespace/entry-policy.js';
import { CacheEngine } from './engine/cache-engine.js';
import type { CacheLookup } from './engine/namespace/cache-namespace.js';
import type { CacheStatsSnapshot } from './engine/namespace/cache-stats.js';
import type { CircuitState } from './engine/l2/circuit-breaker.js';
import type { CacheEventListener, CacheEventType } from './engine/namespace/cache-events.js';
import { LazyDynamoClient } from './engine/l2/lazy-client.js';
import { VERIFY_CALL_TIMEOUT_MS, verifyCacheTable } from './engine/l2/verify-cache-table.js';
import { DYNAMO_CACHE_OPTIONS } from './dynamo-cache.constants.js';
import type { ResolvedDynamoCacheOptions } from './interfaces/dynamo-cache-module-options.interface.js';
import type { ClassRef } from './engine/values/class-record.js';

/**
 * Per-namespace overrides of the module's settings, for names used through
 * {@link DynamoCacheService}. A namespace's settings are fixed at its first use in the process
 * (options given later are ignored, and `get`, `lookup` and `delete` take none, so a namespace
 * they touch first gets the module's settings): pass the same options to every `wrap` and `set`.
 *
 * @example
 * const sessions: DynamoCacheNamespaceOptions = { ttl: 900, maxsize: 10_000, table: 'sessions-cache' };
 * const session = await cache.wrap('sessions', [sessionId], () => loadSession(sessionId), sessions);
 */
export interface DynamoCacheNamespaceOptions {
  /**
   * Seconds an entry lives; `null` = never expires; or a function of the value. Default: the
   * module's. (On `set`, a number or `null` is that entry's own ttl: see {@link DynamoCacheSetOptions}.)
   */
  ttl?: TtlOption;
  /** Seconds entries are kept past their ttl, served when recomputing fails. Default: the module's. */
  grace?: number;
  /** Seconds between two attempts of a failing computation meanwhile. Default: the module's. */
  graceBackoff?: number;
  /** Soft timeout (ms) with a stale value at hand; `0` = stale-while-revalidate. */
  timeout?: number;
  /** Seconds an L1 entry is served before it is checked against DynamoDB. Default: the module's. */
  l1MaxAge?: number | null;
  /** Tags of each entry, for {@link DynamoCacheService.deleteByTag}. */
  tags?: TagsOption;
  /** L1 capacity; `null` = unbounded; `0` = no L1. Default: the module's. */
  maxsize?: number | null;
  /** Another DynamoDB table. Default: the module's. */
  table?: string;
  /** Milliseconds a computation holds its key (see the module option). Default: the module's. */
  computeTimeout?: number;
  /** Classes to restore by name when values are read back from DynamoDB (see the module option). */
  types?: readonly ClassRef[];
  /** A result for which this returns `true` is returned but not stored (see `@DynamoCached`). */
  unless?: (value: never, ...args: never[]) => boolean;
}

/**
 * Options of {@link DynamoCacheService.wrap}: the namespace's, and for this call only
 * `forceFresh`.
 *
 * @example
 * await cache.wrap('users.byId', [id], () => repo.find(id), { ttl: 300, forceFresh: true });
 */
export interface DynamoCacheWrapOptions extends DynamoCacheNamespaceOptions {
  /** Recompute now, without reading either layer, and overwrite what they hold. */
  forceFresh?: boolean;
}

/**
 * Options of {@link DynamoCacheService.set}: the namespace's, except that `ttl` (seconds or
 * `null`) and `tags` are this entry's own: the ttl is kept by every reader whatever its
 * namespace's ttl, and the tags are this entry's whatever the namespace's (they do not become
 * the namespace's for later entries).
 *
 * @example
 * await cache.set('sessions', [id], session, { ttl: 15 * 60 }); // this session: 15 minutes
 * await cache.set('users.byId', [user.id], user, { tags: [`org:${user.orgId}`] });
 */
export interface DynamoCacheSetOptions extends Omit<DynamoCacheNamespaceOptions, 'ttl'> {
  /** This entry's own ttl in seconds; `null` = never expires. Default: the namespace's. */
  ttl?: number | null;
  /** This entry's tags, for {@link DynamoCacheService.deleteByTag}. Default: the namespace's. */
  tags?: TagsOption;
}

/**
 * Options of reads through {@link DynamoCacheService.get} and {@link DynamoCacheService.lookup}.
 *
 * @example
 * const user = await cache.get<User>('users.byId', [id], { types: [User] });
 */
export interface DynamoCacheReadOptions {
  /** Classes to restore by name when the value is read back from DynamoDB. */
  types?: readonly ClassRef[];
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
export class DynamoCacheService
  implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  constructor(
    @Inject(CacheEngine) private readonly engine: CacheEngine,
    @Inject(LazyDynamoClient) private readonly client: LazyDynamoClient,
    @Inject(DYNAMO_CACHE_OPTIONS) private readonly options: ResolvedDynamoCacheOptions,
  ) {}

  /** Returns the cached value for `args`, or computes it with `fn` and stores it in both layers. */
  wrap<T>(
    namespace: string,
    args: readonly unknown[],
    fn: () => T | Promise<T>,
    options?: DynamoCacheWrapOptions,
  ): Promise<T> {
    try {
      checkCall('wrap', namespace, args);
      if (typeof fn !== 'function') {
        throw new DynamoCacheError(
          'config',
          `DynamoCacheService.wrap on "${namespace}": fn must be a function`,
        );
      }
      checkOptions('wrap', namespace, options);
      if (options === undefined) return this.ns(namespace).run(undefined, args, fn);
      const { forceFresh, ...namespaceOptions } = options;
      return this.ns(namespace, namespaceOptions).run(undefined, args, fn, {
        forceFresh: forceFresh === true,
      });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** The cached value, or `undefined` on a miss (use {@link lookup} to cache `undefined` itself). */
  async get<T = unknown>(
    namespace: string,
    args: readonly unknown[],
    options?: DynamoCacheReadOptions,
  ): Promise<T | undefined> {
    const found = await this.read<T>('get', namespace, args, options);
    return found.hit ? found.value : undefined;
  }

  /** Like {@link get}, but tells a cached `undefined` from a miss. */
  lookup<T = unknown>(
    namespace: string,
    args: readonly unknown[],
    options?: DynamoCacheReadOptions,
  ): Promise<CacheLookup<T>> {
    return this.read<T>('lookup', namespace, args, options);
  }

  /** {@link lookup}, its input checked in the name of `method`. */
  private read<T>(
    method: 'get' | 'lookup',
    namespace: string,
    args: readonly unknown[],
    options: DynamoCacheReadOptions | undefined,
  ): Promise<CacheLookup<T>> {
    try {
      checkCall(method, namespace, args);
      checkOptions(method, namespace, options);
      if (options?.types !== undefined) {
        assertTypes(options.types, `DynamoCacheService options for "${namespace}":`);
        this.engine.declareTypes(options.types, `a DynamoCacheService read of "${namespace}"`);
      }
      return this.ns(namespace).get<T>(args);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Stores `value` for `args` in L1 and L2. A computation of that entry in flight (here or in
   * another process) will not overwrite it. `ttl` is this entry's own.
   *
   * @example
   * await cache.set('users.byId', [user.id], user, { ttl: 60 });
   */
  set(
    namespace: string,
    args: readonly unknown[],
    value: unknown,
    options?: DynamoCacheSetOptions,
  ): Promise<void> {
    try {
      checkCall('set', namespace, args);
      checkOptions('set', namespace, options);
      if (options === undefined) return this.ns(namespace).set(args, value);
      const { ttl, tags, ...namespaceOptions } = options;
      const where = `DynamoCacheService.set on "${namespace}":`;
      assertEntryTtl(ttl, where);
      assertFreshness({ tags }, where);
      return this.ns(namespace, namespaceOptions).set(args, value, { ttl, tags });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Marks the entry stale instead of removing it: the next call recomputes, and while that
   * fails the stale value is served for the namespace's `grace` (without grace this is
   * {@link delete} but for the item left to DynamoDB's TTL). Reaches other processes within
   * `l1MaxAge` (at once with a bus).
   *
   * @example
   * await cache.expire('RatesService.rate', ['EUR', 'USD']);
   */
  expire(namespace: string, args: readonly unknown[]): Promise<void> {
    try {
      checkCall('expire', namespace, args);
      return this.ns(namespace).expire(args);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Invalidates every entry of a namespace, in every process, with one DynamoDB write (a marker
   * item readers compare with each entry's `t`; no Scan). Other processes see it within
   * `l1MaxAge` (at once with a bus).
   *
   * @example
   * await cache.clear('RatesService.rate');
   */
  clear(namespace: string): Promise<void> {
    try {
      checkCall('clear', namespace);
      return this.ns(namespace).clear();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Invalidates every entry carrying `tag` (or any of `tags`), in every namespace and process,
   * with one DynamoDB write per tag (a marker item; no Scan). Other processes see it within
   * `l1MaxAge` (at once with a bus).
   *
   * @example
   * @DynamoCached({ ttl: 300, tags: (orders: Order[], customerId: string) => [`customer:${customerId}`] })
   * async orders(customerId: string): Promise<Order[]> { ... }
   *
   * await cache.deleteByTag(`customer:${customerId}`);
   */
  deleteByTag(tags: string | readonly string[]): Promise<void> {
    try {
      const list: unknown = typeof tags === 'string' ? [tags] : tags;
      // Not assertFreshness: a tags option may be a function; what to invalidate may not.
      if (!Array.isArray(list)) {
        throw new DynamoCacheError(
          'config',
          `DynamoCacheService.deleteByTag: tags must be a tag (a non-empty string) or an array of tags, got ${describe(tags)}`,
        );
      }
      const problem = tagsProblem(list);
      if (problem !== undefined) {
        throw new DynamoCacheError('config', `DynamoCacheService.deleteByTag: ${problem}`);
      }
      return this.engine.deleteByTag(list as readonly string[]);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Removes the entry from this process's L1 and from DynamoDB, where it leaves a short-lived
   * tombstone so that no computation in flight, in any process, writes an older value back.
   */
  delete(namespace: string, args: readonly unknown[]): Promise<void> {
    try {
      checkCall('delete', namespace, args);
      return this.ns(namespace).delete(args);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * {@link delete} for many entries of one namespace: their tombstones are written 25 to a
   * `BatchWriteItem` call (unprocessed items retried).
   *
   * @example
   * await cache.deleteMany('users.byId', ids.map((id) => [id]));
   */
  deleteMany(namespace: string, argsList: readonly (readonly unknown[])[]): Promise<void> {
    try {
      checkCall('deleteMany', namespace);
      if (!Array.isArray(argsList) || !argsList.every((args) => Array.isArray(args))) {
        throw new DynamoCacheError(
          'config',
          `DynamoCacheService.deleteMany on "${namespace}": argsList must be an array of argument arrays`,
        );
      }
      return this.ns(namespace).deleteMany(argsList);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Listens to the cache's outcomes: `hit` (with the `layer` that answered), `miss`, `stale` (a
   * value past its ttl served within grace), `write`, `refused` (a write DynamoDB refused: the
   * key was invalidated or rewritten meanwhile), `delete` (a tombstone or marker; `deleteByTag`'s
   * carry namespace `''`) and `error`, each with its namespace and, for one entry, its `cache_key`. Returns the
   * function that stops listening. Listeners run synchronously on the call's path: keep them
   * cheap (count, enqueue); one that throws is ignored.
   *
   * @example
   * const off = cache.on('hit', (e) => hits.add(1, { namespace: e.namespace, layer: e.layer }));
   */
  on(type: CacheEventType, listener: CacheEventListener): () => void {
    return this.engine.events.on(type, listener);
  }

  /**
   * Counters per namespace and in total: L1 hits, L2 hits, stale hits, misses, L2 errors, writes,
   * refused writes, deletes (tombstones and `clear` markers; `deleteByTag`'s markers and
   * failures count in the total only), unrestorable items, and the L1 size.
   */
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

  /**
   * Resolves when every computation and DynamoDB write started so far has settled (each bounded
   * by its `computeTimeout` and `l2Timeout`). A route's entry is written just after its response
   * has been sent (only then is it known whether it may be stored): await this before reading
   * the table, e.g. in a test or before handing over to another process.
   *
   * @example
   * await request(app.getHttpServer()).get('/rates/EUR/USD');
   * await app.get(DynamoCacheService).settle(); // the route's entry is now in DynamoDB
   */
  settle(): Promise<void> {
    return this.engine.settle();
  }

  /** Checks the tables (`verifyTable`), then connects the module's `bus`, if any. */
  async onModuleInit(): Promise<void> {
    if (this.options.verifyTable) await this.verifyTables();
    await this.engine.connectBus();
  }

  /**
   * Checks every table the cache knows of at bootstrap: the module's, and those the namespaces
   * created so far name. `@DynamoCached` methods, routes and resolvers have their namespaces by
   * now (they are found before any module's `onModuleInit`: see `FirstModuleInit`). The first
   * failure (in that order) is thrown only once every check has ended, so that none is left
   * polling behind a failed bootstrap.
   */
  private async verifyTables(): Promise<void> {
    // A control-plane call, and the first one also opens the connection and resolves the
    // credentials: a slow start must not fail bootstrap, so l2Timeout is not the only bound.
    const callTimeoutMs = Math.max(this.options.l2Timeout ?? 0, VERIFY_CALL_TIMEOUT_MS);
    const client = this.client.get();
    const checks = await Promise.allSettled(
      this.engine.tables().map((table) => verifyCacheTable(client, table, { callTimeoutMs })),
    );
    const failed = checks.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * Lets computations in flight and their writes finish (at most the longest `computeTimeout`
   * plus `l2Timeout`), before other providers' `onApplicationShutdown` close what they use.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.engine.drain();
  }

  /** Destroys the client if the module created it (after anything still in flight). */
  async onApplicationShutdown(): Promise<void> {
    try {
      await this.engine.drain();
      await this.engine.close();
    } finally {
      // A bus that fails to close must not leave the client's sockets open.
      this.client.destroy();
    }
  }

  private ns(namespace: string, options?: DynamoCacheNamespaceOptions) {
    if (options === undefined) return this.engine.namespace(namespace);
    const where = `DynamoCacheService options for "${namespace}":`;
    const badTable = options.table === undefined ? undefined : tableProblem(options.table);
    if (badTable !== undefined)
      throw new DynamoCacheError('config', `${where} "table" ${badTable}`);
    assertFreshness(options, where);
    assertMaxsize(options.maxsize, where);
    assertComputeTimeout(options.computeTimeout, where);
    assertTypes(options.types, where);
    assertUnless(options.unless, where);
    const { types, ...rest } = options;
    if (types !== undefined)
      this.engine.declareTypes(types, `a DynamoCacheService call on "${namespace}"`);
    return this.engine.namespace(namespace, rest);
  }
}

/**
 * Checks what every call names: a namespace (a non-empty string, at most 1,024 bytes) and, where
 * it takes one, an argument list (an array). Throws a `config` {@link DynamoCacheError}.
 */
function checkCall(method: string, namespace: unknown, ...args: [unknown?]): void {
  const problem = namespaceProblem(namespace);
  if (problem !== undefined) {
    throw new DynamoCacheError('config', `DynamoCacheService.${method}: namespace ${problem}`);
  }
  if (args.length > 0 && !Array.isArray(args[0])) {
    const got = describe(args[0]);
    throw new DynamoCacheError(
      'config',
      `DynamoCacheService.${method} on "${String(namespace)}": args must be an array of the arguments, got ${got}`,
    );
  }
}

/** Checks a call's options: `undefined`, or an options object. Throws a `config` error. */
function checkOptions(method: string, namespace: string, options: unknown): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new DynamoCacheError(
      'config',
      `DynamoCacheService.${method} on "${namespace}": options must be an object (or left out), got ${describe(options)}`,
    );
  }
}

/** `null`, `an array`, or the value's type, for messages. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}
