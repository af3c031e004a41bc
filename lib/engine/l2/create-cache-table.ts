import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { DynamoCacheError } from '../../errors.js';
import { PARTITION_KEY } from './item-codec.js';

/**
 * How {@link createCacheTable} sets the table up, and how long it may wait for it.
 *
 * @example
 * await createCacheTable(client, 'app-cache', { enableTtl: true, timeoutMs: 10_000 });
 */
export interface CreateCacheTableOptions {
  /**
   * Also turn on DynamoDB's own TTL on the `exp` attribute, so items nobody reads again are
   * removed by the service. Servers without TTL support (dynalite) are skipped silently.
   */
  enableTtl?: boolean;
  /** How long to wait for the table to become ACTIVE, in ms. Default 60 000. */
  timeoutMs?: number;
}

/**
 * What {@link createCacheTable} did, so a setup script can report it, or insist on native TTL.
 *
 * @example
 * const { created, ttlEnabled } = await createCacheTable(client, 'app-cache', { enableTtl: true });
 * console.log(`app-cache: ${created ? 'created' : 'already there'}, native TTL ${ttlEnabled ? 'on' : 'off'}`);
 */
export interface CreateCacheTableResult {
  /** `false` when the table already existed. */
  created: boolean;
  /** Whether native TTL on `exp` is now enabled (only attempted with `enableTtl`). */
  ttlEnabled: boolean;
}

/**
 * Creates the table the cache needs (partition key `cache_key`, String, on-demand billing) and
 * waits until it is ACTIVE. An existing table is left as it is. Meant for development and tests;
 * create production tables with your own infrastructure tooling.
 *
 * @example
 * const client = new DynamoDBClient({ region: 'eu-west-1' });
 * await createCacheTable(client, 'app-cache', { enableTtl: true });
 */
export async function createCacheTable(
  client: DynamoDBClient,
  table: string,
  options: CreateCacheTableOptions = {},
): Promise<CreateCacheTableResult> {
  let created = true;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: PARTITION_KEY, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: PARTITION_KEY, KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (cause) {
    if ((cause as Error).name !== 'ResourceInUseException') {
      throw new DynamoCacheError(
        'CreateTable',
        `CreateTable "${table}" failed: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
    created = false;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const out = await client.send(new DescribeTableCommand({ TableName: table }));
    if (out.Table?.TableStatus === 'ACTIVE') break;
    if (Date.now() > deadline) {
      throw new DynamoCacheError('CreateTable', `table "${table}" did not become ACTIVE in time`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  let ttlEnabled = false;
  if (options.enableTtl) {
    try {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: table,
          TimeToLiveSpecification: { AttributeName: 'exp', Enabled: true },
        }),
      );
      ttlEnabled = true;
    } catch (cause) {
      const name = (cause as Error).name;
      // dynalite has no TTL; a table whose TTL is already on answers with a ValidationException.
      if (name === 'ValidationException' && /already enabled/i.test((cause as Error).message)) {
        ttlEnabled = true;
      } else if (name !== 'UnknownOperationException') {
        throw new DynamoCacheError(
          'CreateTable',
          `UpdateTimeToLive on "${table}" failed: ${(cause as Error).message}`,
          {
            cause,
          },
        );
      }
    }
  }
  return { created, ttlEnabled };
}
