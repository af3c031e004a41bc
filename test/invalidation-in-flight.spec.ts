import { DynamoCacheService, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { until } from './support/waits.js';

/*
 * Invalidations that meet a computation in flight or a stale copy in another process: two
 * application contexts (A and B) on one table. An invalidation is never undone by a computation
 * that began before it, and a copy in L1 is never served past l1MaxAge after an invalidation
 * elsewhere without a look at DynamoDB, as stale as it may be.
 */

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('invalidations and computations in flight, stale copies elsewhere', () => {
  const fx = useTestDynamo();

  async function app(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    const ref = await bootCache({ table, client: fx.dynamo.client(), ttl: 600, ...options }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it.each(['expire', 'delete'] as const)(
    "%s in B of a key with no item yet, while A computes it: A's result is not served afterwards",
    async (invalidation) => {
      const table = await fx.dynamo.table();
      const a = await app(table);
      const b = await app(table);
      const g = gate();
      let started = false;
      const computing = a.wrap('ns', ['k'], async () => {
        started = true;
        await g.promise;
        return 'old';
      });
      await until(() => started, 'A computing');
      await sleep(20);
      // Computations of the key in flight, here or elsewhere, write nothing.
      await b[invalidation]('ns', ['k']);
      g.open();
      expect(await computing).toBe('old');
      await a.settle();
      // B (which never held the value) recomputes.
      expect(await b.wrap('ns', ['k'], async () => 'new')).toBe('new');
    },
  );

  it.each(['clear', 'deleteByTag'])(
    '%s in B while A computes: A no longer serves the covered result from L1 once l1MaxAge has passed since the invalidation',
    async (kind) => {
      const table = await fx.dynamo.table();
      const opts = { l1MaxAge: 1 };
      const a = await app(table, opts);
      const b = await app(table, opts);
      const g = gate();
      let started = false;
      const nsOpts = { tags: ['t1'] };
      const computing = a.wrap(
        'ns',
        ['k'],
        async () => {
          started = true;
          await g.promise;
          return 'old';
        },
        nsOpts,
      );
      await until(() => started, 'A computing');
      await sleep(20);
      const invalidatedAt = Date.now();
      if (kind === 'clear') await b.clear('ns');
      else await b.deleteByTag('t1');
      await sleep(1500); // past l1MaxAge (1 s) since the invalidation
      g.open();
      expect(await computing).toBe('old');
      const late = Date.now() - invalidatedAt;
      const got = await a.wrap('ns', ['k'], async () => 'new', nsOpts);
      expect({ late: late > 1000, got }).toEqual({ late: true, got: 'new' });
    },
  );

  it('timeout 0: a stale L1 copy deleted in the other app more than l1MaxAge ago is not served while the method fails', async () => {
    const table = await fx.dynamo.table();
    const opts = { grace: 3600, timeout: 0, l1MaxAge: 1 };
    const a = await app(table, opts);
    const b = await app(table, opts);
    const nsOpts = { ttl: 1 };
    expect(await b.wrap('q', ['x'], async () => 'v1', nsOpts)).toBe('v1');
    await sleep(1200); // past ttl, within grace
    await a.delete('q', ['x']);
    await sleep(1500); // past l1MaxAge since the delete
    const fail = async (): Promise<string> => {
      throw new Error('upstream down');
    };
    const seen: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        seen.push(await b.wrap('q', ['x'], fail, nsOpts));
      } catch (err) {
        seen.push((err as Error).message);
      }
      await b.settle();
    }
    expect(seen).not.toContain('v1');
  });

  it('graceBackoff: a stale value deleted in A is not served by B once l1MaxAge has passed, backoff or not', async () => {
    const table = await fx.dynamo.table();
    const opts = { grace: 3600, graceBackoff: 10, l1MaxAge: 1 };
    const a = await app(table, opts);
    const b = await app(table, opts);
    const ns = { ttl: 1 };
    const fail = async (): Promise<string> => {
      throw new Error('upstream down');
    };
    expect(await b.wrap('q', ['x'], async () => 'v1', ns)).toBe('v1');
    await sleep(1200);
    expect(await b.wrap('q', ['x'], fail, ns)).toBe('v1'); // stale, legitimately; backoff begins
    await a.delete('q', ['x']);
    await sleep(1500); // past l1MaxAge since the delete
    let got: unknown;
    try {
      got = await b.wrap('q', ['x'], fail, ns);
    } catch (err) {
      got = (err as Error).message;
    }
    expect(got).not.toBe('v1');
  });
});
