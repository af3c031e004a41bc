import {
  GetItemCommand,
  PutItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { buildCacheKey, DynamoCached, encodeKey, v8Serializer } from '../../lib/index.js';
import { countCalls, startDynamo, type TestDynamo } from '../support/dynamo-server.js';
import { bootLogged, RecordingLogger } from '../support/recording-logger.js';

@Injectable()
class ProfileService {
  calls = 0;

  @DynamoCached()
  async profile(id: string): Promise<{ id: string; name: string }> {
    this.calls++;
    return { id, name: `user ${id}` };
  }
}

const NAMESPACE = 'ProfileService.profile';
const valueBytes = (value: unknown): Uint8Array => v8Serializer.serialize(value);
const now = (): string => String(Date.now() / 1000);
const stale = { id: 'x', name: 'stale' };

/** Each kind of bad item, as a function of the value bytes a healthy item would hold. */
const corruptItems: [string, () => Record<string, AttributeValue>][] = [
  ['missing t', () => ({ v: { B: valueBytes(stale) } })],
  ['v as a string (S)', () => ({ v: { S: 'not bytes' }, t: { N: now() } })],
  ['v as a number (N)', () => ({ v: { N: '12' }, t: { N: now() } })],
  ['t as a string (S)', () => ({ v: { B: valueBytes(stale) }, t: { S: 'yesterday' } })],
  ['t as a binary (B)', () => ({ v: { B: valueBytes(stale) }, t: { B: new Uint8Array([1]) } })],
  ['t zero', () => ({ v: { B: valueBytes(stale) }, t: { N: '0' } })],
  ['t negative', () => ({ v: { B: valueBytes(stale) }, t: { N: '-5' } })],
  [
    't a day in the future',
    () => ({ v: { B: valueBytes(stale) }, t: { N: String(Date.now() / 1000 + 86400) } }),
  ],
  [
    'truncated value bytes',
    () => ({ v: { B: valueBytes(stale).subarray(0, 9) }, t: { N: now() } }),
  ],
  [
    'foreign bytes (JSON text)',
    () => ({ v: { B: Buffer.from(JSON.stringify(stale)) }, t: { N: now() } }),
  ],
  ['an empty value', () => ({ v: { B: new Uint8Array([0]) }, t: { N: now() } })],
  [
    'unknown compression marker',
    () => ({ v: { B: valueBytes(stale) }, t: { N: now() }, z: { S: 'lz4' } }),
  ],
  [
    'compression marker of the wrong type',
    () => ({ v: { B: valueBytes(stale) }, t: { N: now() }, z: { N: '1' } }),
  ],
  [
    "z 'br' over bytes that are not brotli",
    () => ({ v: { B: valueBytes(stale) }, t: { N: now() }, z: { S: 'br' } }),
  ],
  [
    "z 'gzip' over bytes that are not gzip",
    () => ({ v: { B: valueBytes(stale) }, t: { N: now() }, z: { S: 'gzip' } }),
  ],
  [
    'truncated brotli bytes',
    () => ({
      v: { B: brotliCompressSync(valueBytes({ big: 'x'.repeat(5000) })).subarray(0, 12) },
      t: { N: now() },
      z: { S: 'br' },
    }),
  ],
  [
    'brotli of foreign bytes',
    () => ({
      v: { B: brotliCompressSync(Buffer.from('{"a":1}')) },
      t: { N: now() },
      z: { S: 'br' },
    }),
  ],
];

describe('corrupt items written straight into the table', () => {
  let dynamo: TestDynamo;
  let admin: DynamoDBClient;
  let table: string;
  const apps: TestingModule[] = [];

  beforeAll(async () => {
    dynamo = await startDynamo();
    admin = dynamo.client();
    table = await dynamo.table('corrupt');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await dynamo.close();
  });

  async function readItem(cacheKey: string): Promise<Record<string, AttributeValue> | undefined> {
    const out = await admin.send(
      new GetItemCommand({
        TableName: table,
        Key: { cache_key: { S: cacheKey } },
        ConsistentRead: true,
      }),
    );
    return out.Item;
  }

  it.each(corruptItems)(
    '%s: the call returns the fresh value, and the item is repaired',
    async (kind, build) => {
      const id = `id-${kind}`;
      const cacheKey = buildCacheKey('', NAMESPACE, encodeKey([id]));
      await admin.send(
        new PutItemCommand({ TableName: table, Item: { cache_key: { S: cacheKey }, ...build() } }),
      );
      const client = dynamo.client();
      const calls = countCalls(client);
      const logger = new RecordingLogger();
      const app = await bootLogged({ table, client, ttl: 3600 }, [ProfileService], logger);
      apps.push(app);
      const service = app.get(ProfileService);

      expect(await service.profile(id)).toEqual({ id, name: `user ${id}` });
      expect(service.calls).toBe(1);
      expect(calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
      expect(logger.matching(/unreadable L2 item/)).toHaveLength(1);

      const repaired = await readItem(cacheKey);
      expect(repaired).toBeDefined();
      expect(repaired!.z).toBeUndefined();
      expect(v8Serializer.deserialize(repaired!.v!.B!)).toEqual({ id, name: `user ${id}` });
      expect(Math.abs(Number(repaired!.t!.N) - Date.now() / 1000)).toBeLessThan(60);

      // A second application now reads the repaired item from L2.
      const second = await bootLogged({ table, client: dynamo.client(), ttl: 3600 }, [
        ProfileService,
      ]);
      apps.push(second);
      expect(await second.get(ProfileService).profile(id)).toEqual({ id, name: `user ${id}` });
      expect(second.get(ProfileService).calls).toBe(0);
    },
  );

  it('reads a gzip-compressed item another writer stored (z = gzip)', async () => {
    const id = 'gzip-writer';
    const cacheKey = buildCacheKey('', NAMESPACE, encodeKey([id]));
    const value = { id, name: 'from another writer' };
    await admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: cacheKey },
          v: { B: gzipSync(valueBytes(value)) },
          t: { N: now() },
          z: { S: 'gzip' },
        },
      }),
    );
    const app = await bootLogged({ table, client: dynamo.client() }, [ProfileService]);
    apps.push(app);
    expect(await app.get(ProfileService).profile(id)).toEqual(value);
    expect(app.get(ProfileService).calls).toBe(0);
  });
});
