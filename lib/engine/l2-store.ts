import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { DynamoCacheError } from '../errors.js';
import { decodeItem, encodeItem, PARTITION_KEY } from './item-codec.js';
import type { CacheSerializer } from './serializer.js';

/** Outcome of an L2 read. `expired` items have already been deleted. */
export type L2Read =
  | { readonly status: 'hit'; readonly value: unknown; readonly t: number }
  | { readonly status: 'miss' }
  | { readonly status: 'expired' }
  | { readonly status: 'corrupt'; readonly reason: string };

/** Creation times this far ahead of our clock are not clock skew but a bad item. */
const FUTURE_TOLERANCE_S = 300;

const MISS: L2Read = { status: 'miss' };
const EXPIRED: L2Read = { status: 'expired' };

/** The DynamoDB layer of one table: item codec plus the three calls it needs. */
export class L2Store {
  constructor(
    private readonly client: () => DynamoDBClient,
    readonly table: string,
    private readonly serializer: CacheSerializer,
    private readonly consistentRead: boolean,
  ) {}

  /**
   * `GetItem`, then the expiry check against the reader's ttl. An expired item is deleted, on
   * condition that its `t` is still the one read, so a fresh item written meanwhile survives.
   * Throws {@link DynamoCacheError} when DynamoDB fails.
   */
  async read(cacheKey: string, ttl: number | null, namespace: string): Promise<L2Read> {
    let item;
    try {
      const out = await this.client().send(
        new GetItemCommand({
          TableName: this.table,
          Key: { [PARTITION_KEY]: { S: cacheKey } },
          ConsistentRead: this.consistentRead,
        }),
      );
      item = out.Item;
    } catch (cause) {
      throw new DynamoCacheError(
        'GetItem',
        `GetItem on table "${this.table}" failed: ${message(cause)}`,
        {
          namespace,
          cause,
        },
      );
    }
    if (item === undefined) return MISS;
    const decoded = decodeItem(item);
    if (decoded === undefined)
      return { status: 'corrupt', reason: 'missing or mistyped attributes' };
    const nowS = Date.now() / 1000;
    if (decoded.t > nowS + FUTURE_TOLERANCE_S)
      return { status: 'corrupt', reason: 't is in the future' };
    if (ttl !== null && nowS - decoded.t >= ttl) {
      await this.deleteIfUnchanged(cacheKey, decoded.tRaw, namespace);
      return EXPIRED;
    }
    let value: unknown;
    try {
      value = this.serializer.deserialize(decoded.bytes);
    } catch (cause) {
      return { status: 'corrupt', reason: `value cannot be deserialized (${message(cause)})` };
    }
    return { status: 'hit', value, t: decoded.t };
  }

  /** `PutItem` of already-serialized bytes. Throws {@link DynamoCacheError} when DynamoDB fails. */
  async write(
    cacheKey: string,
    bytes: Uint8Array,
    tSeconds: number,
    ttl: number | null,
    namespace: string,
  ): Promise<void> {
    try {
      await this.client().send(
        new PutItemCommand({
          TableName: this.table,
          Item: encodeItem(cacheKey, bytes, tSeconds, ttl),
        }),
      );
    } catch (cause) {
      throw new DynamoCacheError(
        'PutItem',
        `PutItem on table "${this.table}" failed: ${message(cause)}`,
        {
          namespace,
          cause,
        },
      );
    }
  }

  /** Unconditional `DeleteItem`. */
  async delete(cacheKey: string, namespace: string): Promise<void> {
    try {
      await this.client().send(
        new DeleteItemCommand({ TableName: this.table, Key: { [PARTITION_KEY]: { S: cacheKey } } }),
      );
    } catch (cause) {
      throw new DynamoCacheError(
        'DeleteItem',
        `DeleteItem on table "${this.table}" failed: ${message(cause)}`,
        {
          namespace,
          cause,
        },
      );
    }
  }

  private async deleteIfUnchanged(
    cacheKey: string,
    tRaw: string,
    namespace: string,
  ): Promise<void> {
    try {
      await this.client().send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { [PARTITION_KEY]: { S: cacheKey } },
          ConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 't' },
          ExpressionAttributeValues: { ':t': { N: tRaw } },
        }),
      );
    } catch (cause) {
      // Someone wrote a fresh item after our read: theirs stays, and ours is still a miss.
      if (
        cause instanceof ConditionalCheckFailedException ||
        (cause as Error | undefined)?.name === 'ConditionalCheckFailedException'
      )
        return;
      throw new DynamoCacheError(
        'DeleteItem',
        `DeleteItem on table "${this.table}" failed: ${message(cause)}`,
        {
          namespace,
          cause,
        },
      );
    }
  }
}

function message(err: unknown): string {
  if (err instanceof Error)
    return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  return String(err);
}
