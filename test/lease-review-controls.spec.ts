import { type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine, type CacheEngineSettings } from '../lib/engine/cache-engine.js';
import { DEFAULT_LEASE, v8Serializer } from '../lib/index.js';
import { sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

// Controls for test/lease-review.spec.ts: the same scenarios without the one ingredient each edge
// needs (no second call, no lease, a held lease rather than a throttled claim).

const NS = 'Review.report';
const quiet = { warn: () => undefined, error: () => undefined };

describe('lease review controls (dynalite)', () => {
  const fx = useTestDynamo();

  function engine(
    table: string,
    extra: Partial<CacheEngineSettings> = {},
    client: DynamoDBClient = fx.dynamo.client(),
  ): CacheEngine {
    const e = new CacheEngine({
      client: () => client,
      table,
      ttl: 3600,
      maxsize: 1000,
      keyPrefix: '',
      onError: 'bypass',
      serializer: v8Serializer,
      consistentRead: false,
      logger: quiet,
      circuitBreaker: false,
      lease: { ...DEFAULT_LEASE },
      ...extra,
    });
    fx.apps.push({ close: () => e.close() });
    return e;
  }

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

  it('control D: without lease, clear() makes the next call recompute', async () => {
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

  it('control B: a held (not throttled) lease with a stale value at hand serves it at once', async () => {
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

  it('control A: the same delete without the second call on X: Y is answered quickly (failure copy, then claims)', async () => {
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
