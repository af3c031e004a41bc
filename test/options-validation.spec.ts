import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

import { Test } from '@nestjs/testing';
import {
  DynamoCached,
  DynamoCacheError,
  DynamoCacheModule,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

describe('module options that cannot work are refused at bootstrap', () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  const boot = async (options: Record<string, unknown>) => {
    const app = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot(options as unknown as DynamoCacheModuleOptions)],
    }).compile();
    app.useLogger(false);
    return app;
  };

  it.each<[string, () => Record<string, unknown>]>([
    [
      'client and clientConfig both (clientConfig silently dropped)',
      () => ({
        table: 'cache-table',
        client: new DynamoDBClient(dynamo.clientConfig),
        clientConfig: { endpoint: 'http://127.0.0.1:1', region: 'us-east-1' },
      }),
    ],
    [
      'client and region both',
      () => ({
        table: 'cache-table',
        client: new DynamoDBClient(dynamo.clientConfig),
        region: 'eu-west-1',
      }),
    ],
    [
      'client that is not a DynamoDBClient',
      () => ({ table: 'cache-table', client: { foo: 1 }, region: 'us-east-1' }),
    ],
    [
      'consistentRead a string',
      () => ({ table: 'cache-table', clientConfig: dynamo.clientConfig, consistentRead: 'yes' }),
    ],
    ['table name with a space', () => ({ table: 'my cache', clientConfig: dynamo.clientConfig })],
    [
      'table name too short for DynamoDB',
      () => ({ table: 'ab', clientConfig: dynamo.clientConfig }),
    ],
    [
      'ttl DynamoDB cannot store (1e200 s)',
      () => ({ table: 'cache-table', clientConfig: dynamo.clientConfig, ttl: 1e200 }),
    ],
    [
      'computeTimeout past 1e13 ms (tombstones: number overflow)',
      () => ({ table: 'cache-table', clientConfig: dynamo.clientConfig, computeTimeout: 1e130 }),
    ],
  ])('%s: compile() should reject with DynamoCacheError(config)', async (_name, options) => {
    const outcome = await boot(options()).then(
      async (app) => {
        await app.close();
        return 'booted';
      },
      (err: unknown) => err,
    );
    expect(outcome).toBeInstanceOf(DynamoCacheError);
  });
});

describe('@DynamoCached options DynamoDB cannot take are refused at decoration', () => {
  const decorate = (options: Record<string, unknown>) => () => {
    class Svc {
      async m(): Promise<number> {
        return 1;
      }
    }
    const d = Object.getOwnPropertyDescriptor(Svc.prototype, 'm')!;
    DynamoCached(options as never)(Svc.prototype, 'm', d as never);
  };
  it.each<[string, Record<string, unknown>]>([
    ['namespace of 3,000 characters (cache_key over 2,048 bytes)', { namespace: 'n'.repeat(3000) }],
    ['table with a space', { table: 'my cache' }],
    ['ttl 1e200 (DynamoDB: number overflow)', { ttl: 1e200 }],
    ['computeTimeout 1e130 (tombstones: number overflow)', { computeTimeout: 1e130 }],
    ['computeTimeout just past 1e13 ms', { computeTimeout: 1e13 + 1 }],
  ])('%s: throws DynamoCacheError(config)', (_n, options) => {
    expect(decorate(options)).toThrow(DynamoCacheError);
  });
});
