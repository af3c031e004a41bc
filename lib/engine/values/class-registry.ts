import { DynamoCacheError } from '../../errors.js';
import type { ClassRef } from './class-record.js';
import { loadMetadataClassSources, type MetadataClassSource } from './metadata-classes.js';

/** Where the registry learnt a class, for messages that name both sides of a conflict. */
type Origin = string;

interface Known {
  readonly cls: ClassRef;
  readonly origin: Origin;
}

/** Thrown when a value holds a class whose name another class already has (nothing is stored). */
export class ClassNameConflictError extends Error {
  override readonly name = 'ClassNameConflictError';
}

/**
 * Classes by name, so that a process reading an item can give its objects their prototypes back.
 *
 * Three tiers, looked up in this order:
 * 1. declared: `types` (module-wide, on `@DynamoCached`, on service calls). Two different declared
 *    classes with one name are a configuration error.
 * 2. seen: every class in a result this process computed, per namespace (two modules may each
 *    have a class named `Item`: each namespace restores its own).
 * 3. metadata: the classes that class-transformer, TypeORM and `@nestjs/graphql` (when installed)
 *    already know, read when a name is not found in the first two. A name two of them share
 *    restores nothing (the item is recomputed) until one is declared.
 *
 * A computed value's class must resolve back to itself everywhere, so a class that is not
 * declared is refused for L2 when another class with its name is seen or in the metadata.
 */
export class ClassRegistry {
  private readonly declared = new Map<string, Known>();
  /** Namespace → class name → the class seen in that namespace's computed results. */
  private readonly seen = new Map<string, Map<string, Known>>();
  /** Classes already checked against the metadata (a class is checked once). */
  private readonly verified = new WeakSet<ClassRef>();
  private sources: readonly MetadataClassSource[] | undefined;
  private loading: Promise<void> | undefined;

  /**
   * Declares classes (`types`). Throws a `config` {@link DynamoCacheError} naming both when a
   * different class with the same name is already declared.
   */
  declare(classes: readonly ClassRef[] | undefined, where: Origin): void {
    const list = classes ?? [];
    for (let i = 0; i < list.length; i++) {
      const cls = list[i] as ClassRef;
      // The position tells two same-named classes of one list apart in a message.
      const origin = list.length > 1 ? `${where} (entry ${i})` : where;
      if (typeof cls !== 'function' || typeof cls.prototype !== 'object' || cls.name === '') {
        throw new DynamoCacheError(
          'config',
          `${origin}: "types" must list named classes, got ${describe(cls)}`,
        );
      }
      const known = this.declared.get(cls.name) ?? this.seenElsewhere(cls);
      if (known !== undefined && known.cls !== cls) {
        throw new DynamoCacheError(
          'config',
          `two different classes are named "${cls.name}": one in ${known.origin}, one in ${origin}; ` +
            'rename one of them (a minified build must keep class names)',
        );
      }
      if (known === undefined) this.declared.set(cls.name, { cls, origin });
    }
  }

  /** Loads the metadata sources once; call before {@link admit} and {@link resolve}. */
  ready(): Promise<void> {
    if (this.sources !== undefined) return Promise.resolve();
    return (this.loading ??= loadMetadataClassSources().then(
      (sources) => {
        this.sources = sources;
      },
      () => {
        this.sources = [];
      },
    ));
  }

  /**
   * Admits a class found in a value about to be stored, as `name` (its own name). Throws
   * {@link ClassNameConflictError} when another class would be restored under that name.
   */
  admit(cls: ClassRef, name: string, namespace: string): void {
    const origin = `a result of ${namespace}`;
    const declared = this.declared.get(name);
    if (declared !== undefined) {
      if (declared.cls === cls) return;
      throw conflict(name, declared.origin, origin);
    }
    let inNamespace = this.seen.get(namespace);
    if (inNamespace === undefined) this.seen.set(namespace, (inNamespace = new Map()));
    const seen = inNamespace.get(name);
    if (seen !== undefined) {
      if (seen.cls === cls) return;
      throw conflict(name, seen.origin, origin);
    }
    if (!this.verified.has(cls)) {
      for (const other of this.fromMetadata(name)) {
        if (other.cls !== cls) throw conflict(name, other.origin, origin);
      }
      this.verified.add(cls);
    }
    inNamespace.set(name, { cls, origin });
  }

  /**
   * The class to restore under `name`, or why there is none: unknown here, or ambiguous (two
   * classes in the metadata and none declared or seen).
   */
  resolve(name: string, namespace: string): ClassRef | { readonly missing: string } {
    const known = this.declared.get(name) ?? this.seen.get(namespace)?.get(name);
    if (known !== undefined) return known.cls;
    const candidates = this.fromMetadata(name);
    const first = candidates[0];
    if (first === undefined) {
      return {
        missing: `class ${name} is unknown in this process (declare it with "types", or it is registered once this process computes a value holding it)`,
      };
    }
    const other = candidates.find((c) => c.cls !== first.cls);
    if (other !== undefined) {
      return {
        missing: `two different classes are named "${name}" (${first.origin}; ${other.origin}); declare the one to restore with "types"`,
      };
    }
    return first.cls;
  }

  /** A class seen in some namespace under `cls`'s name that is not `cls`. */
  private seenElsewhere(cls: ClassRef): Known | undefined {
    for (const byName of this.seen.values()) {
      const known = byName.get(cls.name);
      if (known !== undefined && known.cls !== cls) return known;
    }
    return undefined;
  }

  private fromMetadata(name: string): Known[] {
    const found: Known[] = [];
    for (const source of this.sources ?? []) {
      for (const cls of source.classes()) {
        if (cls.name === name && !found.some((k) => k.cls === cls)) {
          found.push({ cls: cls as ClassRef, origin: `the ${source.name} metadata` });
        }
      }
    }
    return found;
  }
}

function conflict(name: string, first: Origin, second: Origin): ClassNameConflictError {
  return new ClassNameConflictError(
    `two different classes are named "${name}" (one from ${first}, one from ${second}), so a reader could not tell which to restore; ` +
      'rename one, or declare the one to store with "types" (a minified build must keep class names)',
  );
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'an anonymous class';
  return value === null ? 'null' : typeof value;
}
