import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import { buildCacheKey, DynamoCached, DynamoCacheService, encodeKey } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { countCalls, useTestDynamo } from './support/dynamo-server.js';

@Injectable()
class RatesService {
  calls = 0;
  @DynamoCached(300)
  async rate(from: string, to: string): Promise<number> {
    this.calls++;
    return from.length + to.length / 10;
  }
}

describe('DynamoCacheService', () => {
  const fx = useTestDynamo();

  async function app(table: string) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client, ttl: 600 }, [RatesService]);
    fx.apps.push(moduleRef);
    return { cache: moduleRef.get(DynamoCacheService), rates: moduleRef.get(RatesService), calls };
  }

  it('wrap computes once and then serves L1, then L2 in a fresh application', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    let computed = 0;
    const compute = async () => ++computed;
    expect(await a.cache.wrap('users.count', ['eu'], compute)).toBe(1);
    expect(await a.cache.wrap('users.count', ['eu'], compute)).toBe(1);
    expect(computed).toBe(1);
    const b = await app(table);
    expect(await b.cache.wrap('users.count', ['eu'], compute)).toBe(1);
    expect(computed).toBe(1);
    expect(b.calls.counts).toEqual({ GetItem: 1 });
  });

  it('works on the same keys as the decorator', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const value = await a.rates.rate('EUR', 'USD');
    const b = await app(table);
    expect(await b.cache.get('RatesService.rate', ['EUR', 'USD'])).toBe(value);
    await b.cache.set('RatesService.rate', ['EUR', 'GBP'], 42);
    const c = await app(table);
    expect(await c.rates.rate('EUR', 'GBP')).toBe(42);
    expect(c.rates.calls).toBe(0);
  });

  it('get returns undefined on a miss; lookup tells a cached undefined from a miss', async () => {
    const { cache } = await app(await fx.dynamo.table());
    expect(await cache.get('ns', ['missing'])).toBeUndefined();
    expect(await cache.lookup('ns', ['missing'])).toEqual({ hit: false });
    await cache.set('ns', ['present'], undefined);
    expect(await cache.lookup('ns', ['present'])).toEqual({ hit: true, value: undefined });
  });

  it('delete removes the entry from L1 and from DynamoDB', async () => {
    const table = await fx.dynamo.table();
    const { cache, rates, calls } = await app(table);
    await rates.rate('EUR', 'CHF');
    const key = buildCacheKey('', 'RatesService.rate', encodeKey(['EUR', 'CHF']));
    expect(
      (
        await fx.admin.send(
          new GetItemCommand({ TableName: table, Key: { cache_key: { S: key } } }),
        )
      ).Item,
    ).toBeDefined();
    calls.reset();
    await cache.delete('RatesService.rate', ['EUR', 'CHF']);
    expect(calls.counts).toEqual({ DeleteItem: 1 });
    expect(
      (
        await fx.admin.send(
          new GetItemCommand({ TableName: table, Key: { cache_key: { S: key } } }),
        )
      ).Item,
    ).toBeUndefined();
    await rates.rate('EUR', 'CHF');
    expect(rates.calls).toBe(2);
  });

  it('stats counts per namespace and in total', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    await a.rates.rate('A', 'B'); // miss + write
    await a.rates.rate('A', 'B'); // L1 hit
    await a.cache.wrap('other', [1], () => 'x'); // miss + write
    await a.cache.delete('other', [1]); // delete
    const b = await app(table);
    await b.rates.rate('A', 'B'); // L2 hit
    expect(a.cache.stats()).toEqual({
      total: { l1Hits: 1, l2Hits: 0, misses: 2, l2Errors: 0, l2Writes: 2, l2Deletes: 1 },
      namespaces: {
        'RatesService.rate': {
          l1Hits: 1,
          l2Hits: 0,
          misses: 1,
          l2Errors: 0,
          l2Writes: 1,
          l2Deletes: 0,
        },
        other: { l1Hits: 0, l2Hits: 0, misses: 1, l2Errors: 0, l2Writes: 1, l2Deletes: 1 },
      },
    });
    expect(b.cache.stats().namespaces['RatesService.rate']).toMatchObject({ l2Hits: 1, misses: 0 });
  });
});
