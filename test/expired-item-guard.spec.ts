import { DynamoCacheService, buildCacheKey, encodeKey } from '../lib/index.js';
import { bootCache, scanTable, sleep } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * An item left by `expire` or by `set` with its own ttl is what refuses computations that started
 * before it. A reader (or DynamoDB's TTL) that removed it as soon as it was past its expiry let
 * such a computation, still running elsewhere, write its older result as fresh.
 */
describe(`expired items keep refusing older computations (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const keyOf = (namespace: string, args: readonly unknown[]): string =>
    buildCacheKey('', namespace, encodeKey(args));

  async function app(table: string) {
    const ref = await bootCache({ table, client: fx.dynamo.client() }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  function gate(): { wait: Promise<void>; open: () => void } {
    let open!: () => void;
    const wait = new Promise<void>((resolve) => (open = resolve));
    return { wait, open };
  }

  /** A and B miss one cold key together, A's computation first; A writes v1. */
  async function aWritesWhileBComputes(a: DynamoCacheService, b: DynamoCacheService) {
    const opts = { ttl: 3600 };
    const gateA = gate();
    const gateB = gate();
    const pa = a.wrap(
      'report',
      ['k'],
      async () => {
        await gateA.wait;
        return 'v1';
      },
      opts,
    );
    await sleep(20);
    const pb = b.wrap(
      'report',
      ['k'],
      async () => {
        await gateB.wait;
        return 'computed before the invalidation';
      },
      opts,
    );
    await sleep(20);
    gateA.open();
    expect(await pa).toBe('v1');
    await a.settle();
    return { pb, releaseB: gateB.open };
  }

  /**
   * A writes, `invalidate` runs in A while B's computation (begun before it) goes on, C reads the
   * key past the invalidation's expiry: B must write nothing, and the item must stay for
   * DynamoDB's TTL at least the tombstone lifetime (an hour) after `guardOf(item)`.
   */
  async function olderComputationRefused(
    invalidate: (a: DynamoCacheService) => Promise<void>,
    guardOf: (item: Record<string, { N?: string }>) => number,
  ): Promise<void> {
    const table = await fx.dynamo.table();
    const [a, b, c] = [await app(table), await app(table), await app(table)];
    const { pb, releaseB } = await aWritesWhileBComputes(a, b);
    await invalidate(a);
    // C finds the item past its expiry: a miss, and it must leave the item in place.
    expect(await c.lookup('report', ['k'])).toEqual({ hit: false });
    releaseB();
    expect(await pb).toBe('computed before the invalidation');
    await b.settle();
    expect(b.stats().total.l2Refused).toBe(1);
    const fresh = await app(table);
    expect(await fresh.lookup('report', ['k'])).toEqual({ hit: false });
    const [item] = (await scanTable(fx.admin, table)).filter(
      (i) => i.cache_key?.S === keyOf('report', ['k']),
    );
    expect(Number(item?.exp?.N)).toBeGreaterThanOrEqual(guardOf(item!) + 3600);
  }

  it('expire (no grace) in A while B computes, then C reads the key: B still writes nothing', () =>
    olderComputationRefused(
      (a) => a.expire('report', ['k']),
      (item) => Number(item.x?.N),
    ));

  it('set with a short ttl of its own in A while B computes, read by C after that ttl: B still writes nothing', () =>
    olderComputationRefused(
      async (a) => {
        await a.set('report', ['k'], 'set by A', { ttl: 1 });
        await sleep(1100);
      },
      (item) => Number(item.t?.N),
    ));

  it('a computed entry past its expiry is still deleted by the reader that finds it (nothing to guard)', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    expect(await a.wrap('short', ['k'], async () => 'v', { ttl: 1 })).toBe('v');
    await a.settle();
    await sleep(1100);
    const c = await app(table);
    expect(await c.lookup('short', ['k'])).toEqual({ hit: false });
    const left = (await scanTable(fx.admin, table)).filter(
      (i) => i.cache_key?.S === keyOf('short', ['k']),
    );
    expect(left).toEqual([]);
    expect(c.stats().total.l2Deletes).toBe(1);
  });

  it('a new computation after the expire replaces the kept item as usual', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    expect(await a.wrap('report', ['k'], async () => 'v1', { ttl: 3600 })).toBe('v1');
    await a.settle();
    await a.expire('report', ['k']);
    expect(await b.wrap('report', ['k'], async () => 'v2', { ttl: 3600 })).toBe('v2');
    await b.settle();
    const fresh = await app(table);
    expect(await fresh.lookup('report', ['k'])).toEqual({ hit: true, value: 'v2' });
  });
});
