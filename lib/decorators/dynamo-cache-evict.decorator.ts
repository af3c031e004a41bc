import { DynamoCacheError } from '../errors.js';
import { describeMethod, mapArgs, wrapMutation, type MutationCache } from './cache-mutation.js';
import { namespaceProblem } from '../dynamo-cache-options.resolver.js';

/**
 * Options of {@link DynamoCacheEvict}.
 *
 * @example
 * const options: DynamoCacheEvictOptions = { namespace: 'RatesService.rate', args: (r: Rate) => [r.from, r.to] };
 */
export interface DynamoCacheEvictOptions {
  /** The namespace to evict from: `Class.method` of a `@DynamoCached` method, or the name given. */
  namespace?: string;
  /**
   * Maps the decorated method's arguments to the target's argument list (whose entry is
   * evicted). Default: the method's own arguments.
   */
  args?: (...args: never[]) => readonly unknown[];
  /** Evict every entry of `namespace` (`DynamoCacheService.clear`) instead of one. */
  allEntries?: boolean;
  /** Tags to invalidate (`deleteByTag`): fixed, or a function of the result and the arguments. */
  tags?: readonly string[] | ((result: never, ...args: never[]) => readonly string[]);
  /** Evict before the method runs (and whether or not it succeeds). Default: after it resolves. */
  beforeInvocation?: boolean;
}

/**
 * Evicts cache entries when the decorated method (a service method, a route handler, a GraphQL
 * mutation) resolves: one entry of `namespace`, all of them, or every entry carrying `tags`, in
 * every process (see `DynamoCacheService.delete`, `clear`, `deleteByTag`). A method that rejects
 * evicts nothing, unless `beforeInvocation`. The decorated method returns a Promise.
 *
 * @example
 * @DynamoCacheEvict({ namespace: 'RatesService.rate', args: (from: string, to: string) => [from, to] })
 * async updateRate(from: string, to: string, value: number): Promise<void> { ... }
 *
 * @example
 * @Post(':id')
 * @DynamoCacheEvict({ namespace: 'OrdersController.list', allEntries: true })
 * update(@Param('id') id: string, @Body() body: OrderDto) { ... }
 */
export function DynamoCacheEvict(options: DynamoCacheEvictOptions): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const where = `@DynamoCacheEvict on ${describeMethod(target, propertyKey)}`;
    check(options, where);
    const evict = async (cache: MutationCache, result: unknown, args: unknown[]): Promise<void> => {
      // Everything that can throw first: no eviction is left running unawaited.
      const target =
        options.namespace === undefined || options.allEntries === true
          ? undefined
          : mapArgs(options.args, args, where);
      const tags =
        typeof options.tags === 'function'
          ? tagsOf(
              (options.tags as (result: unknown, ...args: unknown[]) => unknown)(result, ...args),
            )
          : options.tags;
      const work: Promise<void>[] = [];
      if (options.namespace !== undefined) {
        work.push(
          target === undefined
            ? cache.clear(options.namespace)
            : cache.delete(options.namespace, target),
        );
      }
      if (tags !== undefined) work.push(cache.deleteByTag(tags));
      const failed = (await Promise.allSettled(work)).find(
        (outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected',
      );
      if (failed !== undefined) throw failed.reason;
    };
    wrapMutation(
      descriptor,
      where,
      options.beforeInvocation === true
        ? { before: (cache, args) => evict(cache, undefined, args) }
        : { after: evict },
    );
  };
}

/**
 * What a `tags` function returned, as a list: a tag or an array of them (checked further by
 * `deleteByTag`). Anything else (`undefined` from a lookup that found nothing) is a failed
 * eviction, not one of nothing (the caller names the method).
 */
function tagsOf(value: unknown): readonly string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value as readonly string[];
  const got = value === null ? 'null' : typeof value;
  throw new DynamoCacheError(
    'config',
    `the "tags" function must return a tag or an array of tags, got ${got}`,
  );
}

function check(options: DynamoCacheEvictOptions, where: string): void {
  if (options === null || typeof options !== 'object') {
    throw new DynamoCacheError('config', `${where}: expected an options object`);
  }
  if (options.namespace === undefined && options.tags === undefined) {
    throw new DynamoCacheError('config', `${where}: give a "namespace" or "tags" to evict`);
  }
  const badNamespace =
    options.namespace === undefined ? undefined : namespaceProblem(options.namespace);
  if (badNamespace !== undefined) {
    throw new DynamoCacheError('config', `${where}: "namespace" ${badNamespace}`);
  }
  if (options.args !== undefined && typeof options.args !== 'function') {
    throw new DynamoCacheError(
      'config',
      `${where}: "args" must be a function of the method's arguments returning the target's`,
    );
  }
  if (options.allEntries === true && options.args !== undefined) {
    throw new DynamoCacheError(
      'config',
      `${where}: "allEntries" evicts the whole namespace; drop "args"`,
    );
  }
  if (
    options.tags !== undefined &&
    typeof options.tags !== 'function' &&
    (!Array.isArray(options.tags) || options.tags.some((t) => typeof t !== 'string' || t === ''))
  ) {
    throw new DynamoCacheError(
      'config',
      `${where}: "tags" must be an array of non-empty strings or a function`,
    );
  }
}
