import { addMutationCacheFinder, type MutationCache } from './decorators/cache-mutation.js';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner, ModuleRef, Reflector } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import {
  DYNAMO_CACHE_MUTATION_METADATA,
  DYNAMO_CACHE_SERVICE_REF,
  DYNAMO_CACHED_METADATA,
} from './dynamo-cache.constants.js';
import { DynamoCacheService } from './dynamo-cache.service.js';
import { FirstModuleInit } from './dynamo-cache-first-init.js';
import {
  GRAPHQL_RESOLVE_PROPERTY_METADATA,
  GRAPHQL_RESOLVER_TYPE_METADATA,
} from './dynamo-cache-route.reader.js';
import { CacheEngine, type NamespaceOwner } from './engine/cache-engine.js';
import { toNamespaceOptions } from './dynamo-cache-options.resolver.js';
import { passesResponseThrough, routeNamespaceOptions } from './dynamo-cache-route.reader.js';
import { DynamoCacheError } from './errors.js';
import type { DynamoCachedOptions } from './interfaces/dynamo-cached-options.interface.js';

const WRAPPED = Symbol('nestjs-dynamo-cache:wrapped');

// Metadata keys of optional packages, spelled out so none of them is imported.
/** `@SubscribeMessage()` (@nestjs/websockets). */
const WS_MESSAGE_METADATA = 'message';
/** `@MessagePattern()` / `@EventPattern()` (@nestjs/microservices). */
const MICROSERVICE_PATTERN_METADATA = 'microservices:pattern';
/** The GraphQL module's options token (@nestjs/graphql). */
const GRAPHQL_MODULE_OPTIONS = 'GqlModuleOptions';

function isResolverMethod(method: unknown): boolean {
  return (
    Reflect.getMetadata(GRAPHQL_RESOLVER_TYPE_METADATA, method as object) !== undefined ||
    Reflect.getMetadata(GRAPHQL_RESOLVE_PROPERTY_METADATA, method as object) === true
  );
}

type Method = ((...args: unknown[]) => unknown) & { [WRAPPED]?: true };

/**
 * Finds every `@DynamoCached` method of every provider at bootstrap and replaces it, on the
 * instance, with a cached version. Controllers are left to `DynamoCacheInterceptor`. Done before
 * any module's `onModuleInit` (see {@link FirstModuleInit}), so a warm-up there is cached.
 */
@Injectable()
export class DynamoCacheExplorer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('DynamoCache');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(CacheEngine) private readonly engine: CacheEngine,
    private readonly moduleRef: ModuleRef,
    @Inject(DynamoCacheService) private readonly service: DynamoCacheService,
    @Inject(FirstModuleInit) first: FirstModuleInit,
  ) {
    first.add(() => this.onModuleInit());
  }

  /** Done in `FirstModuleInit`'s hook; Nest's own call of this one then has nothing to do. */
  private explored = false;

  onModuleInit(): void {
    if (this.explored) return;
    this.explored = true;
    this.assertOneModule();
    for (const wrapper of this.discovery.getControllers()) {
      this.attachService(wrapper, wrapper.instance);
    }
    for (const wrapper of this.discovery.getProviders()) {
      for (const instance of instancesOf(wrapper)) {
        this.attachService(wrapper, instance);
        this.explore(wrapper, instance);
      }
    }
    this.claimRoutes();
    this.stopFinding = addMutationCacheFinder((instance) => this.adopt(instance));
  }

  private stopFinding: (() => void) | undefined;

  onApplicationShutdown(): void {
    this.stopFinding?.();
  }

  /**
   * The cache for an instance of this application that the module did not reach at bootstrap (a
   * provider of a module loaded later with `LazyModuleLoader`, which Nest adds to the same
   * container), left on it as at bootstrap so later calls find it at once; `undefined` for an
   * instance of no provider of this application (another application's, one built with `new`, a
   * request-scoped one).
   */
  private adopt(instance: object): MutationCache | undefined {
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      if (!wrapper.isDependencyTreeStatic() || !instancesOf(wrapper).includes(instance)) continue;
      this.attachService(wrapper, instance);
      return (instance as { [DYNAMO_CACHE_SERVICE_REF]?: MutationCache })[DYNAMO_CACHE_SERVICE_REF];
    }
    return undefined;
  }

  /**
   * Two `DynamoCacheModule`s in one application (`forRoot` imported in two modules) would be two
   * caches: an invalidation made through one would not reach the other's L1.
   */
  private assertOneModule(): void {
    const hosts = this.discovery
      .getProviders()
      .filter((wrapper) => wrapper.token === CacheEngine)
      .map((wrapper) => (wrapper.host?.name as string | undefined) ?? '?');
    if (hosts.length <= 1) return;
    throw new DynamoCacheError(
      'config',
      `DynamoCacheModule is set up ${hosts.length} times in this application (forRoot or forRootAsync imported in more than one module): each would be a cache of its own, and an invalidation made through one would not reach the others' L1. Import it once, with isGlobal: true, or in one module that exports it`,
    );
  }

  /** Replaces the `@DynamoCached` methods of one provider instance with cached versions. */
  private explore(wrapper: InstanceWrapper, instance: unknown): void {
    if (instance === null || typeof instance !== 'object') return;
    const proto = Object.getPrototypeOf(instance) as object | null;
    if (proto === null || proto === Object.prototype) return;
    for (const name of this.scanner.getAllMethodNames(proto)) {
      const method = (instance as Record<string, unknown>)[name];
      if (typeof method !== 'function' || (method as Method)[WRAPPED]) continue;
      const options = this.reflector.get<DynamoCachedOptions | undefined>(
        DYNAMO_CACHED_METADATA,
        method,
      );
      if (options === undefined) continue;
      const cls = instance.constructor as { name: string };
      const className = cls.name;
      const owner = { value: cls, description: describeOwner(className, wrapper) };
      // GraphQL calls a resolver's prototype method, through the interceptor: nothing to wrap.
      if (isResolverMethod(method)) {
        this.checkResolver(`${className}.${name}`, method, options, owner);
        continue;
      }
      if (Reflect.getMetadata(WS_MESSAGE_METADATA, method) !== undefined) {
        this.logger.warn(
          `${className}.${name} is @DynamoCached but is a WebSocket gateway handler, which the gateway calls on the prototype: it is not cached; cache a service method it calls instead`,
        );
        continue;
      }
      if (!wrapper.isDependencyTreeStatic()) {
        this.logger.warn(
          `${className}.${name} is @DynamoCached but its provider is request-scoped; it is not cached`,
        );
        continue;
      }
      this.assertReturnsPromise(proto, name, className);
      (instance as Record<string, unknown>)[name] = this.wrap(
        method as Method,
        options,
        `${className}.${name}`,
        owner,
      );
    }
  }

  /**
   * Leaves the cache service on an instance whose class has `@DynamoCacheEvict` or
   * `@DynamoCachePut` methods (they find it there when called); warns when the instance is
   * request-scoped, which the module never sees. The class is the instance's own (a provider
   * made by `useFactory` or given by `useValue` has no class of its own to the container).
   */
  private attachService(
    wrapper: { metatype: unknown; isDependencyTreeStatic(): boolean },
    instance: unknown,
  ): void {
    const proto =
      instance !== null && typeof instance === 'object'
        ? (Object.getPrototypeOf(instance) as object | null)
        : typeof wrapper.metatype === 'function'
          ? (wrapper.metatype.prototype as object | undefined)
          : undefined;
    if (proto === null || proto === undefined || proto === Object.prototype) return;
    const mutations = this.scanner.getAllMethodNames(proto).filter((name) => {
      const method = (proto as Record<string, unknown>)[name];
      return (
        typeof method === 'function' &&
        Reflect.getMetadata(DYNAMO_CACHE_MUTATION_METADATA, method) === true
      );
    });
    if (mutations.length === 0) return;
    const className = (proto as { constructor?: { name?: string } }).constructor?.name ?? '?';
    if (!wrapper.isDependencyTreeStatic()) {
      this.logger.warn(
        `${className} has @DynamoCacheEvict/@DynamoCachePut methods (${mutations.join(', ')}) but is request-scoped: they will reject; move them to a singleton provider`,
      );
      return;
    }
    if (instance === null || typeof instance !== 'object') return;
    Object.defineProperty(instance, DYNAMO_CACHE_SERVICE_REF, {
      value: this.mutationCache(),
      configurable: true,
    });
  }

  private mutations: MutationCache | undefined;

  /** What `@DynamoCacheEvict` and `@DynamoCachePut` methods reach: the service, and `onError`. */
  private mutationCache(): MutationCache {
    const service = this.service;
    const settings = this.engine.settings;
    return (this.mutations ??= {
      delete: (namespace, args) => service.delete(namespace, args),
      set: (namespace, args, value) => service.set(namespace, args, value),
      clear: (namespace) => service.clear(namespace),
      deleteByTag: (tags) => service.deleteByTag(tags),
      absorbs: (error) => {
        if (settings.onError === 'throw') return false;
        settings.logger.warn(`${error.message}; the method's result was returned`);
        return true;
      },
    });
  }

  /**
   * Claims the namespaces of `@DynamoCached` route handlers now, so two controllers with one
   * name fail at bootstrap rather than at their first request.
   */
  private claimRoutes(): void {
    for (const wrapper of this.discovery.getControllers()) {
      const controller: unknown = wrapper.metatype;
      if (typeof controller !== 'function') continue;
      for (const name of this.scanner.getAllMethodNames(controller.prototype)) {
        const handler = (controller.prototype as Record<string, unknown>)[name];
        if (typeof handler !== 'function') continue;
        const options = this.reflector.get<DynamoCachedOptions | undefined>(
          DYNAMO_CACHED_METADATA,
          handler,
        );
        if (options === undefined) continue;
        if (Reflect.getMetadata(MICROSERVICE_PATTERN_METADATA, handler) !== undefined) {
          this.logger.warn(
            `${controller.name}.${name} is @DynamoCached but is a message or event handler: only HTTP routes and GraphQL resolvers are cached; cache a service method it calls instead`,
          );
          continue;
        }
        this.engine.declareTypes(options.types, `@DynamoCached on ${controller.name}.${name}`);
        const owner = {
          value: controller,
          description: describeOwner(controller.name, wrapper),
        };
        // Created now with the route's settings, so that an eviction or a `set` made before its
        // first request does not create it with the module's.
        this.engine.namespace(options.namespace ?? `${controller.name}.${name}`, {
          ...routeNamespaceOptions(options, passesResponseThrough(controller, name)),
          owner: options.namespace === undefined ? owner : undefined,
        });
      }
    }
  }

  /**
   * A `@DynamoCached` resolver: queries are cached by the interceptor; a field resolver needs a
   * `key` (its parent decides its value) and interceptors enabled on field resolvers; mutations
   * and subscriptions are never cached. Says so at bootstrap rather than caching nothing in silence.
   */
  private checkResolver(
    name: string,
    method: unknown,
    options: DynamoCachedOptions,
    owner: NamespaceOwner,
  ): void {
    const rootType: unknown = Reflect.getMetadata(GRAPHQL_RESOLVER_TYPE_METADATA, method as object);
    if (rootType === 'Mutation' || rootType === 'Subscription') {
      this.logger.warn(
        `${name} is @DynamoCached but is a GraphQL ${String(rootType).toLowerCase()}: it is never cached`,
      );
      return;
    }
    if (Reflect.getMetadata(GRAPHQL_RESOLVE_PROPERTY_METADATA, method as object) === true) {
      if (options.key === undefined) {
        throw new DynamoCacheError(
          'config',
          `${name} is a @ResolveField() with @DynamoCached but no "key": its value depends on the parent object, so give @DynamoCached a key function of (parent, args), e.g. { key: (parent: User) => parent.id }`,
          { namespace: name },
        );
      }
      const gql = this.graphqlOptions();
      if (gql !== undefined && !(gql.fieldResolverEnhancers ?? []).includes('interceptors')) {
        this.logger.warn(
          `${name} is a @DynamoCached @ResolveField(), but field resolvers run without interceptors: it is not cached; add fieldResolverEnhancers: ['interceptors'] to the GraphQL module's options`,
        );
      }
    }
    this.engine.declareTypes(options.types, `@DynamoCached on ${name}`);
    this.engine.namespace(options.namespace ?? name, {
      ...routeNamespaceOptions(options, false),
      owner: options.namespace === undefined ? owner : undefined,
    });
  }

  private graphqlOptions(): { fieldResolverEnhancers?: string[] } | undefined {
    try {
      return this.moduleRef.get<{ fieldResolverEnhancers?: string[] }>(GRAPHQL_MODULE_OPTIONS, {
        strict: false,
      });
    } catch {
      return undefined;
    }
  }

  private assertReturnsPromise(proto: object, name: string, className: string): void {
    const returnType: unknown = Reflect.getMetadata('design:returntype', proto, name);
    if (returnType !== undefined && returnType !== Promise && returnType !== Object) {
      throw new DynamoCacheError(
        'config',
        `${className}.${name} is @DynamoCached but returns ${(returnType as { name?: string }).name ?? String(returnType)}, not a Promise; only async methods can be cached`,
        { namespace: `${className}.${name}` },
      );
    }
  }

  private wrap(
    original: Method,
    options: DynamoCachedOptions,
    defaultNamespace: string,
    owner: NamespaceOwner,
  ): Method {
    this.engine.declareTypes(options.types, `@DynamoCached on ${defaultNamespace}`);
    const ns = this.engine.namespace(options.namespace ?? defaultNamespace, {
      ...toNamespaceOptions(options),
      requirePromise: true,
      // A namespace chosen on purpose may be shared; a derived one must not be, by accident.
      owner: options.namespace === undefined ? owner : undefined,
    });
    const cached: Method = function (this: unknown, ...args: unknown[]) {
      return ns.run(this, args, original);
    };
    Object.defineProperty(cached, 'name', { value: original.name });
    // Keep every other decorator's metadata reachable from the replacement.
    for (const key of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(key, Reflect.getMetadata(key, original), cached);
    }
    cached[WRAPPED] = true;
    return cached;
  }
}

/** A provider's instances: a transient one gives each consumer an instance of its own. */
function instancesOf(wrapper: InstanceWrapper): unknown[] {
  const instances: unknown[] = [wrapper.instance];
  if (wrapper.isTransient) {
    for (const transient of wrapper.getStaticTransientInstances()) {
      if (transient !== undefined) instances.push(transient.instance);
    }
  }
  return instances;
}

/** `UsersService (UsersModule)`: the class, and the module that provides it when known. */
function describeOwner(className: string, wrapper: { host?: { name?: unknown } }): string {
  const moduleName = wrapper.host?.name;
  return typeof moduleName === 'string' && moduleName !== ''
    ? `${className} (in ${moduleName})`
    : className;
}
