import { UseInterceptors } from '@nestjs/common';
import { DYNAMO_CACHED_METADATA } from '../dynamo-cache.constants.js';
import { DynamoCacheInterceptor } from '../dynamo-cache.interceptor.js';
import {
  assertComputeTimeout,
  assertFreshness,
  assertMaxsize,
  assertTypes,
  assertUnless,
  namespaceProblem,
  tableProblem,
} from '../dynamo-cache-options.resolver.js';
import { resolveLease } from '../engine/l2/cache-lease.js';
import { DynamoCacheError } from '../errors.js';
import type { DynamoCachedOptions } from '../interfaces/dynamo-cached-options.interface.js';

/** Anything that can be a method. */
type AnyMethod = (...args: never[]) => unknown;

/**
 * The type of what `@DynamoCached(...)` returns: a method decorator, generic in the method, so the
 * decorated signature is kept as is. Exported to type presets of your own built on `DynamoCached`.
 *
 * @example
 * export const CachedHourly = (): DynamoCachedDecorator => DynamoCached({ ttl: 3600, maxsize: 500 });
 *
 * @CachedHourly()
 * async rate(from: string, to: string): Promise<number> { ... }
 */
export type DynamoCachedDecorator = <T extends AnyMethod>(
  target: object,
  propertyKey: string | symbol,
  descriptor: TypedPropertyDescriptor<T>,
) => void;

/**
 * Caches a method's results in L1 (in-process LRU) and L2 (DynamoDB), write-through.
 *
 * On a provider method (which must return a Promise) the module wraps the method at bootstrap; on
 * a controller route handler, `DynamoCacheInterceptor` caches the GET response (the decorator
 * binds it to the handler, so nothing else is needed). Beyond that the decorator only records
 * metadata; other decorators' metadata on the method is kept.
 *
 * @param ttlOrOptions ttl in seconds (`null` = never expires), or {@link DynamoCachedOptions}.
 *
 * @example
 * @Injectable()
 * export class RatesService {
 *   @DynamoCached(3600)
 *   async rate(from: string, to: string): Promise<number> { ... }
 *
 *   @DynamoCached({ ttl: 60, namespace: 'rates.v2', key: (q: Query) => q.id })
 *   async search(q: Query): Promise<Rate[]> { ... }
 * }
 *
 * @example
 * @Controller('rates')
 * export class RatesController {
 *   @Get(':from/:to')
 *   @DynamoCached({ ttl: 30, vary: ['accept-language'] })
 *   rate(@Param('from') from: string, @Param('to') to: string) { ... }
 * }
 */
export function DynamoCached(
  ttlOrOptions?: number | null | DynamoCachedOptions,
): DynamoCachedDecorator {
  return (target, propertyKey, descriptor) => {
    const where = `@DynamoCached on ${(target as { constructor?: { name?: string } }).constructor?.name ?? '?'}.${String(propertyKey)}:`;
    if (ttlOrOptions !== null && !['undefined', 'number', 'object'].includes(typeof ttlOrOptions)) {
      throw new DynamoCacheError('config', `${where} expected a ttl or an options object`);
    }
    // A fresh copy per method: one decorator may be applied to several (a preset).
    const options: DynamoCachedOptions =
      ttlOrOptions === undefined
        ? {}
        : ttlOrOptions === null || typeof ttlOrOptions === 'number'
          ? { ttl: ttlOrOptions }
          : { ...ttlOrOptions };
    assertFreshness(options, where);
    assertMaxsize(options.maxsize, where);
    assertComputeTimeout(options.computeTimeout, where);
    assertTypes(options.types, where);
    assertUnless(options.unless, where);
    if (options.key !== undefined && typeof options.key !== 'function') {
      throw new DynamoCacheError('config', `${where} "key" must be a function of the arguments`);
    }
    const badNamespace =
      options.namespace === undefined ? undefined : namespaceProblem(options.namespace);
    if (badNamespace !== undefined) {
      throw new DynamoCacheError('config', `${where} "namespace" ${badNamespace}`);
    }
    const badTable = options.table === undefined ? undefined : tableProblem(options.table);
    if (badTable !== undefined) {
      throw new DynamoCacheError('config', `${where} "table" ${badTable}`);
    }
    if (
      options.vary !== undefined &&
      (!Array.isArray(options.vary) || options.vary.some((h) => typeof h !== 'string'))
    ) {
      throw new DynamoCacheError('config', `${where} "vary" must be an array of header names`);
    }
    if (options.vary !== undefined) options.vary = options.vary.map((h) => h.toLowerCase());
    if (
      options.query !== undefined &&
      options.query !== 'all' &&
      (!Array.isArray(options.query) || options.query.some((q) => typeof q !== 'string'))
    ) {
      throw new DynamoCacheError(
        'config',
        `${where} "query" must be 'all' or an array of query parameter names`,
      );
    }
    if (
      options.statuses !== undefined &&
      (!Array.isArray(options.statuses) ||
        options.statuses.some((s) => !Number.isInteger(s) || s < 100 || s > 599))
    ) {
      throw new DynamoCacheError(
        'config',
        `${where} "statuses" must be an array of HTTP status codes (100-599)`,
      );
    }
    if (options.lease !== undefined) {
      options.lease = resolveLease(
        options.lease,
        (problem) => new DynamoCacheError('config', `${where} "lease" ${problem}`),
      );
    }
    if (typeof descriptor.value !== 'function') {
      throw new DynamoCacheError('config', `${where} can only decorate a method`);
    }
    Reflect.defineMetadata(DYNAMO_CACHED_METADATA, Object.freeze(options), descriptor.value);
    // Makes the decorator alone enough on a route handler. On a provider method it is inert:
    // interceptors only run around route (and message) handlers.
    UseInterceptors(DynamoCacheInterceptor)(target, propertyKey, descriptor);
  };
}
