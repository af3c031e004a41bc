import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { Logger, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import {
  DYNAMO_CACHE_CLIENT,
  DYNAMO_CACHE_OPTIONS,
  DYNAMO_CACHE_RAW_OPTIONS,
} from './dynamo-cache.constants.js';
import { DynamoCacheExplorer } from './dynamo-cache.explorer.js';
import { DynamoCacheFirstInitModule } from './dynamo-cache-first-init.js';
import { FastPathRoutes } from './http/fast-path.js';
import { ConfigurableDynamoCacheModule } from './dynamo-cache.module-definition.js';
import { resolveModuleOptions } from './dynamo-cache-options.resolver.js';
import { DynamoCacheService } from './dynamo-cache.service.js';
import { CacheEngine } from './engine/cache-engine.js';
import { LazyDynamoClient } from './engine/l2/lazy-client.js';
import { boundRetries } from './engine/l2/retry-deadline.js';
import type {
  DynamoCacheModuleOptions,
  ResolvedDynamoCacheOptions,
} from './interfaces/dynamo-cache-module-options.interface.js';

const providers: Provider[] = [
  {
    provide: DYNAMO_CACHE_OPTIONS,
    useFactory: (raw: DynamoCacheModuleOptions) => resolveModuleOptions(raw),
    inject: [DYNAMO_CACHE_RAW_OPTIONS],
  },
  {
    provide: LazyDynamoClient,
    useFactory: (o: ResolvedDynamoCacheOptions) =>
      new LazyDynamoClient(
        moduleClientConfig(o),
        o.client,
        selfTimedClient(o) ? boundRetries : undefined,
      ),
    inject: [DYNAMO_CACHE_OPTIONS],
  },
  {
    provide: DYNAMO_CACHE_CLIENT,
    useFactory: (ref: LazyDynamoClient) => ref.get(),
    inject: [LazyDynamoClient],
  },
  {
    provide: CacheEngine,
    useFactory: (o: ResolvedDynamoCacheOptions, ref: LazyDynamoClient) =>
      new CacheEngine({
        client: () => ref.get(),
        table: o.table,
        ttl: o.ttl,
        maxsize: o.maxsize,
        keyPrefix: o.keyPrefix,
        onError: o.onError,
        serializer: o.serializer,
        consistentRead: o.consistentRead,
        l2Timeout: o.l2Timeout,
        circuitBreaker: o.circuitBreaker,
        lease: o.lease,
        computeTimeout: o.computeTimeout,
        types: o.types,
        unless: o.unless,
        grace: o.grace,
        graceBackoff: o.graceBackoff,
        timeout: o.timeout,
        l1MaxAge: o.l1MaxAge,
        bus: o.bus,
        abortRequests: !selfTimedClient(o),
        logger: new Logger('DynamoCache'),
      }),
    inject: [DYNAMO_CACHE_OPTIONS, LazyDynamoClient],
  },
  DynamoCacheService,
  DynamoCacheExplorer,
  FastPathRoutes,
];

/**
 * The configuration of the client the module builds. When the cache passes it no per-call options
 * (`l2Timeout: null`, or a client that ends slow requests itself: see {@link selfTimedClient}),
 * it is built with `cacheMiddleware: true`: the SDK then resolves its middleware once, not on
 * every call (about a fifth of an L2 call's CPU). A client that ends slow requests itself gets a
 * connection timeout and a socket (inactivity) timeout of `l2Timeout` where
 * `clientConfig.requestHandler`, given as options, leaves them unset (not `requestTimeout`: the
 * SDK's handler now only logs a warning when that one passes, and the request keeps its socket),
 * and its retries stop at `l2Timeout` (`boundRetries`). The connection timeout also bounds a call
 * that waits for a free socket (the handler counts it from the start of the request until the
 * request has a socket), so a call the cache gave up on never leaves later.
 */
function moduleClientConfig(o: ResolvedDynamoCacheOptions): DynamoDBClientConfig {
  if (o.l2Timeout === null) return { cacheMiddleware: true, ...o.clientConfig };
  const handler = handlerOptions(o.clientConfig.requestHandler);
  if (handler === undefined || !selfTimedClient(o)) return o.clientConfig;
  return {
    cacheMiddleware: true,
    ...o.clientConfig,
    requestHandler: {
      ...handler,
      connectionTimeout: handler.connectionTimeout ?? o.l2Timeout,
      socketTimeout: handler.socketTimeout ?? o.l2Timeout,
    },
  };
}

/**
 * The SDK's handler arms a socket timeout of 6 s or more only 3 s after the request starts, so a
 * stalled request would keep its socket that much longer: from this `l2Timeout` on, the cache
 * aborts its requests itself.
 */
const SOCKET_TIMEOUT_ARMED_LATE_MS = 6000;

/**
 * Whether the client the cache calls ends requests slower than `l2Timeout` on its own, so the
 * cache need not pass an abort signal with each call (a per-call option turns the SDK's
 * middleware cache off): only a client the module builds, with no `requestHandler` or one given
 * as plain options whose timeouts (filled in with `l2Timeout` where unset) are within it, and an
 * `l2Timeout` under 6 s.
 */
function selfTimedClient(o: ResolvedDynamoCacheOptions): boolean {
  const l2Timeout = o.l2Timeout;
  if (o.client !== undefined || l2Timeout === null || l2Timeout >= SOCKET_TIMEOUT_ARMED_LATE_MS) {
    return false;
  }
  const handler = handlerOptions(o.clientConfig.requestHandler);
  // 0 (or less) is "no timeout" to the SDK's handler.
  const within = (t: number | undefined): boolean =>
    t === undefined || (Number.isFinite(t) && t > 0 && t <= l2Timeout);
  return (
    handler !== undefined && within(handler.connectionTimeout) && within(handler.socketTimeout)
  );
}

/** The timeouts the module reads of `clientConfig.requestHandler` given as options. */
interface HandlerOptions {
  connectionTimeout?: number;
  socketTimeout?: number;
  [option: string]: unknown;
}

/**
 * `requestHandler` when absent (`{}`) or given as plain options (`{ httpAgent, … }`, what the
 * SDK turns into its Node handler); `undefined` for a handler instance or a provider function,
 * which the module cannot add timeouts to.
 */
function handlerOptions(handler: unknown): HandlerOptions | undefined {
  if (handler === undefined) return {};
  if (handler === null || typeof handler !== 'object') return undefined;
  const proto = Object.getPrototypeOf(handler) as unknown;
  if (proto !== Object.prototype && proto !== null) return undefined;
  // What the SDK takes for a handler of its own, as it is.
  if (typeof (handler as { handle?: unknown }).handle === 'function') return undefined;
  const options = handler as HandlerOptions;
  const timeouts = [options.connectionTimeout, options.socketTimeout];
  return timeouts.every((t) => t === undefined || typeof t === 'number') ? options : undefined;
}

/**
 * Two-tier write-through cache for NestJS: an in-process LRU (L1) in front of a DynamoDB table
 * (L2), applied with `@DynamoCached` to provider methods and, through `DynamoCacheInterceptor`,
 * to GET routes.
 *
 * @example
 * @Module({
 *   imports: [DynamoCacheModule.forRoot({ table: 'app-cache', ttl: 3600, region: 'eu-west-1', isGlobal: true })],
 * })
 * export class AppModule {}
 *
 * @example
 * DynamoCacheModule.forRootAsync({
 *   isGlobal: true,
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ table: config.getOrThrow('CACHE_TABLE') }),
 * })
 */
@Module({
  imports: [DiscoveryModule, DynamoCacheFirstInitModule],
  providers,
  exports: [
    DYNAMO_CACHE_OPTIONS,
    DYNAMO_CACHE_CLIENT,
    DynamoCacheService,
    CacheEngine,
    FastPathRoutes,
  ],
})
export class DynamoCacheModule extends ConfigurableDynamoCacheModule {}
