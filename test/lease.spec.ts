import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import { CacheEngine } from '../lib/engine/cache-engine.js';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheError,
  DynamoCacheService,
  encodeKey,
  v8Serializer,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { bootCache, scanTable, sleep } from './support/apps.js';
import { countCalls, useTestDynamo, type CallCounter } from './support/dynamo-server.js';

/** Method calls of every application in this file, so two applications count together. */
const shared = { calls: 0, failures: 0, failNext: false };

@Injectable()
class ReportService {
  @DynamoCached()
  async report(id: string): Promise<string> {
    shared.calls++;
    await sleep(300);
    if (shared.failNext) {
      shared.failNext = false;
      shared.failures++;
      throw new Error('report backend down');
    }
    return `report-${id}`;
  }

  @DynamoCached({ lease: true })
  async leased(id: string): Promise<string> {
    shared.calls++;
    await sleep(20);
    return `leased-${id}`;
  }
}

const LEASE_SUFFIX = '#lease';

describe('lease: cross-process single-flight (dynalite or DynamoDB Local)', () => {
  const fx = useTestDynamo();

  beforeEach(() => {
    shared.calls = 0;
    shared.failures = 0;
    shared.failNext = false;
  });

  /** A separate application (own L1, own counted client) on `table`. */
  async function app(
    table: string,
    extra: Partial<DynamoCacheModuleOptions> = {},
  ): Promise<{
    service: ReportService;
    calls: CallCounter;
    engine: CacheEngine;
    cache: DynamoCacheService;
  }> {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    // These tests count calls: a first request slowed past the default l2Timeout by a busy
    // machine (DynamoDB Local warming up) would fail the read and skip the lease.
    const moduleRef = await bootCache({ table, client, l2Timeout: 10_000, ...extra }, [
      ReportService,
    ]);
    fx.apps.push(moduleRef);
    return {
      service: moduleRef.get(ReportService),
      calls,
      engine: moduleRef.get(CacheEngine),
      cache: moduleRef.get(DynamoCacheService),
    };
  }

  const valueKey = (id: string, method = 'report'): string =>
    buildCacheKey('', `ReportService.${method}`, encodeKey([id]));

  /** A lease item as a process left it; `copies`: as this version writes it (it writes copies). */
  async function putLease(
    table: string,
    id: string,
    owner: string,
    until: number,
    copies = false,
  ): Promise<void> {
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: valueKey(id) + LEASE_SUFFIX },
          until: { N: String(until) },
          owner: { S: owner },
          exp: { N: String(Math.ceil(until / 1000) + 1) },
          ...(copies ? { n: { N: '1' }, c: { S: owner } } : {}),
        },
      }),
    );
  }

  async function keysInTable(table: string): Promise<string[]> {
    return (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S!).sort();
  }

  it('two applications missing the same key at once: one method call, the other polls and reads it from L2', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { lease: true });
    const b = await app(table, { lease: true });

    const [ra, rb] = await Promise.all([a.service.report('q1'), b.service.report('q1')]);
    await Promise.all([a.engine.drain(), b.engine.drain()]);

    expect([ra, rb]).toEqual(['report-q1', 'report-q1']);
    expect(shared.calls).toBe(1);
    const statsA = a.cache.stats().total;
    const [winner, loser] = statsA.misses === 1 ? [a, b] : [b, a];
    // Winner: its GetItem, the lease claim (UpdateItem), a second look at the value with the
    // lease in hand, the value PutItem, the lease DeleteItem, a third look (its value is still
    // the key's: no delete since) beside a read of the namespace's clear marker (no clear since),
    // the copy for its waiter.
    expect(winner.calls.counts).toEqual({
      GetItem: 3,
      UpdateItem: 1,
      PutItem: 1,
      DeleteItem: 1,
      BatchGetItem: 1,
      BatchWriteItem: 1,
    });
    expect(winner.cache.stats().total).toMatchObject({ misses: 1, l2Hits: 0, l2Writes: 1 });
    // Loser: its GetItem, one claim (held), then looks at its copy while the 300 ms computation
    // runs: never at the lease or the value again.
    expect(loser.calls.counts).toEqual({ GetItem: loser.calls.get('GetItem'), UpdateItem: 1 });
    expect(loser.calls.get('GetItem')).toBeGreaterThanOrEqual(3);
    expect(loser.cache.stats().total).toMatchObject({ misses: 0, l2Hits: 1, l2Writes: 0 });
    // The lease is gone; the value stays, and the copy the loser read (until DynamoDB's TTL):
    // the value item's attributes, the owner id it reports on, a short exp.
    const items = await scanTable(fx.admin, table);
    expect(items.map((i) => i.cache_key!.S!).sort()).toEqual([
      valueKey('q1'),
      valueKey('q1') + LEASE_SUFFIX + '#0',
    ]);
    const value = items.find((i) => i.cache_key!.S === valueKey('q1'))!;
    const copy = items.find((i) => i.cache_key!.S!.endsWith('#0'))!;
    expect(Object.keys(copy).sort()).toEqual(
      [...new Set([...Object.keys(value), 'lo', 'exp'])].sort(),
    );
    expect(copy.v).toEqual(value.v);
    expect(copy.t).toEqual(value.t);
    expect(copy.lo!.S).toMatch(/^[0-9a-f-]{36}#ReportService\.report#\d+$/);
    const copyExp = Number(copy.exp!.N) - Date.now() / 1000;
    expect(copyExp).toBeGreaterThan(5); // max(waitMs, ttlMs): 10 s by default
    expect(copyExp).toBeLessThanOrEqual(12);

    // The loser copied the value into its L1.
    loser.calls.reset();
    expect(await loser.service.report('q1')).toBe('report-q1');
    expect(loser.calls.total()).toBe(0);
  });

  it('the winner rejects: the lease is given back and the waiting application computes at once (no cached rejection)', async () => {
    const table = await fx.dynamo.table();
    // A wait far beyond the test's timeout: only the released lease can end it in time.
    const a = await app(table, { lease: { waitMs: 60_000 } });
    const b = await app(table, { lease: { waitMs: 60_000 } });
    shared.failNext = true;

    const [ra, rb] = await Promise.allSettled([a.service.report('q2'), b.service.report('q2')]);
    await Promise.all([a.engine.drain(), b.engine.drain()]);

    const outcomes = [ra, rb].map((r) => r.status).sort();
    expect(outcomes).toEqual(['fulfilled', 'rejected']);
    const rejected = [ra, rb].find((r) => r.status === 'rejected') as PromiseRejectedResult;
    const fulfilled = [ra, rb].find(
      (r) => r.status === 'fulfilled',
    ) as PromiseFulfilledResult<string>;
    expect((rejected.reason as Error).message).toBe('report backend down');
    expect(fulfilled.value).toBe('report-q2');
    expect(shared.calls).toBe(2);
    expect(shared.failures).toBe(1);
    // The copy told the waiter the computation failed: it claimed the lease and computed.
    const items = await scanTable(fx.admin, table);
    expect(items.map((i) => i.cache_key!.S!).sort()).toEqual([
      valueKey('q2'),
      valueKey('q2') + LEASE_SUFFIX + '#0',
    ]);
    const copy = items.find((i) => i.cache_key!.S!.endsWith('#0'))!;
    expect(Object.keys(copy).sort()).toEqual(['cache_key', 'exp', 'f', 'lo']);
    expect(copy.f).toEqual({ BOOL: true });
  });

  it('a lapsed lease left by a crashed process does not block: the next caller takes over at once', async () => {
    const table = await fx.dynamo.table();
    await putLease(table, 'q3', 'crashed-process', Date.now() - 1000);
    const a = await app(table, { lease: { waitMs: 60_000 } });

    expect(await a.service.report('q3')).toBe('report-q3');
    await a.engine.drain();
    expect(shared.calls).toBe(1);
    // No waiting: the claim found the lease lapsed and a conditional PutItem took it over.
    expect(a.calls.counts).toEqual({ GetItem: 2, UpdateItem: 1, PutItem: 2, DeleteItem: 1 });
    expect(await keysInTable(table)).toEqual([valueKey('q3')]);
  });

  it('a live lease whose holder crashed is taken over when it lapses', async () => {
    const table = await fx.dynamo.table();
    await putLease(table, 'q4', 'crashed-process', Date.now() + 400);
    const a = await app(table, { lease: { waitMs: 60_000, pollMs: 50 } });

    expect(await a.service.report('q4')).toBe('report-q4');
    await a.engine.drain();
    expect(shared.calls).toBe(1);
    // A lease of a version without copies: watched at the lease until it lapsed, then the
    // value (none), then claimed again and taken over.
    expect(a.calls.get('GetItem')).toBeGreaterThanOrEqual(3);
    expect(a.calls.get('UpdateItem')).toBe(2); // held, then lapsed
    expect(a.calls.get('PutItem')).toBe(2); // lease taken over, value
    expect(await keysInTable(table)).toEqual([valueKey('q4')]);
  });

  it('a live lease of this version whose holder crashed (no copies ever come) is taken over when it lapses', async () => {
    const table = await fx.dynamo.table();
    const started = Date.now();
    await putLease(table, 'q13', 'crashed-process', started + 400, true);
    const a = await app(table, { lease: { waitMs: 60_000, pollMs: 50 } });

    expect(await a.service.report('q13')).toBe('report-q13');
    await a.engine.drain();
    expect(shared.calls).toBe(1);
    // Waited on its copy until the lease lapsed (not for waitMs), then claimed it again.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(a.calls.get('UpdateItem')).toBe(2); // held, then lapsed
    // Lease taken over, value, and the copy telling the crashed holder's waiters it left no value
    // (a conditional PutItem, which spares copies of the new owner's).
    expect(a.calls.get('PutItem')).toBe(3);
    // It never watched the lease or the value item: only its copy.
    expect(a.calls.get('GetItem')).toBeGreaterThanOrEqual(2);
    // The takeover told the crashed holder's other waiters (a copy saying it left no value).
    const items = await scanTable(fx.admin, table);
    expect(items.map((i) => i.cache_key!.S!).sort()).toEqual([
      valueKey('q13'),
      valueKey('q13') + LEASE_SUFFIX + '#0',
    ]);
    const copy = items.find((i) => i.cache_key!.S!.endsWith('#0'))!;
    expect(copy.lo).toEqual({ S: 'crashed-process' });
    expect(copy.f).toEqual({ BOOL: true });
  });

  it('a lease that outlives waitMs: the caller stops waiting and computes itself', async () => {
    const table = await fx.dynamo.table();
    await putLease(table, 'q5', 'slow-process', Date.now() + 60_000);
    const a = await app(table, { lease: { waitMs: 300, pollMs: 50 } });

    expect(await a.service.report('q5')).toBe('report-q5');
    await a.engine.drain();
    expect(shared.calls).toBe(1);
    expect(a.calls.get('DeleteItem')).toBe(0); // not ours to give back
    expect(a.cache.stats().total).toMatchObject({ misses: 1, l2Writes: 1, l2Errors: 0 });
    // The other process's lease stays until it lapses.
    expect(await keysInTable(table)).toEqual([valueKey('q5'), valueKey('q5') + LEASE_SUFFIX]);
  });

  it("a DynamoDB failure while taking the lease never loses the caller's result, even under onError 'throw'", async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    // Fault injection for this one branch: every lease claim fails.
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: { cache_key?: { S?: string } } };
        if (input.Key?.cache_key?.S?.endsWith(LEASE_SUFFIX)) {
          throw Object.assign(new Error('injected'), { name: 'InternalServerError' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'failLeasePuts' },
    );
    const moduleRef = await bootCache(
      { table, client, lease: true, onError: 'throw', circuitBreaker: false },
      [ReportService],
    );
    fx.apps.push(moduleRef);
    const service = moduleRef.get(ReportService);

    expect(await service.report('q6')).toBe('report-q6');
    await moduleRef.get(CacheEngine).drain();
    expect(shared.calls).toBe(1);
    expect(calls.counts).toEqual({ GetItem: 1, UpdateItem: 1, PutItem: 1 }); // failed claim, value
    expect(moduleRef.get(DynamoCacheService).stats().total).toMatchObject({
      misses: 1,
      l2Errors: 1,
      l2Writes: 1,
    });
    expect(await keysInTable(table)).toEqual([valueKey('q6')]);
  });

  it('processes whose claim (or first read) DynamoDB throttles wait for the value instead of computing', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { lease: true });
    /** An application whose DynamoDB throttles its lease claims (and, with `reads`, its first value read). */
    async function throttled(reads: boolean): Promise<Awaited<ReturnType<typeof app>>> {
      const client = fx.dynamo.client();
      const calls = countCalls(client);
      let readsLeft = reads ? 1 : 0;
      // Fault injection for this one branch: what DynamoDB answers a key hotter than its limit.
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const key = (args.input as { Key?: { cache_key?: { S?: string } } }).Key?.cache_key?.S;
          const claim = context.commandName === 'UpdateItemCommand' && key?.endsWith(LEASE_SUFFIX);
          const read = context.commandName === 'GetItemCommand' && key === valueKey('q12');
          if (claim || (read && readsLeft-- > 0)) {
            throw Object.assign(new Error('Rate of requests exceeds the allowed throughput'), {
              name: 'ProvisionedThroughputExceededException',
            });
          }
          return next(args);
        },
        { step: 'initialize', name: 'throttleLeaseClaims' },
      );
      const moduleRef = await bootCache({ table, client, lease: true }, [ReportService]);
      fx.apps.push(moduleRef);
      return {
        service: moduleRef.get(ReportService),
        calls,
        engine: moduleRef.get(CacheEngine),
        cache: moduleRef.get(DynamoCacheService),
      };
    }
    const busy = [await throttled(false), await throttled(false), await throttled(true)];

    // `a` claims first; the others, a moment later, are throttled.
    const first = a.service.report('q12');
    await sleep(50);
    const results = await Promise.all([first, ...busy.map((b) => b.service.report('q12'))]);

    expect(results).toEqual(Array(4).fill('report-q12'));
    expect(shared.calls).toBe(1);
    for (const b of busy) {
      expect(b.cache.stats().total).toMatchObject({ misses: 0, l2Hits: 1, l2Writes: 0 });
      expect(b.calls.get('PutItem')).toBe(0);
    }
  });

  it('a value written by another process between the miss and the lease is served, not recomputed', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    // Another process finishes in the window: just before our lease claim, its value lands.
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: { cache_key?: { S?: string } } };
        if (input.Key?.cache_key?.S === valueKey('q11') + LEASE_SUFFIX) {
          await fx.admin.send(
            new PutItemCommand({
              TableName: table,
              Item: {
                cache_key: { S: valueKey('q11') },
                v: { B: v8Serializer.serialize('from-the-other-process') },
                t: { N: String(Date.now() / 1000) },
              },
            }),
          );
        }
        return next(args);
      },
      { step: 'initialize', name: 'valueLandsFirst' },
    );
    const moduleRef = await bootCache({ table, client, lease: true }, [ReportService]);
    fx.apps.push(moduleRef);

    expect(await moduleRef.get(ReportService).report('q11')).toBe('from-the-other-process');
    await moduleRef.get(CacheEngine).drain();
    expect(shared.calls).toBe(0);
    // The second look found a value: its markers were read (BatchGetItem of `t`), as any hit's.
    expect(calls.counts).toEqual({ GetItem: 2, UpdateItem: 1, DeleteItem: 1, BatchGetItem: 1 });
    expect(await keysInTable(table)).toEqual([valueKey('q11')]);
  });

  it('lease off (the default): no lease item is ever written and DynamoDB calls are as before', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);

    const results = await Promise.all([a.service.report('q7'), b.service.report('q7')]);
    await Promise.all([a.engine.drain(), b.engine.drain()]);

    expect(results).toEqual(['report-q7', 'report-q7']);
    expect(shared.calls).toBe(2); // both computed: nothing coordinates them
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    expect(b.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    expect(await keysInTable(table)).toEqual([valueKey('q7')]);
  });

  it('@DynamoCached({ lease: true }) turns it on for one method when the module leaves it off', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);

    expect(await a.service.leased('q8')).toBe('leased-q8');
    expect(await a.service.report('q9')).toBe('report-q9');
    await a.engine.drain();
    // leased: 2 GetItems, claim, value PutItem, lease DeleteItem; report: GetItem, PutItem.
    expect(a.calls.counts).toEqual({ GetItem: 3, UpdateItem: 1, PutItem: 2, DeleteItem: 1 });
    expect(await keysInTable(table)).toEqual([valueKey('q8', 'leased'), valueKey('q9')].sort());
  });

  it.each([
    ['a string', 'yes'],
    ['null', null],
    ['an array', [1000]],
    ['a negative ttlMs', { ttlMs: -1 }],
    ['a zero pollMs', { pollMs: 0 }],
    ['a non-number waitMs', { waitMs: '5s' }],
    ['an unknown field', { ttl: 10 }],
  ])('rejects %s as lease at bootstrap, naming "lease"', async (_label, lease) => {
    const table = await fx.dynamo.table();
    await expect(
      bootCache({ table, client: fx.dynamo.client(), lease } as DynamoCacheModuleOptions, [
        ReportService,
      ]),
    ).rejects.toThrow(/"lease"/);
    await expect(
      bootCache({ table, client: fx.dynamo.client(), lease } as DynamoCacheModuleOptions, [
        ReportService,
      ]),
    ).rejects.toBeInstanceOf(DynamoCacheError);
  });

  it('rejects a bad lease on @DynamoCached where it is applied, naming "lease"', () => {
    expect(() =>
      DynamoCached({ lease: { pollMs: -5 } })({}, 'm', { value: async () => 1 }),
    ).toThrow(/"lease".*pollMs/);
  });

  it('stores the lease item the README documents while the computation runs', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { lease: { ttlMs: 7000 } });
    const before = Date.now();
    const pending = a.service.report('q10');
    await sleep(150); // inside the 300 ms computation
    const lease = (await scanTable(fx.admin, table)).find((i) =>
      i.cache_key!.S!.endsWith(LEASE_SUFFIX),
    );
    expect(await pending).toBe('report-q10');
    expect(lease).toBeDefined();
    expect(Object.keys(lease!).sort()).toEqual(['c', 'cache_key', 'exp', 'n', 'owner', 'until']);
    expect(lease!.cache_key!.S).toBe(valueKey('q10') + LEASE_SUFFIX);
    // The engine's id, the namespace and the computation's number within the engine.
    expect(lease!.owner!.S).toMatch(/^[0-9a-f-]{36}#ReportService\.report#\d+$/);
    const until = Number(lease!.until!.N);
    expect(until).toBeGreaterThanOrEqual(before + 7000);
    expect(until).toBeLessThan(before + 7000 + 1000);
    expect(Number(lease!.exp!.N)).toBe(Math.ceil(until / 1000) + 1);
    // Claims counted (this one the first); the owner writes copies for its waiters.
    expect(lease!.n).toEqual({ N: '1' });
    expect(lease!.c).toEqual(lease!.owner);
  });
});
