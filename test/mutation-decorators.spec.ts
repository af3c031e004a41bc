import 'reflect-metadata';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import {
  Body,
  Controller,
  Get,
  Injectable,
  Param,
  Post,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import {
  Args,
  Field,
  Float,
  GraphQLModule,
  Mutation,
  ObjectType,
  Query,
  Resolver,
} from '@nestjs/graphql';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { createServer, type AddressInfo } from 'node:net';
import { deserialize } from 'node:v8';
import request from 'supertest';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheError,
  DynamoCacheEvict,
  DynamoCacheModule,
  DynamoCachePut,
  DynamoCacheService,
  encodeKey,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { bootCache, scanTable, settleAll, sleep } from './support/apps.js';
import {
  countCalls,
  dummyClientConfig,
  testServerKind,
  useTestDynamo,
  type CallCounter,
} from './support/dynamo-server.js';

/*
 * @DynamoCacheEvict and @DynamoCachePut on service methods, route handlers (Express and Fastify)
 * and a GraphQL mutation. Two applications on one table stand for two instances of a service:
 * each has its own client and L1; they share the table and the "database" (RateDb, UserDb).
 * App B runs with l1MaxAge: 1, so it sees another process's invalidation once its L1 entry is
 * older than a second (the tests wait L1_MAX_AGE_WAIT for that).
 */

const L1_MAX_AGE_WAIT = 1300;
const SITE = 'rates.example';

/** The database behind every application of a test (one object, as one real database). */
class RateDb {
  values: Record<string, number> = { 'EUR-USD': 1.1, 'USD-JPY': 150, 'GBP-USD': 1.3 };
  /** While set, writes wait for it (a slow database). */
  slow: Promise<void> | undefined;
  /** Writes that reached the database. */
  writes = 0;
  /** The next write fails. */
  failNext = false;

  async write(pair: string, value: number): Promise<void> {
    await this.slow;
    if (this.failNext) {
      this.failNext = false;
      throw new Error(`write of ${pair} failed`);
    }
    this.writes++;
    this.values[pair] = value;
  }

  /** Holds writes until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.slow = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.slow = undefined;
      release();
    };
  }
}

const RATE_NS = 'RatesService.rate';

@Injectable()
class RatesService {
  /** Runs of rate(), per pair. */
  readonly calls: Record<string, number> = {};
  feeCalls = 0;

  constructor(private readonly db: RateDb) {}

  @DynamoCached({ ttl: 600, tags: (_value: number, pair: string) => ['rates', `pair:${pair}`] })
  async rate(pair: string): Promise<number> {
    this.calls[pair] = (this.calls[pair] ?? 0) + 1;
    return this.db.values[pair] ?? 0;
  }

  /** Another namespace, untagged: evictions of rates leave it alone. */
  @DynamoCached(600)
  async fee(pair: string): Promise<number> {
    this.feeCalls++;
    return pair.length / 1000;
  }

  @DynamoCacheEvict({ namespace: RATE_NS, args: (pair: string) => [pair] })
  async update(pair: string, value: number): Promise<number> {
    await this.db.write(pair, value);
    return value;
  }

  @DynamoCacheEvict({ namespace: RATE_NS, args: (pair: string) => [pair], beforeInvocation: true })
  async updateEagerly(pair: string, value: number): Promise<number> {
    await this.db.write(pair, value);
    return value;
  }

  /** No `args`: the method's own arguments name the entry. */
  @DynamoCacheEvict({ namespace: RATE_NS })
  async refresh(pair: string): Promise<string> {
    return `refreshed ${pair}`;
  }

  @DynamoCacheEvict({ namespace: RATE_NS, allEntries: true })
  async reload(values: Record<string, number>): Promise<number> {
    for (const [pair, value] of Object.entries(values)) await this.db.write(pair, value);
    return Object.keys(values).length;
  }

  /** Fixed tags: every entry tagged 'rates'. */
  @DynamoCacheEvict({ tags: ['rates'] })
  async rebase(values: Record<string, number>): Promise<string> {
    for (const [pair, value] of Object.entries(values)) await this.db.write(pair, value);
    return 'rebased';
  }

  /** Tags from the result (the pairs the update also moved) and the arguments (the pair). */
  @DynamoCacheEvict({
    tags: (moved: string[], pair: string) => [`pair:${pair}`, ...moved.map((p) => `pair:${p}`)],
  })
  async updateWithCross(pair: string, value: number, cross: string): Promise<string[]> {
    await this.db.write(pair, value);
    await this.db.write(cross, value * 2);
    return [cross];
  }
}

interface User {
  id: string;
  name: string;
  version: number;
}

class UserDb {
  users: Record<string, User> = { u1: { id: 'u1', name: 'Ann', version: 1 } };
}

const USER_NS = 'UsersService.find';

@Injectable()
class UsersService {
  finds = 0;

  constructor(private readonly db: UserDb) {}

  @DynamoCached(600)
  async find(id: string): Promise<User | null> {
    this.finds++;
    return this.db.users[id] ?? null;
  }

  /** Returns the saved user (a new version), not its argument. */
  @DynamoCachePut({ namespace: USER_NS, args: (user: Pick<User, 'id' | 'name'>) => [user.id] })
  async save(user: Pick<User, 'id' | 'name'>): Promise<User> {
    const saved = { ...user, version: (this.db.users[user.id]?.version ?? 0) + 1 };
    this.db.users[user.id] = saved;
    return saved;
  }
}

@Controller('rates')
class RatesController {
  gets = 0;

  constructor(private readonly db: RateDb) {}

  @Get(':pair')
  @DynamoCached(60)
  get(@Param('pair') pair: string) {
    this.gets++;
    return { pair, value: this.db.values[pair] ?? null };
  }

  /** @Post above the eviction: Nest's route metadata is set on the wrapper. */
  @Post(':pair')
  @DynamoCacheEvict({ namespace: 'RatesController.get', allEntries: true })
  async set(@Param('pair') pair: string, @Body() body: { value: number }) {
    await this.db.write(pair, body.value);
    return { pair, value: body.value, via: 'set' };
  }

  /** The eviction above @Post: it carries the route metadata over to its wrapper. */
  @DynamoCacheEvict({ namespace: 'RatesController.get', allEntries: true })
  @Post(':pair/value')
  async setValue(@Param('pair') pair: string, @Body('value') value: number) {
    await this.db.write(pair, value);
    return { pair, value, via: 'setValue' };
  }
}

/** A route that evicts a service method's entry, named by the route's @Param. */
@Controller('admin')
class AdminController {
  @Post('refresh/:pair')
  @DynamoCacheEvict({ namespace: RATE_NS, args: (pair: string) => [pair] })
  refresh(@Param('pair') pair: string) {
    return { refreshed: pair };
  }
}

@ObjectType()
class Quote {
  @Field() pair!: string;
  @Field(() => Float) value!: number;
}

@Resolver(() => Quote)
class QuoteResolver {
  runs = 0;

  constructor(private readonly db: RateDb) {}

  @Query(() => Quote)
  @DynamoCached(60)
  quote(@Args('pair') pair: string): Quote {
    this.runs++;
    return { pair, value: this.db.values[pair] ?? 0 };
  }

  @Mutation(() => Quote)
  @DynamoCacheEvict({ namespace: 'QuoteResolver.quote', allEntries: true })
  async setQuote(
    @Args('pair') pair: string,
    @Args('value', { type: () => Float }) value: number,
  ): Promise<Quote> {
    await this.db.write(pair, value);
    return { pair, value };
  }
}

/** The rejection of `promise` (fails the test if it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** What `fn` throws (fails the test if it returns). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe(`@DynamoCacheEvict and @DynamoCachePut (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const settle = (): Promise<void> => settleAll(fx.apps);

  interface ServiceApp {
    rates: RatesService;
    users: UsersService;
    cache: DynamoCacheService;
    calls: CallCounter;
  }

  /** A fresh application (empty L1, its own counted client) on `table`, sharing the databases. */
  async function app(
    table: string,
    dbs: { rates: RateDb; users?: UserDb },
    module: Partial<DynamoCacheModuleOptions> = {},
  ): Promise<ServiceApp> {
    await settle();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client, ...module }, [
      { provide: RateDb, useValue: dbs.rates },
      { provide: UserDb, useValue: dbs.users ?? new UserDb() },
      RatesService,
      UsersService,
    ]);
    fx.apps.push(moduleRef);
    return {
      rates: moduleRef.get(RatesService),
      users: moduleRef.get(UsersService),
      cache: moduleRef.get(DynamoCacheService),
      calls,
    };
  }

  /** Reads every pair once in `a` (each computed once, or read from L2). */
  async function warm(a: ServiceApp, pairs: string[]): Promise<number[]> {
    const out: number[] = [];
    for (const pair of pairs) out.push(await a.rates.rate(pair));
    return out;
  }

  describe('@DynamoCacheEvict on a service method', () => {
    it('after update() resolves: A recomputes the entry with exactly one call, B (l1MaxAge 1) serves the new value after l1MaxAge; other pairs stay hits', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      expect(await warm(a, ['EUR-USD', 'USD-JPY'])).toEqual([1.1, 150]);
      const b = await app(table, { rates: db }, { l1MaxAge: 1 });
      expect(await warm(b, ['EUR-USD', 'USD-JPY'])).toEqual([1.1, 150]);
      expect(b.rates.calls).toEqual({}); // both from L2

      expect(await a.rates.update('EUR-USD', 1.2)).toBe(1.2);
      expect(await a.rates.rate('EUR-USD')).toBe(1.2);
      expect(await a.rates.rate('EUR-USD')).toBe(1.2);
      expect(await a.rates.rate('USD-JPY')).toBe(150);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2, 'USD-JPY': 1 });

      await settle();
      await sleep(L1_MAX_AGE_WAIT);
      expect(await b.rates.rate('EUR-USD')).toBe(1.2);
      expect(await b.rates.rate('USD-JPY')).toBe(150);
      // B never ran the method: the new value is the one A recomputed, read from L2.
      expect(b.rates.calls).toEqual({});
    });

    it('after update() in A, before A reads again: B (l1MaxAge 1) recomputes the entry exactly once after l1MaxAge', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      await warm(a, ['EUR-USD', 'USD-JPY']);
      const b = await app(table, { rates: db }, { l1MaxAge: 1 });
      await warm(b, ['EUR-USD', 'USD-JPY']);
      expect(b.rates.calls).toEqual({});

      await a.rates.update('EUR-USD', 1.2);
      await sleep(L1_MAX_AGE_WAIT);
      expect(await warm(b, ['EUR-USD', 'USD-JPY'])).toEqual([1.2, 150]);
      expect(await warm(b, ['EUR-USD', 'USD-JPY'])).toEqual([1.2, 150]);
      expect(b.rates.calls).toEqual({ 'EUR-USD': 1 });
      // ... and A, whose L1 entry the update dropped, reads B's new entry.
      expect(await a.rates.rate('EUR-USD')).toBe(1.2);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 1, 'USD-JPY': 1 });
    });

    it('a slow update() evicts only when it resolves: reads while it runs are hits with no DynamoDB call', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      await warm(a, ['EUR-USD']);
      await settle();
      a.calls.reset();

      const release = db.hold();
      const updating = a.rates.update('EUR-USD', 1.2);
      await sleep(50);
      expect(await a.rates.rate('EUR-USD')).toBe(1.1);
      expect(await a.rates.rate('EUR-USD')).toBe(1.1);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 1 });
      expect(a.calls.total()).toBe(0); // nothing evicted yet: no tombstone written

      release();
      expect(await updating).toBe(1.2);
      expect(a.calls.counts).toEqual({ PutItem: 1 }); // the tombstone
      expect(await a.rates.rate('EUR-USD')).toBe(1.2);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2 });
    });

    it('a rejecting update() evicts nothing: the same error, no DynamoDB call, still a hit in A and in B', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      await warm(a, ['EUR-USD']);
      await settle();
      a.calls.reset();

      db.failNext = true;
      const err = await rejectionOf(a.rates.update('EUR-USD', 1.2));
      expect(err).not.toBeInstanceOf(DynamoCacheError);
      expect((err as Error).message).toBe('write of EUR-USD failed');
      expect(a.calls.total()).toBe(0);
      expect(await a.rates.rate('EUR-USD')).toBe(1.1);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 1 });

      const b = await app(table, { rates: db });
      expect(await b.rates.rate('EUR-USD')).toBe(1.1);
      expect(b.rates.calls).toEqual({});
    });

    it('beforeInvocation: evicts before the method runs (a read while it runs recomputes) and even when it rejects', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      await warm(a, ['EUR-USD', 'USD-JPY']);

      // Evicted as the call starts: a read during the (slow) method recomputes.
      const release = db.hold();
      const updating = a.rates.updateEagerly('EUR-USD', 1.2);
      await sleep(50);
      expect(await a.rates.rate('EUR-USD')).toBe(1.1); // the database has not changed yet
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2, 'USD-JPY': 1 });
      release();
      expect(await updating).toBe(1.2);

      // A rejecting method: the entry is evicted all the same, and the method's error is the call's.
      db.failNext = true;
      await settle();
      const err = await rejectionOf(a.rates.updateEagerly('USD-JPY', 151));
      expect(err).not.toBeInstanceOf(DynamoCacheError);
      expect((err as Error).message).toBe('write of USD-JPY failed');
      // In DynamoDB: the entry is a tombstone (no value) that no process reads as a hit.
      await settle();
      const item = (await scanTable(fx.admin, table)).find(
        (i) => i.cache_key?.S === buildCacheKey('', RATE_NS, encodeKey(['USD-JPY'])),
      );
      expect(item).toBeDefined();
      expect(item?.v).toBeUndefined();
      // In A's L1: recomputed.
      expect(await a.rates.rate('USD-JPY')).toBe(150);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2, 'USD-JPY': 2 });
    });

    it("without `args`: the method's own arguments name the entry", async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      await warm(a, ['EUR-USD', 'USD-JPY']);
      expect(await a.rates.refresh('EUR-USD')).toBe('refreshed EUR-USD');
      await warm(a, ['EUR-USD', 'USD-JPY']);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2, 'USD-JPY': 1 });
    });

    it('allEntries: every entry of the namespace recomputes, in A and in B; another namespace is untouched', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      const pairs = ['EUR-USD', 'USD-JPY', 'GBP-USD'];
      await warm(a, pairs);
      await a.rates.fee('EUR-USD');
      const b = await app(table, { rates: db }, { l1MaxAge: 1 });
      await warm(b, pairs);
      await b.rates.fee('EUR-USD');
      expect(b.rates.calls).toEqual({});
      expect(b.rates.feeCalls).toBe(0);
      await settle();
      a.calls.reset();

      expect(await a.rates.reload({ 'EUR-USD': 1.2, 'GBP-USD': 1.4 })).toBe(2);
      expect(a.calls.counts).toEqual({ PutItem: 1 }); // one marker, no Scan
      expect(await warm(a, pairs)).toEqual([1.2, 150, 1.4]);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2, 'USD-JPY': 2, 'GBP-USD': 2 });
      expect(await a.rates.fee('EUR-USD')).toBe(0.007);
      expect(a.rates.feeCalls).toBe(1);

      await settle();
      await sleep(L1_MAX_AGE_WAIT);
      expect(await warm(b, pairs)).toEqual([1.2, 150, 1.4]);
      await b.rates.fee('EUR-USD');
      expect(b.rates.feeCalls).toBe(0);
    });

    it('allEntries in A, before B has recomputed anything: B (l1MaxAge 1) recomputes each entry exactly once (the call that learns the clear marker fills both layers)', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      const pairs = ['EUR-USD', 'USD-JPY'];
      await warm(a, pairs);
      const b = await app(table, { rates: db }, { l1MaxAge: 1 });
      await warm(b, pairs);
      expect(b.rates.calls).toEqual({});

      await a.rates.reload({ 'EUR-USD': 1.2 });
      await sleep(L1_MAX_AGE_WAIT);
      expect(await warm(b, pairs)).toEqual([1.2, 150]);
      expect(await warm(b, pairs)).toEqual([1.2, 150]);
      expect(b.rates.calls).toEqual({ 'EUR-USD': 1, 'USD-JPY': 1 });
    });

    it('fixed tags: every entry carrying the tag recomputes, in A and in B; an untagged entry is untouched', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      const pairs = ['EUR-USD', 'USD-JPY'];
      await warm(a, pairs);
      await a.rates.fee('EUR-USD');
      const b = await app(table, { rates: db }, { l1MaxAge: 1 });
      await warm(b, pairs);
      await settle();
      a.calls.reset();

      expect(await a.rates.rebase({ 'EUR-USD': 1.5, 'USD-JPY': 140 })).toBe('rebased');
      expect(a.calls.counts).toEqual({ PutItem: 1 }); // one tag marker
      await sleep(L1_MAX_AGE_WAIT);
      expect(await warm(b, pairs)).toEqual([1.5, 140]);
      expect(b.rates.calls).toEqual({ 'EUR-USD': 1, 'USD-JPY': 1 });
      expect(await warm(a, pairs)).toEqual([1.5, 140]);
      await a.rates.fee('EUR-USD');
      expect(a.rates.feeCalls).toBe(1);
    });

    it('tags as a function of (result, ...args): the pair argument and the pairs in the result are invalidated, nothing else', async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await app(table, { rates: db });
      const pairs = ['EUR-USD', 'USD-JPY', 'GBP-USD'];
      await warm(a, pairs);
      await settle();
      a.calls.reset();

      expect(await a.rates.updateWithCross('EUR-USD', 1.2, 'GBP-USD')).toEqual(['GBP-USD']);
      expect(a.calls.counts).toEqual({ PutItem: 2 }); // pair:EUR-USD, pair:GBP-USD
      expect(await warm(a, pairs)).toEqual([1.2, 150, 2.4]);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2, 'USD-JPY': 1, 'GBP-USD': 2 });
    });
  });

  describe('@DynamoCachePut on a service method', () => {
    it('save(user) stores its result: find() is then a hit with the new value in A and in a fresh B, never calling find; the table holds it', async () => {
      const table = await fx.dynamo.table();
      const rates = new RateDb();
      const users = new UserDb();
      const a = await app(table, { rates, users });
      expect(await a.users.find('u1')).toEqual({ id: 'u1', name: 'Ann', version: 1 });
      expect(a.users.finds).toBe(1);
      await settle();
      a.calls.reset();

      const saved = await a.users.save({ id: 'u1', name: 'Ann B.' });
      expect(saved).toEqual({ id: 'u1', name: 'Ann B.', version: 2 });
      const created = await a.users.save({ id: 'u2', name: 'Bob' });
      expect(created).toEqual({ id: 'u2', name: 'Bob', version: 1 });
      expect(a.calls.counts).toEqual({ PutItem: 2 });

      expect(await a.users.find('u1')).toEqual(saved);
      expect(await a.users.find('u2')).toEqual(created);
      expect(a.users.finds).toBe(1); // only the read before save
      expect(a.calls.counts).toEqual({ PutItem: 2 }); // both from L1

      const b = await app(table, { rates, users });
      expect(await b.users.find('u1')).toEqual(saved);
      expect(await b.users.find('u2')).toEqual(created);
      expect(b.users.finds).toBe(0);
      expect(b.cache.stats().namespaces[USER_NS]).toMatchObject({ l2Hits: 2, misses: 0 });

      await settle();
      const items = await scanTable(fx.admin, table);
      const value = (id: string): unknown => {
        const item = items.find(
          (i) => i.cache_key?.S === buildCacheKey('', USER_NS, encodeKey([id])),
        );
        expect(item?.z).toBeUndefined();
        return item?.v?.B === undefined ? undefined : deserialize(Buffer.from(item.v.B));
      };
      expect(value('u1')).toEqual(saved);
      expect(value('u2')).toEqual(created);
    });
  });

  describe('when DynamoDB is unreachable for the eviction', () => {
    const clients: DynamoDBClient[] = [];
    afterEach(() => {
      for (const c of clients.splice(0)) c.destroy();
    });

    async function unreachableApp(module: Partial<DynamoCacheModuleOptions>) {
      const client = new DynamoDBClient(
        dummyClientConfig(`http://127.0.0.1:${await closedPort()}`),
      );
      clients.push(client);
      const db = new RateDb();
      const users = new UserDb();
      const moduleRef = await bootCache({ table: 'unreachable', client, ...module }, [
        { provide: RateDb, useValue: db },
        { provide: UserDb, useValue: users },
        RatesService,
        UsersService,
      ]);
      fx.apps.push(moduleRef);
      return { db, users, rates: moduleRef.get(RatesService), user: moduleRef.get(UsersService) };
    }

    it("onError 'throw': each decorator's call rejects with a DynamoCacheError whose result is the method's result (the method did run)", async () => {
      const u = await unreachableApp({ onError: 'throw' });
      const failures: [string, Promise<unknown>, unknown][] = [];
      failures.push(['evict one', u.rates.update('EUR-USD', 1.2), 1.2]);
      failures.push(['allEntries', u.rates.reload({ 'USD-JPY': 151 }), 1]);
      failures.push(['tags', u.rates.rebase({ 'GBP-USD': 1.4 }), 'rebased']);
      failures.push(['put', u.user.save({ id: 'u1', name: 'Ann B.' }), undefined]);
      for (const [what, call, result] of failures) {
        const err = await rejectionOf(call);
        expect([what, err]).toEqual([what, expect.any(DynamoCacheError)]);
        expect([what, (err as DynamoCacheError).operation]).toEqual([what, 'PutItem']);
        if (what === 'put') {
          // The very object save() returned, now in the database.
          expect((err as DynamoCacheError).result).toBe(u.users.users.u1);
          expect((err as DynamoCacheError).result).toEqual({
            id: 'u1',
            name: 'Ann B.',
            version: 2,
          });
        } else {
          expect([what, (err as DynamoCacheError).result]).toEqual([what, result]);
        }
      }
      expect(u.db.values).toMatchObject({ 'EUR-USD': 1.2, 'USD-JPY': 151, 'GBP-USD': 1.4 });
    });

    it("onError 'bypass' (the default): each decorator's call resolves with the method's result", async () => {
      const u = await unreachableApp({});
      expect(await u.rates.update('EUR-USD', 1.2)).toBe(1.2);
      expect(await u.rates.reload({ 'USD-JPY': 151 })).toBe(1);
      expect(await u.user.save({ id: 'u1', name: 'Ann B.' })).toEqual({
        id: 'u1',
        name: 'Ann B.',
        version: 2,
      });
      expect(u.db.values).toMatchObject({ 'EUR-USD': 1.2, 'USD-JPY': 151 });
    });

    it("onError 'bypass' (the default): a tags eviction resolves with the method's result too", async () => {
      const u = await unreachableApp({});
      expect(await u.rates.rebase({ 'GBP-USD': 1.4 })).toBe('rebased');
      expect(await u.rates.updateWithCross('EUR-USD', 1.2, 'GBP-USD')).toEqual(['GBP-USD']);
    });
  });

  describe('misuse', () => {
    it('@DynamoCacheEvict({}) throws a config DynamoCacheError at decoration time, naming the method', () => {
      const err = thrownBy(() => {
        class Misconfigured {
          @DynamoCacheEvict({})
          async update(): Promise<void> {}
        }
        return Misconfigured;
      });
      expect(err).toBeInstanceOf(DynamoCacheError);
      expect((err as DynamoCacheError).operation).toBe('config');
      expect((err as Error).message).toContain('Misconfigured.update');
    });

    it('a decorated method of an instance no module reached rejects with operation "config" without running', async () => {
      const db = new RateDb();
      const rates = new RatesService(db);
      const err = await rejectionOf(rates.update('EUR-USD', 1.2));
      expect(err).toBeInstanceOf(DynamoCacheError);
      expect((err as DynamoCacheError).operation).toBe('config');
      expect((err as Error).message).toContain('RatesService.update');
      expect(db.writes).toBe(0);

      const users = new UserDb();
      const putErr = await rejectionOf(new UsersService(users).save({ id: 'u9', name: 'Zed' }));
      expect(putErr).toBeInstanceOf(DynamoCacheError);
      expect((putErr as DynamoCacheError).operation).toBe('config');
      expect((putErr as Error).message).toContain('UsersService.save');
      expect(users.users.u9).toBeUndefined();
    });
  });

  describe('GraphQL: a @Mutation with @DynamoCacheEvict', () => {
    async function gqlApp(
      table: string,
      db: RateDb,
      module: Partial<DynamoCacheModuleOptions> = {},
    ) {
      const client = fx.dynamo.client();
      const moduleRef = await Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({ table, client, ...module }),
          GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
        ],
        providers: [{ provide: RateDb, useValue: db }, QuoteResolver],
      }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      fx.apps.push(app);
      await app.init();
      const gql = async (query: string): Promise<Record<string, unknown>> => {
        const res = await request(app.getHttpServer())
          .post('/graphql')
          .set({ host: SITE })
          .send({ query })
          .expect(200);
        const body = res.body as { data?: Record<string, unknown>; errors?: unknown };
        expect(body.errors).toBeUndefined();
        return body.data ?? {};
      };
      return { gql, resolver: app.get(QuoteResolver) };
    }

    it("evicts every entry of a @Query's namespace (allEntries): the query re-runs in A, and in B after l1MaxAge", async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await gqlApp(table, db);
      const q = (pair: string) => `{ quote(pair: "${pair}") { pair value } }`;
      expect(await a.gql(q('EUR-USD'))).toEqual({ quote: { pair: 'EUR-USD', value: 1.1 } });
      expect(await a.gql(q('USD-JPY'))).toEqual({ quote: { pair: 'USD-JPY', value: 150 } });
      await a.gql(q('EUR-USD'));
      expect(a.resolver.runs).toBe(2);
      await settle();
      const b = await gqlApp(table, db, { l1MaxAge: 1 });
      expect(await b.gql(q('EUR-USD'))).toEqual({ quote: { pair: 'EUR-USD', value: 1.1 } });
      expect(b.resolver.runs).toBe(0);

      expect(
        await a.gql('mutation { setQuote(pair: "EUR-USD", value: 1.2) { pair value } }'),
      ).toEqual({
        setQuote: { pair: 'EUR-USD', value: 1.2 },
      });
      expect(await a.gql(q('EUR-USD'))).toEqual({ quote: { pair: 'EUR-USD', value: 1.2 } });
      expect(await a.gql(q('USD-JPY'))).toEqual({ quote: { pair: 'USD-JPY', value: 150 } });
      expect(a.resolver.runs).toBe(4);

      await settle();
      await sleep(L1_MAX_AGE_WAIT);
      expect(await b.gql(q('EUR-USD'))).toEqual({ quote: { pair: 'EUR-USD', value: 1.2 } });
      expect(b.resolver.runs).toBe(0); // A's new entry, from L2
    });
  });
});

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(
  `@DynamoCacheEvict on route handlers, %s (${testServerKind()})`,
  (_name, makeAdapter) => {
    const fx = useTestDynamo();
    const settle = (): Promise<void> => settleAll(fx.apps);

    /** An application listening on loopback; every request carries Host: rates.example. */
    async function http(
      table: string,
      db: RateDb,
      module: Partial<DynamoCacheModuleOptions> = {},
      controllers: Type[] = [RatesController, AdminController],
    ) {
      await settle();
      const client = fx.dynamo.client();
      const calls = countCalls(client);
      const moduleRef = await Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot({ table, client, ...module })],
        controllers,
        providers: [{ provide: RateDb, useValue: db }, RatesService],
      }).compile();
      const app: INestApplication = moduleRef.createNestApplication(makeAdapter(), {
        logger: false,
      });
      await app.listen(0, '127.0.0.1');
      fx.apps.push(app);
      const { port } = app.getHttpServer().address() as AddressInfo;
      const url = `http://127.0.0.1:${port}`;
      return {
        calls,
        controller: app.get(RatesController),
        rates: app.get(RatesService),
        get: (path: string) => request(url).get(path).set('Host', SITE).expect(200),
        post: (path: string, body: object) =>
          request(url).post(path).set('Host', SITE).send(body).expect(201),
      };
    }

    it.each([
      ['@Post above @DynamoCacheEvict', (pair: string) => `/rates/${pair}`, 'set'],
      ['@DynamoCacheEvict above @Post', (pair: string) => `/rates/${pair}/value`, 'setValue'],
    ])(
      '%s: GET MISS → HIT → POST (handler gets @Param and @Body, answers its result) → GET MISS with the new body; B too after l1MaxAge',
      async (_order, postPath, via) => {
        const table = await fx.dynamo.table();
        const db = new RateDb();
        const a = await http(table, db);
        const first = await a.get('/rates/EUR-USD');
        expect([first.headers['x-cache'], first.body]).toEqual([
          'MISS',
          { pair: 'EUR-USD', value: 1.1 },
        ]);
        const second = await a.get('/rates/EUR-USD');
        expect([second.headers['x-cache'], second.body]).toEqual([
          'HIT',
          { pair: 'EUR-USD', value: 1.1 },
        ]);
        await a.get('/rates/USD-JPY');
        expect(a.controller.gets).toBe(2);
        await settle();
        const b = await http(table, db, { l1MaxAge: 1 });
        const fromL2 = await b.get('/rates/EUR-USD');
        expect([fromL2.headers['x-cache'], fromL2.body]).toEqual([
          'HIT',
          { pair: 'EUR-USD', value: 1.1 },
        ]);

        const posted = await a.post(postPath('EUR-USD'), { value: 1.2 });
        expect(posted.body).toEqual({ pair: 'EUR-USD', value: 1.2, via });
        expect(db.values['EUR-USD']).toBe(1.2);

        const after = await a.get('/rates/EUR-USD');
        expect([after.headers['x-cache'], after.body]).toEqual([
          'MISS',
          { pair: 'EUR-USD', value: 1.2 },
        ]);
        const other = await a.get('/rates/USD-JPY'); // allEntries: the other pair too
        expect([other.headers['x-cache'], other.body]).toEqual([
          'MISS',
          { pair: 'USD-JPY', value: 150 },
        ]);
        expect((await a.get('/rates/EUR-USD')).headers['x-cache']).toBe('HIT');
        expect(a.controller.gets).toBe(4);

        await settle();
        await sleep(L1_MAX_AGE_WAIT);
        const fromB = await b.get('/rates/EUR-USD');
        expect(fromB.body).toEqual({ pair: 'EUR-USD', value: 1.2 });
        expect(b.controller.gets).toBe(0); // A's new entry, from L2
      },
    );

    /** The route entry of GET `path` (Host: rates.example, no query). */
    const routeKey = (path: string): string =>
      buildCacheKey('', 'RatesController.get', encodeKey(['GET', SITE, path, '']));

    /** Seconds between the entry's own expiry and its time (its ttl), from the table. */
    async function storedTtl(table: string, path: string): Promise<number> {
      await settle();
      const entry = (await scanTable(fx.admin, table)).find(
        (i) => i.cache_key?.S === routeKey(path),
      );
      expect(entry?.v).toBeDefined();
      return Number(entry?.e?.N) - Number(entry?.t?.N);
    }

    it("control: a GET route's entry carries its own ttl (60 s) when the route is served before any eviction", async () => {
      const table = await fx.dynamo.table();
      const a = await http(table, new RateDb());
      await a.get('/rates/EUR-USD');
      await a.post('/rates/EUR-USD', { value: 1.2 });
      await a.get('/rates/EUR-USD');
      expect(await storedTtl(table, '/rates/EUR-USD')).toBeCloseTo(60, 3);
    });

    it("a POST that evicts a GET route's namespace before the route's first request in the process: the GET entry still gets the route's ttl (60 s)", async () => {
      const table = await fx.dynamo.table();
      const a = await http(table, new RateDb());
      await a.post('/rates/EUR-USD', { value: 1.2 });
      const first = await a.get('/rates/EUR-USD');
      expect([first.headers['x-cache'], first.body]).toEqual([
        'MISS',
        { pair: 'EUR-USD', value: 1.2 },
      ]);
      expect(await storedTtl(table, '/rates/EUR-USD')).toBeCloseTo(60, 3);
    });

    it("a POST route evicts a service method's entry named by its @Param (args: (pair) => [pair])", async () => {
      const table = await fx.dynamo.table();
      const db = new RateDb();
      const a = await http(table, db);
      await a.rates.rate('EUR-USD');
      await a.rates.rate('USD-JPY');
      db.values['EUR-USD'] = 1.25;
      const posted = await a.post('/admin/refresh/EUR-USD', {});
      expect(posted.body).toEqual({ refreshed: 'EUR-USD' });
      expect(await a.rates.rate('EUR-USD')).toBe(1.25);
      expect(await a.rates.rate('USD-JPY')).toBe(150);
      expect(a.rates.calls).toEqual({ 'EUR-USD': 2, 'USD-JPY': 1 });
    });
  },
);
