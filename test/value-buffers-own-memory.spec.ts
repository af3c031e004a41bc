import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoCacheService, v8Serializer } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/** What an application's DynamoDB client signs with: it must never reach a cached value. */
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

describe('typed arrays, DataViews and Buffers read back from DynamoDB', () => {
  const fx = useTestDynamo();

  async function service(table: string) {
    const client = new DynamoDBClient({
      ...fx.dynamo.clientConfig,
      // The fixture's key id (DynamoDB Local keeps a database per key id), a secret of its own.
      credentials: { accessKeyId: 'test', secretAccessKey: SECRET },
    });
    const ref = await bootCache({ table, client, ttl: 600 }, []);
    fx.apps.push(ref, { close: async () => client.destroy() });
    return ref.get(DynamoCacheService);
  }

  it('come back in memory of their own, holding only their bytes (another instance, L2 hit)', async () => {
    const table = await fx.dynamo.table();
    const a = await service(table);
    const returned = {
      digest: new Float64Array([1.5, 2.5]),
      view: new DataView(new Uint8Array([1, 2, 3, 4]).buffer),
      bytes: Buffer.from('abc'),
      wide: new BigInt64Array([7n]),
    };
    await a.wrap('Hashes.digest', ['bob'], async () => returned);
    await a.settle();
    const b = await service(table);
    const got = (await b.wrap('Hashes.digest', ['bob'], async () => {
      throw new Error('expected from DynamoDB');
    })) as typeof returned;
    expect(Array.from(got.digest)).toEqual([1.5, 2.5]);
    expect(Buffer.isBuffer(got.bytes)).toBe(true);
    expect(got.bytes.toString()).toBe('abc');
    expect(got.view.getUint8(3)).toBe(4);
    expect(got.wide[0]).toBe(7n);
    for (const view of [got.digest, got.view, got.bytes, got.wide]) {
      expect({ offset: view.byteOffset, size: view.buffer.byteLength }).toEqual({
        offset: 0,
        size: view.byteLength,
      });
      expect(Buffer.from(view.buffer).includes(SECRET)).toBe(false);
    }
  });

  it('v8Serializer.deserialize gives each view its own ArrayBuffer, whatever the input shares', () => {
    const bytes = v8Serializer.serialize({ a: new Uint16Array([1, 2]), b: Buffer.from('xy') });
    // Bytes inside a larger buffer, as the SDK's decoder hands them over.
    const pool = Buffer.alloc(bytes.byteLength + 64, 0x41);
    pool.set(bytes, 32);
    const got = v8Serializer.deserialize(pool.subarray(32, 32 + bytes.byteLength)) as {
      a: Uint16Array;
      b: Buffer;
    };
    expect(Array.from(got.a)).toEqual([1, 2]);
    expect(got.b.toString()).toBe('xy');
    expect(got.a.buffer.byteLength).toBe(4);
    expect(got.b.buffer.byteLength).toBe(2);
  });
});
