import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoCacheService, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { MemoryBus } from './support/memory-bus.js';
import { gate } from './support/shop-fixture.js';
import { until } from './support/waits.js';

/*
 * Invalidations across applications on one table, second reading: what an invalidation that has
 * returned (or reached this application over the bus) leaves served afterwards, when it met a
 * computation, a write or a fallback of the key half-way.
 */

/**
 * Holds the value `PutItem`s of `client` (items with a value `v`) sent after `hold()`, until
 * `release()`: a fill's write on its way to DynamoDB for as long as a test needs.
 */
function holdValueWrites(client: DynamoDBClient): {
  hold(): void;
  readonly waiting: number;
  release(): void;
} {
  let holding = false;
  let gateOpen: (() => void) | undefined;
  let gatePromise: Promise<void> | undefined;
  let waiting = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Item?: { v?: unknown } };
      if (holding && context.commandName === 'PutItemCommand' && input.Item?.v !== undefined) {
        waiting++;
        await gatePromise;
      }
      return next(args);
    },
    { step: 'initialize', name: 'holdValueWrites' },
  );
  return {
    hold() {
      holding = true;
      gatePromise = new Promise<void>((resolve) => (gateOpen = resolve));
    },
    get waiting() {
      return waiting;
    },
    release() {
      holding = false;
      gateOpen?.();
    },
  };
}

describe('invalidation across applications, second reading', () => {
  const fx = useTestDynamo();

  async function app(
    table: string,
    options: Partial<DynamoCacheModuleOptions> = {},
    client: DynamoDBClient = fx.dynamo.client(),
  ): Promise<DynamoCacheService> {
    const ref = await bootCache({ table, client, ttl: 600, ...options }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it.each([
    ['clear', 'in this application'],
    ['deleteByTag', 'in this application'],
    ['clear', 'in the other, over the bus'],
    ['deleteByTag', 'in the other, over the bus'],
  ] as const)(
    "%s made %s while A's fill of an entry is on its way to DynamoDB: A does not serve the covered result afterwards",
    async (kind, where) => {
      const table = await fx.dynamo.table();
      const hub = new Set<MemoryBus>();
      const client = fx.dynamo.client();
      const writes = holdValueWrites(client);
      const a = await app(table, { bus: new MemoryBus(hub) }, client);
      const b = await app(table, { bus: new MemoryBus(hub) });
      const nsOpts = { tags: ['t1'] };
      writes.hold();
      const computing = a.wrap('ns', ['k'], async () => 'old', nsOpts);
      await until(() => writes.waiting === 1, "A's fill to reach DynamoDB");
      await sleep(5); // the invalidation's time is later than the computation's start
      const invalidator = where === 'in this application' ? a : b;
      if (kind === 'clear') await invalidator.clear('ns');
      else await invalidator.deleteByTag('t1');
      writes.release();
      expect(await computing).toBe('old'); // its caller still gets its result
      await a.settle();
      // Afterwards: recomputed, in A (where the invalidation is known) as in B.
      expect(await a.wrap('ns', ['k'], async () => 'new', nsOpts)).toBe('new');
      expect(await b.wrap('ns', ['k'], async () => 'new', nsOpts)).toBe('new');
    },
  );

  it.each([
    ['clear', 'in this application'],
    ['deleteByTag', 'in this application'],
    ['clear', 'in the other, over the bus'],
    ['deleteByTag', 'in the other, over the bus'],
  ] as const)(
    '%s made %s while A recomputes a stale value found in DynamoDB and fails: graceBackoff does not serve the covered value afterwards',
    async (kind, where) => {
      const table = await fx.dynamo.table();
      const hub = new Set<MemoryBus>();
      const opts = { grace: 3600, graceBackoff: 30, bus: new MemoryBus(hub) };
      const a = await app(table, opts);
      const b = await app(table, { ...opts, bus: new MemoryBus(hub) });
      const nsOpts = { ttl: 1, tags: ['t1'] };
      // B computes the value; A never held it, so A finds it stale in DynamoDB.
      expect(await b.wrap('ns', ['k'], async () => 'v1', nsOpts)).toBe('v1');
      await sleep(1200); // past its ttl, within grace
      const g = gate();
      let started = false;
      const failing = a.wrap(
        'ns',
        ['k'],
        async () => {
          started = true;
          await g.promise;
          throw new Error('upstream down');
        },
        nsOpts,
      );
      await until(() => started, 'A recomputing');
      await sleep(5);
      const invalidator = where === 'in this application' ? a : b;
      if (kind === 'clear') await invalidator.clear('ns');
      else await invalidator.deleteByTag('t1');
      g.open();
      // The call that was in flight falls back on what it found (it began before the clear).
      expect(await failing).toBe('v1');
      await a.settle();
      // A call made after the invalidation never gets the value it removed.
      const after = await a
        .wrap(
          'ns',
          ['k'],
          async () => {
            throw new Error('still down');
          },
          nsOpts,
        )
        .catch((err: Error) => err.message);
      expect(after).toBe('still down');
    },
  );

  it("a set whose value lives shorter (its ttl function) than a computation started before it: once it expires, the computation's older value is not written in its place", async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    // "Not found" is kept 1 s, a user an hour (the README's example).
    const nsOpts = { ttl: (user: unknown) => (user === null ? 1 : 3600) };
    const g = gate();
    let started = false;
    // B reads the account before it is deleted, and is slow to finish.
    const computing = b.wrap(
      'users',
      ['u1'],
      async () => {
        started = true;
        await g.promise;
        return 'alice';
      },
      nsOpts,
    );
    await until(() => started, 'B computing');
    await sleep(20);
    // A deletes the account and puts "not found" in the cache (as @DynamoCachePut would).
    await a.wrap('users', ['other'], async () => 'bob', nsOpts); // A's namespace, with the function
    await a.set('users', ['u1'], null);
    await sleep(1200); // "not found" expires; a reader finds it expired
    expect(await a.lookup('users', ['u1'])).toEqual({ hit: false });
    g.open();
    expect(await computing).toBe('alice'); // its caller still gets its result
    await b.settle();
    // The account was deleted before B's computation ended: no process serves it afterwards.
    expect(await a.lookup('users', ['u1'])).toEqual({ hit: false });
    expect(await b.wrap('users', ['u1'], async () => null, nsOpts)).toBeNull();
  });

  it("clear in B while A's leased computation runs longer than l1MaxAge: a fresh instance C waiting on A's lease past l1MaxAge after the clear does not get the cleared result", async () => {
    const table = await fx.dynamo.table();
    const opts = { lease: true, l1MaxAge: 1 };
    const a = await app(table, opts);
    const b = await app(table, opts);
    const g = gate();
    let started = false;
    const computing = a.wrap('ns', ['k'], async () => {
      started = true;
      await g.promise;
      return 'old';
    });
    await until(() => started, 'A computing under its lease');
    await sleep(20);
    await b.clear('ns');
    await sleep(1200); // past l1MaxAge since the clear
    // C starts now (it has read no marker yet): its call misses, finds A's lease and waits.
    const c = await app(table, opts);
    const waiting = c.wrap('ns', ['k'], async () => 'new');
    await sleep(300);
    g.open();
    expect(await computing).toBe('old'); // A's own caller still gets its result
    expect(await waiting).toBe('new');
  });
});
