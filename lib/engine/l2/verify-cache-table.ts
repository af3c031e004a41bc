import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoCacheError } from '../../errors.js';
import { PARTITION_KEY } from './item-codec.js';

/**
 * How long {@link verifyCacheTable} waits for a table that is still being created (or updated)
 * to become ACTIVE, and how often it looks.
 */
export interface VerifyCacheTableOptions {
  /** Milliseconds; default 60 000. */
  timeoutMs?: number;
  /** Milliseconds between two `DescribeTable` calls while waiting; default 500. */
  pollMs?: number;
}

/**
 * Checks, with `DescribeTable`, that `table` can hold the cache: it exists, is ACTIVE (a table
 * being created or updated is waited for) and has `cache_key` (String) as its only key. Throws a
 * `DynamoCacheError` (`operation: 'DescribeTable'`) naming the table, the region and what is
 * wrong. Needs `dynamodb:DescribeTable`.
 *
 * @example
 * await verifyCacheTable(client, 'app-cache'); // at bootstrap, before serving
 */
export async function verifyCacheTable(
  client: DynamoDBClient,
  table: string,
  { timeoutMs = 60_000, pollMs = 500 }: VerifyCacheTableOptions = {},
): Promise<void> {
  const region = await client.config.region().catch(() => 'unknown');
  const fail = (problem: string, cause?: unknown): DynamoCacheError =>
    new DynamoCacheError(
      'DescribeTable',
      `DynamoDB table "${table}" (region ${region}) cannot hold the cache: ${problem}`,
      { cause },
    );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let description;
    try {
      description = (await client.send(new DescribeTableCommand({ TableName: table }))).Table;
    } catch (cause) {
      const name = (cause as Error | undefined)?.name;
      if (name === 'ResourceNotFoundException') {
        throw fail(
          'it does not exist; create it with a partition key "cache_key" of type String (see createCacheTable), or fix "table" and "region"',
          cause,
        );
      }
      if (name === 'AccessDeniedException' || name === 'UnrecognizedClientException') {
        throw fail(
          `DescribeTable was refused (${name}): grant dynamodb:DescribeTable on it, or set verifyTable: false`,
          cause,
        );
      }
      throw fail(`DescribeTable failed: ${(cause as Error)?.message ?? String(cause)}`, cause);
    }
    const keys = description?.KeySchema ?? [];
    const hash = keys.find((k) => k.KeyType === 'HASH');
    const range = keys.find((k) => k.KeyType === 'RANGE');
    if (hash?.AttributeName !== PARTITION_KEY) {
      throw fail(
        `its partition key is "${hash?.AttributeName ?? '?'}", not "${PARTITION_KEY}" (String)`,
      );
    }
    if (range !== undefined) {
      throw fail(
        `it has a sort key "${range.AttributeName ?? '?'}"; the cache needs "${PARTITION_KEY}" as its only key`,
      );
    }
    const type = description?.AttributeDefinitions?.find(
      (a) => a.AttributeName === PARTITION_KEY,
    )?.AttributeType;
    if (type !== 'S') {
      throw fail(`its partition key "${PARTITION_KEY}" is of type ${type ?? '?'}, not String (S)`);
    }
    const status = description?.TableStatus;
    if (status === 'ACTIVE') return;
    if (status !== 'CREATING' && status !== 'UPDATING') {
      throw fail(`its status is ${status ?? 'unknown'}, not ACTIVE`);
    }
    if (Date.now() >= deadline) {
      throw fail(`it is still ${status} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
