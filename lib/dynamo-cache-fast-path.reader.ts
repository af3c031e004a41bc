import { VersioningType } from '@nestjs/common';
import type { ApplicationConfig, ModuleRef } from '@nestjs/core';

// Nest's metadata keys (@nestjs/common/constants), spelled out: that module is not part of the
// package's public entry points.
const GUARDS = '__guards__';
const INTERCEPTORS = '__interceptors__';
const HOST = 'host';
const HEADERS = '__headers__';
const REDIRECT = '__redirect__';
const RENDER = '__renderTemplate__';

type Target = object;

/**
 * Whether a route's cached responses may be served before Nest's pipeline (`fastPath`): nothing
 * that pipeline would run for it could change the answer. So: a controller Nest builds once (not
 * request-scoped) whose class is the one its instance names, no guard (global, `APP_GUARD`,
 * controller, method), no interceptor other than `cacheInterceptor` itself (exactly that class),
 * no `@Header()`, `@Redirect()` or `@Render()`, no host-bound controller, and no versioning by
 * header, media type or custom extractor (a path then maps to one handler). The application's
 * settings are read from Nest's container; when they cannot be, no route is eligible.
 *
 * @example
 * route.fast ??= fastPathEligible(moduleRef, controller, handler, DynamoCacheInterceptor);
 */
export function fastPathEligible(
  moduleRef: ModuleRef,
  controller: Target,
  handler: Target,
  cacheInterceptor: abstract new (...args: never[]) => unknown,
): boolean {
  const config = applicationConfig(moduleRef);
  if (config === undefined) return false;
  // The class the execution context names is the instance's `constructor`, which a mixin may
  // have replaced: Nest reads the controller's guards from the class it registered. Only a class
  // whose prototype holds the handler is surely that one.
  if (!holdsHandler(controller, handler)) return false;
  // A request-scoped controller (or one depending on request-scoped providers) is built for each
  // request before the interceptors, and what fails there (a tenant missing) answers instead.
  if (!staticController(moduleRef, controller)) return false;
  const versioning = config.getVersioning();
  if (versioning !== undefined && versioning.type !== VersioningType.URI) return false;
  if (config.getGlobalGuards().length > 0 || config.getGlobalRequestGuards().length > 0) {
    return false;
  }
  const isCache = (i: unknown): boolean =>
    i === cacheInterceptor ||
    (typeof i === 'object' && i !== null && i.constructor === cacheInterceptor);
  if (!config.getGlobalInterceptors().every(isCache)) return false;
  if (!config.getGlobalRequestInterceptors().every((w) => w.metatype === cacheInterceptor)) {
    return false;
  }
  for (const target of [controller, handler]) {
    const guards = Reflect.getMetadata(GUARDS, target) as unknown[] | undefined;
    if (guards !== undefined && guards.length > 0) return false;
    const interceptors = Reflect.getMetadata(INTERCEPTORS, target) as unknown[] | undefined;
    if (interceptors !== undefined && !interceptors.every(isCache)) return false;
  }
  if (Reflect.getMetadata(HOST, controller) !== undefined) return false;
  for (const key of [HEADERS, REDIRECT, RENDER]) {
    if (Reflect.getMetadata(key, handler) !== undefined) return false;
  }
  return true;
}

/** Whether `handler` is the method `controller`'s prototype (chain) holds under its name. */
function holdsHandler(controller: Target, handler: Target): boolean {
  const prototype = (controller as { prototype?: unknown }).prototype;
  const name = (handler as { name?: unknown }).name;
  return (
    prototype !== null &&
    typeof prototype === 'object' &&
    typeof name === 'string' &&
    (prototype as Record<string, unknown>)[name] === handler
  );
}

interface ControllerWrapper {
  isDependencyTreeStatic(): boolean;
}

/**
 * Whether Nest registered `controller` with a static dependency tree (one instance for every
 * request); `false` when it cannot be found in the container.
 */
function staticController(moduleRef: ModuleRef, controller: Target): boolean {
  const container = (moduleRef as unknown as { container?: { getModules?(): unknown } }).container;
  const modules = container?.getModules?.();
  if (!(modules instanceof Map)) return false;
  for (const module of modules.values() as IterableIterator<{ controllers?: unknown }>) {
    const controllers = module?.controllers;
    if (!(controllers instanceof Map)) continue;
    const wrapper = controllers.get(controller) as Partial<ControllerWrapper> | undefined;
    if (wrapper !== undefined) {
      return (
        typeof wrapper.isDependencyTreeStatic === 'function' && wrapper.isDependencyTreeStatic()
      );
    }
  }
  return false;
}

/** The application's settings (global guards and interceptors, versioning), from the container. */
function applicationConfig(moduleRef: ModuleRef): ApplicationConfig | undefined {
  const container = (moduleRef as unknown as { container?: { applicationConfig?: unknown } })
    .container;
  const config = container?.applicationConfig;
  return config !== null && typeof config === 'object' && 'getGlobalGuards' in config
    ? (config as ApplicationConfig)
    : undefined;
}
