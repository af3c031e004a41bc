import { types } from 'node:util';
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
import { from, lastValueFrom, of, type Observable } from 'rxjs';
import { DYNAMO_CACHE_OPTIONS } from './dynamo-cache.constants.js';
import { fastPathEligible } from './dynamo-cache-fast-path.reader.js';
import { readRoute, type RouteInfo } from './dynamo-cache-route.reader.js';
import { CacheEngine } from './engine/cache-engine.js';
import type { CacheNamespace } from './engine/namespace/cache-namespace.js';
import { encodeKey } from './engine/keys/cache-key.js';
import { isThenable } from './engine/namespace/is-thenable.js';
import { guardedLogger } from './engine/guarded-logger.js';
import { DynamoCacheError, type DynamoCacheOperation } from './errors.js';
import { DynamoCacheRouteResponse } from './http/cached-response.js';
import { UncacheableResult } from './http/uncacheable-result.js';
import { FastPathRoutes } from './http/fast-path.js';
import { violatesNonNull } from './graphql/non-null-violation.js';
import { installFastPath } from './http/fast-path-adapters.js';
import { sendStoredJson, sentAsJson } from './http/json-replay.js';
import {
  CREDENTIAL_HEADERS,
  hostOf,
  mayShare,
  requestKey,
  type KeyedRequest,
} from './http/request-key.js';
import {
  entityTag,
  matchesIfNoneMatch,
  refusalOf,
  replayedHeaders,
  type ResponseHeaders,
} from './http/response-policy.js';
import type { ResolvedDynamoCacheOptions } from './interfaces/dynamo-cache-module-options.interface.js';

// Nest's own metadata key, unchanged since Nest 6 (see dynamo-cache-route.reader.ts).
const INTERCEPTORS_METADATA = '__interceptors__';

/**
 * Marks a call as taken by the first (outermost) DynamoCacheInterceptor that saw it: Nest builds
 * one execution context per call and hands it to every interceptor of that call. A property on
 * Nest's context object rather than on the request (a new property changes the request's shape,
 * and the framework's own code on it then runs measurably slower) or an entry in a weak set (an
 * insertion per request: ~1% of a small hit's server CPU on Express, profiled).
 */
const TAKEN = Symbol('nestjs-dynamo-cache.taken');
/**
 * Responses answered with a stored value while their own handler ran on (a stale value served
 * while it is refreshed), and that value: the status and headers they went out with are that
 * value's (or a 304 to its tag), not the refresh's.
 */
const answeredFromStore = new WeakMap<object, unknown>();

/** Calls whose context cannot take the mark (a frozen one): their argument lists. */
const TAKEN_CALLS = new WeakSet<object>();

/** The operations of a DynamoDB call (not a misuse of the cache: `key`, `config`, `serialize`). */
const DYNAMODB_CALLS: ReadonlySet<string> = new Set<DynamoCacheOperation>([
  'GetItem',
  'PutItem',
  'DeleteItem',
  'BatchWriteItem',
  'BatchGetItem',
  'UpdateItem',
]);

/** Whether another DynamoCacheInterceptor took this call already; if not, this one takes it. */
function takenBefore(context: ExecutionContext): boolean {
  const marked = context as unknown as Record<symbol, unknown>;
  if (marked[TAKEN] === true) return true;
  if (Object.isExtensible(context)) {
    marked[TAKEN] = true;
    return false;
  }
  const call = context.getArgs();
  if (TAKEN_CALLS.has(call)) return true;
  TAKEN_CALLS.add(call);
  return false;
}

/** The parts of an Express or Fastify request the interceptor reads. */
interface HttpRequestLike extends KeyedRequest {
  method?: string;
  url?: string;
  originalUrl?: string;
}

/** The parts of an Express response or a Fastify reply the interceptor reads. */
interface HttpResponseLike {
  statusCode?: number;
  getHeaders?(): Record<string, unknown>;
  /** Fastify: the Node response under the reply. */
  raw?: unknown;
  /** Express: Node's. */
  setHeader?(name: string, value: string): unknown;
}

/**
 * What a GraphQL server puts in its context: the HTTP request, under one of these names, and the
 * response (Express's request has it as `res`).
 */
interface GraphqlContextLike {
  req?: KeyedRequest & { res?: HttpResponseLike };
  request?: KeyedRequest;
  res?: HttpResponseLike;
  reply?: HttpResponseLike & { request?: KeyedRequest };
}

/**
 * A resolver's result refused because it was made for its own client: the resolver set a cookie
 * or made the response private. Requests that waited on it run the resolver themselves.
 */
class OwnClientResult extends UncacheableResult {}

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
 * Caches GET responses of controller routes, and results of GraphQL resolvers, in L1 and L2,
 * under the namespace `ControllerName.handlerName`.
 *
 * A route response is keyed by the method and the effective request URI: host (with `https` when
 * the connection itself is TLS, and what a proxy says of the original host and scheme), path (up
 * to `?` or `#`, percent-encoding normalised), and query parameters sorted by name (or those
 * `query` allows), plus the headers named in `@DynamoCached({ vary })`. Only what a shared cache
 * may store is stored: a status in `statuses` (default `[200]`), no `Set-Cookie`, no
 * `Cache-Control: private`, `no-store` or `no-cache`. A hit replays the status and the headers that describe the body,
 * and carries an `ETag`; `If-None-Match` is answered with `304 Not Modified`.
 *
 * Apply it per route (`@DynamoCached` on a handler does it for you), per controller with
 * `@UseInterceptors(DynamoCacheInterceptor)`, or globally as `APP_INTERCEPTOR`; every GET route
 * under it is cached with the module's ttl unless its handler's `@DynamoCached` says otherwise.
 * When several apply to one route, the outermost (global, then controller, then method) caches
 * and the others stand aside, so a response is never cached twice.
 *
 * A request carrying a credential (`Authorization`, `Proxy-Authorization`, `Cookie`, the module's
 * `privateHeaders`) is not cached unless the route's `vary` names every one it carries, or a
 * subclass's {@link trackBy} returns a key. Other methods than GET and HEAD, thrown errors,
 * `StreamableFile` and stream results (async iterables and web `Response`s too, wrapped in a plain
 * object by an inner interceptor too), SSE routes,
 * `@Res()` handlers and routes under `@NoDynamoCache()` are never cached.
 * Responses that went through the cache carry `X-Cache: HIT` or `X-Cache: MISS`.
 *
 * GraphQL: `@DynamoCached` on a `@Query()` resolver caches its result keyed by the field's
 * arguments (and `vary` headers); on a `@ResolveField()` it needs a `key` function of
 * `(parent, args)`, and the GraphQL module's `fieldResolverEnhancers: ['interceptors']`.
 *
 * @example
 * @Controller('rates')
 * @UseInterceptors(DynamoCacheInterceptor)      // every GET route below, module ttl
 * export class RatesController {
 *   @Get(':from/:to')
 *   @DynamoCached({ ttl: 30, vary: ['accept-language'], query: ['date'] })
 *   rate(@Param('from') from: string, @Param('to') to: string) { ... }
 * }
 *
 * @example
 * // Per-user responses: key them by the authenticated user yourself.
 * @Injectable()
 * export class UserCacheInterceptor extends DynamoCacheInterceptor {
 *   override trackBy(context: ExecutionContext) {
 *     const req = context.switchToHttp().getRequest<Request & { user?: { id: string } }>();
 *     // The host too: the same path may serve other tenants.
 *     return req.user ? [req.headers.host, req.user.id, req.originalUrl] : undefined;
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

  @Optional()
  @Inject(DYNAMO_CACHE_OPTIONS)
  private readonly moduleOptions?: ResolvedDynamoCacheOptions;

  @Inject(ModuleRef)
  private readonly moduleRef!: ModuleRef;

  // Guarded as the engine's is: it logs on a request's path and after its response, where an
  // application logger that throws would fail the request or, unhandled, end the process.
  private readonly logger = guardedLogger(new Logger('DynamoCache'));
  private engine: CacheEngine | undefined;
  private privateHeaders: readonly string[] | undefined;
  private readonly routes = new WeakMap<object, Map<object, RouteInfo>>();

  intercept(
    context: ExecutionContext,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    // Built with `new` (`app.useGlobalInterceptors(new DynamoCacheInterceptor())`), it was never
    // given what Nest injects: say so once and stay out of the way, rather than fail every call.
    if (this.moduleRef === undefined) return this.uninjected(next);
    const type = context.getType<string>();
    if (type === 'graphql') return this.interceptResolver(context, next);
    if (type !== 'http') return next.handle();
    // One call's interceptors share its context: the first (outermost) one caches.
    if (takenBefore(context)) return next.handle();
    const call = context.getArgs();
    // An HTTP call's arguments: the request and the response (what switchToHttp() reads).
    const request = call[0] as HttpRequestLike;
    const response = call[1] as HttpResponseLike;

    const route = this.route(context);
    const method = this.requestMethod(request);
    if (!route.cacheable || (method !== 'GET' && method !== 'HEAD')) return next.handle();

    // No Promise on the way to an L1 hit unless trackBy itself is asynchronous; the default key
    // is built from what this call already looked up.
    const key =
      this.trackBy === DEFAULT_TRACK_BY
        ? this.defaultKey(request, route, method)
        : this.trackBy(context);
    return isThenable<DynamoCacheRouteKey | undefined>(key)
      ? Promise.resolve(key).then((k) => this.serve(context, request, response, next, route, k))
      : this.serve(context, request, response, next, route, key);
  }

  /**
   * The key material of this request, or `undefined` to serve it without the cache. Override it
   * to key responses yourself (e.g. by user); a subclass that returns a key takes responsibility
   * for what varies, so requests with credentials are then cached too.
   *
   * The default: `[method, host, path, sorted query, ...values of the vary headers]`, with HEAD
   * keyed as GET, the path normalised (ended at `#`, percent-encoding as RFC 3986 §6.2.2) and
   * `https` in the host for a direct TLS connection (see `requestKey`); `undefined` for a
   * request carrying a credential the route's `vary` does not name.
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
    return this.defaultKey(request, this.route(context), this.requestMethod(request));
  }

  /** {@link trackBy}'s default key. */
  private defaultKey(
    request: HttpRequestLike,
    route: RouteInfo,
    method: string,
  ): DynamoCacheRouteKey | undefined {
    if (!mayShare(request, this.resolvePrivateHeaders(), route.vary)) return undefined;
    return requestKey(method, this.requestUrl(request), request, route.query, route.vary);
  }

  private serve(
    context: ExecutionContext,
    request: HttpRequestLike,
    response: HttpResponseLike,
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
    if (this.fastPathOn()) this.rememberFast(context, route, ns);
    const hit = ns.peek(key);
    if (hit?.hit) return this.replay(request, response, hit.value, 'HIT', true);
    return this.load(request, response, next, ns, key, route);
  }

  private async load(
    request: HttpRequestLike,
    response: HttpResponseLike,
    next: CallHandler,
    ns: CacheNamespace,
    key: DynamoCacheRouteKey,
    route: RouteInfo,
  ): Promise<Observable<unknown>> {
    // Settles once this request's own handler (if this request runs it) has its result: the
    // response goes out then, while the computation waits for it to be sent to decide, on the
    // headers as sent, whether it may be stored.
    const own = deferred<OwnResult>();
    // Set before the interceptors run (`@Header('ETag', …)`): a stale answer sent on this
    // response before its refresh ends would hide it.
    const declaredTag = etagHeader(responseHeaders(response));
    // The route's status, set by Nest before the interceptors: a refresh behind a stale answer
    // that went out as 304 has this one, not the 304.
    const declaredStatus = response.statusCode ?? 200;
    const stored = ns.run(undefined, key, async () => {
      let result: unknown;
      try {
        result = await lastValueFrom(next.handle(), { defaultValue: undefined });
      } catch (err) {
        own.reject(err);
        throw err;
      }
      if (isStream(result) || wrapsStream(result)) {
        own.resolve({ result, etag: undefined, handlerTag: false });
        throw new UncacheableResult(result);
      }
      // The handler's status: an outer 304 (ours, or Express answering a conditional request
      // itself) does not change what the response is.
      let status = response.statusCode ?? 200;
      if (status === 304 && answeredFromStore.has(response as object)) status = declaredStatus;
      // The handler's own validator when it set one (a version, a row's hash); not one a stale
      // answer already sent on this response (a refresh behind it).
      const handlerTag = answeredFromStore.has(response as object)
        ? declaredTag
        : etagHeader(responseHeaders(response));
      const etag = handlerTag ?? entityTag(result);
      own.resolve({ result, etag, handlerTag: handlerTag !== undefined });
      // Hooks, middleware and outer interceptors may still add Set-Cookie or Cache-Control:
      // only the response as sent says whether it may be shared.
      if (!(await sent(response))) throw new UncacheableResult(result);
      // A refresh behind a stale answer: what went out was that answer, not this result.
      const behind = answeredFromStore.get(response as object);
      const sentStatus = response.statusCode;
      let headers = responseHeaders(response);
      if (behind === undefined) {
        // Answered 304 (its If-None-Match matched): the framework dropped the headers that
        // describe a body (Express: its Content-Type). The next full response is stored instead.
        if (sentStatus === 304 && status !== 304) throw new UncacheableResult(result);
        // Sent as an error the handler did not answer with: what failed after it (the framework
        // could not serialize the result, an outer interceptor threw), answered by an exception
        // filter. A thrown error is never stored: stored, every hit would fail as well. (A 3xx of
        // `@Redirect()`, sent by Nest after the handler, is the handler's answer.)
        if (sentStatus !== undefined && sentStatus !== status && sentStatus >= 400) {
          throw new UncacheableResult(result);
        }
      } else if (
        sentStatus === 304 &&
        headers['content-type'] === undefined &&
        behind instanceof DynamoCacheRouteResponse &&
        behind.headers['content-type'] !== undefined
      ) {
        // The stale answer went out as 304 (a client revalidating its copy), for which Express
        // drops the Content-Type the stale answer had set: a refresh (a handler that does not
        // touch the response: see routeNamespaceOptions) is labelled as the value it replaces.
        headers = { ...headers, 'content-type': behind.headers['content-type'] };
      }
      if (refusalOf(status, headers, route.statuses, route.vary) !== undefined) {
        throw new UncacheableResult(result, !route.statuses.includes(status));
      }
      // Bytes labelled with an encoding may be the handler's own (pre-compressed): those cannot
      // be told from compression middleware's work, whose header a hit does not replay.
      if (headers['content-encoding'] !== undefined && ArrayBuffer.isView(result)) {
        throw new UncacheableResult(result);
      }
      const replayed = replayedHeaders(headers);
      // This response went out with a stored value (a stale one, while this computation
      // refreshes it): its validators are that value's, not this result's.
      if (behind !== undefined) {
        delete replayed['last-modified'];
        if (handlerTag === undefined) delete replayed.etag;
        else replayed.etag = handlerTag;
      }
      return new DynamoCacheRouteResponse(
        status,
        replayed,
        result,
        etag,
        sentAsJson(result, headers, response) ? true : undefined,
      );
    });
    const first = await Promise.race([
      own.promise.then(
        (value) => ({ kind: 'own' as const, value }),
        (error: unknown) => ({ kind: 'failed' as const, error }),
      ),
      stored.then(
        (value) => ({ kind: 'stored' as const, value }),
        (error: unknown) => ({ kind: 'refused' as const, error }),
      ),
    ]);
    if (first.kind === 'failed') {
      // Within grace, the namespace answers the handler's failure with the last response (not a
      // client error: that is the handler's answer, see staleOnError); otherwise the error stands.
      const fallback = await stored.then(
        (value) => ({ value }),
        () => undefined,
      );
      if (fallback === undefined) throw first.error;
      answeredFromStore.set(response as object, fallback.value);
      return this.replay(request, response, fallback.value, 'HIT', true);
    }
    if (first.kind === 'own') {
      // The rest happens after this response: a cache fault must not reach it.
      stored.catch((err: unknown) => {
        if (err instanceof UncacheableResult) return;
        // A DynamoDB failure (a write under onError 'throw', which no caller sees now): logged
        // once per outage of the table, as under 'bypass', not once per request.
        if (err instanceof DynamoCacheError && DYNAMODB_CALLS.has(err.operation)) {
          ns.reportUnseen(err);
        } else this.logger.warn(`${route.namespace}: ${(err as Error).message}`);
      });
      const { result, etag, handlerTag } = first.value;
      return this.answer(request, response, result, etag, 'MISS', handlerTag);
    }
    if (first.kind === 'refused') {
      if (!(first.error instanceof UncacheableResult)) throw first.error;
      // Another request's private response or stream: this one makes its own.
      this.setHeader(response, 'X-Cache', 'MISS');
      return next.handle();
    }
    answeredFromStore.set(response as object, first.value);
    return this.replay(request, response, first.value, 'HIT', true);
  }

  /**
   * Sends a body with its entity tag (or 304 when the request's `If-None-Match` matches it).
   * `etagSet`: the replayed headers carried it already (setting a header again costs a hit on
   * Express its validation once more).
   */
  private answer(
    request: HttpRequestLike,
    response: HttpResponseLike,
    body: unknown,
    etag: string | undefined,
    label: 'HIT' | 'MISS',
    etagSet = false,
  ): Observable<unknown> {
    this.setHeader(response, 'X-Cache', label);
    if (etag === undefined || isStream(body)) return of(body);
    if (!etagSet) this.setHeader(response, 'ETag', etag);
    const status = response.statusCode ?? 200;
    const adapter = this.httpAdapterHost?.httpAdapter;
    // Conditional requests apply to successful responses only (RFC 9110 §13.2.1).
    if (
      adapter &&
      status >= 200 &&
      status < 300 &&
      matchesIfNoneMatch(request.headers?.['if-none-match'], etag)
    ) {
      adapter.status(response, 304);
      return of(undefined);
    }
    return of(body);
  }

  /** Answers from a stored response: its status and headers, then its body (or 304). */
  private replay(
    request: HttpRequestLike,
    response: HttpResponseLike,
    stored: unknown,
    label: 'HIT' | 'MISS',
    restore: boolean,
  ): Observable<unknown> {
    // An entry of 0.1.0 under a custom trackBy key: the body alone.
    if (!(stored instanceof DynamoCacheRouteResponse)) {
      this.setHeader(response, 'X-Cache', label);
      return of(stored);
    }
    const adapter = this.httpAdapterHost?.httpAdapter;
    const replayed = restore && adapter !== undefined;
    if (replayed) {
      // Nest has set the route's status already; most hits replay that one.
      if (response.statusCode !== stored.status) adapter.status(response, stored.status);
      for (const name of Object.keys(stored.headers)) {
        this.setHeader(response, name, stored.headers[name] as string);
      }
      // Sent as the JSON text it went out as on the miss, not serialized again.
      if (stored.json === true) sendStoredJson(response, stored.body, adapter.getType());
    }
    const storedEtag = stored.headers.etag;
    return this.answer(
      request,
      response,
      stored.body,
      storedEtag ?? stored.etag,
      label,
      replayed && storedEtag !== undefined,
    );
  }

  /**
   * GraphQL: a `@DynamoCached` `@Query()` or `@ResolveField()`, keyed by its arguments (or its
   * `key` of `(parent, args)`), the host, the selection set when the resolver reads `@Info()`,
   * and the `vary` headers.
   */
  private interceptResolver(
    context: ExecutionContext,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    if (takenBefore(context)) return next.handle();
    const route = this.route(context);
    // A global interceptor caches routes by default, but resolvers only when asked to.
    if (!route.decorated || !route.cacheable) return next.handle();
    const parent: unknown = context.getArgByIndex(0);
    const args: unknown = context.getArgByIndex(1) ?? {};
    const gql = (context.getArgByIndex(2) ?? {}) as GraphqlContextLike;
    const request = httpRequestOf(gql);
    if (request === undefined) {
      // No HTTP request to check for credentials: not cached, rather than shared blindly.
      this.warnOnce(
        route,
        `${route.namespace}: the GraphQL context has no HTTP request (req), or the operation came over a WebSocket, so it is not cached`,
      );
      return next.handle();
    }
    if (!mayShare(request, this.resolvePrivateHeaders(), route.vary)) return next.handle();
    const material: unknown[] = [
      route.key === undefined
        ? args
        : (route.key as (p: unknown, a: unknown) => unknown)(parent, args),
      // As a route keys its host: an app behind a proxy may answer by the host it forwards, and
      // one serving HTTPS itself by its scheme.
      hostOf(request),
    ];
    const info: unknown = context.getArgByIndex(3);
    if (route.readsInfo) {
      const selection = selectionOf(info);
      // A nested argument that is no key material (an upload), or a selection too deep to key:
      // run it uncached.
      if (selection === undefined) return next.handle();
      material.push(selection);
    }
    for (const name of route.vary) material.push(request.headers?.[name] ?? null);
    const ns = (route.cache ??= this.routeNamespace(route));
    if (ns === null) return next.handle();
    const hit = ns.peek(material);
    if (hit?.hit) return of(hit.value);
    const response = gql.res ?? gql.reply ?? gql.req?.res;
    let computed = false;
    return from(
      ns
        .run(undefined, material, async () => {
          computed = true;
          const before = privacyHeaders(response);
          const value: unknown = await lastValueFrom(next.handle(), { defaultValue: undefined });
          // A cookie (a CSRF token, a session) or a private Cache-Control set while it ran: the
          // result is this client's, as a route response with them is (see refusalOf), partial
          // or not: identical queries that waited for it must not be answered with it.
          const after = privacyHeaders(response);
          if (
            after !== before &&
            refusalOf(200, responseHeaders(response ?? {}), [200], route.vary) !== undefined
          ) {
            throw new OwnClientResult(value);
          }
          // A partial result (an Error where a value should be, which GraphQL answers as a field
          // error) is answered, never stored: the next request asks the upstream again.
          // So is a null where the schema wants a value (GraphQL answers it as a field error too).
          if (holdsError(value) || violatesNonNull(value, info)) {
            throw new UncacheableResult(value);
          }
          return value;
        })
        .catch((err: unknown) => {
          if (!(err instanceof UncacheableResult)) throw err;
          // Another request's own result: this one makes its own.
          if (err instanceof OwnClientResult && !computed) {
            return lastValueFrom(next.handle(), { defaultValue: undefined });
          }
          return err.value;
        }),
    );
  }

  private readonly warned = new WeakSet<RouteInfo>();
  private warnedUninjected = false;

  private uninjected(next: CallHandler): Observable<unknown> {
    if (!this.warnedUninjected) {
      this.warnedUninjected = true;
      this.logger.error(
        new DynamoCacheError(
          'config',
          'DynamoCacheInterceptor was created with `new` (app.useGlobalInterceptors(new DynamoCacheInterceptor())), so Nest injected nothing into it and nothing is cached: register it as a provider, { provide: APP_INTERCEPTOR, useClass: DynamoCacheInterceptor }, or with @UseInterceptors(DynamoCacheInterceptor)',
        ).message,
      );
    }
    return next.handle();
  }

  private warnOnce(route: RouteInfo, message: string): void {
    if (this.warned.has(route)) return;
    this.warned.add(route);
    this.logger.warn(message);
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
      info = readRoute(
        this.reflector,
        controller as abstract new (...args: never[]) => unknown,
        handler as (...args: never[]) => unknown,
      );
      if (info.decorated && info.key !== undefined && context.getType<string>() === 'http') {
        this.logger.warn(
          `${info.namespace}: "key" of @DynamoCached is ignored on routes; override trackBy`,
        );
      }
      this.warnIfShadowing(controller, handler, info.namespace);
      byHandler.set(handler, info);
    }
    return info;
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

  /**
   * `fastPath`: on a GET of an eligible route (see fastPathEligible), when this interceptor is
   * the package's own (a subclass may key requests otherwise), wraps the handler the framework
   * calls for the route so that its hits are answered there from now on (see installFastPath).
   */
  private rememberFast(context: ExecutionContext, route: RouteInfo, ns: CacheNamespace): void {
    const routes = this.fastRoutes();
    const adapter = this.httpAdapterHost?.httpAdapter;
    if (routes === undefined || adapter === undefined) return;
    // Decided once per route (`null`: not eligible).
    if (route.fast === undefined) {
      route.fast =
        this.constructor === DynamoCacheInterceptor &&
        fastPathEligible(
          this.moduleRef,
          context.getClass(),
          context.getHandler(),
          DynamoCacheInterceptor,
        )
          ? {
              ns,
              query: route.query,
              vary: route.vary,
              privateHeaders: this.resolvePrivateHeaders(),
            }
          : null;
    }
    const request = context.switchToHttp().getRequest<HttpRequestLike>();
    if (route.fast === null || this.requestMethod(request) !== 'GET') return;
    const key = installFastPath(request, routes, (r) => String(adapter.getRequestUrl(r)), adapter);
    if (key !== undefined) routes.remember(key, route.fast);
  }

  private fastPathRoutes: FastPathRoutes | undefined;
  private fastPath: boolean | undefined;

  private fastPathOn(): boolean {
    if (this.fastPath !== undefined) return this.fastPath;
    const options =
      this.moduleOptions ?? this.fromApplication<ResolvedDynamoCacheOptions>(DYNAMO_CACHE_OPTIONS);
    this.fastPath = options?.fastPath === true;
    return this.fastPath;
  }

  private fastRoutes(): FastPathRoutes | undefined {
    return (this.fastPathRoutes ??= this.fromApplication(FastPathRoutes));
  }

  private resolveEngine(): CacheEngine {
    if (this.engine !== undefined) return this.engine;
    const engine = this.moduleEngine ?? this.fromApplication(CacheEngine);
    if (engine === undefined) {
      throw new DynamoCacheError(
        'config',
        'DynamoCacheInterceptor found no DynamoCacheModule: import DynamoCacheModule.forRoot() or forRootAsync() in the application',
      );
    }
    // Stored route responses are instances of this class: every process must restore them.
    engine.declareTypes([DynamoCacheRouteResponse], 'nestjs-dynamo-cache');
    this.engine = engine;
    return engine;
  }

  private resolvePrivateHeaders(): readonly string[] {
    if (this.privateHeaders !== undefined) return this.privateHeaders;
    const options =
      this.moduleOptions ?? this.fromApplication<ResolvedDynamoCacheOptions>(DYNAMO_CACHE_OPTIONS);
    // Without the module's options, the built-in credentials still keep private requests out.
    this.privateHeaders = options?.privateHeaders ?? CREDENTIAL_HEADERS;
    return this.privateHeaders;
  }

  private fromApplication<T>(
    token: symbol | (abstract new (...args: never[]) => T),
  ): T | undefined {
    try {
      return this.moduleRef.get<T>(token as symbol, { strict: false });
    } catch {
      return undefined;
    }
  }

  private requestMethod(request: HttpRequestLike): string {
    const adapter = this.httpAdapterHost?.httpAdapter;
    return String(adapter ? adapter.getRequestMethod(request) : request.method).toUpperCase();
  }

  private requestUrl(request: HttpRequestLike): string {
    const adapter = this.httpAdapterHost?.httpAdapter;
    return String(adapter ? adapter.getRequestUrl(request) : (request.originalUrl ?? request.url));
  }

  /** Whether headers go straight to Node's `setHeader` (see {@link setHeader}); decided once. */
  private nodeHeaders: boolean | undefined;

  /**
   * Sets a response header through the adapter; under Nest's own `ExpressAdapter`, whose
   * `setHeader` is Express's `res.set` (a string copy and, for `Content-Type`, a MIME look-up that
   * values stored as Express had set them do not need), with Node's `setHeader` directly.
   */
  private setHeader(response: HttpResponseLike, name: string, value: string): void {
    const adapter = this.httpAdapterHost?.httpAdapter;
    if (adapter === undefined) return;
    this.nodeHeaders ??= isNestExpressAdapter(adapter);
    if (this.nodeHeaders && typeof response.setHeader === 'function') {
      response.setHeader(name, value);
    } else {
      adapter.setHeader(response, name, value);
    }
  }
}

/** Nest's `ExpressAdapter` itself (not a subclass, which may set headers its own way). */
function isNestExpressAdapter(adapter: object): boolean {
  const proto = Object.getPrototypeOf(adapter) as { constructor?: { name?: string } } | null;
  return (
    proto !== null &&
    proto.constructor?.name === 'ExpressAdapter' &&
    (adapter as { setHeader?: unknown }).setHeader ===
      (proto as { setHeader?: unknown }).setHeader &&
    (adapter as { getType?(): string }).getType?.() === 'express'
  );
}

/** The default trackBy: a subclass that keeps it is keyed without a second look-up. */
const DEFAULT_TRACK_BY = DynamoCacheInterceptor.prototype.trackBy;

/** What a request that runs the handler gets back first: its result and that body's tag. */
interface OwnResult {
  readonly result: unknown;
  readonly etag: string | undefined;
  /** The etag is the handler's own, set on the response already. */
  readonly handlerTag: boolean;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Read only when this request ran the handler; otherwise nobody waits for it.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Resolves `true` once the response has been sent (its headers final), `false` when the
 * connection closed first.
 */
function sent(response: HttpResponseLike): Promise<boolean> {
  const raw = (response.raw ?? response) as HttpResponseLike & {
    writableFinished?: boolean;
    closed?: boolean;
    destroyed?: boolean;
    once?(event: string, listener: () => void): unknown;
    end?: (...args: unknown[]) => unknown;
  };
  if (raw.writableFinished === true) return Promise.resolve(true);
  // Closed already (its client left before the handler answered): 'close' will not come again,
  // and a flight waiting for it would hold its key (and every later request of it) for good.
  if (raw.closed === true || raw.destroyed === true) return Promise.resolve(false);
  if (typeof raw.once !== 'function') return Promise.resolve(true);
  return new Promise((resolve) => {
    let settled = false;
    const settle = (value: boolean): void => {
      if (settled) return;
      settled = true;
      resolve(value);
    };
    raw.once?.('finish', () => settle(true));
    raw.once?.('close', () => settle(raw.writableFinished === true));
    // Ended is enough: its headers are final then. 'finish' waits for the bytes to be handed to
    // the connection, which a client that pipelines a slow request before this one delays for as
    // long as it likes, and with it every request waiting for this one's result.
    const end = raw.end;
    if (typeof end !== 'function') return;
    raw.end = function (this: unknown, ...args: unknown[]): unknown {
      raw.end = end;
      const out = end.apply(this, args);
      settle(true);
      return out;
    };
  });
}

/**
 * The HTTP request a GraphQL operation came in, from its context (`req`, `request` or
 * `reply.request`), whose headers say whether its result may be shared; `undefined` when there is
 * none: a context without one, or an operation over a WebSocket (graphql-ws carries queries too),
 * whose `req` is graphql-ws's own context (Nest's Apollo driver puts it there: no headers) or the
 * upgrade request, or an object the context made of the connection's params (no method). Such a
 * connection authenticates with its `connectionParams`, which no header shows, so its results are
 * never shared.
 */
function httpRequestOf(gql: GraphqlContextLike): KeyedRequest | undefined {
  const request = gql.req ?? gql.request ?? gql.reply?.request;
  const headers = request?.headers as unknown;
  if (headers === null || typeof headers !== 'object') return undefined;
  // A request the context made of something else (`{ headers: connectionParams }`, for guards
  // reading `req.headers` over a WebSocket too) has no method: its names are not HTTP's.
  if (typeof (request as { method?: unknown }).method !== 'string') return undefined;
  // The request that opened a WebSocket (Node hands a request with `Upgrade` to the server's
  // 'upgrade' listeners, the GraphQL module's among them, not to the application). Another offer
  // (`Upgrade: h2c` of curl --http2) reaches the application as any request when none takes it.
  const upgrade = (headers as Record<string, unknown>).upgrade;
  if (upgrade !== undefined && /websocket/i.test(String(upgrade))) return undefined;
  return request;
}

/**
 * The fields a GraphQL query selects below this one, with their arguments, as a sorted list
 * (fragments followed, with their type conditions): part of the key of a resolver that reads
 * `@Info()` and may fetch only what is selected. `undefined` when an argument cannot be key
 * material, or the selection is deeper than {@link MAX_SELECTION_DEPTH} levels.
 */
function selectionOf(info: unknown): string | undefined {
  const fragments = ((info as { fragments?: Record<string, SelectionSetLike> } | null)?.fragments ??
    {}) as Record<string, SelectionSetLike>;
  const nodes = ((info as { fieldNodes?: SelectionLike[] } | null)?.fieldNodes ??
    []) as SelectionLike[];
  const variables = ((info as { variableValues?: Record<string, unknown> } | null)
    ?.variableValues ?? {}) as Record<string, unknown>;
  const out = new Set<string>();
  let tooDeep = false;
  const walk = (set: SelectionSetLike | undefined, prefix: string, depth: number): void => {
    if (set === undefined) return;
    // What lies deeper would be left out of the key (two selections, one entry): not keyed.
    if (depth > MAX_SELECTION_DEPTH) {
      tooDeep = true;
      return;
    }
    for (const node of set.selectionSet?.selections ?? []) {
      // What `@skip` / `@include` leave out is not selected: GraphQL will not run it.
      if (!selected(node, variables)) continue;
      if (node.kind === 'Field') {
        // Its arguments too (variables resolved): a look-ahead resolver fetches `posts(first: 3)`.
        const name = `${prefix}${node.name?.value ?? ''}${argumentsOf(node, variables)}`;
        out.add(name);
        walk(node, `${name}.`, depth + 1);
      } else if (node.kind === 'FragmentSpread') {
        // A named fragment's type condition, as an inline fragment's: `...F on Cat` is not `on Dog`.
        const fragment = fragments[node.name?.value ?? ''];
        walk(fragment, `${prefix}${fragment?.typeCondition?.name?.value ?? ''}:`, depth + 1);
      } else {
        walk(node, `${prefix}${node.typeCondition?.name?.value ?? ''}:`, depth + 1);
      }
    }
  };
  try {
    for (const node of nodes) walk(node, '', 0);
  } catch (err) {
    if (err instanceof DynamoCacheError) return undefined;
    throw err;
  }
  return tooDeep ? undefined : [...out].sort().join(',');
}

/** Levels of a selection (fields and fragments) a resolver's key follows; deeper runs uncached. */
const MAX_SELECTION_DEPTH = 64;

/**
 * A field's arguments as key text, sorted by name, values resolved (variables) and canonically
 * encoded: `([[s5:first,d3]])`; empty without arguments.
 */
function argumentsOf(node: SelectionLike, variables: Record<string, unknown>): string {
  const args = node.arguments;
  if (args === undefined || args.length === 0) return '';
  const named = args
    .map((arg) => [arg.name?.value ?? '', astValue(arg.value, variables)] as const)
    // An argument given as a variable the request left out is not given: its default applies.
    .filter(([, value]) => value !== OMITTED)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `(${encodeKey(named.map(([name, value]) => [name, value]))})`;
}

/** A variable the request did not give (not `null`: GraphQL then applies the default). */
const OMITTED = Symbol('omitted');

/**
 * The value of a GraphQL literal or variable, untyped (enums as their names); {@link OMITTED} for
 * a variable not given, which leaves an object field out and is `null` in a list (as GraphQL
 * reads them).
 */
function astValue(node: ValueLike | undefined, variables: Record<string, unknown>): unknown {
  switch (node?.kind) {
    case 'Variable': {
      const name = node.name?.value ?? '';
      return Object.hasOwn(variables, name) ? variables[name] : OMITTED;
    }
    case 'IntValue':
    case 'FloatValue': {
      // A literal a number does not hold exactly (an id past 2^53 for a Long scalar) keeps its
      // text: two such literals are two keys.
      const n = Number(node.value);
      return String(n) === node.value ? n : `number:${String(node.value)}`;
    }
    case 'StringValue':
    case 'BooleanValue':
      return node.value;
    case 'EnumValue':
      return `enum:${String(node.value)}`;
    case 'ListValue':
      return (node.values ?? []).map((v) => {
        const item = astValue(v, variables);
        return item === OMITTED ? null : item;
      });
    case 'ObjectValue':
      return Object.fromEntries(
        (node.fields ?? [])
          .map((f) => [f.name?.value ?? '', astValue(f.value, variables)] as const)
          .filter(([, value]) => value !== OMITTED),
      );
    default:
      return null;
  }
}

/** The parts of graphql-js AST nodes read by selectionOf. */
interface NamedLike {
  readonly name?: { readonly value?: string };
}
interface ArgumentLike extends NamedLike {
  readonly value?: ValueLike;
}
interface SelectionSetLike {
  readonly selectionSet?: { readonly selections?: readonly SelectionLike[] };
  readonly typeCondition?: NamedLike;
}
interface SelectionLike extends SelectionSetLike, NamedLike {
  readonly kind?: string;
  readonly directives?: readonly DirectiveLike[];
  readonly arguments?: readonly ArgumentLike[];
}
interface ValueLike extends NamedLike {
  readonly kind?: string;
  readonly value?: unknown;
  readonly values?: readonly ValueLike[];
  readonly fields?: readonly ArgumentLike[];
}
interface DirectiveLike extends NamedLike {
  readonly arguments?: readonly ArgumentLike[];
}

/**
 * Whether a selection is run, by its `@skip(if:)` and `@include(if:)` (a literal or a variable);
 * one whose condition cannot be read counts as selected (a key too specific is only a miss).
 */
function selected(node: SelectionLike, variables: Record<string, unknown>): boolean {
  for (const directive of node.directives ?? []) {
    const name = directive.name?.value;
    if (name !== 'skip' && name !== 'include') continue;
    const value = directive.arguments?.find((a) => a.name?.value === 'if')?.value;
    const condition = astValue(value, variables);
    if (typeof condition !== 'boolean') continue;
    if (name === 'skip' ? condition : !condition) return false;
  }
  return true;
}

/**
 * Whether a resolver's result is, or holds at any depth (list items, properties), an Error or a
 * Promise: GraphQL answers either as a field error (it awaits a Promise-valued property), so the
 * result is partial. Past 32 levels a value counts as holding one (a key too cautious is a miss).
 */
function holdsError(value: unknown): boolean {
  const seen = new Set<object>();
  const walk = (part: unknown, depth: number): boolean => {
    if (isError(part) || isThenable(part)) return true;
    if (part === null || typeof part !== 'object' || seen.has(part)) return false;
    if (depth > 32) return true;
    seen.add(part);
    const parts = Array.isArray(part) ? part : Object.values(part);
    return parts.some((p) => walk(p, depth + 1));
  };
  return walk(value, 0);
}

function isError(value: unknown): boolean {
  return value instanceof Error || types.isNativeError(value);
}

/**
 * The response headers that can make a result its client's own (`Set-Cookie`, `Cache-Control`,
 * `Vary`) as one text, to tell whether a resolver set any; `''` without a response.
 */
function privacyHeaders(response: HttpResponseLike | undefined): string {
  if (response === undefined) return '';
  const headers = responseHeaders(response);
  return ['set-cookie', 'cache-control', 'vary']
    .map((name) => {
      const value = headers[name];
      return Array.isArray(value) ? value.join('\n') : String(value ?? '');
    })
    .join('\r');
}

/** The headers set on the response so far (by the handler, `@Header()`, inner interceptors). */
function responseHeaders(response: HttpResponseLike): ResponseHeaders {
  // Express responses and Fastify replies both have getHeaders(), names lower-cased.
  return typeof response.getHeaders === 'function' ? response.getHeaders() : {};
}

/** The `ETag` set on the response so far, if any. */
function etagHeader(headers: ResponseHeaders): string | undefined {
  const value = headers.etag;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Whether a result is sent as a stream, which is read once, by the response that sends it:
 * `StreamableFile`, a Node stream, and what Nest streams besides (see its `isStreamingBody`): an
 * async iterable that is not a thenable (an async generator, a web `ReadableStream`) and a web
 * `Response`. Stored, it would be replayed as what is left of it: nothing.
 */
function isStream(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const v = value as { pipe?: unknown; then?: unknown; [Symbol.asyncIterator]?: unknown };
  return (
    value instanceof StreamableFile ||
    typeof v.pipe === 'function' ||
    (typeof v[Symbol.asyncIterator] === 'function' && typeof v.then !== 'function') ||
    Object.prototype.toString.call(value) === '[object Response]'
  );
}

/**
 * Whether a result is a plain object holding a stream among its own values: what an interceptor
 * between the cache and the handler makes of a streamed result (`{ data: stream }`), which Nest
 * sends as that stream (see its `pickStreamingBody`). Stored, it would be replayed as the object
 * around what is left of the stream (`{"data":{}}`, or a 500 on Fastify).
 */
function wrapsStream(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).some(isStream);
}
