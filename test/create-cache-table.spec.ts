import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import { createCacheTable, DynamoCached } from '../lib/index.js';
import { bootCache, scanTable } from './support/apps.js';
import { startDynamo, testServerKind, type TestDynamo } from './support/dynamo-server.js';

@Injectable()
class QuoteService {
  @DynamoCached(60)
  async quote(symbol: string): Promise<string> {
    return `${symbol}:42`;
  }
}

/**
 * Runs on whichever server the suite targets: dynalite in-process (no TTL support) or DynamoDB
 * Local through `npm run test:dynamodb-local` (TTL supported, like the real service).
 */
describe(`createCacheTable (${testServerKind()})`, () => {
  let dynamo: TestDynamo;
  let admin: DynamoDBClient;
  let seq = 0;

  beforeAll(async () => {
    dynamo = await startDynamo();
    admin = dynamo.client();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  const tableName = () => `ttl-${process.pid}-${Date.now().toString(36)}-${++seq}`;

  async function ttlDescription(table: string) {
    const out = await admin.send(new DescribeTimeToLiveCommand({ TableName: table }));
    return out.TimeToLiveDescription;
  }

  it('creates an ACTIVE table keyed by cache_key (S)', async () => {
    const table = tableName();
    expect(await createCacheTable(admin, table)).toEqual({ created: true, ttlEnabled: false });
    const { Table } = await admin.send(new DescribeTableCommand({ TableName: table }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'cache_key', KeyType: 'HASH' }]);
    expect(Table?.AttributeDefinitions).toEqual([
      { AttributeName: 'cache_key', AttributeType: 'S' },
    ]);
    // Without enableTtl nothing is asked of the server.
    expect((await ttlDescription(table))?.TimeToLiveStatus).toBe('DISABLED');
  });

  it('enableTtl turns on native TTL on exp where the server has TTL, and reports false where it has none', async () => {
    const table = tableName();
    const result = await createCacheTable(admin, table, { enableTtl: true });
    const description = await ttlDescription(table);
    if (testServerKind() === 'dynalite') {
      // dynalite answers UpdateTimeToLive with UnknownOperationException: skipped, not thrown.
      expect(result).toEqual({ created: true, ttlEnabled: false });
      expect(description?.TimeToLiveStatus).toBe('DISABLED');
    } else {
      // DynamoDB Local (and the real service) support TTL: it must now be on, on `exp`.
      expect(result).toEqual({ created: true, ttlEnabled: true });
      expect(description).toEqual({ TimeToLiveStatus: 'ENABLED', AttributeName: 'exp' });
    }
    // Either way the report matches what the server says.
    expect(result.ttlEnabled).toBe(description?.TimeToLiveStatus === 'ENABLED');

    // The cache's items carry the whole-second `exp` that native TTL reads.
    const app = await bootCache({ table, client: dynamo.client() }, [QuoteService]);
    try {
      await app.get(QuoteService).quote('ACME');
      await app.get(QuoteService).quote('ACME');
    } finally {
      await app.close();
    }
    const [item, ...rest] = await scanTable(admin, table);
    expect(rest).toHaveLength(0);
    expect(item?.exp?.N).toMatch(/^\d+$/);
    expect(Number(item!.exp!.N) - Number(item!.t!.N)).toBeGreaterThanOrEqual(60);
  });

  it('is idempotent: a second call keeps the table and its TTL state', async () => {
    const table = tableName();
    const first = await createCacheTable(admin, table, { enableTtl: true });
    const second = await createCacheTable(admin, table, { enableTtl: true });
    // On DynamoDB Local the second UpdateTimeToLive fails with "TimeToLive is already enabled".
    expect(second).toEqual({ created: false, ttlEnabled: first.ttlEnabled });
    expect((await ttlDescription(table))?.TimeToLiveStatus).toBe(
      first.ttlEnabled ? 'ENABLED' : 'DISABLED',
    );
  });
});
