import { DynamoDBClient, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { Injectable, type Type } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import {
  buildCacheKey,
  DynamoCacheError,
  DynamoCached,
  DynamoCacheService,
  encodeKey,
  v8Serializer,
  type CacheEvent,
  type CacheEventType,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { bootCache, scanTable, sleep } from './support/apps.js';
import {
  countCalls,
  dummyClientConfig,
  testServerKind,
  useTestDynamo,
  type CallCounter,
} from './support/dynamo-server.js';
import { startTcpProxy } from './support/tcp-proxy.js';

/*
 * Freshness between applications on one table: grace (stale values served when recomputing
 * fails), graceBackoff, the soft timeout (stale-while-revalidate), per-entry ttls, expire, and
 * the events they report. Short ttls (1 s) and waits on the items' own expiry times.
 */

/** What the tests steer in a provider: it counts its calls, can be slow, and can fail. */
class Source {
  /** Which application computed a value (part of the value). */
  label = '?';
  calls = 0;
  delayMs = 0;
  failure: Error | undefined;

  protected async produce(key: string): Promise<string> {
    const n = ++this.calls;
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (this.failure !== undefined) throw this.failure;
    return `${key}@${this.label}#${n}`;
  }
}

@Injectable()
class GraceQuotes extends Source {
  @DynamoCached({ ttl: 1, grace: 2 })
  async quote(symbol: string): Promise<string> {
    return this.produce(symbol);
  }
}

@Injectable()
class BackoffQuotes extends Source {
  @DynamoCached({ ttl: 1, grace: 30, graceBackoff: 1 })
  async quote(symbol: string): Promise<string> {
    return this.produce(symbol);
  }
}

@Injectable()
class SlowQuotes extends Source {
  @DynamoCached({ ttl: 1, grace: 30, timeout: 100 })
  async quote(symbol: string): Promise<string> {
    return this.produce(symbol);
  }
}

@Injectable()
class SwrQuotes extends Source {
  @DynamoCached({ ttl: 1, grace: 30, timeout: 0 })
  async quote(symbol: string): Promise<string> {
    return this.produce(symbol);
  }
}

interface Profile {
  id: string;
  short: boolean;
  by: string;
}

@Injectable()
class Profiles {
  label = '?';
  calls = 0;

  @DynamoCached({ ttl: (p: Profile) => (p.short ? 1 : 3600) })
  async profile(id: string, short: boolean): Promise<Profile> {
    this.calls++;
    return { id, short, by: this.label };
  }
}

@Injectable()
class Rates extends Source {
  @DynamoCached({ ttl: 3600 })
  async rate(currency: string): Promise<string> {
    return this.produce(currency);
  }
}

@Injectable()
class GraceRates extends Source {
  @DynamoCached({ ttl: 3600, grace: 30 })
  async rate(currency: string): Promise<string> {
    return this.produce(currency);
  }
}

const keyOf = (namespace: string, args: readonly unknown[]): string =>
  buildCacheKey('', namespace, encodeKey(args));

/** Resolves 50 ms after the Unix time `seconds`. */
const sleepUntil = (seconds: number): Promise<void> =>
  sleep(Math.max(0, seconds * 1000 - Date.now()) + 50);

const num = (attribute: AttributeValue | undefined): number => Number(attribute?.N);

const EVENT_TYPES: CacheEventType[] = ['hit', 'miss', 'stale', 'write', 'delete', 'error'];

interface App {
  ref: TestingModule;
  cache: DynamoCacheService;
  calls: CallCounter;
  events: CacheEvent[];
  /** The app's provider `type`, labelled `label` (the values it computes carry it). */
  get<T extends { label: string }>(type: Type<T>, label: string): T;
}

describe(`freshness: grace, soft timeout, per-entry ttl, expire (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(
    table: string,
    providers: Type[],
    options: Partial<DynamoCacheModuleOptions> = {},
    client: DynamoDBClient = fx.dynamo.client(),
  ): Promise<App> {
    const calls = countCalls(client);
    const ref = await bootCache({ table, client, ...options }, providers);
    fx.apps.push(ref);
    const cache = ref.get(DynamoCacheService);
    const events: CacheEvent[] = [];
    for (const type of EVENT_TYPES) cache.on(type, (e) => events.push(e));
    return {
      ref,
      cache,
      calls,
      events,
      get(type, label) {
        const provider = ref.get(type);
        provider.label = label;
        return provider;
      },
    };
  }

  /** The item of `cache_key` `key`, read with a Scan of the table. */
  async function itemOf(table: string, key: string): Promise<Record<string, AttributeValue>> {
    const item = (await scanTable(fx.admin, table)).find((i) => i.cache_key?.S === key);
    if (item === undefined) throw new Error(`no item ${key} in ${table}`);
    return item;
  }

  const valueOf = (item: Record<string, AttributeValue>): unknown =>
    v8Serializer.deserialize(item.v?.B as Uint8Array);

  const ofType = (a: App, type: CacheEventType): CacheEvent[] =>
    a.events.filter((e) => e.type === type);

  describe('grace', () => {
    const NS = 'GraceQuotes.quote';

    it('a failing method is answered with the stale value: from L1 in A, from L2 in B (which never computed it); past grace, its own error', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [GraceQuotes]);
      const qa = a.get(GraceQuotes, 'A');
      expect(await qa.quote('ACME')).toBe('ACME@A#1');
      expect(await qa.quote('INIT')).toBe('INIT@A#2');
      const item = await itemOf(table, keyOf(NS, ['ACME']));
      expect(num(item.exp)).toBe(Math.ceil(num(item.e) + 2)); // kept for grace
      // Both are past their ttl from the later expiry on (INIT's).
      const e = num((await itemOf(table, keyOf(NS, ['INIT']))).e);

      await sleepUntil(e);
      const boomA = new Error('A: source down');
      qa.failure = boomA;
      expect(await qa.quote('INIT')).toBe('INIT@A#2');
      expect(qa.calls).toBe(3); // one attempt, which failed
      expect(a.cache.stats().total.staleHits).toBe(1);
      expect(ofType(a, 'stale')).toEqual([
        { type: 'stale', namespace: NS, key: keyOf(NS, ['INIT']) },
      ]);

      const b = await app(table, [GraceQuotes]);
      const qb = b.get(GraceQuotes, 'B');
      const boomB = new Error('B: source down');
      qb.failure = boomB;
      expect(await qb.quote('ACME')).toBe('ACME@A#1'); // A's value, read from L2
      expect(qb.calls).toBe(1);
      // Nothing stale anywhere for a key never computed: the method's error.
      await expect(qb.quote('NEW')).rejects.toBe(boomB);
      expect(qb.calls).toBe(2);
      // Within graceBackoff (default 10 s): each call a stale hit, no call to the method or DynamoDB.
      b.calls.reset();
      expect(await qb.quote('ACME')).toBe('ACME@A#1');
      expect(await qb.quote('ACME')).toBe('ACME@A#1');
      expect(b.calls.total()).toBe(0);
      expect(qb.calls).toBe(2);
      expect(b.cache.stats().total.staleHits).toBe(3);
      expect(b.cache.stats().namespaces[NS]?.staleHits).toBe(3);
      expect(ofType(b, 'stale')).toEqual(
        Array.from({ length: 3 }, () => ({
          type: 'stale',
          namespace: NS,
          key: keyOf(NS, ['ACME']),
        })),
      );

      // Past grace: the error, in A (its L1 copy), in B (its copy of the L2 value), and in a
      // fresh app reading the item.
      await sleepUntil(e + 2);
      const c = await app(table, [GraceQuotes]);
      const qc = c.get(GraceQuotes, 'C');
      const boomC = new Error('C: source down');
      qc.failure = boomC;
      await expect(qc.quote('ACME')).rejects.toBe(boomC);
      await expect(qa.quote('INIT')).rejects.toBe(boomA);
      await expect(qb.quote('ACME')).rejects.toBe(boomB);
      expect([qa.calls, qb.calls, qc.calls]).toEqual([4, 3, 1]);
      expect(a.cache.stats().total.staleHits).toBe(1);
      expect(b.cache.stats().total.staleHits).toBe(3);
      expect(c.cache.stats().total.staleHits).toBe(0);
    });

    it('graceBackoff: while the method fails, calls within the backoff make one method call; after it, exactly one more', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [BackoffQuotes]);
      const qa = a.get(BackoffQuotes, 'A');
      expect(await qa.quote('X')).toBe('X@A#1');
      const e = num((await itemOf(table, keyOf('BackoffQuotes.quote', ['X']))).e);
      await sleepUntil(e);
      qa.failure = new Error('source down');

      // Five concurrent calls share one attempt; five more within the backoff make none.
      const first = await Promise.all(Array.from({ length: 5 }, () => qa.quote('X')));
      expect(first).toEqual(Array(5).fill('X@A#1'));
      expect(qa.calls).toBe(2);
      expect(a.cache.stats().total.staleHits).toBe(5); // one per caller answered stale
      a.calls.reset();
      for (let i = 0; i < 5; i++) expect(await qa.quote('X')).toBe('X@A#1');
      expect(qa.calls).toBe(2);
      expect(a.calls.total()).toBe(0); // served from L1, DynamoDB not asked either
      expect(a.cache.stats().total.staleHits).toBe(10);

      await sleep(1100); // the backoff elapses: one new attempt, then the backoff again
      const second = await Promise.all(Array.from({ length: 5 }, () => qa.quote('X')));
      expect(second).toEqual(Array(5).fill('X@A#1'));
      for (let i = 0; i < 5; i++) expect(await qa.quote('X')).toBe('X@A#1');
      expect(qa.calls).toBe(3);
      expect(a.cache.stats().total.staleHits).toBe(20);
      expect(ofType(a, 'stale')).toHaveLength(20);

      // Once the method works again, the next attempt (after the backoff) refreshes the entry.
      qa.failure = undefined;
      await sleep(1100);
      expect(await qa.quote('X')).toBe('X@A#4');
      expect(await qa.quote('X')).toBe('X@A#4');
      expect(qa.calls).toBe(4);
    });

    it('DynamoDB failing (onError throw) with a stale L1 value: the stale value, not the error', async () => {
      const table = await fx.dynamo.table();
      const proxy = await startTcpProxy(Number(new URL(fx.dynamo.endpoint).port));
      const client = new DynamoDBClient(dummyClientConfig(proxy.endpoint));
      fx.apps.push({ close: async () => client.destroy() });
      try {
        const a = await app(table, [BackoffQuotes], { onError: 'throw' }, client);
        const qa = a.get(BackoffQuotes, 'A');
        expect(await qa.quote('X')).toBe('X@A#1');
        const e = num((await itemOf(table, keyOf('BackoffQuotes.quote', ['X']))).e);
        await sleepUntil(e);

        await proxy.stop(); // connections refused
        expect(await qa.quote('X')).toBe('X@A#1');
        expect(qa.calls).toBe(1); // the GetItem failed before the method was called
        const stats = a.cache.stats().total;
        expect(stats.staleHits).toBe(1);
        expect(stats.l2Errors).toBe(1);
        expect(ofType(a, 'error').map((ev) => ev.error?.operation)).toEqual(['GetItem']);
        expect(ofType(a, 'stale')).toEqual([
          {
            type: 'stale',
            namespace: 'BackoffQuotes.quote',
            key: keyOf('BackoffQuotes.quote', ['X']),
          },
        ]);
        // Without a stale value, the same failure rejects the call (onError 'throw').
        const failed = qa.quote('Y');
        await expect(failed).rejects.toBeInstanceOf(DynamoCacheError);
        await expect(failed).rejects.toMatchObject({ operation: 'GetItem' });
        expect(qa.calls).toBe(1);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('soft timeout', () => {
    const NS = 'SlowQuotes.quote';

    it('a slow recomputation answers the stale value within the timeout; the refresh lands in both layers and in another app', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [SlowQuotes]);
      const qa = a.get(SlowQuotes, 'A');
      expect(await qa.quote('X')).toBe('X@A#1');
      const before = await itemOf(table, keyOf(NS, ['X']));
      await sleepUntil(num(before.e));

      qa.delayMs = 600;
      const started = Date.now();
      expect(await qa.quote('X')).toBe('X@A#1');
      expect(Date.now() - started).toBeLessThan(400);
      expect(qa.calls).toBe(2); // the refresh runs in the background
      expect(a.cache.stats().total.staleHits).toBe(1);
      expect(ofType(a, 'stale')).toEqual([{ type: 'stale', namespace: NS, key: keyOf(NS, ['X']) }]);

      await a.cache.settle();
      const after = await itemOf(table, keyOf(NS, ['X']));
      expect(valueOf(after)).toBe('X@A#2');
      expect(num(after.t)).toBeGreaterThan(num(before.t));
      qa.delayMs = 0;
      a.events.length = 0;
      expect(await qa.quote('X')).toBe('X@A#2');
      expect(a.events).toEqual([
        { type: 'hit', namespace: NS, key: keyOf(NS, ['X']), layer: 'l1' },
      ]);
      const b = await app(table, [SlowQuotes]);
      const qb = b.get(SlowQuotes, 'B');
      expect(await qb.quote('X')).toBe('X@A#2');
      expect(qb.calls).toBe(0);
      expect(qa.calls).toBe(2);
    });

    it('100 concurrent stale calls: each answered stale within the timeout, one refresh', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [SlowQuotes]);
      const qa = a.get(SlowQuotes, 'A');
      expect(await qa.quote('X')).toBe('X@A#1');
      await sleepUntil(num((await itemOf(table, keyOf(NS, ['X']))).e));

      qa.delayMs = 600;
      a.calls.reset();
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 100 }, () => qa.quote('X')));
      expect(Date.now() - started).toBeLessThan(400);
      expect(answers).toEqual(Array(100).fill('X@A#1'));
      expect(a.cache.stats().total.staleHits).toBe(100);
      await a.cache.settle();
      expect(qa.calls).toBe(2);
      // One read of the item (and of the namespace's marker, first L2 find), one write.
      expect(a.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1, PutItem: 1 });
      expect(await qa.quote('X')).toBe('X@A#2');
    });

    it('a background refresh that fails: the stale answer given by the timeout is counted once; the method is backed off', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [SlowQuotes]);
      const qa = a.get(SlowQuotes, 'A');
      expect(await qa.quote('X')).toBe('X@A#1');
      await sleepUntil(num((await itemOf(table, keyOf(NS, ['X']))).e));

      qa.delayMs = 600;
      qa.failure = new Error('source down');
      const started = Date.now();
      expect(await qa.quote('X')).toBe('X@A#1'); // by the timeout, before the failure
      expect(Date.now() - started).toBeLessThan(400);
      await a.cache.settle(); // the refresh fails at 600 ms: it answers nobody
      expect(qa.calls).toBe(2);
      expect(a.cache.stats().total.staleHits).toBe(1);
      expect(ofType(a, 'stale')).toHaveLength(1);
      // Backed off (graceBackoff, default 10 s): stale at once, no new attempt.
      expect(await qa.quote('X')).toBe('X@A#1');
      expect(qa.calls).toBe(2);
      expect(a.cache.stats().total.staleHits).toBe(2);
    });

    it('timeout 0: the stale value at once, the refresh in the background', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [SwrQuotes]);
      const qa = a.get(SwrQuotes, 'A');
      expect(await qa.quote('X')).toBe('X@A#1');
      await sleepUntil(num((await itemOf(table, keyOf('SwrQuotes.quote', ['X']))).e));

      qa.delayMs = 600;
      const started = Date.now();
      expect(await qa.quote('X')).toBe('X@A#1');
      expect(Date.now() - started).toBeLessThan(200);
      await a.cache.settle();
      expect(qa.calls).toBe(2); // the refresh, in the background
      expect(await qa.quote('X')).toBe('X@A#2');
      expect(qa.calls).toBe(2);
      expect(valueOf(await itemOf(table, keyOf('SwrQuotes.quote', ['X'])))).toBe('X@A#2');
    });

    it('a fresh app with a stale item in L2 only answers it within the timeout, and refreshes it', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [SlowQuotes]);
      const qa = a.get(SlowQuotes, 'A');
      expect(await qa.quote('X')).toBe('X@A#1');
      await sleepUntil(num((await itemOf(table, keyOf(NS, ['X']))).e));

      const b = await app(table, [SlowQuotes]);
      const qb = b.get(SlowQuotes, 'B');
      await b.cache.get('warm-up', ['connection']); // the client's connection, out of the timing
      qb.delayMs = 600;
      const started = Date.now();
      expect(await qb.quote('X')).toBe('X@A#1');
      expect(Date.now() - started).toBeLessThan(400);
      expect(qb.calls).toBe(1);
      expect(b.cache.stats().total.staleHits).toBe(1);
      expect(ofType(b, 'stale')).toEqual([{ type: 'stale', namespace: NS, key: keyOf(NS, ['X']) }]);

      await b.cache.settle();
      expect(valueOf(await itemOf(table, keyOf(NS, ['X'])))).toBe('X@B#1');
      // A (a stale L1 value, no delay) reads B's refresh from L2 before its timeout.
      expect(await qa.quote('X')).toBe('X@B#1');
      expect(qa.calls).toBe(1);
    });

    it('lease: two apps holding the stale value, timeout 0: one refresh for the table', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [SwrQuotes], { lease: true });
      const b = await app(table, [SwrQuotes], { lease: true });
      const qa = a.get(SwrQuotes, 'A');
      const qb = b.get(SwrQuotes, 'B');
      expect(await qa.quote('X')).toBe('X@A#1');
      expect(await qb.quote('X')).toBe('X@A#1');
      expect(qb.calls).toBe(0);
      await sleepUntil(num((await itemOf(table, keyOf('SwrQuotes.quote', ['X']))).e));

      qa.delayMs = 600;
      qb.delayMs = 600;
      expect(await Promise.all([qa.quote('X'), qb.quote('X')])).toEqual(['X@A#1', 'X@A#1']);
      await Promise.all([a.cache.settle(), b.cache.settle()]);
      expect(qa.calls + qb.calls).toBe(2); // the first computation, and one refresh
      // One stale answer in each app, whichever refreshed (the other found the lease held).
      expect([a.cache.stats().total.staleHits, b.cache.stats().total.staleHits]).toEqual([1, 1]);
      expect([ofType(a, 'stale').length, ofType(b, 'stale').length]).toEqual([1, 1]);
      const refreshed = qa.calls === 2 ? 'X@A#2' : 'X@B#1';
      expect(valueOf(await itemOf(table, keyOf('SwrQuotes.quote', ['X'])))).toBe(refreshed);
      const c = await app(table, [SwrQuotes], { lease: true });
      const qc = c.get(SwrQuotes, 'C');
      expect(await qc.quote('X')).toBe(refreshed);
      expect(qc.calls).toBe(0);
    });
  });

  describe('per-entry ttl', () => {
    it('set with ttl 1 in a namespace of ttl 3600: gone after 1 s from the setter’s L1 and, through L2, for other apps', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [], { ttl: 3600 });
      const b = await app(table, [], { ttl: 3600 });
      await a.cache.set('sessions', ['s1'], 'S1', { ttl: 1 });
      const item = await itemOf(table, keyOf('sessions', ['s1']));
      expect(item.o).toEqual({ BOOL: true });
      expect(num(item.e) - num(item.t)).toBeCloseTo(1, 3);
      expect(await b.cache.get('sessions', ['s1'])).toBe('S1');
      expect(ofType(b, 'hit')).toEqual([
        { type: 'hit', namespace: 'sessions', key: keyOf('sessions', ['s1']), layer: 'l2' },
      ]);

      await sleepUntil(num(item.e));
      // A fresh app, the item still in the table: a miss, by the item's own expiry.
      expect((await itemOf(table, keyOf('sessions', ['s1']))).v).toBeDefined();
      const c = await app(table, [], { ttl: 3600 });
      expect(await c.cache.lookup('sessions', ['s1'])).toEqual({ hit: false });
      // The setter's L1 no longer answers (it asks DynamoDB), nor does B's copy.
      a.calls.reset();
      expect(await a.cache.lookup('sessions', ['s1'])).toEqual({ hit: false });
      expect(a.calls.get('GetItem')).toBe(1);
      expect(await b.cache.lookup('sessions', ['s1'])).toEqual({ hit: false });
    });

    it('set with ttl 3600 in a namespace of ttl 1: another app keeps it past 1 s (o)', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [], { ttl: 1 });
      await a.cache.set('sessions', ['long'], 'L', { ttl: 3600 });
      await a.cache.set('sessions', ['plain'], 'P');
      const long = await itemOf(table, keyOf('sessions', ['long']));
      const plain = await itemOf(table, keyOf('sessions', ['plain']));
      expect(long.o).toEqual({ BOOL: true });
      expect(num(long.e) - num(long.t)).toBeCloseTo(3600, 3);
      expect(plain.o).toBeUndefined();
      expect(num(plain.e) - num(plain.t)).toBeCloseTo(1, 3);

      await sleepUntil(num(plain.e));
      const b = await app(table, [], { ttl: 1 });
      expect(await b.cache.get('sessions', ['long'])).toBe('L');
      expect(await b.cache.lookup('sessions', ['plain'])).toEqual({ hit: false });
      expect(await a.cache.get('sessions', ['long'])).toBe('L');
    });

    it('ttl as a function of the value: each entry its own e', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, [Profiles]);
      const pa = a.get(Profiles, 'A');
      await pa.profile('p1', true);
      await pa.profile('p2', false);
      const NS = 'Profiles.profile';
      const short = await itemOf(table, keyOf(NS, ['p1', true]));
      const long = await itemOf(table, keyOf(NS, ['p2', false]));
      expect(num(short.e) - num(short.t)).toBeCloseTo(1, 3);
      expect(num(long.e) - num(long.t)).toBeCloseTo(3600, 3);
      expect(num(short.exp)).toBe(Math.ceil(num(short.e)));
      expect(num(long.exp)).toBe(Math.ceil(num(long.e)));

      await sleepUntil(num(short.e));
      const b = await app(table, [Profiles]);
      const pb = b.get(Profiles, 'B');
      expect(await pb.profile('p2', false)).toEqual({ id: 'p2', short: false, by: 'A' });
      expect(await pb.profile('p1', true)).toEqual({ id: 'p1', short: true, by: 'B' });
      expect(pb.calls).toBe(1);
      // A: p2 still in its L1; p1 expired there, and B's refresh is read from L2.
      expect(await pa.profile('p2', false)).toEqual({ id: 'p2', short: false, by: 'A' });
      expect(await pa.profile('p1', true)).toEqual({ id: 'p1', short: true, by: 'B' });
      expect(pa.calls).toBe(2);
    });

    it('a reader with a shorter ttl expires the entry earlier than its writer', async () => {
      const table = await fx.dynamo.table();
      const a = await app(table, []);
      const b = await app(table, []);
      let runsA = 0;
      let runsB = 0;
      const fromA = async () => `pA${++runsA}`;
      const fromB = async () => `pB${++runsB}`;
      expect(await a.cache.wrap('prices', ['p'], fromA, { ttl: 3600 })).toBe('pA1');
      expect(await b.cache.wrap('prices', ['p'], fromB, { ttl: 1 })).toBe('pA1');
      expect(runsB).toBe(0);
      const item = await itemOf(table, keyOf('prices', ['p']));
      expect(num(item.e) - num(item.t)).toBeCloseTo(3600, 3);

      await sleepUntil(num(item.t) + 1);
      expect(await b.cache.wrap('prices', ['p'], fromB, { ttl: 1 })).toBe('pB1');
      expect(await a.cache.wrap('prices', ['p'], fromA, { ttl: 3600 })).toBe('pA1');
      expect([runsA, runsB]).toEqual([1, 1]);
    });

    it('an item written by 0.1.0 (no e) is a hit within t + the reader’s ttl, expired after', async () => {
      const table = await fx.dynamo.table();
      const t = Date.now() / 1000;
      await fx.admin.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            cache_key: { S: keyOf('legacy', ['k']) },
            v: { B: v8Serializer.serialize({ old: true }) },
            t: { N: String(t) },
            exp: { N: String(Math.ceil(t + 3600)) },
          },
        }),
      );
      const b = await app(table, []);
      let runs = 0;
      const compute = async () => ({ old: false, run: ++runs });
      expect(await b.cache.wrap('legacy', ['k'], compute, { ttl: 1 })).toEqual({ old: true });
      expect(runs).toBe(0);

      await sleepUntil(t + 1);
      b.calls.reset();
      expect(await b.cache.lookup('legacy', ['k'])).toEqual({ hit: false });
      expect(b.calls.counts).toEqual({ GetItem: 1, DeleteItem: 1 }); // read, judged expired
      expect(await b.cache.wrap('legacy', ['k'], compute, { ttl: 1 })).toEqual({
        old: false,
        run: 1,
      });
    });
  });

  describe('expire', () => {
    it('without grace: a miss next time, here at once and in another app within its l1MaxAge; the item stays with t = e = now', async () => {
      const table = await fx.dynamo.table();
      const NS = 'Rates.rate';
      const a = await app(table, [Rates]);
      const b = await app(table, [Rates], { l1MaxAge: 1 });
      const ra = a.get(Rates, 'A');
      const rb = b.get(Rates, 'B');
      expect(await ra.rate('EUR')).toBe('EUR@A#1');
      expect(await ra.rate('USD')).toBe('USD@A#2');
      expect(await rb.rate('EUR')).toBe('EUR@A#1');
      expect(rb.calls).toBe(0);

      const before = Date.now() / 1000;
      await a.cache.expire(NS, ['EUR']);
      await a.cache.expire(NS, ['USD']);
      const after = Date.now() / 1000;
      const item = await itemOf(table, keyOf(NS, ['EUR']));
      expect(item.v).toBeDefined();
      // `t` (what markers compare with) stays; `x` records the expiry, and `e` becomes it.
      expect(num(item.t)).toBeLessThan(before);
      expect(item.e).toEqual(item.x);
      expect(num(item.x)).toBeGreaterThanOrEqual(before);
      expect(num(item.x)).toBeLessThanOrEqual(after);
      // Kept for DynamoDB's TTL the tombstone lifetime (an hour): it refuses older computations.
      expect(num(item.exp)).toBe(Math.ceil(num(item.x) + 3600));
      expect(item.o).toBeUndefined();

      // Here: the next call recomputes.
      expect(await ra.rate('USD')).toBe('USD@A#3');
      expect(await a.cache.lookup(NS, ['EUR'])).toEqual({ hit: false });
      // B, once its L1 entry is older than l1MaxAge: one check (BatchGetItem), then a miss.
      await sleep(1100);
      b.calls.reset();
      expect(await rb.rate('EUR')).toBe('EUR@B#1');
      expect(rb.calls).toBe(1);
      expect(b.calls.counts).toEqual({ BatchGetItem: 1, GetItem: 1, PutItem: 1 });
      expect(ra.calls).toBe(3);
    });

    it('with grace and a failing method: the expired value is served stale in both apps', async () => {
      const table = await fx.dynamo.table();
      const NS = 'GraceRates.rate';
      const a = await app(table, [GraceRates]);
      const b = await app(table, [GraceRates], { l1MaxAge: 1 });
      const ra = a.get(GraceRates, 'A');
      const rb = b.get(GraceRates, 'B');
      expect(await ra.rate('EUR')).toBe('EUR@A#1');
      expect(await rb.rate('EUR')).toBe('EUR@A#1');

      await a.cache.expire(NS, ['EUR']);
      const item = await itemOf(table, keyOf(NS, ['EUR']));
      expect(item.e).toEqual(item.x);
      expect(num(item.exp)).toBe(Math.ceil(num(item.x) + Math.max(30, 3600)));

      ra.failure = new Error('A: source down');
      rb.failure = new Error('B: source down');
      expect(await ra.rate('EUR')).toBe('EUR@A#1');
      expect(ra.calls).toBe(2); // it was recomputed, and that failed
      expect(a.cache.stats().total.staleHits).toBe(1);
      await sleep(1100); // B's l1MaxAge
      expect(await rb.rate('EUR')).toBe('EUR@A#1');
      expect(rb.calls).toBe(1);
      expect(b.cache.stats().total.staleHits).toBe(1);
      expect(ofType(b, 'stale')).toEqual([
        { type: 'stale', namespace: NS, key: keyOf(NS, ['EUR']) },
      ]);
    });
  });

  it('events: hit with its layer, stale with namespace and key, in two apps', async () => {
    const table = await fx.dynamo.table();
    const NS = 'BackoffQuotes.quote';
    const key = keyOf(NS, ['X']);
    const a = await app(table, [BackoffQuotes]);
    const qa = a.get(BackoffQuotes, 'A');
    await qa.quote('X');
    await qa.quote('X');
    const b = await app(table, [BackoffQuotes]);
    const qb = b.get(BackoffQuotes, 'B');
    await qb.quote('X');
    await sleepUntil(num((await itemOf(table, key)).e));
    qa.failure = new Error('A: source down');
    qb.failure = new Error('B: source down');
    expect(await qa.quote('X')).toBe('X@A#1');
    expect(await qb.quote('X')).toBe('X@A#1');
    expect(a.events).toEqual([
      { type: 'miss', namespace: NS, key },
      { type: 'write', namespace: NS, key },
      { type: 'hit', namespace: NS, key, layer: 'l1' },
      { type: 'miss', namespace: NS, key }, // the attempt to recompute
      { type: 'stale', namespace: NS, key },
    ]);
    expect(b.events).toEqual([
      { type: 'hit', namespace: NS, key, layer: 'l2' },
      { type: 'miss', namespace: NS, key },
      { type: 'stale', namespace: NS, key },
    ]);
  });

  it('soft timeout: a stale L1 copy that L2 shows deleted elsewhere is not served when the timer fires; the caller waits for the computation', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, [SlowQuotes]);
    const b = await app(table, [SlowQuotes]);
    const qa = a.get(SlowQuotes, 'A');
    expect(await qa.quote('ACME')).toBe('ACME@A#1');
    const e = num((await itemOf(table, keyOf('SlowQuotes.quote', ['ACME']))).e);
    await sleepUntil(e);
    // Deleted in B (a tombstone in L2); A's L1 still holds its copy, past ttl, within grace.
    await b.cache.delete('SlowQuotes.quote', ['ACME']);
    qa.delayMs = 600;
    expect(await qa.quote('ACME')).toBe('ACME@A#2');
    expect(a.cache.stats().total.staleHits).toBe(0);
  });
});
