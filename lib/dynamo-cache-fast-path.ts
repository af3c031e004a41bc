import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DYNAMO_CACHE_OPTIONS } from './dynamo-cache.constants.js';
import { FastPathRoutes } from './http/fast-path.js';
import { installOnExpress, installOnFastify } from './http/fast-path-adapters.js';
import type { ResolvedDynamoCacheOptions } from './interfaces/dynamo-cache-module-options.interface.js';

/**
 * `fastPath`: once the application's routes are registered, installs on its HTTP adapter what
 * answers cached route hits before Nest's pipeline (Express: a layer before the first route;
 * Fastify: a `preHandler` hook). Nothing is installed with the option off, or without an HTTP
 * adapter (a standalone application context).
 *
 * @example
 * DynamoCacheModule.forRoot({ table: 'app-cache', fastPath: true })
 */
@Injectable()
export class DynamoCacheFastPath implements OnApplicationBootstrap {
  private readonly logger = new Logger('DynamoCache');

  constructor(
    @Inject(DYNAMO_CACHE_OPTIONS) private readonly options: ResolvedDynamoCacheOptions,
    private readonly routes: FastPathRoutes,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.options.fastPath) return;
    const adapter = this.adapterHost?.httpAdapter;
    if (adapter === undefined) return;
    const type = adapter.getType();
    const instance: unknown = adapter.getInstance();
    const installed =
      type === 'express'
        ? installOnExpress(instance as Parameters<typeof installOnExpress>[0], this.routes)
        : type === 'fastify'
          ? installOnFastify(instance as Parameters<typeof installOnFastify>[0], this.routes)
          : false;
    if (!installed) {
      this.logger.warn(
        `fastPath is on but could not be installed on the ${type} adapter: hits take the usual path`,
      );
    }
  }
}
