import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { AbstractHttpAdapter } from '@nestjs/core';
import type { INestApplication, LoggerService, Provider, Type } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
} from '../../lib/index.js';

/** Boots an application context with the cache module and `providers`, as an app would. */
export async function bootCache(
  options: DynamoCacheModuleOptions,
  providers: (Provider | Type)[],
  logger: LoggerService | false = false,
): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [DynamoCacheModule.forRoot(options)],
    providers,
  }).compile();
  moduleRef.useLogger(logger);
  await moduleRef.init();
  return moduleRef;
}

/**
 * Boots an HTTP application with the cache module and `controllers` on `adapter`, listening on
 * loopback; pushes it to `apps` (closed by the test's fixture) and resolves its port.
 */
export async function listenRoutes(
  options: DynamoCacheModuleOptions,
  controllers: Type[],
  adapter: AbstractHttpAdapter,
  apps: unknown[],
): Promise<number> {
  const moduleRef = await Test.createTestingModule({
    imports: [DynamoCacheModule.forRoot(options)],
    controllers,
  }).compile();
  const app: INestApplication = moduleRef.createNestApplication(adapter, { logger: false });
  await app.listen(0, '127.0.0.1');
  apps.push(app);
  return (app.getHttpServer().address() as AddressInfo).port;
}

/** Every item of a table. */
export async function scanTable(
  client: DynamoDBClient,
  table: string,
): Promise<Record<string, AttributeValue>[]> {
  const out = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
  return out.Items ?? [];
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until every application in `apps` has finished what its cache has in flight: a route's
 * entry is written just after its response is sent, so a test reads the table after this.
 */
export async function settleAll(apps: readonly unknown[]): Promise<void> {
  await Promise.all(
    apps.map(async (app) => {
      const get = (app as { get?: (token: unknown, options?: unknown) => unknown }).get;
      if (typeof get !== 'function') return;
      let cache: DynamoCacheService | undefined;
      try {
        cache = get.call(app, DynamoCacheService, { strict: false }) as DynamoCacheService;
      } catch {
        return; // not an application of the cache
      }
      await cache.settle();
    }),
  );
}
