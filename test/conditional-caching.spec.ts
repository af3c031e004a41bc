import { Controller, Get, Injectable, Query, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheModule,
  DynamoCacheService,
  encodeKey,
} from '../lib/index.js';
import { bootCache, scanTable, settleAll } from './support/apps.js';
import { countCalls, testServerKind, useTestDynamo } from './support/dynamo-server.js';

/* `unless`, `forceFresh` and `deleteMany`, between two applications on one table. */

@Injectable()
class OrdersService {
  calls = 0;
  orders: Record<string, string[]> = {};

  @DynamoCached({ ttl: 600, unless: (orders: string[]) => orders.length === 0 })
  async list(customer: string): Promise<string[]> {
    this.calls++;
    return this.orders[customer] ?? [];
  }
}

@Controller('search')
class SearchController {
  runs = 0;

  @Get()
  @DynamoCached({ ttl: 600, unless: (body: { hits: string[] }) => body.hits.length === 0 })
  search(@Query('q') q: string) {
    this.runs++;
    return { hits: q === 'none' ? [] : [q] };
  }
}

describe(`conditional caching and forcing (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const settle = (): Promise<void> => settleAll(fx.apps);

  async function app(table: string) {
    await settleAll(fx.apps);
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client }, [OrdersService]);
    fx.apps.push(moduleRef);
    return {
      orders: moduleRef.get(OrdersService),
      cache: moduleRef.get(DynamoCacheService),
      calls,
    };
  }

  it('unless: a result it rejects is returned but stored in neither layer; others are stored', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    expect(await a.orders.list('ann')).toEqual([]);
    expect(await a.orders.list('ann')).toEqual([]);
    await settle();
    expect(a.orders.calls).toBe(2);
    await settle();
    expect(a.calls.get('PutItem')).toBe(0);
    a.orders.orders.ann = ['o1'];
    expect(await a.orders.list('ann')).toEqual(['o1']);
    expect(await a.orders.list('ann')).toEqual(['o1']);
    await settle();
    expect(a.orders.calls).toBe(3);
    await settle();
    expect(a.calls.get('PutItem')).toBe(1);
  });

  it('unless on a route: about the body; an empty result is answered, not stored', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client })],
      controllers: [SearchController],
    }).compile();
    const http: INestApplication = moduleRef.createNestApplication({ logger: false });
    await http.listen(0, '127.0.0.1');
    fx.apps.push(http);
    const { port } = http.getHttpServer().address() as AddressInfo;
    const get = (q: string) =>
      request(`http://127.0.0.1:${port}`).get(`/search?q=${q}`).expect(200);
    await get('none');
    expect((await get('none')).headers['x-cache']).toBe('MISS');
    await get('cats');
    expect((await get('cats')).headers['x-cache']).toBe('HIT');
    expect(http.get(SearchController).runs).toBe(3);
    await settle();
    expect(calls.get('PutItem')).toBe(1);
  });

  it('forceFresh: recomputes without reading, overwrites both layers; another app reads the new value', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    let version = 1;
    const compute = async () => `v${version}`;
    expect(await a.cache.wrap('report', ['r'], compute)).toBe('v1');
    version = 2;
    expect(await a.cache.wrap('report', ['r'], compute)).toBe('v1');
    a.calls.reset();
    expect(await a.cache.wrap('report', ['r'], compute, { forceFresh: true })).toBe('v2');
    await settle();
    expect(a.calls.counts).toEqual({ PutItem: 1 }); // no read first
    expect(await a.cache.wrap('report', ['r'], compute)).toBe('v2');
    const b = await app(table);
    expect(await b.cache.get('report', ['r'])).toBe('v2');
  });

  it('deleteMany: 60 entries, three BatchWriteItem calls, tombstones read as misses everywhere', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const keys = Array.from({ length: 60 }, (_, i) => [`k${i}`]);
    for (const args of keys) await a.cache.set('items', args, `value of ${String(args[0])}`);
    const b = await app(table);
    expect(await b.cache.get('items', ['k7'])).toBe('value of k7');
    a.calls.reset();
    await a.cache.deleteMany('items', keys);
    await settle();
    expect(a.calls.counts).toEqual({ BatchWriteItem: 3 });
    expect(a.cache.stats().namespaces.items?.l2Deletes).toBe(60);
    // Gone from A's L1 and, for any other process, from DynamoDB.
    for (const args of keys) expect(await a.cache.lookup('items', args)).toEqual({ hit: false });
    const c = await app(table);
    for (const args of keys) expect(await c.cache.lookup('items', args)).toEqual({ hit: false });
    await settle();
    const items = await scanTable(fx.admin, table);
    expect(items).toHaveLength(60);
    expect(items.every((item) => item.v === undefined)).toBe(true);
    expect(items.map((item) => item.cache_key?.S).sort()).toEqual(
      keys.map((args) => buildCacheKey('', 'items', encodeKey(args))).sort(),
    );
  });

  it('deleteMany retries the items DynamoDB leaves unprocessed', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    let first = true;
    let batches = 0;
    // One branch DynamoDB takes under throttling, played once: the first batch comes back whole,
    // unprocessed; the retry goes to the real server.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'BatchWriteItemCommand') batches++;
        if (context.commandName === 'BatchWriteItemCommand' && first) {
          first = false;
          const input = (args as { input: { RequestItems: Record<string, unknown[]> } }).input;
          return { output: { UnprocessedItems: input.RequestItems, $metadata: {} }, response: {} };
        }
        return next(args);
      },
      { step: 'initialize', name: 'unprocessedOnce' },
    );
    const moduleRef = await bootCache({ table, client }, []);
    fx.apps.push(moduleRef);
    const cache = moduleRef.get(DynamoCacheService);
    await cache.set('items', ['a'], 'A');
    await cache.deleteMany('items', [['a'], ['b']]);
    expect(batches).toBe(2);
    await settle();
    const items = await scanTable(fx.admin, table);
    expect(items).toHaveLength(2);
    expect(items.every((item) => item.v === undefined)).toBe(true);
  });
});
