import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  buildCacheKey,
  DynamoCached,
  encodeKey,
  v8Serializer,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { bootCache, scanTable, sleep } from './support/apps.js';
import { countCalls, useTestDynamo } from './support/dynamo-server.js';

@Injectable()
class RatesService {
  calls = 0;
  failNext = false;

  @DynamoCached()
  async rate(from: string, to: string): Promise<string> {
    this.calls++;
    await sleep(5);
    if (this.failNext) {
      this.failNext = false;
      throw new Error('upstream down');
    }
    return `${from}->${to}`;
  }

  @SetMetadata('audit', 'rates')
  @DynamoCached()
  async nothing(kind: 'undefined' | 'null'): Promise<undefined | null> {
    this.calls++;
    return kind === 'null' ? null : undefined;
  }
}

describe('@DynamoCached service methods (dynalite)', () => {
  const fx = useTestDynamo();

  /** A fresh application (empty L1) on `table`, with its own counted client. */
  async function app(table: string, extra: Partial<DynamoCacheModuleOptions> = {}) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client, ...extra }, [RatesService]);
    fx.apps.push(moduleRef);
    return { service: moduleRef.get(RatesService), calls, moduleRef };
  }

  function itemKey(namespace: string, args: unknown[], prefix = ''): string {
    return buildCacheKey(prefix, namespace, encodeKey(args));
  }

  async function putRawItem(
    table: string,
    cacheKey: string,
    value: unknown,
    t: number,
  ): Promise<void> {
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: cacheKey },
          v: { B: v8Serializer.serialize(value) },
          t: { N: String(t) },
        },
      }),
    );
  }

  async function getRawItem(table: string, cacheKey: string) {
    const out = await fx.admin.send(
      new GetItemCommand({
        TableName: table,
        Key: { cache_key: { S: cacheKey } },
        ConsistentRead: true,
      }),
    );
    return out.Item;
  }

  it('1. serves a second call with the same arguments from L1: no method call, zero DynamoDB calls', async () => {
    const { service, calls } = await app(await fx.dynamo.table());
    expect(await service.rate('EUR', 'USD')).toBe('EUR->USD');
    expect(service.calls).toBe(1);
    calls.reset();
    expect(await service.rate('EUR', 'USD')).toBe('EUR->USD');
    expect(service.calls).toBe(1);
    expect(calls.total()).toBe(0);
  });

  it('2. serves a fresh application on the same table from L2 with one GetItem and one marker read', async () => {
    const table = await fx.dynamo.table();
    const first = await app(table);
    await first.service.rate('EUR', 'GBP');
    expect(first.calls.get('PutItem')).toBe(1);

    const second = await app(table);
    expect(await second.service.rate('EUR', 'GBP')).toBe('EUR->GBP');
    expect(second.service.calls).toBe(0);
    expect(second.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
    // ...and the L2 hit was copied into L1.
    await second.service.rate('EUR', 'GBP');
    expect(second.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
  });

  it('3. stores exactly the item of CONTRACT §4', async () => {
    const table = await fx.dynamo.table();
    const { service } = await app(table, { ttl: 120, keyPrefix: 'stage:' });
    const before = Date.now() / 1000;
    await service.rate('EUR', 'JPY');
    const items = await scanTable(fx.admin, table);
    expect(items).toHaveLength(1);
    const item = items[0]!;
    expect(Object.keys(item).sort()).toEqual(['cache_key', 'e', 'exp', 't', 'v', 'w']);
    expect(item.cache_key!.S).toMatch(/^stage:RatesService\.rate\/[0-9a-f]{32}$/);
    expect(item.cache_key!.S).toBe(itemKey('RatesService.rate', ['EUR', 'JPY'], 'stage:'));
    expect(item.v!.B).toBeInstanceOf(Uint8Array);
    expect(v8Serializer.deserialize(item.v!.B!)).toBe('EUR->JPY');
    const t = Number(item.t!.N);
    expect(Math.abs(t - before)).toBeLessThan(1);
    expect(Number(item.e!.N)).toBe(t + 120);
    expect(Number(item.exp!.N)).toBe(Math.ceil(t + 120));
    expect(Number(item.exp!.N) - t).toBeGreaterThanOrEqual(120);
    expect(Number(item.exp!.N) - t).toBeLessThan(121);
  });

  it('3b. writes no exp attribute when no ttl applies', async () => {
    const table = await fx.dynamo.table();
    const { service } = await app(table);
    await service.rate('EUR', 'CHF');
    const [item] = await scanTable(fx.admin, table);
    expect(Object.keys(item!).sort()).toEqual(['cache_key', 't', 'v', 'w']);
  });

  it('4. after an L1 eviction (maxsize 2) reloads from L2 and keeps the item in the table', async () => {
    const table = await fx.dynamo.table();
    const { service, calls } = await app(table, { maxsize: 2 });
    await service.rate('a', 'x');
    await service.rate('b', 'x');
    await service.rate('c', 'x'); // evicts a from L1
    expect(service.calls).toBe(3);
    expect(await getRawItem(table, itemKey('RatesService.rate', ['a', 'x']))).toBeDefined();
    calls.reset();
    expect(await service.rate('a', 'x')).toBe('a->x');
    expect(service.calls).toBe(3);
    expect(calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
    expect(await getRawItem(table, itemKey('RatesService.rate', ['a', 'x']))).toBeDefined();
  });

  describe('5. ttl', () => {
    it('deletes an expired L2 item (DeleteItem) and recomputes', async () => {
      const table = await fx.dynamo.table();
      const key = itemKey('RatesService.rate', ['EUR', 'SEK']);
      await putRawItem(table, key, 'stale', Date.now() / 1000 - 120);
      const { service, calls } = await app(table, { ttl: 60 });
      expect(await service.rate('EUR', 'SEK')).toBe('EUR->SEK');
      expect(service.calls).toBe(1);
      expect(calls.counts).toEqual({ GetItem: 1, DeleteItem: 1, PutItem: 1 });
      const item = await getRawItem(table, key);
      expect(v8Serializer.deserialize(item!.v!.B!)).toBe('EUR->SEK');
    });

    it('does not serve an expired L1 entry', async () => {
      const { service } = await app(await fx.dynamo.table(), { ttl: 0.4 });
      await service.rate('EUR', 'NOK');
      await service.rate('EUR', 'NOK');
      expect(service.calls).toBe(1);
      await sleep(500);
      await service.rate('EUR', 'NOK');
      expect(service.calls).toBe(2);
    });

    it('expires an L1 entry filled from an old L2 item when the item does', async () => {
      const table = await fx.dynamo.table();
      const key = itemKey('RatesService.rate', ['EUR', 'DKK']);
      await putRawItem(table, key, 'from-l2', Date.now() / 1000 - 1.4); // ttl 2: 0.6 s left
      const { service, calls } = await app(table, { ttl: 2 });
      expect(await service.rate('EUR', 'DKK')).toBe('from-l2');
      expect(service.calls).toBe(0);
      await sleep(800); // past the item's expiry, well within a full ttl of the L1 fill
      calls.reset();
      expect(await service.rate('EUR', 'DKK')).toBe('EUR->DKK');
      expect(service.calls).toBe(1);
      expect(calls.get('GetItem')).toBe(1);
    });

    it('never expires with ttl null', async () => {
      const table = await fx.dynamo.table();
      const key = itemKey('RatesService.rate', ['EUR', 'PLN']);
      await putRawItem(table, key, 'ancient', Date.now() / 1000 - 10 * 365 * 86400);
      const { service, calls } = await app(table, { ttl: null });
      expect(await service.rate('EUR', 'PLN')).toBe('ancient');
      expect(service.calls).toBe(0);
      expect(calls.get('DeleteItem')).toBe(0);
    });
  });

  it('6. 100 concurrent calls with new arguments: one method call, one GetItem, one PutItem', async () => {
    const { service, calls } = await app(await fx.dynamo.table());
    const results = await Promise.all(
      Array.from({ length: 100 }, () => service.rate('EUR', 'HUF')),
    );
    expect(new Set(results)).toEqual(new Set(['EUR->HUF']));
    expect(service.calls).toBe(1);
    expect(calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
  });

  it('7. does not cache a rejection; caches undefined and null', async () => {
    const table = await fx.dynamo.table();
    const { service, calls } = await app(table);
    service.failNext = true;
    await expect(service.rate('EUR', 'CZK')).rejects.toThrow('upstream down');
    expect(calls.get('PutItem')).toBe(0);
    expect(await service.rate('EUR', 'CZK')).toBe('EUR->CZK');
    expect(service.calls).toBe(2);

    service.calls = 0;
    expect(await service.nothing('undefined')).toBeUndefined();
    expect(await service.nothing('null')).toBeNull();
    expect(await service.nothing('undefined')).toBeUndefined();
    expect(await service.nothing('null')).toBeNull();
    expect(service.calls).toBe(2);

    const fresh = await app(table);
    expect(await fresh.service.nothing('undefined')).toBeUndefined();
    expect(await fresh.service.nothing('null')).toBeNull();
    expect(fresh.service.calls).toBe(0);
    expect(fresh.calls.counts).toEqual({ GetItem: 2, BatchGetItem: 1 });
  });

  it("keeps other decorators' metadata on the wrapped method", async () => {
    const { service, moduleRef } = await app(await fx.dynamo.table());
    const reflector = moduleRef.get(Reflector);
    expect(Object.prototype.hasOwnProperty.call(service, 'nothing')).toBe(true); // wrapped on the instance
    expect(reflector.get('audit', service.nothing)).toBe('rates');
    expect(service.nothing.name).toBe('nothing');
    service.calls = 0;
    await service.nothing('null');
    await service.nothing('null');
    expect(service.calls).toBe(1);
  });
});
