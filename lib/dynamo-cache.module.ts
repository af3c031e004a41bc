import { Logger, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import {
  DYNAMO_CACHE_CLIENT,
  DYNAMO_CACHE_OPTIONS,
  DYNAMO_CACHE_RAW_OPTIONS,
} from './dynamo-cache.constants.js';
import { DynamoCacheExplorer } from './dynamo-cache.explorer.js';
import { FastPathRoutes } from './http/fast-path.js';
import { ConfigurableDynamoCacheModule } from './dynamo-cache.module-definition.js';
import { resolveModuleOptions } from './dynamo-cache-options.resolver.js';
import { DynamoCacheService } from './dynamo-cache.service.js';
import { CacheEngine } from './engine/cache-engine.js';
import { LazyDynamoClient } from './engine/l2/lazy-client.js';
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
        selfTimedClient(o)
          ? {
              // Reuses its resolved middleware on every call, and ends slow requests itself:
              // the cache then passes no per-call abort signal (which would undo the former).
              cacheMiddleware: true,
              requestHandler: { requestTimeout: o.l2Timeout, connectionTimeout: o.l2Timeout },
              ...o.clientConfig,
            }
          : o.clientConfig,
        o.client,
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
 * Whether the module builds the client itself with a request timeout of `l2Timeout` (no
 * `client`, no `requestHandler` of the application's): only that client ends slow requests on
 * its own; any other is given an abort signal per call.
 */
function selfTimedClient(o: ResolvedDynamoCacheOptions): boolean {
  return (
    o.client === undefined && o.clientConfig.requestHandler === undefined && o.l2Timeout !== null
  );
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
  imports: [DiscoveryModule],
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
