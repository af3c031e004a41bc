import {
  Inject,
  Injectable,
  Logger,
  Optional,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { HttpAdapterHost, ModuleRef, Reflector } from '@nestjs/core';
import { lastValueFrom, of, type Observable } from 'rxjs';
import { DYNAMO_CACHED_METADATA, NO_DYNAMO_CACHE_METADATA } from './dynamo-cache.constants.js';
import { CacheEngine, type NamespaceOptions, type NamespaceOwner } from './engine/cache-engine.js';
import type { CacheNamespace } from './engine/namespace/cache-namespace.js';
import { isThenable } from './engine/namespace/is-thenable.js';
import { DynamoCacheError } from './errors.js';
import type { DynamoCachedOptions } from './interfaces/dynamo-cached-options.interface.js';

// Nest's own metadata keys, unchanged since Nest 6. @nestjs/common 12 exposes the constants only
// through an entry point marked internal, so they are spelled out here.
const INTERCEPTORS_METADATA = '__interceptors__';
const ROUTE_ARGS_METADATA = '__routeArguments__';
const RESPONSE_PASSTHROUGH_METADATA = '__responsePassthrough__';
const SSE_METADATA = '__sse__';
const RESPONSE_PARAMTYPE = 1; // RouteParamtypes.RESPONSE: @Res()
const NEXT_PARAMTYPE = 2; // RouteParamtypes.NEXT: @Next()

/**
 * Requests already taken by the first (outermost) DynamoCacheInterceptor that saw them. A WeakSet
 * rather than a property on the request: a new property changes the request object's shape, and
 * the framework's own code on that object then runs measurably slower (about 5% of a hit).
 */
const HANDLED = new WeakSet<object>();

/**
 * Thrown out of the cached computation to carry a result that must not be stored (a stream).
 * The engine never stores a rejected computation, so this keeps it out of both layers.
 */
class UncacheableResult {
  constructor(readonly value: unknown) {}
}

/** The parts of an Express or Fastify request the interceptor reads. */
interface HttpRequestLike {
  method?: string;
  url?: string;
  originalUrl?: string;
  headers?: Record<string, string | string[] | undefined>;
}

/** What the interceptor knows about one route, computed once. */
interface RouteInfo {
  /** False for SSE routes and for handlers that write the response themselves (`@Res()`). */
  readonly cacheable: boolean;
  readonly namespace: string;
  readonly namespaceOptions: NamespaceOptions;
  /** Lower-cased header names from `@DynamoCached({ vary })`; undefined when not declared. */
  readonly vary: readonly string[] | undefined;
  /** The route's namespace, once the engine is known (first request); `null`: not cacheable. */
  cache?: CacheNamespace | null;
  /** The controller, which owns a namespace derived from its name. */
  readonly owner: NamespaceOwner | undefined;
}

/**
 * What identifies a cached route response, as returned by {@link DynamoCacheInterceptor.trackBy}:
 * a list of key material, encoded canonically like a cached method's argument list, so requests
 * with equal lists (same values, same order) share one entry.
 *
 * @example
 * override trackBy(context: ExecutionContext): DynamoCacheRouteKey | undefined {
 *   const req = context.switchToHttp().getRequest<Request>();
 *   return [req.headers['x-tenant'] ?? null, req.method, req.originalUrl];
 * }
 */
export type DynamoCacheRouteKey = readonly unknown[];

/**
 * Caches GET responses of controller routes in L1 and L2, under the namespace
 * `ControllerName.handlerName` and the key material `[method, url]` (HEAD shares GET's entry;
 * the url is the request's own, with global prefix and query string), plus the values of the
 * headers named in `@DynamoCached({ vary })`.
 *
 * Apply it per route (`@DynamoCached` on a handler does it for you), per controller with
 * `@UseInterceptors(DynamoCacheInterceptor)`, or globally as `APP_INTERCEPTOR`; every GET route
 * under it is cached with the module's ttl unless its handler's `@DynamoCached` says otherwise.
 * When several apply to one route, the outermost (global, then controller, then method) caches
 * and the others stand aside, so a response is never cached twice.
 *
 * Requests carrying `Authorization` or `Cookie` are not cached unless the route declares `vary`
 * or a subclass's {@link trackBy} returns a key. Other methods than GET and HEAD, thrown errors,
 * `StreamableFile` and stream results, SSE routes, `@Res()` handlers and routes under
 * `@NoDynamoCache()` are never cached.
 * Responses that went through the cache carry `X-Cache: HIT` or `X-Cache: MISS`.
 *
 * @example
 * @Controller('rates')
 * @UseInterceptors(DynamoCacheInterceptor)      // every GET route below, module ttl
 * export class RatesController {
 *   @Get(':from/:to')
 *   @DynamoCached({ ttl: 30, vary: ['accept-language'] })
 *   rate(@Param('from') from: string, @Param('to') to: string) { ... }
 * }
 *
 * @example
 * // Per-user responses: key them by the authenticated user yourself.
 * @Injectable()
 * export class UserCacheInterceptor extends DynamoCacheInterceptor {
 *   override trackBy(context: ExecutionContext) {
 *     const req = context.switchToHttp().getRequest<{ user?: { id: string }; originalUrl: string }>();
 *     return req.user ? [req.user.id, req.originalUrl] : undefined;
 *   }
 * }
 */
@Injectable()
export class DynamoCacheInterceptor implements NestInterceptor {
  /** Reads route metadata; available to subclasses. */
  @Inject(Reflector)
  protected readonly reflector!: Reflector;

  @Optional()
  @Inject(HttpAdapterHost)
  private readonly httpAdapterHost?: HttpAdapterHost;

  // Optional so the interceptor can be instantiated in any module: Nest registers it in the
  // module of every class that uses @DynamoCached, including provider-only modules that do not
  // import DynamoCacheModule. The engine is then found application-wide on first use.
  @Optional()
  @Inject(CacheEngine)
  private readonly moduleEngine?: CacheEngine;

  @Inject(ModuleRef)
  private readonly moduleRef!: ModuleRef;

  private readonly logger = new Logger('DynamoCache');
  private engine: CacheEngine | undefined;
  private readonly routes = new WeakMap<object, Map<object, RouteInfo>>();

  intercept(
    context: ExecutionContext,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<HttpRequestLike>();
    if (HANDLED.has(request)) return next.handle();
    HANDLED.add(request);

    const route = this.route(context);
    const method = this.requestMethod(request);
    if (!route.cacheable || (method !== 'GET' && method !== 'HEAD')) return next.handle();

    // No Promise on the way to an L1 hit unless trackBy itself is asynchronous.
    const key = this.trackBy(context);
    return isThenable<DynamoCacheRouteKey | undefined>(key)
      ? Promise.resolve(key).then((k) => this.serve(context, next, route, k))
      : this.serve(context, next, route, key);
  }

  private serve(
    context: ExecutionContext,
    next: CallHandler,
    route: RouteInfo,
    key: DynamoCacheRouteKey | undefined,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    if (key === undefined) return next.handle();
    if (!Array.isArray(key)) {
      throw new DynamoCacheError(
        'key',
        `${this.constructor.name}.trackBy must return an array of key material or undefined, got ${typeof key}`,
        { namespace: route.namespace },
      );
    }
    const ns = (route.cache ??= this.routeNamespace(route));
    if (ns === null) return next.handle();
    const hit = ns.peek(key);
    if (hit?.hit) {
      this.setCacheHeader(context, 'HIT');
      return of(hit.value);
    }
    return this.load(context, next, ns, key);
  }

  private async load(
    context: ExecutionContext,
    next: CallHandler,
    ns: CacheNamespace,
    key: DynamoCacheRouteKey,
  ): Promise<Observable<unknown>> {
    let ran = false;
    let value: unknown;
    try {
      value = await ns.run(undefined, key, async () => {
        ran = true;
        const result = await lastValueFrom(next.handle(), { defaultValue: undefined });
        if (isStream(result)) throw new UncacheableResult(result);
        return result;
      });
    } catch (err) {
      if (!(err instanceof UncacheableResult)) throw err;
      this.setCacheHeader(context, 'MISS');
      // A stream can be read once: a request that waited on another one's stream makes its own.
      return ran ? of(err.value) : next.handle();
    }
    this.setCacheHeader(context, ran ? 'MISS' : 'HIT');
    return of(value);
  }

  /**
   * The key material of this request, or `undefined` to serve it without the cache. Override it
   * to key responses yourself (e.g. by user); a subclass that returns a key takes responsibility
   * for what varies, so requests with `Authorization` or `Cookie` are then cached too.
   *
   * The default: `[method, url, ...values of the vary headers]`, with HEAD keyed as GET; and
   * `undefined` for a request carrying `Authorization` or `Cookie` when the route declares no `vary`.
   *
   * @example
   * override trackBy(context: ExecutionContext) {
   *   const req = context.switchToHttp().getRequest<Request>();
   *   const tenant = req.headers['x-tenant'];
   *   return typeof tenant === 'string' ? [tenant, req.method, req.originalUrl] : undefined;
   * }
   */
  trackBy(
    context: ExecutionContext,
  ): DynamoCacheRouteKey | undefined | Promise<DynamoCacheRouteKey | undefined> {
    const request = context.switchToHttp().getRequest<HttpRequestLike>();
    const headers = request.headers ?? {};
    const { vary } = this.route(context);
    if (
      vary === undefined &&
      (headers.authorization !== undefined || headers.cookie !== undefined)
    ) {
      return undefined;
    }
    const method = this.requestMethod(request);
    const material: unknown[] = [method === 'HEAD' ? 'GET' : method, this.requestUrl(request)];
    for (const name of vary ?? []) material.push(headers[name] ?? null);
    return material;
  }

  private route(context: ExecutionContext): RouteInfo {
    const controller = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.routes.get(controller);
    if (byHandler === undefined) {
      byHandler = new Map();
      this.routes.set(controller, byHandler);
    }
    let info = byHandler.get(handler);
    if (info === undefined) {
      info = this.describeRoute(controller, handler);
      byHandler.set(handler, info);
    }
    return info;
  }

  private describeRoute(
    controller: ReturnType<ExecutionContext['getClass']>,
    handler: ReturnType<ExecutionContext['getHandler']>,
  ): RouteInfo {
    const options = this.reflector.get<DynamoCachedOptions | undefined>(
      DYNAMO_CACHED_METADATA,
      handler,
    );
    const methodName = handler.name;
    const name = `${controller.name}.${methodName}`;
    if (options?.key !== undefined) {
      this.logger.warn(`${name}: "key" of @DynamoCached is ignored on routes; override trackBy`);
    }
    this.warnIfShadowing(controller, handler, name);

    const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, methodName) ??
      {}) as Record<string, unknown>;
    const writesResponse =
      Object.keys(params).some((k) => {
        const type = Number(k.split(':')[0]);
        return type === RESPONSE_PARAMTYPE || type === NEXT_PARAMTYPE;
      }) && !Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, methodName);
    const sse = Reflect.getMetadata(SSE_METADATA, handler) === true;
    const skipped =
      this.reflector.getAllAndOverride<boolean | undefined>(NO_DYNAMO_CACHE_METADATA, [
        handler,
        controller,
      ]) === true;

    const namespaceOptions: NamespaceOptions = {};
    if (options?.ttl !== undefined) namespaceOptions.ttl = options.ttl;
    if (options?.maxsize !== undefined) namespaceOptions.maxsize = options.maxsize;
    if (options?.table !== undefined) namespaceOptions.table = options.table;
    if (options?.computeTimeout !== undefined) {
      namespaceOptions.computeTimeout = options.computeTimeout;
    }
    return {
      owner:
        options?.namespace === undefined
          ? { value: controller, description: controller.name }
          : undefined,
      cacheable: !writesResponse && !sse && !skipped,
      namespace: options?.namespace ?? name,
      namespaceOptions,
      vary: options?.vary,
    };
  }

  // Only the outermost interceptor caches; say so when it hides a subclass (whose trackBy may
  // key differently). Hiding the base class, which @DynamoCached adds to its handler, is the norm.
  private warnIfShadowing(controller: object, handler: object, name: string): void {
    const declared = [
      ...((Reflect.getMetadata(INTERCEPTORS_METADATA, controller) ?? []) as unknown[]),
      ...((Reflect.getMetadata(INTERCEPTORS_METADATA, handler) ?? []) as unknown[]),
    ];
    for (const entry of declared) {
      const type = typeof entry === 'function' ? entry : (entry as object | null)?.constructor;
      if (
        typeof type === 'function' &&
        type.prototype instanceof DynamoCacheInterceptor &&
        type !== this.constructor
      ) {
        this.logger.warn(
          `${name}: ${this.constructor.name} (the outermost) caches this route; ${type.name} applied closer to it is not used`,
        );
      }
    }
  }

  /**
   * The route's namespace; `null` (logged once) when its derived name is taken by another class:
   * serving such a route uncached is safe, sharing another controller's entries is not.
   */
  private routeNamespace(route: RouteInfo): CacheNamespace | null {
    const options =
      route.owner === undefined
        ? route.namespaceOptions
        : { ...route.namespaceOptions, owner: route.owner };
    try {
      return this.resolveEngine().namespace(route.namespace, options);
    } catch (err) {
      if (!(err instanceof DynamoCacheError) || err.operation !== 'config') throw err;
      this.logger.error(`${err.message}; the route is served without the cache`);
      return null;
    }
  }

  private resolveEngine(): CacheEngine {
    if (this.engine !== undefined) return this.engine;
    let engine = this.moduleEngine;
    if (engine === undefined) {
      try {
        engine = this.moduleRef.get(CacheEngine, { strict: false });
      } catch {
        engine = undefined;
      }
    }
    if (engine === undefined) {
      throw new DynamoCacheError(
        'config',
        'DynamoCacheInterceptor found no DynamoCacheModule: import DynamoCacheModule.forRoot() or forRootAsync() in the application',
      );
    }
    this.engine = engine;
    return engine;
  }

  private requestMethod(request: HttpRequestLike): string {
    const adapter = this.httpAdapterHost?.httpAdapter;
    return String(adapter ? adapter.getRequestMethod(request) : request.method).toUpperCase();
  }

  private requestUrl(request: HttpRequestLike): string {
    const adapter = this.httpAdapterHost?.httpAdapter;
    return String(adapter ? adapter.getRequestUrl(request) : (request.originalUrl ?? request.url));
  }

  private setCacheHeader(context: ExecutionContext, value: 'HIT' | 'MISS'): void {
    const adapter = this.httpAdapterHost?.httpAdapter;
    if (adapter) adapter.setHeader(context.switchToHttp().getResponse(), 'X-Cache', value);
  }
}

function isStream(value: unknown): boolean {
  return (
    value instanceof StreamableFile ||
    (value !== null &&
      typeof value === 'object' &&
      typeof (value as { pipe?: unknown }).pipe === 'function')
  );
}
