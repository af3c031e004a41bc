import { DynamoCacheService, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache, scanTable, settleAll, sleep } from './support/apps.js';
import { countCalls, testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { gate, keyOf, ORDERS, PRODUCT, RATE, ShopService, world } from './support/shop-fixture.js';
import { until } from './support/waits.js';

/*
 * Group invalidation (`deleteByTag`, `clear`) and the bounded staleness of L1 across applications
 * on one table: the application that invalidates sees it at once, the others within their
 * `l1MaxAge` (the documented bound), a fresh one at once (it reads the markers).
 */

/**
 * Calls `read` until `ok` holds of its result; fails after `ms`. Returns the milliseconds it took.
 */
async function eventually<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  what: string,
  ms: number,
): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (ok(await read())) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`${what}: not seen within ${ms} ms`);
    await sleep(20);
  }
}

describe(`group invalidation and bounded staleness across applications (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const settle = (): Promise<void> => settleAll(fx.apps);

  beforeEach(() => {
    world.version = 1;
  });

  /** An application on `table` with its own client, call counter and ShopService. */
  async function app(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client, l1MaxAge: 1, ...options }, [ShopService]);
    fx.apps.push(moduleRef);
    return {
      shop: moduleRef.get(ShopService),
      cache: moduleRef.get(DynamoCacheService),
      calls,
    };
  }

  async function itemsByKey(table: string) {
    const items = await scanTable(fx.admin, table);
    return new Map(items.map((item) => [item.cache_key?.S ?? '', item]));
  }

  it('deleteByTag in B: misses in B at once, in A after its l1MaxAge, in a fresh app C at once; untagged entries untouched', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);

    // A computes two entries without x or y, then (last, so that its l1MaxAge has not run out
    // when B's deleteByTag is made) one tagged x (fixed tags) and one tagged y (from the value).
    // B reads each from DynamoDB into its own L1.
    expect(await a.shop.orders('c2')).toEqual({ customer: 'c2', tier: 'w', version: 1 });
    expect(await a.shop.rate('EUR')).toBe('EUR@v1');
    expect((await b.shop.orders('c2')).version).toBe(1);
    expect(await b.shop.rate('EUR')).toBe('EUR@v1');
    expect(await a.shop.product('p1')).toBe('p1@v1');
    expect(await a.shop.orders('c1')).toEqual({ customer: 'c1', tier: 'y', version: 1 });
    expect(await b.shop.product('p1')).toBe('p1@v1');
    expect((await b.shop.orders('c1')).version).toBe(1);
    expect(b.shop.calls).toEqual({ product: 0, orders: 0, rate: 0 });
    expect(b.cache.stats().total.l2Hits).toBe(4);

    world.version = 2;
    b.calls.reset();
    await b.cache.deleteByTag(['x', 'y']);
    // One PutItem per tag, nothing else (no Scan, no delete of the entries).
    expect(b.calls.counts).toEqual({ PutItem: 2 });

    // A, within its l1MaxAge, still serves its L1 values: the documented bound. No DynamoDB call.
    a.calls.reset();
    expect(await a.shop.product('p1')).toBe('p1@v1');
    expect((await a.shop.orders('c1')).version).toBe(1);
    expect(a.calls.counts).toEqual({});
    expect(a.shop.calls).toEqual({ product: 1, orders: 2, rate: 1 });

    // B: the tagged entries are misses at once; the others are still L1 hits.
    expect(await b.cache.lookup(PRODUCT, ['p1'])).toEqual({ hit: false });
    expect(await b.cache.lookup(ORDERS, ['c1'])).toEqual({ hit: false });
    // (Each an L1 hit; one may be revalidated first if its l1MaxAge ran out meanwhile, which
    // reads its t and markers, not its value.)
    b.calls.reset();
    const bL1Hits = b.cache.stats().total.l1Hits;
    expect((await b.shop.orders('c2')).version).toBe(1);
    expect(await b.shop.rate('EUR')).toBe('EUR@v1');
    expect(b.cache.stats().total.l1Hits).toBe(bL1Hits + 2);
    expect(b.calls.get('GetItem') + b.calls.get('PutItem')).toBe(0);
    expect(b.shop.calls).toEqual({ product: 0, orders: 0, rate: 0 });

    // The entries are still in the table, older than the markers, which hold only their time.
    const items = await itemsByKey(table);
    const markerX = items.get('#tag:x#');
    const markerY = items.get('#tag:y#');
    expect(Object.keys(markerX ?? {}).sort()).toEqual(['cache_key', 't']);
    expect(Object.keys(markerY ?? {}).sort()).toEqual(['cache_key', 't']);
    expect(markerX?.t?.N).toBe(markerY?.t?.N); // one deleteByTag, one time
    const p1 = items.get(keyOf(PRODUCT, 'p1'));
    const c1 = items.get(keyOf(ORDERS, 'c1'));
    expect(p1?.v?.B).toBeDefined();
    expect(p1?.g?.SS).toEqual(['x']);
    expect(c1?.v?.B).toBeDefined();
    expect([...(c1?.g?.SS ?? [])].sort()).toEqual(['customer:c1', 'y']);
    expect(Number(p1?.t?.N)).toBeLessThan(Number(markerX?.t?.N));
    expect(Number(c1?.t?.N)).toBeLessThan(Number(markerY?.t?.N));
    expect(items.size).toBe(6); // four entries, two markers

    // A fresh application C misses too: its first L2 read finds the item, then reads the markers.
    const c = await app(table);
    c.calls.reset();
    expect(await c.cache.lookup(PRODUCT, ['p1'])).toEqual({ hit: false });
    expect(c.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
    expect(await c.cache.lookup(ORDERS, ['c1'])).toEqual({ hit: false });
    expect(await c.cache.lookup(ORDERS, ['c2'])).toEqual({
      hit: true,
      value: { customer: 'c2', tier: 'w', version: 1 },
    });
    expect(await c.cache.lookup(RATE, ['EUR'])).toEqual({ hit: true, value: 'EUR@v1' });

    // Past A's l1MaxAge: an invalidated entry costs one BatchGetItem (its t and markers), then the
    // miss path (GetItem, the method, PutItem).
    await sleep(1100);
    a.calls.reset();
    expect(await a.shop.product('p1')).toBe('p1@v2');
    expect(a.calls.counts).toEqual({ BatchGetItem: 1, GetItem: 1, PutItem: 1 });
    expect(a.shop.calls.product).toBe(2);
    expect((await a.shop.orders('c1')).version).toBe(2);
    expect(a.shop.calls.orders).toBe(3);
    // An unchanged entry: one BatchGetItem, no GetItem, served as an L1 hit without calling the method.
    a.calls.reset();
    const l1Hits = a.cache.stats().total.l1Hits;
    expect((await a.shop.orders('c2')).version).toBe(1);
    expect(a.calls.counts).toEqual({ BatchGetItem: 1 });
    expect(a.cache.stats().total.l1Hits).toBe(l1Hits + 1);
    expect(await a.shop.rate('EUR')).toBe('EUR@v1');
    expect(a.shop.calls).toEqual({ product: 2, orders: 3, rate: 1 });
  });

  it('clear(ns) in B: one PutItem; that namespace misses in B at once and in A within l1MaxAge; other namespaces untouched', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    expect(await a.shop.rate('EUR')).toBe('EUR@v1');
    expect(await b.shop.rate('EUR')).toBe('EUR@v1');
    for (const id of ['p1', 'p2']) expect(await a.shop.product(id)).toBe(`${id}@v1`);
    for (const id of ['p1', 'p2']) expect(await b.shop.product(id)).toBe(`${id}@v1`);
    expect(b.cache.stats().total.l2Hits).toBe(3);

    world.version = 2;
    b.calls.reset();
    await b.cache.clear(PRODUCT);
    expect(b.calls.counts).toEqual({ PutItem: 1 });

    // A, within its l1MaxAge, still serves its L1 value (the bound), reading nothing.
    a.calls.reset();
    expect(await a.shop.product('p1')).toBe('p1@v1');
    expect(a.calls.counts).toEqual({});

    // The marker holds only its time; the entries stay, older than it.
    const items = await itemsByKey(table);
    const marker = items.get(`#ns:${PRODUCT}#`);
    expect(Object.keys(marker ?? {}).sort()).toEqual(['cache_key', 't']);
    expect(Number(items.get(keyOf(PRODUCT, 'p1'))?.t?.N)).toBeLessThan(Number(marker?.t?.N));

    // B: every entry of the namespace is a miss at once; the other namespace still hits L1.
    expect(await b.cache.lookup(PRODUCT, ['p1'])).toEqual({ hit: false });
    expect(await b.cache.lookup(PRODUCT, ['p2'])).toEqual({ hit: false });
    b.calls.reset();
    const bL1Hits = b.cache.stats().total.l1Hits;
    expect(await b.shop.rate('EUR')).toBe('EUR@v1');
    expect(b.cache.stats().total.l1Hits).toBe(bL1Hits + 1); // (revalidated, if its l1MaxAge ran out)
    expect(b.calls.get('GetItem') + b.calls.get('PutItem')).toBe(0);

    // A, past its l1MaxAge: misses.
    await sleep(1100);
    expect(await a.shop.product('p1')).toBe('p1@v2');
    expect(await a.shop.product('p2')).toBe('p2@v2');
    expect(a.shop.calls.product).toBe(4);
    a.calls.reset();
    expect(await a.shop.rate('EUR')).toBe('EUR@v1');
    expect(a.calls.counts).toEqual({ BatchGetItem: 1 });
    expect(a.shop.calls.rate).toBe(1);
    expect(b.shop.calls.rate).toBe(0);
  });

  it('clear(ns) in A while A computes an entry of it: the result is returned, but kept in neither L1 nor a form readers accept', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const g = gate();
    a.shop.gates.set('p3', g.promise);
    const computing = a.shop.product('p3');
    await until(() => a.shop.started.has('p3'), 'the computation of p3 to begin');
    await sleep(5); // the clear's time is later than the computation's start
    await a.cache.clear(PRODUCT);
    world.version = 2;
    g.open();
    expect(await computing).toBe('p3@v1'); // its caller still gets its result
    await settle();

    // DynamoDB holds no item a reader accepts: none, or one older than the clear.
    const items = await itemsByKey(table);
    const markerT = Number(items.get(`#ns:${PRODUCT}#`)?.t?.N);
    const p3 = items.get(keyOf(PRODUCT, 'p3'));
    expect(p3 === undefined || Number(p3.t?.N) < markerT).toBe(true);
    const c = await app(table);
    expect(await c.cache.lookup(PRODUCT, ['p3'])).toEqual({ hit: false });

    // Nor is it in A's L1: A looks it up in DynamoDB, and the next call recomputes.
    a.calls.reset();
    expect(await a.cache.lookup(PRODUCT, ['p3'])).toEqual({ hit: false });
    expect(a.calls.get('GetItem')).toBe(1);
    expect(await a.shop.product('p3')).toBe('p3@v2');
    expect(a.shop.calls.product).toBe(2);
  });

  it('l1MaxAge 1: B’s delete and set reach A within l1MaxAge; unchanged entries are revalidated with one BatchGetItem', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const jpyFilled = Date.now();
    expect(await a.shop.rate('JPY')).toBe('JPY@v1');
    expect(await a.shop.rate('EUR')).toBe('EUR@v1');
    expect(await a.shop.rate('GBP')).toBe('GBP@v1');

    world.version = 2;
    await b.cache.delete(RATE, ['EUR']);
    await b.cache.set(RATE, ['GBP'], 'GBP set by B');

    // A sees both within l1MaxAge (1 s), polled for at most l1MaxAge + 1 s.
    await eventually(
      async () => [await a.shop.rate('EUR'), await a.shop.rate('GBP')],
      ([eur, gbp]) => eur === 'EUR@v2' && gbp === 'GBP set by B',
      "B's delete and set, in A",
      2000,
    );
    expect(a.shop.calls.rate).toBe(4); // JPY, EUR, GBP, then EUR once more after B's delete

    // JPY, unchanged and past its l1MaxAge (checks come due up to a fifth early, never late):
    // one BatchGetItem, served as an L1 hit.
    await sleep(Math.max(0, jpyFilled + 1050 - Date.now()));
    a.calls.reset();
    const l1Hits = a.cache.stats().total.l1Hits;
    expect(await a.shop.rate('JPY')).toBe('JPY@v1');
    expect(a.calls.counts).toEqual({ BatchGetItem: 1 });
    expect(a.cache.stats().total.l1Hits).toBe(l1Hits + 1);
    expect(a.shop.calls.rate).toBe(4);
    // Valid for another l1MaxAge: the next call reads nothing.
    expect(await a.shop.rate('JPY')).toBe('JPY@v1');
    expect(a.calls.counts).toEqual({ BatchGetItem: 1 });
  });

  it('l1MaxAge null: A keeps serving its L1 value after B’s delete, until the entry’s ttl (the trade-off)', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { l1MaxAge: null });
    const b = await app(table, { l1MaxAge: null });
    let version = 1;
    const quote = (cache: DynamoCacheService) =>
      cache.wrap('quotes', ['q'], async () => `q@v${version}`, { ttl: 4 });
    expect(await quote(a.cache)).toBe('q@v1');
    version = 2;
    await b.cache.delete('quotes', ['q']);
    expect((await scanTable(fx.admin, table))[0]?.v).toBeUndefined(); // B's tombstone

    // Well past what l1MaxAge 1 would have allowed: A still answers from L1, reading nothing.
    await sleep(1500);
    a.calls.reset();
    expect(await quote(a.cache)).toBe('q@v1');
    expect(a.calls.counts).toEqual({});
    // Once the ttl (4 s) is over, A recomputes.
    await eventually(
      () => quote(a.cache),
      (v) => v === 'q@v2',
      'the recomputed quote',
      4000,
    );
    expect(a.calls.get('GetItem')).toBe(1);
  });

  it('a computation started in A before B’s deleteByTag of its tag: its result is returned, its item is not served afterwards', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const g = gate();
    a.shop.gates.set('p9', g.promise);
    const computing = a.shop.product('p9');
    await until(() => a.shop.started.has('p9'), 'the computation of p9 to begin');
    await sleep(5); // the marker's time is later than the computation's start
    await b.cache.deleteByTag('x');
    world.version = 2;
    g.open();
    expect(await computing).toBe('p9@v1');
    await settle();

    // A did write its item, with the time the computation started: older than the marker.
    const items = await itemsByKey(table);
    const p9 = items.get(keyOf(PRODUCT, 'p9'));
    expect(p9?.v?.B).toBeDefined();
    expect(Number(p9?.t?.N)).toBeLessThan(Number(items.get('#tag:x#')?.t?.N));

    // So a fresh application does not serve it: it recomputes.
    const c = await app(table);
    expect(await c.cache.lookup(PRODUCT, ['p9'])).toEqual({ hit: false });
    expect(await c.shop.product('p9')).toBe('p9@v2');
    expect(c.shop.calls.product).toBe(1);
  });
});
