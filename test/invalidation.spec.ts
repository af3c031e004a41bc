import { GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { Inject, Injectable } from '@nestjs/common';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheService,
  encodeKey,
  v8Serializer,
} from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import {
  countCalls,
  testServerKind,
  useTestDynamo,
  type CallCounter,
} from './support/dynamo-server.js';
import { RecordingLogger } from './support/recording-logger.js';
import { until, within } from './support/waits.js';

const NS = 'ProfileService.profile';
const FAKE_DB = 'FAKE_DB';

/** The application's database as the test drives it: rows, and reads held until released. */
class FakeDb {
  readonly rows = new Map<string, string>();
  /** How many of the next reads are held (after reading the row) until the test releases them. */
  holdNext = 0;
  /** Releases of the held reads, in the order they were held. */
  readonly held: (() => void)[] = [];

  async read(id: string): Promise<string | undefined> {
    const row = this.rows.get(id);
    if (this.holdNext > 0) {
      this.holdNext--;
      await new Promise<void>((resolve) => this.held.push(resolve));
    }
    return row;
  }

  /** Lets every held read go on (teardown: a failed test must not leave computations waiting). */
  releaseAll(): void {
    for (const release of this.held) release();
  }
}

@Injectable()
class ProfileService {
  calls = 0;

  constructor(@Inject(FAKE_DB) private readonly db: FakeDb) {}

  /** Reads the row when it starts: a held computation returns the row as it was then. */
  @DynamoCached(600)
  async profile(id: string): Promise<string> {
    this.calls++;
    const row = await this.db.read(id);
    return `${id}:${row}`;
  }
}

interface App {
  svc: ProfileService;
  cache: DynamoCacheService;
  calls: CallCounter;
}

const NO_VALUE = Symbol('no value');

describe(`invalidation sticks (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(table: string, db: FakeDb, logger: RecordingLogger | false = false) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache(
      { table, client, ttl: 600 },
      [ProfileService, { provide: FAKE_DB, useValue: db }],
      logger,
    );
    fx.apps.push(moduleRef, { close: async () => db.releaseAll() });
    return {
      svc: moduleRef.get(ProfileService),
      cache: moduleRef.get(DynamoCacheService),
      calls,
    } satisfies App;
  }

  function cacheKey(id: string): string {
    return buildCacheKey('', NS, encodeKey([id]));
  }

  async function rawItem(
    table: string,
    id: string,
  ): Promise<Record<string, AttributeValue> | undefined> {
    const out = await fx.admin.send(
      new GetItemCommand({
        TableName: table,
        Key: { cache_key: { S: cacheKey(id) } },
        ConsistentRead: true,
      }),
    );
    return out.Item;
  }

  /** What the item's `v` decodes to, or NO_VALUE (no item, or a tombstone). */
  async function storedValue(table: string, id: string): Promise<unknown> {
    const item = await rawItem(table, id);
    if (item?.v?.B === undefined) return NO_VALUE;
    expect(item.z).toBeUndefined(); // small values are stored uncompressed
    return v8Serializer.deserialize(item.v.B);
  }

  function nsStats(a: App) {
    return a.cache.stats().namespaces[NS]!;
  }

  describe('in one process', () => {
    it.each(['the new computation', 'the old computation'])(
      'delete during a computation: later calls do not join it, it writes neither layer (%s settles first)',
      async (first) => {
        const table = await fx.dynamo.table();
        const db = new FakeDb();
        db.rows.set('u1', 'old');
        const a = await app(table, db);

        db.holdNext = 1;
        const oldCallers = [a.svc.profile('u1')];
        await until(() => db.held.length === 1, 'the old computation to read its row');
        oldCallers.push(a.svc.profile('u1')); // joins the old computation
        expect(a.svc.calls).toBe(1);

        db.rows.set('u1', 'new');
        await a.cache.delete(NS, ['u1']);
        a.calls.reset();

        if (first === 'the old computation') db.holdNext = 1;
        const fresh = a.svc.profile('u1');
        // It did not join: the method runs again, on the new row.
        await until(() => a.svc.calls === 2, 'a second computation after the delete');
        if (first === 'the new computation') {
          expect(await within(fresh, 'the call after the delete')).toBe('u1:new');
          db.held[0]!();
        } else {
          await until(() => db.held.length === 2, 'the new computation to read its row');
          db.held[0]!();
          expect(await within(Promise.all(oldCallers), 'the old callers')).toEqual([
            'u1:old',
            'u1:old',
          ]);
          db.held[1]!();
          expect(await within(fresh, 'the call after the delete')).toBe('u1:new');
        }
        expect(await within(Promise.all(oldCallers), 'the old callers')).toEqual([
          'u1:old',
          'u1:old',
        ]);

        // Exactly one value reached DynamoDB after the delete: the new computation's.
        expect(a.calls.get('PutItem') - nsStats(a).l2Refused).toBe(1);
        expect(nsStats(a).l2Writes).toBe(1);
        expect(await storedValue(table, 'u1')).toBe('u1:new');

        // L1 holds the new value: served without computing.
        expect(await a.svc.profile('u1')).toBe('u1:new');
        expect(await a.cache.get(NS, ['u1'])).toBe('u1:new');
        expect(a.svc.calls).toBe(2);

        // L2 holds it too: a fresh application reads it without computing.
        const b = await app(table, db);
        expect(await b.svc.profile('u1')).toBe('u1:new');
        expect(b.svc.calls).toBe(0);
      },
    );

    it('set during a computation: its callers get their value, then every call the set one', async () => {
      const table = await fx.dynamo.table();
      const db = new FakeDb();
      db.rows.set('u1', 'old');
      const a = await app(table, db);

      db.holdNext = 1;
      const oldCallers = [a.svc.profile('u1')];
      await until(() => db.held.length === 1, 'the old computation to read its row');
      oldCallers.push(a.svc.profile('u1'));

      db.rows.set('u1', 'new');
      await a.cache.set(NS, ['u1'], 'u1:set');
      a.calls.reset();

      // A call after the set does not wait for the old computation.
      expect(await within(a.svc.profile('u1'), 'the call after the set')).toBe('u1:set');
      db.held[0]!();
      expect(await within(Promise.all(oldCallers), 'the old callers')).toEqual([
        'u1:old',
        'u1:old',
      ]);

      expect(a.calls.get('PutItem') - nsStats(a).l2Refused).toBe(0);
      expect(await storedValue(table, 'u1')).toBe('u1:set');
      expect(await a.svc.profile('u1')).toBe('u1:set');
      expect(a.svc.calls).toBe(1);

      const b = await app(table, db);
      expect(await b.svc.profile('u1')).toBe('u1:set');
      expect(b.svc.calls).toBe(0);
    });
  });

  it('a read made while the tombstone is on its way may see the old item, but does not keep it', async () => {
    const table = await fx.dynamo.table();
    const db = new FakeDb();
    db.rows.set('u1', 'old');
    // The same real table, reached through a client whose next PutItem waits for the test.
    const client = fx.dynamo.client();
    let holdPut = false;
    let releasePut!: () => void;
    const putHeld = new Promise<void>((resolve) => (releasePut = resolve));
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (holdPut && context.commandName === 'PutItemCommand') {
          holdPut = false;
          await putHeld;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdNextPutItem' },
    );
    const moduleRef = await bootCache({ table, client, ttl: 600 }, [
      ProfileService,
      { provide: FAKE_DB, useValue: db },
    ]);
    fx.apps.push(moduleRef, { close: async () => releasePut() });
    const svc = moduleRef.get(ProfileService);
    const cache = moduleRef.get(DynamoCacheService);

    expect(await svc.profile('u1')).toBe('u1:old');
    db.rows.set('u1', 'new');
    holdPut = true;
    const deleting = cache.delete(NS, ['u1']);
    // The tombstone has not reached DynamoDB: this call reads the old item there.
    expect(await within(svc.profile('u1'), 'the call during the delete')).toBe('u1:old');
    releasePut();
    await within(deleting, 'the delete');
    // Once the delete has resolved, nothing of the old value is left in L1.
    expect(await svc.profile('u1')).toBe('u1:new');
    expect(svc.calls).toBe(2);
    expect(await storedValue(table, 'u1')).toBe('u1:new');
  });

  describe('across two applications on one table', () => {
    it("B's delete during A's computation: A's write is refused, A's L1 stays empty, both then serve the new row", async () => {
      const table = await fx.dynamo.table();
      const db = new FakeDb();
      db.rows.set('u1', 'old');
      const a = await app(table, db);
      const b = await app(table, db);

      db.holdNext = 1;
      const old = a.svc.profile('u1');
      await until(() => db.held.length === 1, "A's computation to read its row");
      db.rows.set('u1', 'new');
      await b.cache.delete(NS, ['u1']);
      db.held[0]!();
      expect(await within(old, "A's caller")).toBe('u1:old');

      expect(nsStats(a).l2Refused).toBe(1);
      expect(nsStats(a).l2Writes).toBe(0);
      const item = await rawItem(table, 'u1');
      expect(item).toBeDefined();
      expect(item!.v).toBeUndefined(); // B's tombstone stands
      // Not in A's L1 either (L2 has only the tombstone).
      expect(await a.cache.lookup(NS, ['u1'])).toEqual({ hit: false });

      expect(await a.svc.profile('u1')).toBe('u1:new');
      expect(a.svc.calls).toBe(2);
      expect(await b.svc.profile('u1')).toBe('u1:new');
      expect(await a.svc.profile('u1')).toBe('u1:new');
      expect(await b.svc.profile('u1')).toBe('u1:new');
      expect(await storedValue(table, 'u1')).toBe('u1:new');
      expect(a.svc.calls + b.svc.calls).toBe(2);
    });

    it("B's set during A's computation: A's write is refused, both then serve the set value", async () => {
      const table = await fx.dynamo.table();
      const db = new FakeDb();
      db.rows.set('u1', 'old');
      const a = await app(table, db);
      const b = await app(table, db);

      db.holdNext = 1;
      const old = a.svc.profile('u1');
      await until(() => db.held.length === 1, "A's computation to read its row");
      db.rows.set('u1', 'new');
      await b.cache.set(NS, ['u1'], 'u1:set');
      db.held[0]!();
      expect(await within(old, "A's caller")).toBe('u1:old');

      expect(nsStats(a).l2Refused).toBe(1);
      expect(nsStats(a).l2Writes).toBe(0);
      expect(await storedValue(table, 'u1')).toBe('u1:set');
      // A's L1 does not hold its old value: the lookup reaches L2.
      expect(await a.cache.lookup(NS, ['u1'])).toEqual({ hit: true, value: 'u1:set' });
      expect(nsStats(a).l2Hits).toBe(1);

      expect(await a.svc.profile('u1')).toBe('u1:set');
      expect(await b.svc.profile('u1')).toBe('u1:set');
      expect(a.svc.calls).toBe(1);
      expect(b.svc.calls).toBe(0);
      expect(await storedValue(table, 'u1')).toBe('u1:set');
    });
  });

  it('a tombstone is a miss without a warning, and the next computation replaces it', async () => {
    const table = await fx.dynamo.table();
    const nowS = Date.now() / 1000;
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: cacheKey('u1') },
          t: { N: String(nowS - 5) },
          exp: { N: String(Math.ceil(nowS + 120)) },
        },
      }),
    );
    const db = new FakeDb();
    db.rows.set('u1', 'row');
    const logger = new RecordingLogger();
    const a = await app(table, db, logger);

    expect(await a.svc.profile('u1')).toBe('u1:row');
    expect(a.svc.calls).toBe(1);
    expect(logger.warnings).toEqual([]);
    expect(logger.errors).toEqual([]);
    expect(nsStats(a)).toMatchObject({ misses: 1, l2Hits: 0, l2Writes: 1, l2Refused: 0 });
    expect(await storedValue(table, 'u1')).toBe('u1:row');

    const b = await app(table, db);
    expect(await b.svc.profile('u1')).toBe('u1:row');
    expect(b.svc.calls).toBe(0);
  });

  it('set of a value that cannot be serialized: no older value for another app, the setter serves it from L1', async () => {
    const table = await fx.dynamo.table();
    const db = new FakeDb();
    db.rows.set('u1', 'old');
    const a = await app(table, db);
    expect(await a.svc.profile('u1')).toBe('u1:old');
    expect(await storedValue(table, 'u1')).toBe('u1:old');

    const unserializable = { name: 'set', format: () => 'formatted' };
    await a.cache.set(NS, ['u1'], unserializable);
    expect(await storedValue(table, 'u1')).toBe(NO_VALUE);

    // The setting application serves the value from L1, function and all.
    expect(await a.svc.profile('u1')).toBe(unserializable as unknown as string);
    expect(a.svc.calls).toBe(1);

    // Another application finds no value and recomputes.
    db.rows.set('u1', 'new');
    const b = await app(table, db);
    expect(await b.cache.get(NS, ['u1'])).toBeUndefined();
    expect(await b.svc.profile('u1')).toBe('u1:new');
    expect(b.svc.calls).toBe(1);
  });

  it('a tombstone past its exp is still a miss, and a reader never deletes it', async () => {
    const table = await fx.dynamo.table();
    const nowS = Date.now() / 1000;
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: cacheKey('u1') },
          t: { N: String(nowS - 7200) },
          exp: { N: String(Math.ceil(nowS - 3600)) },
        },
      }),
    );
    const db = new FakeDb();
    db.rows.set('u1', 'row');
    const a = await app(table, db);
    expect(await a.cache.lookup(NS, ['u1'])).toEqual({ hit: false });
    expect(a.calls.get('DeleteItem')).toBe(0);
    expect((await rawItem(table, 'u1'))?.t?.N).toBe(String(nowS - 7200));
  });

  it('a repair of an unreadable item does not overwrite a delete made while it computed', async () => {
    const table = await fx.dynamo.table();
    // An item with a bogus t (a day ahead): unreadable, so the next computation replaces it...
    const futureT = String(Date.now() / 1000 + 86_400);
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: cacheKey('u1') },
          v: { B: new Uint8Array([1]) },
          t: { N: futureT },
        },
      }),
    );
    const db = new FakeDb();
    db.rows.set('u1', 'old');
    const a = await app(table, db);
    const b = await app(table, db);
    db.holdNext = 1;
    const repairing = a.svc.profile('u1');
    await until(() => db.held.length === 1, "A's computation to read its row");
    // ...but a delete made meanwhile (by another app) wins over that repair.
    db.rows.set('u1', 'new');
    await b.cache.delete(NS, ['u1']);
    db.held[0]!();
    expect(await within(repairing, "A's caller")).toBe('u1:old');
    expect(nsStats(a).l2Refused).toBe(1);
    expect(await storedValue(table, 'u1')).toBe(NO_VALUE);
    expect(await b.svc.profile('u1')).toBe('u1:new');
  });

  it('set then delete of one key in one process reach DynamoDB in that order, even when the set is slow', async () => {
    const table = await fx.dynamo.table();
    const db = new FakeDb();
    db.rows.set('u1', 'row');
    const client = fx.dynamo.client();
    let releaseFirstPut!: () => void;
    const firstPutHeld = new Promise<void>((resolve) => (releaseFirstPut = resolve));
    let puts = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        // The set's PutItem is slow (a retry, throttling): it waits for the test.
        if (context.commandName === 'PutItemCommand' && ++puts === 1) await firstPutHeld;
        return next(args);
      },
      { step: 'initialize', name: 'holdFirstPutItem' },
    );
    const moduleRef = await bootCache({ table, client, ttl: 600 }, [
      ProfileService,
      { provide: FAKE_DB, useValue: db },
    ]);
    fx.apps.push(moduleRef, { close: async () => releaseFirstPut() });
    const cache = moduleRef.get(DynamoCacheService);

    const setting = cache.set(NS, ['u1'], 'u1:set');
    const deleting = cache.delete(NS, ['u1']);
    await sleep(50);
    releaseFirstPut();
    await within(Promise.all([setting, deleting]), 'the set and the delete');
    // The delete was made last: its tombstone is what DynamoDB holds.
    expect(await storedValue(table, 'u1')).toBe(NO_VALUE);
    expect((await rawItem(table, 'u1'))?.t).toBeDefined();
    const other = await app(table, db);
    expect(await other.svc.profile('u1')).toBe('u1:row');
    expect(other.svc.calls).toBe(1);
  });
});
