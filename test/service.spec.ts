import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheError,
  DynamoCacheService,
  encodeKey,
} from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { bootLogged, RecordingLogger } from './support/recording-logger.js';
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
    expect(b.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
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

  it('delete removes the entry from L1 and leaves a tombstone in DynamoDB', async () => {
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
    expect(calls.counts).toEqual({ PutItem: 1 });
    const tombstone = (
      await fx.admin.send(new GetItemCommand({ TableName: table, Key: { cache_key: { S: key } } }))
    ).Item;
    // No value; `t` is the deletion time and `exp` lets DynamoDB's TTL remove it.
    expect(tombstone?.v).toBeUndefined();
    expect(Math.abs(Number(tombstone?.t?.N) - Date.now() / 1000)).toBeLessThan(60);
    expect(Number(tombstone?.exp?.N)).toBeGreaterThan(Number(tombstone?.t?.N));
    await rates.rate('EUR', 'CHF');
    expect(rates.calls).toBe(2);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['computeTimeout 0', { computeTimeout: 0 }, /"computeTimeout" must be a positive number/],
    ['computeTimeout NaN', { computeTimeout: NaN }, /"computeTimeout" must be a positive number/],
    ['ttl -1', { ttl: -1 }, /"ttl" must be a positive number/],
    ['maxsize 1.5', { maxsize: 1.5 }, /"maxsize" must be a non-negative integer/],
    ['types of a non-class', { types: [42] }, /"types"\[0\] must be a named class/],
  ])(
    'wrap and set reject invalid options (%s), naming the option and the namespace',
    async (_n, bad, message) => {
      const table = await fx.dynamo.table();
      const { cache } = await app(table);
      let calls = 0;
      const wrapped = cache.wrap('checked', [1], () => ++calls, bad);
      await expect(wrapped).rejects.toThrow(message);
      await expect(wrapped).rejects.toThrow(/DynamoCacheService options for "checked"/);
      await expect(cache.set('checked', [1], 'v', bad)).rejects.toBeInstanceOf(DynamoCacheError);
      expect(calls).toBe(0);
    },
  );

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
      total: {
        l1Hits: 1,
        l2Hits: 0,
        staleHits: 0,
        misses: 2,
        l2Errors: 0,
        l2Writes: 2,
        l2Deletes: 1,
        l2Refused: 0,
        unrestorable: 0,
        l1Size: 1,
      },
      namespaces: {
        'RatesService.rate': {
          l1Hits: 1,
          l2Hits: 0,
          staleHits: 0,
          misses: 1,
          l2Errors: 0,
          l2Writes: 1,
          l2Deletes: 0,
          l2Refused: 0,
          unrestorable: 0,
          l1Size: 1,
        },
        other: {
          l1Hits: 0,
          l2Hits: 0,
          staleHits: 0,
          misses: 1,
          l2Errors: 0,
          l2Writes: 1,
          l2Deletes: 1,
          l2Refused: 0,
          unrestorable: 0,
          l1Size: 0,
        },
      },
    });
    expect(b.cache.stats().namespaces['RatesService.rate']).toMatchObject({ l2Hits: 1, misses: 0 });
  });

  it('reports the circuit state: closed while DynamoDB answers, open after a run of failures', async () => {
    const { cache } = await app(await fx.dynamo.table());
    await cache.wrap('up', [1], () => 1);
    expect(cache.circuitState()).toBe('closed');

    const down = await bootCache(
      {
        table: 'unreachable',
        onError: 'bypass',
        circuitBreaker: { failures: 3, cooldownMs: 60_000 },
        clientConfig: { ...fx.dynamo.clientConfig, endpoint: 'http://127.0.0.1:9' },
      },
      [],
    );
    fx.apps.push(down);
    const downCache = down.get(DynamoCacheService);
    for (let i = 0; i < 3; i++) expect(await downCache.wrap('down', [i], () => i)).toBe(i);
    expect(downCache.circuitState()).toBe('open');
  });

  it('warns when a namespace already in use is asked for other settings', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const logger = new RecordingLogger();
    const moduleRef = await bootLogged({ table, client, ttl: 600 }, [RatesService], logger);
    fx.apps.push(moduleRef);
    const cache = moduleRef.get(DynamoCacheService);
    await cache.wrap('shared', [1], () => 'a', { ttl: 60 });
    await cache.wrap('shared', [2], () => 'b', { ttl: 60 });
    expect(logger.warnings).toEqual([]);
    await cache.wrap('shared', [3], () => 'c', { ttl: 5, maxsize: 10 });
    await cache.wrap('shared', [4], () => 'd', { ttl: 5 });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(
      /namespace "shared" is already in use with ttl=60, maxsize=1000; a later use asked for ttl=5, maxsize=10/,
    );
  });

  it('warns when a use without options fixed the settings that a later use asks for (tags, grace, l1MaxAge)', async () => {
    const table = await fx.dynamo.table();
    const logger = new RecordingLogger();
    const moduleRef = await bootLogged({ table, client: fx.dynamo.client() }, [], logger);
    fx.apps.push(moduleRef);
    const cache = moduleRef.get(DynamoCacheService);
    // The module's defaults, named: no change, no warning.
    await cache.get('orders', [1]);
    await cache.wrap('orders', [1], () => 'a', { grace: 0, l1MaxAge: 5, graceBackoff: 10 });
    expect(logger.warnings).toEqual([]);
    await cache.wrap('orders', [2], () => 'b', {
      tags: (_: unknown, id: number) => [`order:${id}`],
      grace: 60,
      l1MaxAge: null,
    });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(
      /namespace "orders" is already in use with grace=0, l1MaxAge=5, tags=unset; a later use asked for grace=60, l1MaxAge=null, tags=a function, which is ignored/,
    );

    // Tag lists are compared as sets; two functions cannot be compared.
    const logged = new RecordingLogger();
    const other = await bootLogged({ table, client: fx.dynamo.client() }, [], logged);
    fx.apps.push(other);
    const cache2 = other.get(DynamoCacheService);
    await cache2.wrap('lists', [1], () => 1, { tags: ['a', 'b'], unless: () => false });
    await cache2.wrap('lists', [2], () => 2, { tags: ['b', 'a'], unless: () => false });
    expect(logged.warnings).toEqual([]);
    await cache2.wrap('lists', [3], () => 3, { tags: ['a'] });
    expect(logged.warnings).toHaveLength(1);
    expect(logged.warnings[0]).toMatch(/tags=\["a","b"\]; a later use asked for tags=\["a"\]/);
  });

  it('warns once when the process holds 1,000 namespaces (they are never released: names must be a fixed set)', async () => {
    const logger = new RecordingLogger();
    const moduleRef = await bootLogged(
      { table: await fx.dynamo.table(), client: fx.dynamo.client(), maxsize: 10 },
      [],
      logger,
    );
    fx.apps.push(moduleRef);
    const cache = moduleRef.get(DynamoCacheService);
    for (let i = 0; i < 999; i++) await cache.wrap(`tenant:${i}`, [], () => i);
    expect(logger.warnings).toEqual([]);
    for (let i = 999; i < 1500; i++) await cache.get(`tenant:${i}`, []);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(
      /1,000 namespaces in this process \(the last "tenant:999"\): a namespace is never released/,
    );
  });

  it("set's tags are that entry's own: deleteByTag in another instance removes it, whoever used the namespace first", async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    // A read first fixes the namespace (no tags of its own); set's tags still reach the entry.
    expect(await a.cache.get('users.byId', [1])).toBeUndefined();
    await a.cache.set('users.byId', [1], { id: 1, org: 7 }, { tags: ['org:7'] });
    await a.cache.set(
      'users.byId',
      [2],
      { id: 2, org: 8 },
      { tags: (user: { org: number }) => [`org:${user.org}`] },
    );
    // A later entry without tags does not inherit the first set's.
    await a.cache.set('users.byId', [3], { id: 3, org: 7 });
    expect(await b.cache.get('users.byId', [1])).toEqual({ id: 1, org: 7 });
    expect(await b.cache.get('users.byId', [2])).toEqual({ id: 2, org: 8 });

    await b.cache.deleteByTag('org:7');
    // B's own L1 copy goes at once; A sees the tag's marker within l1MaxAge (here: a fresh app).
    expect(await b.cache.get('users.byId', [1])).toBeUndefined();
    expect(await b.cache.get('users.byId', [2])).toEqual({ id: 2, org: 8 });
    const c = await app(table);
    expect(await c.cache.get('users.byId', [1])).toBeUndefined();
    expect(await c.cache.get('users.byId', [2])).toEqual({ id: 2, org: 8 });
    expect(await c.cache.get('users.byId', [3])).toEqual({ id: 3, org: 7 });
    await b.cache.deleteByTag('org:8');
    expect(await app(table).then((d) => d.cache.get('users.byId', [2]))).toBeUndefined();
  });

  it('set rejects bad tags with a config error naming the call', async () => {
    const { cache } = await app(await fx.dynamo.table());
    await expect(
      cache.set('users.byId', [1], 1, { tags: 'org:7' as unknown as string[] }),
    ).rejects.toThrow(/DynamoCacheService\.set on "users\.byId": .*tags/);
  });
});
