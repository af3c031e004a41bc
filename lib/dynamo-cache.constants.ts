/**
 * Injection token of the resolved, validated module options.
 *
 * @example
 * constructor(@Inject(DYNAMO_CACHE_OPTIONS) private readonly options: ResolvedDynamoCacheOptions) {}
 */
export const DYNAMO_CACHE_OPTIONS = Symbol('DYNAMO_CACHE_OPTIONS');

/**
 * Injection token of the `DynamoDBClient` the cache uses (the application's own when `client`
 * was given, else the one the module created and destroys at shutdown).
 *
 * @example
 * constructor(@Inject(DYNAMO_CACHE_CLIENT) private readonly ddb: DynamoDBClient) {}
 */
export const DYNAMO_CACHE_CLIENT = Symbol('DYNAMO_CACHE_CLIENT');

/**
 * Metadata key under which `@DynamoCached` records its (frozen) `DynamoCachedOptions` on a method:
 * what the module reads at bootstrap and the interceptor per route, and what guards or
 * interceptors of your own can read to know whether, and how, a handler is cached.
 *
 * @example
 * const cached = this.reflector.get<DynamoCachedOptions | undefined>(
 *   DYNAMO_CACHED_METADATA,
 *   context.getHandler(),
 * );
 * const ttl = cached?.ttl; // undefined: the module's ttl; null: never expires
 */
export const DYNAMO_CACHED_METADATA = 'nestjs-dynamo-cache:cached';

/** Token of the options exactly as the application passed them, before validation. */
export const DYNAMO_CACHE_RAW_OPTIONS = Symbol('DYNAMO_CACHE_RAW_OPTIONS');

/**
 * Metadata key of `@NoDynamoCache()`, on a route handler or a controller class.
 *
 * @example
 * const skipped = reflector.getAllAndOverride<boolean>(NO_DYNAMO_CACHE_METADATA, [handler, controller]);
 */
export const NO_DYNAMO_CACHE_METADATA = 'nestjs-dynamo-cache:skip';

/**
 * Metadata key set on methods decorated with `@DynamoCacheEvict` or `@DynamoCachePut`: their
 * instances get the cache service at bootstrap.
 */
export const DYNAMO_CACHE_MUTATION_METADATA = 'nestjs-dynamo-cache:mutation';

/** Where the module leaves its service on instances with `@DynamoCacheEvict`/`@DynamoCachePut`. */
export const DYNAMO_CACHE_SERVICE_REF = Symbol('nestjs-dynamo-cache:service');
