import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  buildCacheKey,
  DynamoCacheError,
  DynamoCacheService,
  encodeKey,
  v8Serializer,
} from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

describe('names that would share DynamoDB keys, and items no writer could have written', () => {
  const fx = useTestDynamo();

  async function service(table: string, options: Record<string, unknown> = {}) {
    const ref = await bootCache(
      { table, client: fx.dynamo.client(), ttl: 3600, onError: 'throw', ...options },
      [],
    );
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it('a namespace or tag with a lone surrogate is refused (two such names would share keys in UTF-8)', async () => {
    const table = await fx.dynamo.table();
    const a = await service(table);
    const b = await service(table);
    await expect(a.wrap('tenant:\uD800', ['balance'], async () => 'A')).rejects.toThrow(
      /namespace must be a well-formed string/,
    );
    await expect(b.wrap('tenant:\uDC00', ['balance'], async () => 'B')).rejects.toBeInstanceOf(
      DynamoCacheError,
    );
    await expect(a.set('users', ['u1'], 1, { tags: ['org:\uD800'] })).rejects.toThrow(
      /tags\[0\] must be a non-empty, well-formed string/,
    );
    await expect(a.deleteByTag('org:\uDC00')).rejects.toThrow(/well-formed/);
    // Well-formed names of the same letters are two namespaces.
    expect(await a.wrap('tenant:\uD83D\uDE00', ['balance'], async () => 'A')).toBe('A');
    expect(await b.wrap('tenant:\uD83D\uDE01', ['balance'], async () => 'B')).toBe('B');
    await expect(service(table, { keyPrefix: 'app\uDFFF:' })).rejects.toThrow(/keyPrefix/);
  });

  it('an item whose tags could not be a marker key (over 1,024 bytes) is a miss, repaired, in every instance', async () => {
    const table = await fx.dynamo.table();
    const t = Date.now() / 1000;
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: buildCacheKey('', 'users', encodeKey(['u1'])) },
          v: { B: v8Serializer.serialize('hostile') },
          t: { N: String(t) },
          exp: { N: String(Math.ceil(t + 3600)) },
          g: { SS: ['x'.repeat(2100)] },
        },
      }),
    );
    const a = await service(table);
    let computed = 0;
    const fresh = async (): Promise<string> => `fresh ${++computed}`;
    expect(await a.wrap('users', ['u1'], fresh)).toBe('fresh 1');
    await a.settle();
    const b = await service(table);
    expect(await b.wrap('users', ['u1'], fresh)).toBe('fresh 1');
    expect(computed).toBe(1);
  });

  it('a clear marker dated far ahead (a clock years fast, a foreign write) does not switch the namespace off; the next clear replaces it', async () => {
    const table = await fx.dynamo.table();
    const ahead = Date.now() / 1000 + 365 * 86400;
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: { cache_key: { S: '#ns:users#' }, t: { N: String(ahead) } },
      }),
    );
    const a = await service(table);
    const b = await service(table);
    let calls = 0;
    const fn = async (): Promise<number> => ++calls;
    expect(await a.wrap('users', ['u1'], fn)).toBe(1);
    await a.settle();
    // Served from DynamoDB in another instance: the marker is not taken at its word.
    expect(await b.wrap('users', ['u1'], fn)).toBe(1);
    // A clear now invalidates what was written before it, everywhere, and replaces the marker.
    await a.clear('users');
    expect(await a.wrap('users', ['u1'], fn)).toBe(2);
    await a.settle();
    expect(await (await service(table)).wrap('users', ['u1'], fn)).toBe(2);
    const marker = await fx.admin.send(
      new GetItemCommand({ TableName: table, Key: { cache_key: { S: '#ns:users#' } } }),
    );
    expect(Number(marker.Item?.t?.N)).toBeLessThan(Date.now() / 1000 + 1);
    expect(calls).toBe(2);
  });
});
