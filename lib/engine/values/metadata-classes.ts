import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * A source of classes an installed package's metadata knows.
 *
 * @example
 * ```ts
 * for (const source of await loadMetadataClassSources()) {
 *   for (const type of source.classes()) registry.set(type.name, type);
 * }
 * ```
 */
export interface MetadataClassSource {
  /** The package the classes come from, e.g. `'class-transformer'`. */
  readonly name: string;
  /**
   * The classes the package's metadata holds at the time of the call: metadata grows as the
   * application's modules load, so ask again rather than keep the answer. Synchronous, cheap
   * (a walk over the package's own maps), never throws.
   */
  // The metadata of these packages holds classes typed `Function`; a narrower constructor type
  // would not accept what they store.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  classes(): Iterable<Function>;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type Class = Function;

let loaded: Promise<readonly MetadataClassSource[]> | undefined;

/**
 * Loads (once, memoised) the sources whose package is installed; never throws.
 *
 * The sources are class-transformer (classes with `@Expose`, `@Exclude`, `@Type`, `@Transform`
 * and the classes `@Type(() => X)` names), TypeORM (entities, and classes with columns or
 * embedded columns) and `@nestjs/graphql` (object, input and interface types). None of these
 * packages is a dependency: a package that is not installed gives no source.
 *
 * @example
 * ```ts
 * const sources = await loadMetadataClassSources();
 * const byName = new Map<string, Function>();
 * for (const source of sources) for (const type of source.classes()) byName.set(type.name, type);
 * ```
 */
export function loadMetadataClassSources(): Promise<readonly MetadataClassSource[]> {
  loaded ??= loadSources();
  return loaded;
}

async function loadSources(): Promise<readonly MetadataClassSource[]> {
  const sources = await Promise.all([
    classTransformerSource().catch(() => undefined),
    safely(typeormSource),
    safely(graphqlSource),
  ]);
  return Object.freeze(sources.filter((source) => source !== undefined));
}

// ---------------------------------------------------------------------------------------------
// Resolution

/**
 * Where a package is looked for, in order. The application's decorators wrote their metadata
 * into the copy the application resolves, so that copy is looked for first, from the current
 * directory as the application's own files would. This library's own location comes second:
 * it finds the same copy when the package is hoisted next to this library, and a copy at all
 * when the process was started from another directory (a monorepo root, a test runner). Under
 * a strict layout (pnpm) this library cannot see a package it does not depend on, which is why
 * its location cannot be the only one.
 */
function requirers(): NodeJS.Require[] {
  const list: NodeJS.Require[] = [];
  try {
    list.push(createRequire(join(process.cwd(), 'noop.js')));
  } catch {
    // No usable current directory (deleted, or no process.cwd in this runtime).
  }
  list.push(createRequire(import.meta.url));
  return list;
}

/** The distinct files `specifier` resolves to from the places of {@link requirers}. */
function resolveAll(specifier: string): string[] {
  const files = new Set<string>();
  for (const require of requirers()) {
    try {
      files.add(require.resolve(specifier));
    } catch {
      // Not installed where this requirer looks: not an error.
    }
  }
  return [...files];
}

function isInstalled(specifier: string): boolean {
  return resolveAll(specifier).length > 0;
}

// ---------------------------------------------------------------------------------------------
// class-transformer

/**
 * class-transformer keeps its metadata in a module singleton, `defaultMetadataStorage` of
 * `cjs/storage.js`, not on the global object, so the source has to hold the very module
 * instance the decorators wrote to. The package has no `exports` map and its `main` is the
 * CommonJS build: `import { Expose } from 'class-transformer'` in an application, and the
 * `import('class-transformer')` of Nest's ClassSerializerInterceptor and ValidationPipe, both
 * load `cjs/index.js`, whose `require('./storage')` is the file imported here. Node keeps one
 * instance per CommonJS file, whether it is reached by `require` or `import`. Only a bundler
 * that picks the `module` field (the `esm5` build) would make a second storage this source
 * cannot see.
 */
async function classTransformerSource(): Promise<MetadataClassSource | undefined> {
  const storages = new Set<object>();
  for (const file of resolveAll('class-transformer/cjs/storage.js')) {
    try {
      const module: unknown = await import(pathToFileURL(file).href);
      const storage =
        property(module, 'defaultMetadataStorage') ??
        property(property(module, 'default'), 'defaultMetadataStorage');
      if (isObject(storage)) storages.add(storage);
    } catch {
      // A broken or foreign copy: the other copies, if any, still count.
    }
  }
  if (storages.size === 0) return undefined;
  return {
    name: 'class-transformer',
    classes: () =>
      collect((add) => {
        for (const storage of storages) {
          for (const map of [
            '_exposeMetadatas',
            '_excludeMetadatas',
            '_transformMetadatas',
            '_typeMetadatas',
          ]) {
            for (const target of mapKeys(property(storage, map))) add(target);
          }
          for (const byProperty of mapValues(property(storage, '_typeMetadatas'))) {
            for (const metadata of mapValues(byProperty)) addTypeMetadataClasses(metadata, add);
          }
        }
      }),
  };
}

/**
 * The class a `@Type(() => X)` names is known only by calling its function, and it often has
 * no decorator of its own (a nested value object). The function is the application's, so it
 * may throw (e.g. one that reads the options a transformation passes it): such a class is left
 * out. The sub-types of a discriminator are plain data.
 */
function addTypeMetadataClasses(metadata: unknown, add: (value: unknown) => void): void {
  const typeFunction = property(metadata, 'typeFunction');
  if (isFunction(typeFunction)) {
    try {
      add(Reflect.apply(typeFunction, undefined, []));
    } catch {
      // The type function needs the transformation's options: not knowable here.
    }
  }
  const subTypes = property(property(property(metadata, 'options'), 'discriminator'), 'subTypes');
  for (const subType of iterate(subTypes)) add(property(subType, 'value'));
}

// ---------------------------------------------------------------------------------------------
// TypeORM

/**
 * TypeORM keeps its decorator metadata on the global object, `globalThis.typeormMetadataArgsStorage`
 * (created by the first decorator; see `getMetadataArgsStorage` in `typeorm/globals.js`), so that
 * every copy of TypeORM shares it. Reading the global spares loading TypeORM, which is large;
 * the package is only resolved, not loaded, to tell whether it is installed. A bundled
 * application may not be able to resolve it, so a global already present counts as installed.
 */
function typeormSource(): MetadataClassSource | undefined {
  const storage = (): unknown => property(globalThis, 'typeormMetadataArgsStorage');
  if (storage() === undefined && !isInstalled('typeorm')) return undefined;
  return {
    name: 'typeorm',
    classes: () =>
      collect((add) => {
        const args = storage();
        // Entities, and the classes whose columns an entity inherits or embeds.
        for (const list of ['tables', 'columns', 'embeddeds']) {
          for (const entry of iterate(property(args, list))) add(property(entry, 'target'));
        }
        // `@Column(() => Address)`: the embedded class may have no decorator of its own but a
        // column, already above, or none at all.
        for (const embedded of iterate(property(args, 'embeddeds'))) {
          const type = property(embedded, 'type');
          if (!isFunction(type)) continue;
          try {
            add(Reflect.apply(type, undefined, []));
          } catch {
            // The application's function threw: the class stays unknown.
          }
        }
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// @nestjs/graphql

/** The values of `graphql:class_type` (ClassType of `@nestjs/graphql`) the source wants. */
const GRAPHQL_CLASS_TYPES: ReadonlySet<unknown> = new Set(['objectType', 'inputType', 'interface']);

/**
 * `@nestjs/graphql` keeps its TypeMetadataStorage on the global object,
 * `global.GqlTypeMetadataStorage`, so that every copy of the package shares it; it is the
 * `TypeMetadataStorage` exported by `@nestjs/graphql` (from
 * `dist/schema-builder/storages/type-metadata.storage.js`), the one GraphQLModule builds the
 * schema from. As with TypeORM, the package is only resolved, never loaded, and the global is
 * read at each call.
 *
 * What is visible when (v14):
 * - `@ObjectType()` and `@InterfaceType()` write to TypeMetadataStorage eagerly, when the class
 *   is declared (and again, lazily, when the schema is built): visible at once.
 * - `@InputType()` (and `@Field()`) only store a loader in the LazyMetadataStorage
 *   (`global.GqlLazyMetadataStorageHost`), run when GraphQLModule builds the schema at
 *   bootstrap (`app.init()`): an input type reaches TypeMetadataStorage only then. Before,
 *   running those loaders ourselves would be unsafe (a `() => Type` may name a class whose
 *   module has not finished loading, and the loaders mutate Nest's state). What is cheap and
 *   safe is to read the keys of the lazy storage's map: a class with a `@Field()` is a key, and
 *   its `graphql:class_type` reflect metadata, set eagerly by the class decorator, says whether
 *   it is an object, input or interface type (resolvers are keys too, and are left out). An
 *   input type with no `@Field()` is thus seen only after bootstrap.
 */
function graphqlSource(): MetadataClassSource | undefined {
  const storage = (): unknown => property(globalThis, 'GqlTypeMetadataStorage');
  if (storage() === undefined && !isInstalled('@nestjs/graphql')) return undefined;
  return {
    name: '@nestjs/graphql',
    classes: () =>
      collect((add) => {
        const types = storage();
        for (const getter of [
          'getObjectTypesMetadata',
          'getInputTypesMetadata',
          'getInterfacesMetadata',
        ]) {
          for (const metadata of iterate(invoke(types, getter))) add(property(metadata, 'target'));
        }
        const lazy = property(
          property(globalThis, 'GqlLazyMetadataStorageHost'),
          'lazyMetadataByTarget',
        );
        const getOwnMetadata = property(Reflect, 'getOwnMetadata');
        if (!isFunction(getOwnMetadata)) return;
        for (const target of mapKeys(lazy)) {
          if (!isFunction(target)) continue;
          const classType: unknown = Reflect.apply(getOwnMetadata, Reflect, [
            'graphql:class_type',
            target,
          ]);
          if (GRAPHQL_CLASS_TYPES.has(classType)) add(target);
        }
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Narrowing helpers: the packages' storages are read as `unknown`, since their shapes are
// internal and may change; a changed shape yields fewer classes, never an error.

/**
 * Runs `fill` and returns the distinct classes it added. A class appears in several maps of a
 * package, hence the set. Built-ins (`Date`, `Array`, `Object`... from `@Type(() => Date)` or a
 * column's type) are left out: they are not the application's classes, and a serializer
 * restores them without a registry. An exception in `fill` ends the walk with what was found.
 */
function collect(fill: (add: (value: unknown) => void) => void): Set<Class> {
  const classes = new Set<Class>();
  try {
    fill((value) => {
      if (isFunction(value) && !isBuiltIn(value)) classes.add(value);
    });
  } catch {
    // A storage of an unexpected shape: what was found so far stands.
  }
  return classes;
}

function isBuiltIn(type: Class): boolean {
  // The descriptor, not the property: a global's getter may warn or throw when read.
  return type.name !== '' && Object.getOwnPropertyDescriptor(globalThis, type.name)?.value === type;
}

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

function isFunction(value: unknown): value is Class {
  return typeof value === 'function';
}

function property(value: unknown, key: string): unknown {
  return isObject(value) ? (value as Record<string, unknown>)[key] : undefined;
}

function invoke(value: unknown, method: string): unknown {
  const fn = property(value, method);
  return isFunction(fn) ? Reflect.apply(fn, value, []) : undefined;
}

function iterate(value: unknown): Iterable<unknown> {
  return isObject(value) && Symbol.iterator in value ? (value as Iterable<unknown>) : [];
}

function mapKeys(value: unknown): Iterable<unknown> {
  return value instanceof Map ? value.keys() : [];
}

function mapValues(value: unknown): Iterable<unknown> {
  return value instanceof Map ? value.values() : [];
}

/** Runs a synchronous source factory, turning an exception into "no source". */
async function safely(
  source: () => MetadataClassSource | undefined,
): Promise<MetadataClassSource | undefined> {
  try {
    return source();
  } catch {
    return undefined;
  }
}
