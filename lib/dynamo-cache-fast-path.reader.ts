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
 * that pipeline would run for it could change the answer. So: no guard (global, `APP_GUARD`,
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

/** The application's settings (global guards and interceptors, versioning), from the container. */
function applicationConfig(moduleRef: ModuleRef): ApplicationConfig | undefined {
  const container = (moduleRef as unknown as { container?: { applicationConfig?: unknown } })
    .container;
  const config = container?.applicationConfig;
  return config !== null && typeof config === 'object' && 'getGlobalGuards' in config
    ? (config as ApplicationConfig)
    : undefined;
}
