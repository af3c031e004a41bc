import type { DynamoDBClient, DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { OnErrorPolicy } from '../engine/namespace/cache-namespace.js';
import type {
  CircuitBreakerOptions,
  CircuitBreakerSettings,
} from '../engine/l2/circuit-breaker.js';
import type { LeaseOptions, LeaseSettings } from '../engine/l2/cache-lease.js';
import type { DynamoCacheBus } from '../engine/invalidation/cache-bus.js';
import type { TtlOption } from '../engine/namespace/entry-policy.js';
import type { ClassRef } from '../engine/values/class-record.js';
import type { CacheSerializer } from '../engine/values/serializer.js';

/**
 * Options of `DynamoCacheModule.forRoot()` (and what `forRootAsync()` factories return).
 *
 * @example
 * DynamoCacheModule.forRoot({ table: 'app-cache', ttl: 3600, maxsize: 1000, region: 'eu-west-1' })
 */
export interface DynamoCacheModuleOptions {
  /** DynamoDB table name; its partition key is `cache_key` (String). */
  table: string;
  /**
   * Seconds an entry lives, in both layers; `null` (default) = never expires; or a function of the
   * result returning either. A reader also expires an entry at `t` plus its own ttl, so a ttl
   * shortened in a deploy applies at once to what older processes wrote.
   */
  ttl?: TtlOption;
  /**
   * Seconds entries are kept past their ttl, served when recomputing fails (the method rejects,
   * DynamoDB fails). Default 0 (off). See `@DynamoCached({ grace })`.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', ttl: 60, grace: 3600 })
   */
  grace?: number;
  /** Seconds between two attempts of a failing method while its stale value is served. Default 10. */
  graceBackoff?: number;
  /**
   * Soft timeout (ms) of a recomputation when a stale value is at hand; `0` =
   * stale-while-revalidate. Default: none (wait for the computation).
   */
  timeout?: number;
  /**
   * Seconds an L1 entry is served before it is checked against DynamoDB (a read of `t` only, no
   * value): the longest an invalidation made by another process goes unseen here. `null` = never
   * (trust the ttl). Default 5.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', l1MaxAge: 1 })
   */
  l1MaxAge?: number | null;
  /**
   * Push invalidation between processes (see {@link DynamoCacheBus}), e.g. `RedisDynamoCacheBus`
   * from `nestjs-dynamo-cache/redis-bus`: other processes drop invalidated L1 entries as soon as
   * the message arrives, instead of within `l1MaxAge`.
   */
  bus?: DynamoCacheBus;
  /**
   * At bootstrap, check with `DescribeTable` that `table`, and every `table` of a `@DynamoCached`
   * method, route or resolver, exists, is ACTIVE (waiting while it is being created) and has
   * `cache_key` (String) as its only key; bootstrap fails with a message naming the table, the
   * region and what is wrong (also when `DescribeTable` gets no answer within `l2Timeout`, and no
   * less than 5 s), instead of the cache failing at the first request. A table first named by a
   * `DynamoCacheService` call is not checked. Needs `dynamodb:DescribeTable`. Default `false`: a
   * cache must not keep an application from starting when DynamoDB is merely unreachable at that
   * moment (an outage, which `onError` handles), and `DescribeTable` is a control-plane call with
   * a low rate limit and an IAM permission of its own. Turn it on in development, CI and staging.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', verifyTable: process.env.NODE_ENV !== 'production' })
   */
  verifyTable?: boolean;
  /**
   * L1 capacity in entries, per namespace (decorated method, route, service name). Default
   * {@link DEFAULT_MAXSIZE} (1000): what clients send can never grow memory without bound.
   * `null` = unbounded (only when asked for explicitly); `0` = no L1.
   */
  maxsize?: number | null;
  /** AWS region; may instead come from `clientConfig.region` or the SDK's usual sources. */
  region?: string;
  /**
   * Forwarded to `new DynamoDBClient(...)`: endpoint, credentials, retries… Unless the cache
   * must pass it an abort signal per call (see the README's "Timeouts"), the module adds
   * `cacheMiddleware: true` and, to a `requestHandler` given as options (or none), the timeouts
   * of `l2Timeout` it leaves unset.
   *
   * @example
   * DynamoCacheModule.forRoot({
   *   table: 'app-cache',
   *   clientConfig: { region: 'eu-west-1', requestHandler: { httpAgent: new Agent({ maxSockets: 100 }) } },
   * })
   */
  clientConfig?: DynamoDBClientConfig;
  /** The application's own client: used as is, never destroyed by the module. */
  client?: DynamoDBClient;
  /** Prepended to every `cache_key`, to share one table between apps or stages. Default `''`. */
  keyPrefix?: string;
  /**
   * `'bypass'` (default): an L2 failure is logged (once per outage), counted, and the call is
   * served as if L2 were empty, so a DynamoDB incident is not an application outage;
   * `'throw'`: it rejects the call with `DynamoCacheError` (the default of 0.1).
   */
  onError?: OnErrorPolicy;
  /** Value codec for the `v` attribute. Default: `node:v8` structured serialization. */
  serializer?: CacheSerializer;
  /** Strongly consistent `GetItem`. Default `false`. */
  consistentRead?: boolean;
  /**
   * Milliseconds a DynamoDB call (`GetItem`, `PutItem`, `DeleteItem`, SDK retries included) may
   * take before it is abandoned and handled as an L2 failure under `onError`, so a slow DynamoDB
   * costs a caller at most this much. Its request ends too: the client the module builds gets a
   * socket and a connection timeout of this much and stops the SDK's retries of the call; any
   * other client gets an abort signal per call (see the README's "Timeouts"). Also bounds how
   * long shutdown waits for writes in flight. `null` = no limit. Default `1000`.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', l2Timeout: 200, onError: 'bypass' })
   */
  l2Timeout?: number | null;
  /**
   * After `failures` consecutive failed DynamoDB calls on a table, skip that table for
   * `cooldownMs`, then let one probe call through: calls meanwhile are served from L1 or the
   * method (`'bypass'`) or rejected at once (`'throw'`), so an outage costs no timeouts. Explicit
   * `set` and `delete` through `DynamoCacheService` are still attempted. `false` disables it;
   * `true` or `{}` uses the defaults `{ failures: 5, cooldownMs: 5000 }`.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', circuitBreaker: { failures: 3, cooldownMs: 10_000 } })
   */
  circuitBreaker?: CircuitBreakerOptions | boolean;
  /**
   * Cross-process single-flight: when several processes miss the same key at once, only one
   * computes it (it takes a lease, an item `{cache_key}#lease` in the same table); the others
   * read the copy of its result it writes for them (one per 25 waiters, so a hot key costs about
   * one request per process on each item). `false` (default) = off, no extra DynamoDB calls; `true`
   * = `{ ttlMs: 10_000, waitMs: 5_000, pollMs: 50 }`. A lease fault (DynamoDB failing, the holder
   * crashing or slower than `waitMs`) means computing without it, never an error.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', lease: { ttlMs: 30_000, waitMs: 10_000 } })
   */
  lease?: LeaseOptions | boolean;
  /**
   * Milliseconds a computation holds its key: concurrent calls share it until then; after, a new
   * call starts its own, and its own result is returned but not cached (a tombstone left by a
   * `delete` only guards computations this young). Shutdown waits at most this long for
   * computations in flight. Default `60_000`; at most 1e13 (the expiry of tombstones, which
   * outlive it, must fit DynamoDB).
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', computeTimeout: 10_000 })
   */
  computeTimeout?: number;
  /**
   * Classes to restore by name when values are read back from DynamoDB, for every cached method
   * (`@DynamoCached({ types })` and service calls add more). Classes known to class-transformer,
   * TypeORM or `@nestjs/graphql` metadata, and classes this process has computed, need no entry.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', types: [User, Address, Order] })
   */
  types?: readonly ClassRef[];
  /**
   * Request headers that, like `Authorization`, `Proxy-Authorization` and `Cookie`, identify a
   * client: a request carrying one is not served from or stored in the route cache unless the
   * route's `vary` names it (or a `trackBy` override takes over). Case-insensitive.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', privateHeaders: ['x-api-key'] })
   */
  privateHeaders?: readonly string[];
  /**
   * Answer route hits just before Nest's request pipeline (default `false`): a GET whose response
   * is in L1 gets the stored status, headers and JSON bytes without going through guards,
   * interceptors and the response controller, on routes where those could change nothing (no
   * guard, no interceptor but `DynamoCacheInterceptor`, no `@Header`/`@Redirect`/`@Render`, no
   * host or header versioning). It answers in the route handler's own place (the handler the
   * framework calls is wrapped), so every middleware and hook runs first. On Express, a URL so
   * answered is then answered before the router while nothing but Nest's own layers and routes
   * that do not take it come before the route (see the README). Off by default: a hit
   * skips what Nest does for a route after routing, which the rules above can only vouch for as
   * far as this package sees the route's enhancers.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', fastPath: true })
   */
  fastPath?: boolean;
  /**
   * A result for which this returns `true` is returned but stored in neither layer (an empty
   * list, a `null` from a lookup that may succeed later). `@DynamoCached({ unless })` overrides it.
   *
   * @example
   * DynamoCacheModule.forRoot({ table: 'app-cache', unless: (value) => value == null })
   */
  unless?: (value: never) => boolean;
}

/**
 * The options after validation, with every default filled in; injectable as `DYNAMO_CACHE_OPTIONS`.
 *
 * @example
 * constructor(@Inject(DYNAMO_CACHE_OPTIONS) options: ResolvedDynamoCacheOptions) {
 *   console.log(options.table, options.ttl);
 * }
 */
export interface ResolvedDynamoCacheOptions {
  table: string;
  ttl: TtlOption;
  maxsize: number | null;
  /** Seconds; default 0. */
  grace: number;
  /** Seconds; default 10. */
  graceBackoff: number;
  /** Milliseconds; `undefined` when not given. */
  timeout: number | undefined;
  /** Seconds, or `null`; default 5. */
  l1MaxAge: number | null;
  /** `undefined` when not given. */
  bus: DynamoCacheBus | undefined;
  /** Default `false`. */
  verifyTable: boolean;
  /** `region`, or a string `clientConfig.region`; `undefined` otherwise (the SDK resolves it). */
  region: string | undefined;
  /** `clientConfig` as given, with `region` copied into it; `{}` when neither was given. */
  clientConfig: DynamoDBClientConfig;
  /** The application's own client; `undefined` when the module creates (and destroys) one. */
  client: DynamoDBClient | undefined;
  keyPrefix: string;
  onError: OnErrorPolicy;
  /** The `serializer` option, else `v8Serializer`. */
  serializer: CacheSerializer;
  consistentRead: boolean;
  l2Timeout: number | null;
  /** `false` when disabled; otherwise `failures` and `cooldownMs`, defaults filled in. */
  circuitBreaker: CircuitBreakerSettings | false;
  /** `false` when off; otherwise `ttlMs`, `waitMs` and `pollMs`, defaults filled in. */
  lease: LeaseSettings | false;
  /** Milliseconds; default `60_000`. */
  computeTimeout: number;
  /** `[]` when none were given. */
  types: readonly ClassRef[];
  /** Lower-cased; the built-in credentials (`authorization`, `proxy-authorization`, `cookie`) first. */
  privateHeaders: readonly string[];
  /** `false` unless given. */
  fastPath: boolean;
  /** `undefined` when not given. */
  unless: ((value: never) => boolean) | undefined;
}

/**
 * A class that `forRootAsync({ useClass })` or `useExisting` can use to build the options.
 *
 * @example
 * @Injectable()
 * class CacheConfig implements DynamoCacheOptionsFactory {
 *   createDynamoCacheOptions() { return { table: 'app-cache', region: 'eu-west-1' }; }
 * }
 */
export interface DynamoCacheOptionsFactory {
  /** Called once at bootstrap; may be async (to read a secret, say). */
  createDynamoCacheOptions(): DynamoCacheModuleOptions | Promise<DynamoCacheModuleOptions>;
}
