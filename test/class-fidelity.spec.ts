import { get as httpGet } from 'node:http';
import { PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  ClassSerializerInterceptor,
  Controller,
  Get,
  Injectable,
  Param,
  type INestApplication,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import request from 'supertest';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheError,
  DynamoCacheModule,
  DynamoCacheService,
  encodeKey,
  type CacheStats,
} from '../lib/index.js';
import { bootCache, scanTable } from './support/apps.js';
import { countCalls, useTestDynamo, type CallCounter } from './support/dynamo-server.js';
import { RecordingLogger } from './support/recording-logger.js';
import { assertFreshBuild } from './support/fresh-build.js';

/*
 * Values keep their classes across processes. App A is this (jest) process, on the library's
 * source; app B another application on the same fresh table with an empty L1 and a class
 * registry that has never seen the classes: for tests 1 to 4 a separate Node process
 * (fixtures/class-fidelity-worker.mjs, on the built package), for 5 to 7 a second Nest
 * application in this process (each CacheEngine has its own registry, and what those tests
 * check, items that are not written or an item written by hand, does not depend on which
 * process reads them). Both sides import the same entity classes
 * (fixtures/class-fidelity-entities.mjs), as two deployments of one application would.
 */

const root = fileURLToPath(new URL('..', import.meta.url));
const workerPath = fileURLToPath(new URL('./fixtures/class-fidelity-worker.mjs', import.meta.url));

/** A path, what the object there is, and what its getters and methods answer (see anatomy()). */
type Anatomy = ([string, string] | [string, string, Record<string, unknown>])[];

interface Entities {
  PASSWORD: string;
  makeUser(id: string, origin: string): any;
  makeInvoice(number: string, origin: string): any;
  makeProduct(sku: string, origin: string): any;
  makePerson(id: string, origin: string): any;
  makeBadge(id: string, origin: string): any;
  makeShelf(origin: string): any;
  anatomy(value: unknown): Anatomy;
}

// A variable specifier: the module is plain JavaScript, with no declarations for the compiler.
const entitiesModule = './fixtures/class-fidelity-entities.mjs';
const E = (await import(entitiesModule)) as Entities;

// ------------------------------------------------------------------------------------------
// App A: the same class and method names as app B's, hence the same namespaces.

@Injectable()
class UserService {
  calls = 0;
  @DynamoCached()
  async profile(id: string): Promise<object> {
    this.calls++;
    return E.makeUser(id, 'A');
  }
}

@Controller()
class UsersController {
  calls = 0;
  @Get('cached-users/:id')
  @DynamoCached()
  async cachedProfile(@Param('id') id: string): Promise<object> {
    this.calls++;
    return E.makeUser(id, 'A');
  }
}

@Injectable()
class BillingService {
  @DynamoCached()
  async invoice(number: string): Promise<object> {
    return E.makeInvoice(number, 'A');
  }
}

@Injectable()
class CatalogService {
  @DynamoCached()
  async product(sku: string): Promise<object> {
    return E.makeProduct(sku, 'A');
  }
}

@Injectable()
class PeopleService {
  @DynamoCached()
  async person(id: string): Promise<object> {
    return E.makePerson(id, 'A');
  }
}

@Injectable()
class BadgeService {
  @DynamoCached()
  async badge(id: string): Promise<object> {
    return E.makeBadge(id, 'A');
  }
}

@Injectable()
class ShelfService {
  @DynamoCached()
  async shelf(id: string): Promise<object> {
    return { ...E.makeShelf('A'), id };
  }
}

/** Results whose classes another process could not find again by name. */
@Injectable()
class OddService {
  calls = 0;
  @DynamoCached()
  async odd(kind: 'anonymous' | 'prototype'): Promise<{ kind: string; item: object }> {
    this.calls++;
    const item =
      kind === 'anonymous'
        ? new (class {
            n = 1;
          })()
        : Object.assign(Object.create({ hello: () => 'hi' }) as object, { n: 2 });
    return { kind, item };
  }
}

// Two classes named Twin, as two modules of one application may each declare.
const TwinA = (() => {
  class Twin {
    side = 'a';
  }
  return Twin;
})();
const TwinB = (() => {
  class Twin {
    side = 'b';
  }
  return Twin;
})();

@Injectable()
class TwinService {
  calls = 0;
  @DynamoCached()
  async make(): Promise<{ twin: object }> {
    this.calls++;
    return { twin: new TwinB() };
  }
}

@Injectable()
class TwinDeclaringService {
  @DynamoCached({ types: [TwinB] })
  async make(): Promise<object> {
    return new TwinB();
  }
}

class Coin {
  constructor(
    public code: string,
    public digits: number,
  ) {}
  get label(): string {
    return `${this.code}/${this.digits}`;
  }
}

@Injectable()
class GoldenService {
  calls = 0;
  @DynamoCached()
  async coin(code: string): Promise<object> {
    this.calls++;
    return new Coin(code.toUpperCase(), 2);
  }
}

// ------------------------------------------------------------------------------------------
// App B in a separate process

interface WorkerState {
  calls: Record<string, number>;
  dynamo: Record<string, number>;
  stats: Record<string, CacheStats>;
  warnings: string[];
}

interface Worker {
  child: ChildProcess;
  port: number;
  /** Calls a provider method of app B; resolves the anatomy of its result there. */
  call(target: string, method: string, ...args: unknown[]): Promise<Anatomy>;
  state(): Promise<WorkerState>;
  close(): Promise<void>;
}

const children: ChildProcess[] = [];

/** Starts app B (`scenario`, see the worker) on `table`; resolves once it listens. */
async function startWorker(endpoint: string, table: string, scenario: string): Promise<Worker> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ENDPOINT: endpoint,
    TABLE: table,
    SCENARIO: scenario,
  };
  delete env.NODE_OPTIONS; // no --experimental-vm-modules: a plain Node process, as in production
  const child = fork(workerPath, [], {
    cwd: root,
    env,
    execArgv: [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let ready!: (port: number) => void;
  let failed!: (e: Error) => void;
  const started = new Promise<number>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  child.on(
    'message',
    (m: {
      type?: string;
      port?: number;
      id?: number;
      ok?: boolean;
      result?: unknown;
      error?: string;
    }) => {
      if (m.type === 'ready') return ready(m.port!);
      const waiter = pending.get(m.id!);
      pending.delete(m.id!);
      if (m.ok) waiter?.resolve(m.result);
      else waiter?.reject(new Error(`app B: ${m.error}`));
    },
  );
  child.on('exit', (code) => {
    const error = new Error(`app B exited with ${code}:\n${stderr}`);
    failed(error);
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  let seq = 0;
  const rpc = (op: string, params: object = {}): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      pending.set(id, { resolve, reject });
      child.send({ id, op, ...params });
    });
  const port = await started;
  return {
    child,
    port,
    call: (target, method, ...args) => rpc('call', { target, method, args }),
    state: () => rpc('state'),
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await rpc('close');
      await exited;
    },
  };
}

// ------------------------------------------------------------------------------------------

const cacheKey = (namespace: string, args: unknown[]): string =>
  buildCacheKey('', namespace, encodeKey(args));

describe('class fidelity: values keep their classes from one application to another', () => {
  const fx = useTestDynamo();

  beforeAll(() => assertFreshBuild());
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  /** The items of `table` by cache_key. */
  async function items(table: string): Promise<Map<string, Record<string, AttributeValue>>> {
    const all = await scanTable(fx.admin, table);
    return new Map(all.map((item) => [item.cache_key!.S!, item]));
  }

  /** A Nest application context on `table` with a counted client (closed after the test). */
  async function app(
    table: string,
    providers: Parameters<typeof bootCache>[1],
    options: Partial<Parameters<typeof bootCache>[0]> = {},
    logger: RecordingLogger | false = false,
  ) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client, ...options }, providers, logger);
    fx.apps.push(moduleRef);
    return { moduleRef, calls, stats: () => moduleRef.get(DynamoCacheService).stats().namespaces };
  }

  it('1. entities (class-transformer): app B (another process) restores a User from L2 with its Address and Orders, serializes it without the @Exclude()d password, and serves the cached route from L2', async () => {
    const table = await fx.dynamo.table();

    // App A: an HTTP application, with Nest's ClassSerializerInterceptor.
    const client = fx.dynamo.client();
    const countedA: CallCounter = countCalls(client);
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client })],
      controllers: [UsersController],
      providers: [UserService, { provide: APP_INTERCEPTOR, useClass: ClassSerializerInterceptor }],
    }).compile();
    const appA: INestApplication = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(appA);
    await appA.init();
    const users = appA.get(UserService);
    await users.profile('u1');
    await users.profile('u2');
    // Both instances are reached under one host name, as behind a load balancer: a route entry
    // is keyed by method, host, path and query.
    const served = await request(appA.getHttpServer())
      .get('/cached-users/u3')
      .set('Host', 'users.example')
      .expect(200);
    expect(served.headers['x-cache']).toBe('MISS');
    expect(served.body).not.toHaveProperty('password');
    expect(users.calls).toBe(2);
    expect(appA.get(UsersController).calls).toBe(1);
    // The route's PutItem goes out once its response is sent: counted after settle().
    await appA.get(DynamoCacheService).settle();
    expect(countedA.counts).toEqual({ GetItem: 3, PutItem: 3 });

    // Control: the stored bytes do hold the password (only the restored class keeps it out of a
    // response), and the class record names User, Address and Order where they are.
    // A route's entry is written just after its response is sent.
    await appA.get(DynamoCacheService).settle();
    const stored = await items(table);
    const record = '{"User":[[]],"Address":[["address"]],"Order":[["orders",0],["orders",1]]}';
    for (const key of [
      cacheKey('UserService.profile', ['u1']),
      cacheKey('UserService.profile', ['u2']),
    ]) {
      const item = stored.get(key);
      expect(item?.c).toEqual({ S: record });
      expect(Buffer.from(item!.v!.B!).includes(E.PASSWORD)).toBe(true);
      expect(deserialize(item!.v!.B!)).toMatchObject({ password: E.PASSWORD, origin: 'A' });
    }
    // A route entry stores the response: its body is the User.
    const routeItem = stored.get(
      cacheKey('UsersController.cachedProfile', ['GET', 'users.example', '/cached-users/u3', '']),
    );
    expect(routeItem?.c).toEqual({
      S: '{"DynamoCacheRouteResponse":[[]],"User":[["body"]],"Address":[["body","address"]],"Order":[["body","orders",0],["body","orders",1]]}',
    });
    expect(Buffer.from(routeItem!.v!.B!).includes(E.PASSWORD)).toBe(true);
    expect(deserialize(routeItem!.v!.B!)).toMatchObject({
      status: 200,
      body: { password: E.PASSWORD, origin: 'A' },
    });

    // App B: a separate process, empty L1, the built package.
    const b = await startWorker(fx.dynamo.endpoint, table, 'entities');
    const expected = E.anatomy(E.makeUser('u1', 'A'));
    expect(expected).toEqual([
      ['value', 'instance of User', { displayName: 'Ada Lovelace (#u1)' }],
      ['value.address', 'instance of Address', { oneLine: '12 St James Sq, London' }],
      ['value.orders', 'array'],
      [
        'value.orders[0]',
        'instance of Order',
        { price: '1234.56 EUR', describe: 'o1: Analytical Engine at 1234.56 EUR' },
      ],
      [
        'value.orders[1]',
        'instance of Order',
        { price: '9.90 EUR', describe: 'o2: Punched cards at 9.90 EUR' },
      ],
    ]);
    expect(await b.call('UserService', 'profile', 'u1')).toEqual(expected);

    // Through B's HTTP route (global ClassSerializerInterceptor), the service read from L2.
    const body = (userId: string) => ({
      id: userId,
      name: 'Ada Lovelace',
      origin: 'A',
      displayName: `Ada Lovelace (#${userId})`,
      address: { street: '12 St James Sq', city: 'London' },
      orders: [
        { id: 'o1', item: 'Analytical Engine', cents: 123456, price: '1234.56 EUR' },
        { id: 'o2', item: 'Punched cards', cents: 990, price: '9.90 EUR' },
      ],
    });
    const viaService = await fetch(`http://127.0.0.1:${b.port}/users/u2`);
    expect(viaService.status).toBe(200);
    const viaServiceText = await viaService.text();
    expect(viaServiceText).not.toContain(E.PASSWORD);
    expect(JSON.parse(viaServiceText)).toEqual(body('u2'));

    // The route that is itself cached: app A's response, from L2, no handler run in B.
    const viaRoute = await getWithHost(b.port, '/cached-users/u3', 'users.example');
    expect(viaRoute.status).toBe(200);
    expect(viaRoute.headers['x-cache']).toBe('HIT');
    const viaRouteText = viaRoute.text;
    expect(viaRouteText).not.toContain(E.PASSWORD);
    expect(JSON.parse(viaRouteText)).toEqual(body('u3'));

    const state = await b.state();
    expect(state.calls).toEqual({}); // neither UserService.profile nor the route handler ran
    expect(state.dynamo).toEqual({ GetItem: 3, BatchGetItem: 2 });
    expect(state.stats['UserService.profile']).toMatchObject({
      l2Hits: 2,
      misses: 0,
      unrestorable: 0,
    });
    expect(state.stats['UsersController.cachedProfile']).toMatchObject({ l2Hits: 1, misses: 0 });
    expect(state.warnings).toEqual([]);
    await b.close();
  });

  it('2. plain classes declared only in "types", a TypeORM @Entity() and a GraphQL @ObjectType() with no "types": restored in app B (another process), the getter field resolved by Apollo', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, [BillingService, CatalogService, PeopleService]);
    await a.moduleRef.get(BillingService).invoice('INV-1');
    await a.moduleRef.get(CatalogService).product('sku-1');
    await a.moduleRef.get(PeopleService).person('p1');
    const stored = await items(table);
    expect(stored.get(cacheKey('BillingService.invoice', ['INV-1']))?.c?.S).toBe(
      '{"Invoice":[[]],"LineItem":[["lines",0],["lines",1]]}',
    );
    expect(stored.get(cacheKey('CatalogService.product', ['sku-1']))?.c?.S).toBe(
      '{"Product":[[]]}',
    );
    expect(stored.get(cacheKey('PeopleService.person', ['p1']))?.c?.S).toBe('{"Person":[[]]}');

    // App B: module option types: [Invoice, LineItem] only; a code-first Apollo GraphQL app.
    const b = await startWorker(fx.dynamo.endpoint, table, 'declared');
    const graphql = await fetch(`http://127.0.0.1:${b.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ person(id: "p1") { id firstName fullName origin } }' }),
    });
    expect(await graphql.json()).toEqual({
      data: { person: { id: 'p1', firstName: 'Grace', fullName: 'Grace Hopper', origin: 'A' } },
    });
    expect(await b.call('BillingService', 'invoice', 'INV-1')).toEqual([
      ['value', 'instance of Invoice', { total: 770 }],
      ['value.lines', 'array'],
      ['value.lines[0]', 'instance of LineItem', { text: 'tea=350' }],
      ['value.lines[1]', 'instance of LineItem', { text: 'cake=420' }],
    ]);
    expect(await b.call('CatalogService', 'product', 'sku-1')).toEqual([
      ['value', 'instance of Product', { inStock: true }],
    ]);
    expect(await b.call('PeopleService', 'person', 'p1')).toEqual([
      ['value', 'instance of Person', { fullName: 'Grace Hopper' }],
    ]);
    const state = await b.state();
    expect(state.calls).toEqual({});
    expect(state.dynamo).toEqual({ GetItem: 3, BatchGetItem: 3 });
    for (const ns of ['BillingService.invoice', 'CatalogService.product', 'PeopleService.person']) {
      expect(state.stats[ns]).toMatchObject({ l2Hits: 1, misses: 0, unrestorable: 0 });
    }
    expect(state.warnings).toEqual([]);
    await b.close();
  });

  it("3. a class app B has never heard of: the first read is a miss (recomputed, written, an instance), after which A's items of that class are restored", async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, [BadgeService]);
    await a.moduleRef.get(BadgeService).badge('b1');
    await a.moduleRef.get(BadgeService).badge('b2');
    const b1 = cacheKey('BadgeService.badge', ['b1']);
    const before = (await items(table)).get(b1)!;
    expect(before.c).toEqual({ S: '{"Badge":[[]]}' });
    expect(deserialize(before.v!.B!)).toEqual({ id: 'b1', level: 'gold', origin: 'A' });

    const b = await startWorker(fx.dynamo.endpoint, table, 'unknown');
    const badge = [['value', 'instance of Badge', { title: 'gold badge b1' }]];
    expect(await b.call('BadgeService', 'badge', 'b1')).toEqual(badge);
    let state = await b.state();
    expect(state.calls).toEqual({ 'BadgeService.badge': 1 });
    expect(state.stats['BadgeService.badge']).toMatchObject({
      unrestorable: 1,
      misses: 1,
      l2Hits: 0,
      l2Writes: 1,
      l2Refused: 0,
    });
    expect(state.dynamo).toEqual({ GetItem: 1, PutItem: 1 });
    expect(state.warnings).toHaveLength(1);
    expect(state.warnings[0]).toMatch(/class Badge is unknown in this process/);
    // B's own value replaced A's item (conditional write: A's item is older than B's computation).
    const after = (await items(table)).get(b1)!;
    expect(after.c).toEqual({ S: '{"Badge":[[]]}' });
    expect(deserialize(after.v!.B!)).toEqual({ id: 'b1', level: 'gold', origin: 'B' });

    // Badge is now registered in B: A's other item is restored, no method call.
    expect(await b.call('BadgeService', 'badge', 'b2')).toEqual([
      ['value', 'instance of Badge', { title: 'gold badge b2' }],
    ]);
    state = await b.state();
    expect(state.calls).toEqual({ 'BadgeService.badge': 1 });
    expect(state.stats['BadgeService.badge']).toMatchObject({ unrestorable: 1, l2Hits: 1 });
    expect(state.dynamo).toEqual({ GetItem: 2, PutItem: 1, BatchGetItem: 1 });
    await b.close();
  });

  it('4. Maps and Sets of instances, shared references and a null-prototype object: restored in app B (another process) with identity and prototypes', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, [ShelfService]);
    const computed: unknown = await a.moduleRef.get(ShelfService).shelf('s');
    const stored = (await items(table)).get(cacheKey('ShelfService.shelf', ['s']))!;
    expect(stored.c?.S).toBe(
      '{"Address":[["home"]],' +
        '"Order":[["byId",["v",0]],["byId",["v",1]],["set",["s",1]],["byOrder",["k",0]],["bare","extra"]],' +
        '"#null":[["bare"]]}',
    );

    const expected = E.anatomy(computed);
    expect(expected).toEqual([
      ['value', 'plain object'],
      ['value.home', 'instance of Address', { oneLine: '1 Dock Rd, Leith' }],
      ['value.billing', 'same as value.home'],
      ['value.byId', 'map'],
      [
        'value.byId<value 0>',
        'instance of Order',
        { price: '5.00 EUR', describe: 's1: crate at 5.00 EUR' },
      ],
      [
        'value.byId<value 1>',
        'instance of Order',
        { price: '7.00 EUR', describe: 's2: barrel at 7.00 EUR' },
      ],
      ['value.set', 'set'],
      ['value.set<element 0>', 'same as value.byId<value 0>'],
      [
        'value.set<element 1>',
        'instance of Order',
        { price: '0.90 EUR', describe: 's3: sack at 0.90 EUR' },
      ],
      ['value.byOrder', 'map'],
      [
        'value.byOrder<key 0>',
        'instance of Order',
        { price: '0.01 EUR', describe: 's5: keg at 0.01 EUR' },
      ],
      ['value.bare', 'null prototype'],
      ['value.bare.order', 'same as value.byId<value 0>'],
      [
        'value.bare.extra',
        'instance of Order',
        { price: '0.60 EUR', describe: 's4: tin at 0.60 EUR' },
      ],
    ]);

    const b = await startWorker(fx.dynamo.endpoint, table, 'containers');
    expect(await b.call('ShelfService', 'shelf', 's')).toEqual(expected);
    const state = await b.state();
    expect(state.calls).toEqual({});
    expect(state.dynamo).toEqual({ GetItem: 1, BatchGetItem: 1 });
    await b.close();
  });

  it("5. an anonymous class instance, or an object whose prototype is no class's: served, kept in L1 only (no PutItem), one warning", async () => {
    const table = await fx.dynamo.table();
    const logger = new RecordingLogger();
    const a = await app(table, [OddService], {}, logger);
    const odd = a.moduleRef.get(OddService);
    const anonymous = await odd.odd('anonymous');
    expect(anonymous.item.constructor.name).toBe('');
    expect(anonymous.item).toEqual({ n: 1 });
    const prototyped = await odd.odd('prototype');
    expect((prototyped.item as { hello(): string }).hello()).toBe('hi');
    // Served again from L1: the very objects.
    expect(await odd.odd('anonymous')).toBe(anonymous);
    expect(await odd.odd('prototype')).toBe(prototyped);
    expect(odd.calls).toBe(2);
    expect(a.calls.counts).toEqual({ GetItem: 2 });
    expect(a.stats()['OddService.odd']).toMatchObject({ misses: 2, l1Hits: 2, l2Writes: 0 });
    const unstorable = logger.matching(/cannot be stored in DynamoDB/);
    expect(unstorable).toHaveLength(1);
    expect(unstorable[0]).toMatch(
      /^OddService\.odd: .*value\.item has a prototype that is not a named class's/,
    );
    expect(logger.warnings).toHaveLength(1);
    expect(await scanTable(fx.admin, table)).toEqual([]);

    // App B on the same table finds nothing.
    const b = await app(table, [OddService]);
    await b.moduleRef.get(OddService).odd('anonymous');
    expect(b.moduleRef.get(OddService).calls).toBe(1);
    expect(b.calls.counts).toEqual({ GetItem: 1 });
  });

  it('6. two different classes with one name: declared together, bootstrap fails naming both; one declared and the other computed, served but not written, warning naming both', async () => {
    const table = await fx.dynamo.table();
    let failure: unknown;
    try {
      await app(table, [], { types: [TwinA, TwinB] });
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(DynamoCacheError);
    expect(failure).toMatchObject({ operation: 'config' });
    expect((failure as Error).message).toMatch(
      /two different classes are named "Twin": one in the module option "types" \(entry 0\), one in the module option "types" \(entry 1\)/,
    );
    // Declared in two places: the message says which.
    await expect(app(table, [TwinDeclaringService], { types: [TwinA] })).rejects.toThrow(
      /two different classes are named "Twin": one in the module option "types", one in @DynamoCached on TwinDeclaringService\.make/,
    );

    const logger = new RecordingLogger();
    const a = await app(table, [TwinService], { types: [TwinA] }, logger);
    const made = await a.moduleRef.get(TwinService).make();
    expect(made.twin).toBeInstanceOf(TwinB);
    expect(a.calls.counts).toEqual({ GetItem: 1 });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(
      /^TwinService\.make: a result cannot be stored in DynamoDB, so it is kept in L1 only: two different classes are named "Twin" \(one from the module option "types", one from a result of TwinService\.make\)/,
    );
    expect(await scanTable(fx.admin, table)).toEqual([]);

    const b = await app(table, [TwinService], { types: [TwinA] });
    await b.moduleRef.get(TwinService).make();
    expect(b.moduleRef.get(TwinService).calls).toBe(1);
  });

  it('7. golden: the item of a small class instance (c and v pinned), and an item as 0.1.0 wrote it (no c) still read as a hit, a plain object', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, [GoldenService], { ttl: 3600 });
    await a.moduleRef.get(GoldenService).coin('eur');
    const all = await scanTable(fx.admin, table);
    expect(all).toHaveLength(1);
    const item = all[0]!;
    expect(Object.keys(item).sort()).toEqual(['c', 'cache_key', 'e', 'exp', 't', 'v', 'w']);
    expect(item.cache_key).toEqual({ S: cacheKey('GoldenService.coin', ['eur']) });
    expect(item.c).toEqual({ S: '{"Coin":[[]]}' });
    // node:v8 ValueSerializer, format 15: an object {code: "EUR", digits: 2}; the class is only in c.
    expect(Buffer.from(item.v!.B!).toString('hex')).toBe(
      'ff0f6f2204636f64652203455552220664696769747349047b02',
    );
    expect(Buffer.from(item.v!.B!)).toEqual(serialize({ code: 'EUR', digits: 2 }));
    expect(Number(item.e!.N)).toBe(Number(item.t!.N) + 3600);
    expect(Number(item.exp!.N)).toBe(Math.ceil(Number(item.t!.N) + 3600));

    // An item of 0.1.0: t, exp and v (a plain object), no c.
    const t = Date.now() / 1000;
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: cacheKey('GoldenService.coin', ['legacy']) },
          v: { B: serialize({ code: 'GBP', digits: 2 }) },
          t: { N: String(t) },
          exp: { N: String(Math.ceil(t + 3600)) },
        },
      }),
    );

    const b = await app(table, [GoldenService], { ttl: 3600, types: [Coin] });
    const golden = b.moduleRef.get(GoldenService);
    const restored = await golden.coin('eur');
    expect(restored).toBeInstanceOf(Coin);
    expect((restored as Coin).label).toBe('EUR/2');
    const legacy = await golden.coin('legacy');
    expect(E.anatomy(legacy)).toEqual([['value', 'plain object']]);
    expect(legacy).toEqual({ code: 'GBP', digits: 2 });
    expect(golden.calls).toBe(0);
    expect(b.calls.counts).toEqual({ GetItem: 2, BatchGetItem: 1 });
    expect(b.stats()['GoldenService.coin']).toMatchObject({
      l2Hits: 2,
      misses: 0,
      unrestorable: 0,
    });
  });
});

/** GET over plain node:http, which (unlike fetch) may set the Host header. */
function getWithHost(
  port: number,
  path: string,
  host: string,
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
  });
}
