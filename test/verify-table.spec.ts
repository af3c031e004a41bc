import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { AddressInfo } from 'node:net';
import { DynamoCacheError, DynamoCacheService } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import {
  countCalls,
  dummyClientConfig,
  testServerKind,
  useTestDynamo,
} from './support/dynamo-server.js';

/* `verifyTable`: a table that cannot hold the cache fails bootstrap, with a message that says why. */

describe(`verifyTable (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  let n = 0;

  async function create(
    attribute: string,
    type: 'S' | 'N' | 'B',
    sortKey = false,
  ): Promise<string> {
    const table = `verify-${Date.now()}-${++n}`;
    await fx.admin.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [
          { AttributeName: attribute, AttributeType: type },
          ...(sortKey ? [{ AttributeName: 'sk', AttributeType: 'S' as const }] : []),
        ],
        KeySchema: [
          { AttributeName: attribute, KeyType: 'HASH' },
          ...(sortKey ? [{ AttributeName: 'sk', KeyType: 'RANGE' as const }] : []),
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    return table;
  }

  async function bootstrapError(
    table: string,
    client = fx.dynamo.client(),
  ): Promise<DynamoCacheError> {
    const failed = await bootCache({ table, client, verifyTable: true }, []).then(
      (moduleRef) => {
        fx.apps.push(moduleRef);
        throw new Error('bootstrap succeeded');
      },
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(DynamoCacheError);
    const error = failed as DynamoCacheError;
    expect(error.operation).toBe('DescribeTable');
    return error;
  }

  it('a good table: bootstrap succeeds after one DescribeTable, and the cache works', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client, verifyTable: true }, []);
    fx.apps.push(moduleRef);
    expect(calls.counts).toEqual({ DescribeTable: 1 });
    const cache = moduleRef.get(DynamoCacheService);
    expect(await cache.wrap('ns', ['a'], () => 42)).toBe(42);
  });

  it('off by default: no DescribeTable, and a missing table only fails (bypassed) at the first call', async () => {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table: 'no-such-table', client }, []);
    fx.apps.push(moduleRef);
    expect(calls.counts).toEqual({});
    expect(await moduleRef.get(DynamoCacheService).wrap('ns', ['a'], () => 1)).toBe(1);
    expect(moduleRef.get(DynamoCacheService).stats().total.l2Errors).toBeGreaterThan(0);
  });

  it('a missing table: bootstrap fails naming the table, the region and what to do', async () => {
    const error = await bootstrapError('no-such-table');
    expect(error.message).toContain('"no-such-table"');
    expect(error.message).toContain('region us-east-1');
    expect(error.message).toContain('does not exist');
  });

  it('a wrong key name: bootstrap fails naming the key it found', async () => {
    const table = await create('id', 'S');
    const error = await bootstrapError(table);
    expect(error.message).toContain(`"${table}"`);
    expect(error.message).toContain('partition key is "id", not "cache_key"');
  });

  it('a wrong key type: bootstrap fails naming the type', async () => {
    const table = await create('cache_key', 'N');
    const error = await bootstrapError(table);
    expect(error.message).toContain('"cache_key" is of type N, not String (S)');
  });

  it('a sort key besides cache_key: bootstrap fails', async () => {
    const table = await create('cache_key', 'S', true);
    const error = await bootstrapError(table);
    expect(error.message).toContain('has a sort key "sk"');
  });

  it('a table still CREATING: bootstrap waits until it is ACTIVE, then succeeds', async () => {
    // A server of its own whose tables take 1.5 s to create, as DynamoDB's do.
    const server = dynalite({ createTableMs: 1500 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new DynamoDBClient(dummyClientConfig(endpoint));
    try {
      const table = `creating-${Date.now()}`;
      await client.send(
        new CreateTableCommand({
          TableName: table,
          AttributeDefinitions: [{ AttributeName: 'cache_key', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'cache_key', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      const calls = countCalls(client);
      const started = Date.now();
      const moduleRef = await bootCache({ table, client, verifyTable: true }, []);
      try {
        expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
        expect(calls.get('DescribeTable')).toBeGreaterThan(1);
        expect(await moduleRef.get(DynamoCacheService).wrap('ns', ['a'], () => 7)).toBe(7);
        expect(calls.get('PutItem')).toBe(1);
      } finally {
        await moduleRef.close();
      }
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('"verifyTable" that is not a boolean is a config error', async () => {
    await expect(
      bootCache({ table: 'tbl', client: fx.dynamo.client(), verifyTable: 'yes' as never }, []),
    ).rejects.toMatchObject({
      operation: 'config',
      message: expect.stringContaining('"verifyTable"'),
    });
  });
});
