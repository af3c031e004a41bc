import { isObservable, Observable } from 'rxjs';
import {
  DYNAMO_CACHE_MUTATION_METADATA,
  DYNAMO_CACHE_SERVICE_REF,
} from '../dynamo-cache.constants.js';
import { DynamoCacheError } from '../errors.js';

/** What a mutation decorator needs of `DynamoCacheService` (kept structural: no import cycle). */
export interface MutationCache {
  delete(namespace: string, args: readonly unknown[]): Promise<void>;
  set(namespace: string, args: readonly unknown[], value: unknown): Promise<void>;
  clear(namespace: string): Promise<void>;
  deleteByTag(tags: readonly string[]): Promise<void>;
  /**
   * Whether a failed eviction or put is logged and let go (`onError: 'bypass'`) rather than
   * thrown: the method's own work is done by then, and its result must reach its caller.
   */
  absorbs?(error: DynamoCacheError): boolean;
}

type AnyMethod = (...args: unknown[]) => unknown;

/**
 * Finds the cache of the application `instance` is a provider of, for an instance the module did
 * not reach at bootstrap (a module loaded later with `LazyModuleLoader`); `undefined` when it is
 * none of that application's.
 */
export type MutationCacheFinder = (instance: object) => MutationCache | undefined;

/** One per application running in this process, from its init to its shutdown. */
const finders = new Set<MutationCacheFinder>();

/** Adds `finder` until the function it returns is called. */
export function addMutationCacheFinder(finder: MutationCacheFinder): () => void {
  finders.add(finder);
  return () => {
    finders.delete(finder);
  };
}

/**
 * The cache of the application `instance` belongs to, asked of each running application: the
 * instance itself says nothing of it, and guessing one of several would evict in the wrong cache.
 */
function findCache(instance: unknown): MutationCache | undefined {
  if (instance === null || typeof instance !== 'object') return undefined;
  for (const find of finders) {
    const cache = find(instance);
    if (cache !== undefined) return cache;
  }
  return undefined;
}

/**
 * Replaces a method with one that runs `before` the original (when given) and `after` it
 * resolves, with the cache the module left on the instance (or, on an instance of a module loaded
 * later, its application's cache). A cache fault after the method resolved rejects with a
 * `DynamoCacheError` carrying the method's result as `result`, so it is never lost. Every metadata
 * of the original is copied to the replacement (decorators above and below this one keep working).
 */
export function wrapMutation(
  descriptor: PropertyDescriptor,
  where: string,
  steps: {
    before?: (cache: MutationCache, args: unknown[]) => Promise<void>;
    after?: (cache: MutationCache, result: unknown, args: unknown[]) => Promise<void>;
    /**
     * In place of `after` when the method's Observable completed without a value (default:
     * `after` with `undefined`): a put has nothing to store.
     */
    afterNothing?: (cache: MutationCache, args: unknown[]) => Promise<void>;
  },
): void {
  const original = descriptor.value as AnyMethod;
  const wrapped = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
    const cache =
      (this as { [DYNAMO_CACHE_SERVICE_REF]?: MutationCache } | null)?.[DYNAMO_CACHE_SERVICE_REF] ??
      findCache(this);
    if (cache === undefined) {
      throw new DynamoCacheError(
        'config',
        `${where}: no DynamoCacheModule reached this instance (import DynamoCacheModule in the application; request-scoped providers are not supported)`,
      );
    }
    if (steps.before !== undefined) {
      try {
        await steps.before(cache, args);
      } catch (err) {
        const error = failure(where, err);
        if (cache.absorbs?.(error) !== true) throw error;
      }
    }
    const after = async (result: unknown, nothing = false): Promise<unknown> => {
      try {
        if (nothing && steps.afterNothing !== undefined) await steps.afterNothing(cache, args);
        else await steps.after?.(cache, result, args);
      } catch (err) {
        const error = failure(where, err, { result });
        if (cache.absorbs?.(error) !== true) throw error;
      }
      return result;
    };
    const result = await original.apply(this, args);
    // A handler's Observable has done nothing yet (Nest subscribes to it later): the step after
    // it waits for it to complete, with its last value, and an Observable that errors has none.
    return isObservable(result) ? afterCompletion(result, after) : after(result);
  };
  Object.defineProperty(wrapped, 'name', { value: original.name });
  for (const key of Reflect.getMetadataKeys(original)) {
    Reflect.defineMetadata(key, Reflect.getMetadata(key, original), wrapped);
  }
  Reflect.defineMetadata(DYNAMO_CACHE_MUTATION_METADATA, true, wrapped);
  descriptor.value = wrapped;
}

/**
 * `source`, whose completion waits for `after` (given its last value, or told there was none): its
 * values pass on as they come, its error skips `after`, and a failure of `after` is the
 * Observable's error.
 */
function afterCompletion(
  source: Observable<unknown>,
  after: (result: unknown, nothing: boolean) => Promise<unknown>,
): Observable<unknown> {
  return new Observable((subscriber) => {
    let last: unknown;
    let emitted = false;
    return source.subscribe({
      next: (value) => {
        last = value;
        emitted = true;
        subscriber.next(value);
      },
      error: (err: unknown) => subscriber.error(err),
      complete: () => {
        after(last, !emitted).then(
          () => subscriber.complete(),
          (err: unknown) => subscriber.error(err),
        );
      },
    });
  });
}

/** The error of a failed eviction or put, naming the decorated method (`result`: its result). */
function failure(where: string, err: unknown, extra: { result?: unknown } = {}): DynamoCacheError {
  const e = err instanceof DynamoCacheError ? err : undefined;
  return new DynamoCacheError(
    e?.operation ?? 'config',
    `${where}: ${e?.message ?? (err as Error)?.message ?? String(err)}`,
    { namespace: e?.namespace, cause: e?.cause ?? err, ...extra },
  );
}

/** `Class.method`, for messages. */
export function describeMethod(target: object, propertyKey: string | symbol): string {
  const name = (target as { constructor?: { name?: string } }).constructor?.name ?? '?';
  return `${name}.${String(propertyKey)}`;
}

/** The target's argument list from the method's (`args` option), checked. */
export function mapArgs(
  map: ((...args: never[]) => readonly unknown[]) | undefined,
  args: unknown[],
  where: string,
): readonly unknown[] {
  if (map === undefined) return args;
  const mapped = (map as (...args: unknown[]) => unknown)(...args);
  if (!Array.isArray(mapped)) {
    throw new DynamoCacheError(
      'config',
      `${where}: "args" must return an array (the target's argument list)`,
    );
  }
  return mapped;
}
