import { DynamoCacheError } from '../errors.js';
import { describeMethod, mapArgs, wrapMutation } from './cache-mutation.js';
import { namespaceProblem } from '../dynamo-cache-options.resolver.js';

/**
 * Options of {@link DynamoCachePut}.
 *
 * @example
 * const options: DynamoCachePutOptions = { namespace: 'UsersService.find', args: (user: User) => [user.id] };
 */
export interface DynamoCachePutOptions {
  /** The namespace to store into: `Class.method` of a `@DynamoCached` method, or the name given. */
  namespace: string;
  /**
   * Maps the decorated method's arguments to the target's argument list (the entry stored).
   * Default: the method's own arguments.
   */
  args?: (...args: never[]) => readonly unknown[];
}

/**
 * Stores the decorated method's result as the entry of `namespace` for its (mapped) arguments
 * when it resolves, in both layers and for every process (see `DynamoCacheService.set`): the
 * next read of that entry is a hit with the new value. The decorated method returns a Promise.
 *
 * @example
 * @DynamoCachePut({ namespace: 'UsersService.find', args: (id: string) => [id] })
 * async rename(id: string, name: string): Promise<User> { ... }
 */
export function DynamoCachePut(options: DynamoCachePutOptions): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const where = `@DynamoCachePut on ${describeMethod(target, propertyKey)}`;
    if (options === null || typeof options !== 'object') {
      throw new DynamoCacheError('config', `${where}: expected an options object`);
    }
    const badNamespace = namespaceProblem(options.namespace);
    if (badNamespace !== undefined) {
      throw new DynamoCacheError('config', `${where}: "namespace" ${badNamespace}`);
    }
    if (options.args !== undefined && typeof options.args !== 'function') {
      throw new DynamoCacheError(
        'config',
        `${where}: "args" must be a function of the method's arguments returning the target's`,
      );
    }
    wrapMutation(descriptor, where, {
      after: (cache, result, args) =>
        cache.set(options.namespace, mapArgs(options.args, args, where), result),
      // An Observable that completed without a value: the entry is no longer known.
      afterNothing: (cache, args) =>
        cache.delete(options.namespace, mapArgs(options.args, args, where)),
    });
  };
}
