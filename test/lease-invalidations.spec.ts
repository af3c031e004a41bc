import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine, type CacheEngineSettings } from '../lib/engine/cache-engine.js';
import { buildCacheKey, DEFAULT_LEASE, encodeKey } from '../lib/index.js';
import { sleep } from './support/apps.js';
import { engineSettings } from './support/engine-settings.js';
import { useTestDynamo } from './support/dynamo-server.js';

const NS = 'Reports.report';

describe('the lease meets invalidations and takeovers (dynalite)', () => {
  const fx = useTestDynamo();

  function engine(
    table: string,
    extra: Partial<CacheEngineSettings> = {},
    client: DynamoDBClient = fx.dynamo.client(),
  ): CacheEngine {
    const e = new CacheEngine(
      engineSettings(client, table, { lease: { ...DEFAULT_LEASE, pollMs: 20 }, ...extra }),
    );
    fx.apps.push({ close: () => e.close() });
    return e;
  }

  /** A client whose lease release (DeleteItem on `…#lease`) takes `ms` longer. */
  function slowRelease(ms: number): DynamoDBClient {
    const client = fx.dynamo.client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: { cache_key?: { S?: string } } }).Key?.cache_key?.S;
        if (context.commandName === 'DeleteItemCommand' && key?.endsWith('#lease')) await sleep(ms);
        return next(args);
      },
      { step: 'initialize', name: 'slowRelease' },
    );
    return client;
  }

  function method(ms: number): { calls: () => number; fn: () => Promise<string> } {
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

  it.each(['delete', 'expire'] as const)(
    'a waiter that asked after a %s() (no grace) never gets the value it removed through a lease copy',
    async (invalidation) => {
      const table = await fx.dynamo.table();
      const x = engine(table, {}, slowRelease(800));
      const y = engine(table);
      const z = engine(table);
      const m = method(100);

      // X computes v1, writes it, and is slow to give its lease back.
      expect(await x.namespace(NS).run(null, ['k'], m.fn)).toBe('v1');
      await sleep(20);
      // Another process invalidates the key: a tombstone, or an expiry, newer than v1.
      await z.namespace(NS)[invalidation](['k']);
      await sleep(20);
      // Y asks after it: its read finds no value, its claim finds X's lease.
      const yAnswer = await y.namespace(NS).run(null, ['k'], m.fn);
      await Promise.all([x.drain(), y.drain(), z.drain()]);
      // Y recomputes (v2): v1 is never served again.
      expect(yAnswer).toBe('v2');
    },
  );

  it('after a delete() during a leased computation, the waiters that asked before it do not each recompute in turn', async () => {
    const table = await fx.dynamo.table();
    const lease = { ttlMs: 10_000, waitMs: 8000, pollMs: 20 };
    const x = engine(table, { lease });
    const ys = [engine(table, { lease }), engine(table, { lease }), engine(table, { lease })];
    const z = engine(table, { lease });
    const m = method(300);

    const first = x.namespace(NS).run(null, ['k'], m.fn); // X wins the lease
    await sleep(30);
    const waiters = ys.map((y) => y.namespace(NS).run(null, ['k'], m.fn)); // they wait on X
    await sleep(100);
    await z.namespace(NS).delete(['k']); // X's value may no longer be written
    const answers = await Promise.all([first, ...waiters]);
    await Promise.all([x.drain(), z.drain(), ...ys.map((y) => y.drain())]);
    const computedDuringWait = m.calls();

    // A process asking now should find a value (one of the recomputations after the delete).
    const fresh = engine(table, { lease });
    const later = await fresh.namespace(NS).run(null, ['k'], m.fn);
    expect(later).toBe(answers[1]);
    // Expected: X's computation (refused by the delete) + one recomputation shared by the
    // waiters, which is stored, so the later caller gets a hit.
    expect({ computedDuringWait, laterComputed: m.calls() > computedDuringWait }).toEqual({
      computedDuringWait: 2,
      laterComputed: false,
    });
  });

  it("a takeover's late 'failed' copies for the lapsed owner do not overwrite the new owner's value copies", async () => {
    const table = await fx.dynamo.table();
    const lease = { ttlMs: 10_000, waitMs: 4000, pollMs: 50 };
    // T's copies saying "the lapsed owner left no value" reach DynamoDB late (as throttled ones
    // retried with back-off do): held back 900 ms, whichever call writes them (a PutItem each, or
    // a BatchWriteItem), so they land after T's own value copy.
    const slowFailed = fx.dynamo.client();
    slowFailed.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as {
          Item?: Record<string, unknown>;
          RequestItems?: Record<string, { PutRequest?: { Item: Record<string, unknown> } }[]>;
        };
        const items = [
          ...(input.Item === undefined ? [] : [input.Item]),
          ...Object.values(input.RequestItems ?? {})
            .flat()
            .map((r) => r.PutRequest?.Item ?? {}),
        ];
        const writes = ['PutItemCommand', 'BatchWriteItemCommand'].includes(
          String(context.commandName),
        );
        if (writes && items.some((item) => item.f !== undefined)) await sleep(900);
        return next(args);
      },
      { step: 'initialize', name: 'lateFailedCopies' },
    );
    const t = engine(table, { lease }, slowFailed);
    const w2 = engine(table, { lease: { ...lease, pollMs: 1000 } });
    const m = method(650);

    // A lease left by a crashed process of this version (it writes copies), lapsing in 300 ms.
    const until = Date.now() + 300;
    const dead = 'dead-engine#' + NS + '#1';
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: buildCacheKey('', NS, encodeKey(['k'])) + '#lease' },
          until: { N: String(until) },
          owner: { S: dead },
          c: { S: dead },
          n: { N: '1' },
          exp: { N: String(Math.ceil(until / 1000) + 1) },
        },
      }),
    );
    await sleep(400);
    const owner = t.namespace(NS).run(null, ['k'], m.fn); // takes it over, computes 1 s
    await sleep(100);
    const w2Started = Date.now();
    const a2 = w2.namespace(NS).run(null, ['k'], m.fn); // waits on T's lease
    const answers = await Promise.all([owner, a2]);
    const w2Took = Date.now() - w2Started;
    await Promise.all([t.drain(), w2.drain()]);
    expect(answers).toEqual(['v1', 'v1']);
    expect({ calls: m.calls(), w2Quick: w2Took < 2500 }).toEqual({ calls: 1, w2Quick: true });
  });

  /** A client that counts (and, with `fail`, refuses) its reads of clear or tag markers. */
  function markerReads(fail = false): { client: DynamoDBClient; reads: () => number } {
    const client = fx.dynamo.client();
    let reads = 0;
    client.middlewareStack.add(
      (next) => async (args) => {
        if (JSON.stringify(args.input).includes('"#ns:')) {
          reads++;
          if (fail)
            throw Object.assign(new Error('marker read refused'), { name: 'InternalServerError' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'markerReads' },
    );
    return { client, reads: () => reads };
  }

  it("a computation longer than l1MaxAge: the waiters (fresh processes) take the owner's copies without reading the markers; the owner reads them once", async () => {
    const table = await fx.dynamo.table();
    const opts = { l1MaxAge: 1, lease: { ttlMs: 10_000, waitMs: 8000, pollMs: 20 } };
    const owner = markerReads();
    const x = engine(table, opts, owner.client);
    const m = method(1500);
    const computing = x.namespace(NS).run(null, ['k'], m.fn);
    await sleep(100);
    const waiters = [markerReads(), markerReads(), markerReads()];
    const answers = await Promise.all([
      computing,
      ...waiters.map((w) => engine(table, opts, w.client).namespace(NS).run(null, ['k'], m.fn)),
    ]);
    await x.drain();
    expect(answers).toEqual(['v1', 'v1', 'v1', 'v1']);
    expect(m.calls()).toBe(1);
    expect({ owner: owner.reads(), waiters: waiters.map((w) => w.reads()) }).toEqual({
      owner: 1,
      waiters: [0, 0, 0],
    });
  });

  it("when the owner cannot read the markers before its copies of a result begun more than l1MaxAge ago, the copies say there is no value: the waiter claims again and gets the value, and the owner's caller its result", async () => {
    const table = await fx.dynamo.table();
    const opts = { l1MaxAge: 1, lease: { ttlMs: 10_000, waitMs: 8000, pollMs: 20 } };
    const owner = markerReads(true);
    const x = engine(table, opts, owner.client);
    const waiter = markerReads();
    const y = engine(table, opts, waiter.client);
    const m = method(1100);
    const computing = x.namespace(NS).run(null, ['k'], m.fn);
    await sleep(100);
    const waited = y.namespace(NS).run(null, ['k'], m.fn);
    expect(await Promise.all([computing, waited])).toEqual(['v1', 'v1']);
    await Promise.all([x.drain(), y.drain()]);
    expect(m.calls()).toBe(1);
    expect(owner.reads()).toBe(1);
    expect(x.stats().total.l2Errors).toBe(1);
    // The waiter read the markers itself: with the lease it won after the "no value" copy.
    expect(waiter.reads()).toBe(1);
  });

  it('when no process can read the markers (throttled, refused), a result begun within l1MaxAge still reaches the waiters: one computation, not one per waiter in turn', async () => {
    const table = await fx.dynamo.table();
    const lease = { ttlMs: 10_000, waitMs: 8000, pollMs: 20 };
    const x = engine(table, { lease }, markerReads(true).client);
    const ys = [0, 1, 2].map(() => engine(table, { lease }, markerReads(true).client));
    const m = method(300);
    const computing = x.namespace(NS).run(null, ['k'], m.fn);
    await sleep(50);
    const answers = await Promise.all([
      computing,
      ...ys.map((y) => y.namespace(NS).run(null, ['k'], m.fn)),
    ]);
    await Promise.all([x.drain(), ...ys.map((y) => y.drain())]);
    // The copies said "no value" before: each waiter claimed again, and the one that won
    // computed (its own look at the markers failed too) and wrote "no value" copies in turn.
    expect({ answers, calls: m.calls() }).toEqual({ answers: ['v1', 'v1', 'v1', 'v1'], calls: 1 });
  });

  it("drain waits for the copies while the owner's marker read is retried (its keys left unprocessed, as a throttled marker key's are)", async () => {
    const table = await fx.dynamo.table();
    const lease = { ttlMs: 10_000, waitMs: 8000, pollMs: 20 };
    // The owner's marker BatchGetItem comes back unprocessed five times: its retries wait
    // 50 + 100 + 200 + 400 + 800 ms, longer than one call's shutdown bound (l2Timeout 600 +
    // 100 ms), which leaves each call room on a loaded machine.
    const client = fx.dynamo.client();
    let unprocessed = 0;
    let copiesSent = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { RequestItems?: Record<string, unknown> };
        if (
          context.commandName === 'BatchGetItemCommand' &&
          JSON.stringify(input).includes('"#ns:') &&
          unprocessed < 5
        ) {
          unprocessed++;
          return {
            output: { Responses: {}, UnprocessedKeys: input.RequestItems, $metadata: {} },
            response: {},
          } as never;
        }
        if (context.commandName === 'BatchWriteItemCommand') copiesSent = true;
        return next(args);
      },
      { step: 'initialize', name: 'unprocessedMarkers' },
    );
    const x = engine(table, { lease, l2Timeout: 600 }, client);
    const y = engine(table, { lease });
    const m = method(300);
    const computing = x.namespace(NS).run(null, ['k'], m.fn);
    await sleep(100);
    const waited = y.namespace(NS).run(null, ['k'], m.fn);
    expect(await computing).toBe('v1');
    await x.drain(); // as a shutdown does, before the process exits
    const sentWhenDrained = copiesSent;
    expect(await waited).toBe('v1');
    expect({ unprocessed, sentWhenDrained, calls: m.calls() }).toEqual({
      unprocessed: 5,
      sentWhenDrained: true,
      calls: 1,
    });
  });

  it("the owner's marker read sees a clear made before a waiter asked where eventually consistent reads lag behind (DynamoDB)", async () => {
    const table = await fx.dynamo.table();
    // The owner's replica has not caught up with the marker yet: an eventually consistent read of
    // it answers as before the clear, as DynamoDB may for a write made a moment ago (dynalite
    // reads are all consistent). A strongly consistent read sees it.
    const lagging = fx.dynamo.client();
    lagging.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as {
          RequestItems?: Record<string, { ConsistentRead?: boolean }>;
        };
        const consistent = Object.values(input.RequestItems ?? {}).every(
          (r) => r.ConsistentRead === true,
        );
        if (
          context.commandName === 'BatchGetItemCommand' &&
          JSON.stringify(input).includes('"#ns:') &&
          !consistent
        ) {
          return { output: { Responses: {}, $metadata: {} }, response: {} } as never;
        }
        return next(args);
      },
      { step: 'initialize', name: 'laggingReplica' },
    );
    const x = engine(table, {}, lagging);
    const y = engine(table);
    const z = engine(table);
    const m = method(300);
    const first = x.namespace(NS).run(null, ['k'], m.fn); // X computes v1
    await sleep(100);
    await z.namespace(NS).clear(); // covers v1
    await sleep(20);
    const waited = y.namespace(NS).run(null, ['k'], m.fn); // Y asks after the clear: waits on X
    expect(await Promise.all([first, waited])).toEqual(['v1', 'v2']);
  });

  it('control: without the slow release, the waiter after a delete recomputes', async () => {
    const table = await fx.dynamo.table();
    const x = engine(table);
    const y = engine(table);
    const z = engine(table);
    const m = method(100);
    expect(await x.namespace(NS).run(null, ['k'], m.fn)).toBe('v1');
    await x.drain();
    await z.namespace(NS).delete(['k']);
    expect(await y.namespace(NS).run(null, ['k'], m.fn)).toBe('v2');
  });
});
