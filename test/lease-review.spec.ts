import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine, type CacheEngineSettings } from '../lib/engine/cache-engine.js';
import { buildCacheKey, DEFAULT_LEASE, encodeKey } from '../lib/index.js';
import { scanTable, sleep } from './support/apps.js';
import { engineSettings } from './support/engine-settings.js';
import { useTestDynamo } from './support/dynamo-server.js';

// The lease protocol's edges: takeovers (of a lease of this engine's, past computeTimeout),
// invalidations (clear, deleteByTag) met by the owner's second look, by a throttled claim's wait
// and by a waiter on an older version's lease, and a throttled claim with a stale value at hand.
// Each was a defect found by review; the controls at the end run the same scenarios
// without the ingredient each needs, to show what the tests single out.

const NS = 'Review.report';
const LEASE_SUFFIX = '#lease';

describe('lease review (dynalite)', () => {
  const fx = useTestDynamo();

  /** One application instance: its own engine and client on `table`. */
  function engine(
    table: string,
    extra: Partial<CacheEngineSettings> = {},
    client: DynamoDBClient = fx.dynamo.client(),
  ): CacheEngine {
    const e = new CacheEngine(engineSettings(client, table, extra));
    fx.apps.push({ close: () => e.close() });
    return e;
  }

  /** A client whose lease claims (UpdateItem on `…#lease`) DynamoDB throttles. */
  function throttledClaims(): DynamoDBClient {
    const client = fx.dynamo.client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: { cache_key?: { S?: string } } }).Key?.cache_key?.S;
        if (context.commandName === 'UpdateItemCommand' && key?.endsWith(LEASE_SUFFIX)) {
          throw Object.assign(new Error('Rate of requests exceeds the allowed throughput'), {
            name: 'ProvisionedThroughputExceededException',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'throttleClaims' },
    );
    return client;
  }

  /** A method: counts its calls, takes `ms`, returns `v{n}` (n = its call number). */
  function method(ms: number): { calls: () => number; fn: (id: string) => Promise<string> } {
    let calls = 0;
    return {
      calls: () => calls,
      fn: async () => {
        const n = ++calls;
        await sleep(ms);
        return `v${n}`;
      },
    };
  }

  it('after clear(), a call with lease on recomputes: the second look with the lease honours the markers', async () => {
    const table = await fx.dynamo.table();
    const e = engine(table);
    const ns = e.namespace(NS);
    const m = method(5);

    expect(await ns.run(null, ['k'], m.fn)).toBe('v1');
    await e.drain();
    await sleep(20); // the clear strictly after the value's t
    await ns.clear();

    // readL2 sees the item as invalidated (a miss), the claim wins, and the consistent look
    // with the lease in hand (leaseAcquired) takes the very same item for a hit.
    expect(await ns.run(null, ['k'], m.fn)).toBe('v2');
    expect(m.calls()).toBe(2);
  });

  it('after deleteByTag(), a fresh process with lease on does not serve the deleted entry', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const m = method(5);
    expect(await a.namespace(NS, { tags: ['t:1'] }).run(null, ['k'], m.fn)).toBe('v1');
    await a.drain();
    await sleep(20);
    await a.deleteByTag(['t:1']);

    const b = engine(table);
    expect(await b.namespace(NS, { tags: ['t:1'] }).run(null, ['k'], m.fn)).toBe('v2');
    expect(m.calls()).toBe(2);
  });

  it('a throttled claim waits for the value item, and never takes an item a clear() invalidated for a hit', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const m = method(5);
    expect(await a.namespace(NS).run(null, ['k'], m.fn)).toBe('v1');
    await a.drain();
    await sleep(20);
    await a.namespace(NS).clear();

    // Another process, whose claims are throttled: its first read finds the item invalidated
    // (a miss), its claim is throttled, so it waits for the value item (awaitValue), whose first
    // look (1-3 s) finds the cleared item and serves it.
    const b = engine(table, { lease: { ...DEFAULT_LEASE, waitMs: 3200 } }, throttledClaims());
    const answer = await b.namespace(NS).run(null, ['k'], m.fn);
    expect(answer).not.toBe('v1');
  });

  it('a throttled claim with a stale value at hand serves it at once, as a held lease does', async () => {
    const table = await fx.dynamo.table();
    const opts = { ttl: 1, grace: 60 };
    const a = engine(table);
    const m = method(5);
    expect(await a.namespace(NS, opts).run(null, ['k'], m.fn)).toBe('v1');
    await a.drain();
    await sleep(1100); // v1 now stale (within grace) in L2

    const b = engine(table, { lease: { ...DEFAULT_LEASE, waitMs: 2000 } }, throttledClaims());
    const started = Date.now();
    const answer = await b.namespace(NS, opts).run(null, ['k'], m.fn);
    const took = Date.now() - started;
    // A held lease with a stale value returns HELD (stale served at once, nothing computed);
    // a throttled one (the key is hot: someone else surely refreshes it) should do no worse.
    expect({ answer, took: took < 500, calls: m.calls() }).toEqual({
      answer: 'v1',
      took: true,
      calls: 1,
    });
  });

  it("a process's own takeover of its earlier lease (after a delete) tells the other processes' waiters at once", async () => {
    const table = await fx.dynamo.table();
    const lease = { ttlMs: 10_000, waitMs: 3000, pollMs: 20 };
    const x = engine(table, { lease });
    const y = engine(table, { lease });
    const m = method(600);

    // X claims and computes (computation A).
    const first = x.namespace(NS).run(null, ['k'], m.fn);
    await sleep(50);
    // Y misses, claims (held, rank 2) and waits for A's copy.
    const yStarted = Date.now();
    const waiter = y.namespace(NS).run(null, ['k'], m.fn);
    await sleep(150);
    // X deletes the key (A may no longer write) and is asked again: a new computation B, whose
    // claim finds X's own lease and takes it over with a PutItem (n reset to 1).
    await x.namespace(NS).delete(['k']);
    const second = x.namespace(NS).run(null, ['k'], m.fn);

    const yAnswer = await waiter;
    const yTook = Date.now() - yStarted;
    await Promise.allSettled([first, second]);
    await Promise.all([x.drain(), y.drain()]);

    // A writes nothing (deleted) and its release fails (the lease is B's): no copy for Y. B's
    // release counts one claim: no copy either. Y waits on A's copy #0 until waitMs, then computes.
    // Expected: Y answered with B's value soon after B wrote it, one computation after the delete.
    expect({ yAnswer, quick: yTook < 2000, calls: m.calls() }).toEqual({
      yAnswer: 'v2',
      quick: true,
      calls: 2,
    });
  });

  it("a computation past computeTimeout superseded by the same process's next call: its takeover tells the other process's waiter at once", async () => {
    const table = await fx.dynamo.table();
    const lease = { ttlMs: 10_000, waitMs: 3000, pollMs: 20 };
    const x = engine(table, { lease, computeTimeout: 400 });
    const y = engine(table, { lease, computeTimeout: 400 });
    let calls = 0;
    // The first computation is slow (past computeTimeout: it writes nothing); later ones are quick.
    const fn = async (): Promise<string> => {
      const n = ++calls;
      await sleep(n === 1 ? 800 : 100);
      return `v${n}`;
    };

    const first = x.namespace(NS).run(null, ['k'], fn);
    await sleep(50);
    const yStarted = Date.now();
    const waiter = y.namespace(NS).run(null, ['k'], fn);
    await sleep(400);
    // Past computeTimeout: X's next call starts computation B, which takes X's own lease over.
    const second = x.namespace(NS).run(null, ['k'], fn);
    expect(await second).toBe('v2');

    const yAnswer = await waiter;
    const yTook = Date.now() - yStarted;
    await first;
    await Promise.all([x.drain(), y.drain()]);
    expect({ yAnswer, quick: yTook < 2000, calls }).toEqual({
      yAnswer: 'v2',
      quick: true,
      calls: 2,
    });
  });

  it("a waiter on an older version's lease (no n, no c) does not serve, once the lease goes, a value a clear() invalidated", async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const m = method(5);
    expect(await a.namespace(NS).run(null, ['k'], m.fn)).toBe('v1');
    await a.drain();
    await sleep(20);
    await a.namespace(NS).clear();
    // An older version's lease on the key, lapsing in 300 ms.
    const until = Date.now() + 300;
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: buildCacheKey('', NS, encodeKey(['k'])) + LEASE_SUFFIX },
          until: { N: String(until) },
          owner: { S: 'old-version-process' },
          exp: { N: String(Math.ceil(until / 1000) + 1) },
        },
      }),
    );

    const b = engine(table, { lease: { ...DEFAULT_LEASE, pollMs: 20 } });
    expect(await b.namespace(NS).run(null, ['k'], m.fn)).toBe('v2');
    expect(m.calls()).toBe(2);
    await b.drain();
    // Nothing left behind but the value, the marker and (nobody waited) no copies.
    const keys = (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S!);
    expect(keys.filter((k) => k.endsWith(LEASE_SUFFIX))).toEqual([]);
  });

  // Controls: the same scenarios without the ingredient each edge needs.

  it('control: without lease, clear() makes the next call recompute', async () => {
    const table = await fx.dynamo.table();
    const e = engine(table, { lease: false });
    const ns = e.namespace(NS);
    const m = method(5);
    expect(await ns.run(null, ['k'], m.fn)).toBe('v1');
    await e.drain();
    await sleep(20);
    await ns.clear();
    expect(await ns.run(null, ['k'], m.fn)).toBe('v2');
  });

  it('control: a held (not throttled) lease with a stale value at hand serves it at once', async () => {
    const table = await fx.dynamo.table();
    const opts = { ttl: 1, grace: 60 };
    const a = engine(table);
    const m = method(800);
    expect(await a.namespace(NS, opts).run(null, ['k'], m.fn)).toBe('v1');
    await a.drain();
    await sleep(1100);
    const refresh = a.namespace(NS, opts).run(null, ['k'], m.fn); // a holds the lease
    await sleep(100);
    const b = engine(table);
    const started = Date.now();
    expect(await b.namespace(NS, opts).run(null, ['k'], m.fn)).toBe('v1');
    expect(Date.now() - started).toBeLessThan(500);
    await refresh;
    expect(m.calls()).toBe(2);
  });

  it('control: the same delete without the second call on X: Y is answered quickly (failure copy, then claims)', async () => {
    const table = await fx.dynamo.table();
    const lease = { ttlMs: 10_000, waitMs: 3000, pollMs: 20 };
    const x = engine(table, { lease });
    const y = engine(table, { lease });
    const m = method(600);
    const first = x.namespace(NS).run(null, ['k'], m.fn);
    await sleep(50);
    const yStarted = Date.now();
    const waiter = y.namespace(NS).run(null, ['k'], m.fn);
    await sleep(150);
    await x.namespace(NS).delete(['k']);
    const yAnswer = await waiter;
    const yTook = Date.now() - yStarted;
    await first;
    expect(yAnswer).toBe('v2');
    expect(yTook).toBeLessThan(2000);
  });
});
