import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { LoggerService, Provider, Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DynamoCacheModule, type DynamoCacheModuleOptions } from '../../lib/index.js';

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
