import { HttpException } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import { DYNAMO_CACHED_METADATA, NO_DYNAMO_CACHE_METADATA } from './dynamo-cache.constants.js';
import type { NamespaceOptions, NamespaceOwner } from './engine/cache-engine.js';
import type { CacheNamespace } from './engine/namespace/cache-namespace.js';
import { toNamespaceOptions } from './dynamo-cache-options.resolver.js';
import { DynamoCacheRouteResponse } from './http/cached-response.js';
import { UncacheableResult } from './http/uncacheable-result.js';
import type { FastRoute } from './http/fast-path.js';
import type { DynamoCachedOptions } from './interfaces/dynamo-cached-options.interface.js';

// Nest's and @nestjs/graphql's own metadata keys, spelled out: @nestjs/common 12 exposes its
// constants only through an entry point marked internal, and @nestjs/graphql is optional.
const ROUTE_ARGS_METADATA = '__routeArguments__';
const RESPONSE_PASSTHROUGH_METADATA = '__responsePassthrough__';
const SSE_METADATA = '__sse__';
const RESPONSE_PARAMTYPE = 1; // RouteParamtypes.RESPONSE: @Res()
const NEXT_PARAMTYPE = 2; // RouteParamtypes.NEXT: @Next()
const GRAPHQL_INFO_PARAMTYPE = 2; // GqlParamtype.INFO: @Info() (same key, other numbering)
/** In the key of a parameter of `createParamDecorator()`: `{id}__customRouteArgs__:{index}`. */
const CUSTOM_ROUTE_ARGS_METADATA = '__customRouteArgs__';
/** `'Query' | 'Mutation' | 'Subscription'` on a root resolver method. */
export const GRAPHQL_RESOLVER_TYPE_METADATA = 'graphql:resolver_type';
/** `true` on a `@ResolveField()` method. */
export const GRAPHQL_RESOLVE_PROPERTY_METADATA = 'graphql:resolve_property';

/** What the interceptor knows about one route or resolver, read once from its metadata. */
export interface RouteInfo {
  /** `false` for SSE routes, `@Res()` handlers, `@NoDynamoCache()`, mutations, subscriptions. */
  readonly cacheable: boolean;
  /** Whether the handler carries `@DynamoCached` itself (a global interceptor caches the rest too). */
  readonly decorated: boolean;
  readonly namespace: string;
  readonly namespaceOptions: NamespaceOptions;
  /** Lower-cased header names from `@DynamoCached({ vary })`; `[]` when not declared. */
  readonly vary: readonly string[];
  /** Which query parameters join the key. */
  readonly query: 'all' | readonly string[];
  /** Statuses that may be stored. */
  readonly statuses: readonly number[];
  /**
   * Resolvers that read `@Info()`, or take a parameter of a decorator of the application's own
   * (which may read it: look-ahead decorators such as `@Fields()`): the selection set joins the key.
   */
  readonly readsInfo: boolean;
  /** Resolvers: derives the key material from `(parent, args)`. */
  readonly key: ((...args: never[]) => unknown) | undefined;
  /** The controller or resolver class, which owns a namespace derived from its name. */
  readonly owner: NamespaceOwner | undefined;
  /** The route's namespace, once the engine is known (first request); `null`: not cacheable. */
  cache?: CacheNamespace | null;
  /** How the route keys requests for `fastPath`, once known (first request); `null`: not eligible. */
  fast?: FastRoute | null;
}

const DEFAULT_STATUSES: readonly number[] = [200];

/**
 * Reads what caching a handler needs from its metadata (and its controller's): options of
 * `@DynamoCached`, `@NoDynamoCache()`, `@Res()`, `@Sse()`, GraphQL resolver kinds.
 */
export function readRoute(
  reflector: Reflector,
  controller: abstract new (...args: never[]) => unknown,
  handler: (...args: never[]) => unknown,
): RouteInfo {
  const options = reflector.get<DynamoCachedOptions | undefined>(DYNAMO_CACHED_METADATA, handler);
  const methodName = handler.name;
  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, methodName) ?? {}) as Record<
    string,
    unknown
  >;
  const paramTypes = Object.keys(params).map((k) => Number(k.split(':')[0]));
  const rootType: unknown = Reflect.getMetadata(GRAPHQL_RESOLVER_TYPE_METADATA, handler);
  const resolver =
    rootType !== undefined ||
    Reflect.getMetadata(GRAPHQL_RESOLVE_PROPERTY_METADATA, handler) === true;
  // GraphQL keeps its own parameter kinds under the same key, numbered otherwise.
  const writesResponse =
    !resolver &&
    paramTypes.some((type) => type === RESPONSE_PARAMTYPE || type === NEXT_PARAMTYPE) &&
    !Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, methodName);
  const sse = Reflect.getMetadata(SSE_METADATA, handler) === true;
  const skipped =
    reflector.getAllAndOverride<boolean | undefined>(NO_DYNAMO_CACHE_METADATA, [
      handler,
      controller,
    ]) === true;
  const mutates = rootType === 'Mutation' || rootType === 'Subscription';

  const namespaceOptions = routeNamespaceOptions(
    options,
    !resolver && passesResponseThrough(controller, methodName),
  );
  return {
    cacheable: !writesResponse && !sse && !skipped && !mutates,
    decorated: options !== undefined,
    namespace: options?.namespace ?? `${controller.name}.${methodName}`,
    namespaceOptions,
    vary: options?.vary ?? [],
    query: options?.query ?? 'all',
    statuses: options?.statuses ?? DEFAULT_STATUSES,
    // A decorator of the application's own (`createParamDecorator`) gets the whole context, so it
    // may read the selection (a look-ahead `@Fields()`) as `@Info()` does.
    readsInfo:
      resolver &&
      (paramTypes.includes(GRAPHQL_INFO_PARAMTYPE) ||
        Object.keys(params).some((k) => k.includes(CUSTOM_ROUTE_ARGS_METADATA))),
    key: options?.key,
    owner:
      options?.namespace === undefined
        ? { value: controller, description: controller.name }
        : undefined,
  };
}

/**
 * The namespace options of a route or resolver from its `@DynamoCached` options: a route's entry
 * is the whole response, so its ttl, tags and unless functions are given its body; its key and
 * lease come from the interceptor and the module. A handler that writes to the response itself
 * (`passthrough`) has no soft `timeout`: a refresh behind a stale answer would run it on a
 * response already sent (Express throws on its first header; what it set would be lost), so its
 * callers wait for it, with the stale value only when it fails.
 */
export function routeNamespaceOptions(
  options: DynamoCachedOptions | undefined,
  passthrough: boolean,
): NamespaceOptions {
  const out = toNamespaceOptions({ ...options, key: undefined, lease: undefined }, (value) =>
    value instanceof DynamoCacheRouteResponse ? value.body : value,
  );
  if (passthrough) out.timeout = null;
  out.staleOnError = failedToAnswer;
  out.supersededBy = answersEveryone;
  return out;
}

/**
 * Whether a handler's error is an answer for every request of the route, which ends the stored
 * response it replaces: a client error (`HttpException` under 500) or a status the route does
 * not store; not what concerns one request (a 304, a cookie, a client that left).
 */
function answersEveryone(error: unknown): boolean {
  if (error instanceof UncacheableResult) return error.supersedes;
  return error instanceof HttpException && error.getStatus() < 500;
}

/**
 * Whether a handler's error is a failure to answer, which grace may hide with the last response,
 * rather than its answer: a client error (`HttpException` under 500: a 404, a 403) is the answer,
 * and so is a response that may not be stored (a 404 it returned, a private one).
 */
function failedToAnswer(error: unknown): boolean {
  if (error instanceof UncacheableResult) return false;
  return !(error instanceof HttpException && error.getStatus() < 500);
}

/** Whether a handler takes the response with `@Res({ passthrough: true })` (or `@Next`). */
export function passesResponseThrough(controller: object, methodName: string): boolean {
  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, methodName) ?? {}) as Record<
    string,
    unknown
  >;
  return (
    Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, methodName) === true &&
    Object.keys(params).some((k) => {
      const type = Number(k.split(':')[0]);
      return type === RESPONSE_PARAMTYPE || type === NEXT_PARAMTYPE;
    })
  );
}
