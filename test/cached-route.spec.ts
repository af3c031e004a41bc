import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  Controller,
  Delete,
  Get,
  Headers,
  Injectable,
  Module,
  Param,
  Post,
  Put,
  Query,
  Res,
  ServiceUnavailableException,
  Sse,
  StreamableFile,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type MessageEvent,
  type NestInterceptor,
  type Provider,
  type Type,
} from '@nestjs/common';
import { APP_INTERCEPTOR, HttpAdapterHost } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { of, type Observable } from 'rxjs';
import request from 'supertest';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheInterceptor,
  DynamoCacheModule,
  encodeKey,
  NoDynamoCache,
  v8Serializer,
  type DynamoCacheModuleOptions,
  type DynamoCacheRouteKey,
} from '../lib/index.js';
import { scanTable, sleep, settleAll } from './support/apps.js';
import { Arrivals, Hits } from './support/route-fixtures.js';
import { countCalls, useTestDynamo, type CallCounter } from './support/dynamo-server.js';

@Controller('rates')
class RatesController {
  constructor(
    private readonly hits: Hits,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  @Get('pair/:from/:to')
  @DynamoCached(30)
  rate(@Param('from') from: string, @Param('to') to: string) {
    return { from, to, n: this.hits.inc('rate') };
  }

  @Get('items')
  @DynamoCached(30)
  items(@Query('q') q?: string) {
    return { q: q ?? null, n: this.hits.inc('items') };
  }

  @Post('items')
  @DynamoCached(30)
  create() {
    return { created: this.hits.inc('create') };
  }

  @Put('items/:id')
  @DynamoCached(30)
  update(@Param('id') id: string) {
    return { id, updated: this.hits.inc('update') };
  }

  @Delete('items/:id')
  @DynamoCached(30)
  remove(@Param('id') id: string) {
    return { id, removed: this.hits.inc('remove') };
  }

  @Get('flaky')
  @DynamoCached(30)
  async flaky() {
    const n = this.hits.inc('flaky');
    await sleep(2);
    if (this.hits.failNext) {
      this.hits.failNext = false;
      throw new ServiceUnavailableException('upstream down');
    }
    return { n };
  }

  @Get('me')
  @DynamoCached(30)
  me(@Headers('authorization') auth?: string) {
    return { auth: auth ?? null, n: this.hits.inc('me') };
  }

  @Get('me-vary')
  @DynamoCached({ ttl: 30, vary: ['Authorization'] })
  meVary(@Headers('authorization') auth?: string) {
    return { auth: auth ?? null, n: this.hits.inc('meVary') };
  }

  @Get('file')
  @DynamoCached(30)
  async file() {
    const n = this.hits.inc('file');
    await sleep(20);
    return new StreamableFile(Buffer.from(`file-${n}`));
  }

  @Get('slow')
  @DynamoCached(30)
  @UseGuards(Arrivals)
  async slow() {
    const n = this.hits.inc('slow');
    await this.hits.gate;
    return { n };
  }

  @Get('raw')
  @DynamoCached(30)
  raw(@Res() res: unknown) {
    this.adapterHost.httpAdapter.reply(res, { raw: this.hits.inc('raw') }, 200);
  }
}

/** No interceptor of its own: cached only when the interceptor is global. */
@Controller('open')
class OpenController {
  constructor(
    private readonly hits: Hits,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  @Get('x')
  x() {
    return { x: this.hits.inc('x') };
  }

  @Get('y')
  @DynamoCached(30)
  y() {
    return { y: this.hits.inc('y') };
  }

  @Post('x')
  postX() {
    return { posted: this.hits.inc('postX') };
  }

  @Get('fresh')
  @NoDynamoCache()
  fresh() {
    return { fresh: this.hits.inc('fresh') };
  }

  @Sse('events')
  events(): Observable<MessageEvent> {
    const n = this.hits.inc('events');
    return of({ data: `a${n}` }, { data: `b${n}` });
  }

  @Get('raw')
  raw(@Res() res: unknown) {
    this.hits.inc('openRaw');
    this.adapterHost.httpAdapter.reply(res, 'raw-body', 200);
  }
}

/** Opted out as a whole: no route of it is cached, even under a global interceptor. */
@Controller('skipped')
@NoDynamoCache()
class SkippedController {
  constructor(private readonly hits: Hits) {}

  @Get()
  list() {
    return { n: this.hits.inc('skipped') };
  }
}

@Controller('plain')
@UseInterceptors(DynamoCacheInterceptor)
class PlainController {
  constructor(private readonly hits: Hits) {}

  @Get('a')
  a() {
    return { a: this.hits.inc('a') };
  }

  @Get('b')
  @DynamoCached(30)
  b() {
    return { b: this.hits.inc('b') };
  }

  @Post('a')
  postA() {
    return { posted: this.hits.inc('postA') };
  }
}

/** Keys responses by the `x-user` header; no user, no cache. */
@Injectable()
class UserCacheInterceptor extends DynamoCacheInterceptor {
  override trackBy(context: ExecutionContext): DynamoCacheRouteKey | undefined {
    const req = context.switchToHttp().getRequest<{ headers: Record<string, string> }>();
    const user = req.headers['x-user'];
    return user === undefined ? undefined : ['user', user];
  }
}

/** Freezes the call's execution context before the interceptors inside it see it. */
@Injectable()
class FreezeContext implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    Object.freeze(context);
    return next.handle();
  }
}

@Controller('tenant')
@UseInterceptors(UserCacheInterceptor)
class TenantController {
  constructor(private readonly hits: Hits) {}

  @Get('profile')
  profile(@Headers('x-user') user?: string) {
    return { user: user ?? null, n: this.hits.inc('profile') };
  }
}

@Injectable()
class FeatureService {
  calls = 0;
  @DynamoCached()
  async double(x: number): Promise<number> {
    this.calls++;
    return x * 2;
  }
}

@Controller('feature')
class FeatureController {
  constructor(
    private readonly hits: Hits,
    private readonly service: FeatureService,
  ) {}

  @Get()
  @DynamoCached(30)
  async get() {
    return { n: this.hits.inc('feature'), v: await this.service.double(21) };
  }
}

/** A module that does not import DynamoCacheModule (which is not global in that test). */
@Module({ controllers: [FeatureController], providers: [Hits, FeatureService] })
class FeatureModule {}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

interface BootOptions {
  controllers?: Type[];
  imports?: Type[];
  providers?: Provider[];
  /** Registers this interceptor class as APP_INTERCEPTOR. */
  global?: Type;
  module?: Partial<DynamoCacheModuleOptions> & { isGlobal?: boolean };
  prefix?: string;
  /** Receives the application's log messages. */
  warnings?: string[];
}

interface Booted {
  app: INestApplication;
  url: string;
  hits: Hits;
  calls: CallCounter;
  client: DynamoDBClient;
}

describe.each(adapters)('DynamoCacheInterceptor on %s (dynalite)', (_name, makeAdapter) => {
  const fx = useTestDynamo();
  const settle = (): Promise<void> => settleAll(fx.apps);

  /** A fresh application (empty L1) on `table`, listening on loopback, with a counted client. */
  async function boot(table: string, o: BootOptions = {}): Promise<Booted> {
    await settleAll(fx.apps);
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const providers: Provider[] = [...(o.providers ?? [])];
    if (o.global) providers.push({ provide: APP_INTERCEPTOR, useClass: o.global });
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client, isGlobal: true, ...o.module }),
        ...(o.imports ?? []),
      ],
      controllers: o.controllers ?? [RatesController],
      providers: o.imports ? providers : [Hits, Arrivals, ...providers],
    }).compile();
    const warnings = o.warnings;
    const app = moduleRef.createNestApplication(makeAdapter(), {
      logger: warnings
        ? { log() {}, error() {}, warn: (m: unknown) => void warnings.push(String(m)) }
        : false,
    });
    if (o.prefix) app.setGlobalPrefix(o.prefix);
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    const { port } = app.getHttpServer().address() as AddressInfo;
    lastHost = `127.0.0.1:${port}`;
    return { app, url: `http://127.0.0.1:${port}`, hits: app.get(Hits), calls, client };
  }

  /** The Host header of the latest application booted (supertest sends `127.0.0.1:port`). */
  let lastHost = '';

  /**
   * The cache_key of a route entry, from `[method, url, ...vary values]`: the interceptor keys by
   * method, host, path, the sorted query string, then the vary values.
   */
  function routeKey(namespace: string, [method, url, ...vary]: unknown[], host = lastHost): string {
    const [path, search = ''] = String(url).split('?');
    // Parameters sorted by name, each kept as sent.
    const query = search
      .split('&')
      .filter((p) => p !== '')
      .sort((x, y) => (x.split('=')[0]! < y.split('=')[0]! ? -1 : 1))
      .join('&');
    return buildCacheKey('', namespace, encodeKey([method, host, path, query, ...vary]));
  }

  async function item(table: string, cacheKey: string) {
    await settle();
    const items = await scanTable(fx.admin, table);
    return items.find((i) => i.cache_key?.S === cacheKey);
  }

  it('1. caches a @DynamoCached(30) GET route: HIT with the same body, then from L2 in a second app', async () => {
    const table = await fx.dynamo.table();
    const first = await boot(table);
    const a = await request(first.url).get('/rates/pair/EUR/USD').expect(200);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(a.body).toEqual({ from: 'EUR', to: 'USD', n: 1 });
    // The entry's PutItem goes out once the response is sent: counted before the reset.
    await settle();
    first.calls.reset();
    const b = await request(first.url).get('/rates/pair/EUR/USD').expect(200);
    expect(b.headers['x-cache']).toBe('HIT');
    expect(b.body).toEqual(a.body);
    expect(first.hits.get('rate')).toBe(1);
    await settle();
    expect(first.calls.total()).toBe(0);

    const stored = await item(
      table,
      routeKey('RatesController.rate', ['GET', '/rates/pair/EUR/USD']),
    );
    expect(stored).toBeDefined();
    // A stored response: status, replayed headers, the body, its entity tag, and that the body
    // went out as its JSON text (so hits send that text).
    expect(v8Serializer.deserialize(stored!.v!.B!)).toEqual({
      status: 200,
      // The headers as sent that describe the body: its type, and its tag.
      headers: { 'content-type': a.headers['content-type'], etag: a.headers.etag },
      body: a.body,
      etag: a.headers.etag,
      json: true,
    });
    expect(stored!.c!.S).toBe('{"DynamoCacheRouteResponse":[[]]}');
    expect(Number(stored!.exp!.N)).toBe(Math.ceil(Number(stored!.t!.N) + 30));

    // A second instance behind the same host name (a load balancer's) reads it from L2.
    const host = lastHost;
    const second = await boot(table);
    const c = await request(second.url).get('/rates/pair/EUR/USD').set('Host', host).expect(200);
    expect(c.headers['x-cache']).toBe('HIT');
    expect(c.body).toEqual(a.body);
    expect(second.hits.get('rate')).toBe(0);
    await settle();
    expect(second.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
  });

  it('2. different query strings are different entries; the same query is one', async () => {
    const table = await fx.dynamo.table();
    const { url, hits } = await boot(table);
    const a1 = await request(url).get('/rates/items?q=a').expect(200);
    const b1 = await request(url).get('/rates/items?q=b').expect(200);
    const a2 = await request(url).get('/rates/items?q=a').expect(200);
    const none = await request(url).get('/rates/items').expect(200);
    expect(a1.body).toEqual({ q: 'a', n: 1 });
    expect(b1.body).toEqual({ q: 'b', n: 2 });
    expect(a2.body).toEqual(a1.body);
    expect(a2.headers['x-cache']).toBe('HIT');
    expect(none.body).toEqual({ q: null, n: 3 });
    expect(hits.get('items')).toBe(3);
    await settle();
    const keys = (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S).sort();
    expect(keys).toEqual(
      [
        routeKey('RatesController.items', ['GET', '/rates/items?q=a']),
        routeKey('RatesController.items', ['GET', '/rates/items?q=b']),
        routeKey('RatesController.items', ['GET', '/rates/items']),
      ].sort(),
    );
  });

  it('2b. the key includes the global prefix', async () => {
    const table = await fx.dynamo.table();
    const { url } = await boot(table, { prefix: 'api' });
    await request(url).get('/api/rates/items?q=z').expect(200);
    await settle();
    const keys = (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S);
    expect(keys).toEqual([routeKey('RatesController.items', ['GET', '/api/rates/items?q=z'])]);
  });

  it('3. POST, PUT and DELETE pass through every time, even on @DynamoCached handlers', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table, {
      controllers: [RatesController, PlainController],
    });
    for (let i = 1; i <= 2; i++) {
      const post = await request(url).post('/rates/items').expect(201);
      expect(post.body).toEqual({ created: i });
      expect(post.headers['x-cache']).toBeUndefined();
      const put = await request(url).put('/rates/items/7').expect(200);
      expect(put.body).toEqual({ id: '7', updated: i });
      const del = await request(url).delete('/rates/items/7').expect(200);
      expect(del.body).toEqual({ id: '7', removed: i });
      const postA = await request(url).post('/plain/a').expect(201);
      expect(postA.body).toEqual({ posted: i });
      expect(postA.headers['x-cache']).toBeUndefined();
    }
    expect(hits.get('create') + hits.get('update') + hits.get('remove')).toBe(6);
    expect(hits.get('postA')).toBe(2);
    await settle();
    expect(calls.total()).toBe(0);
    await settle();
    expect(await scanTable(fx.admin, table)).toHaveLength(0);
  });

  it('3b. HEAD is served through the GET entry', async () => {
    const table = await fx.dynamo.table();
    const { url, hits } = await boot(table);
    const head = await request(url).head('/rates/pair/EUR/CHF').expect(200);
    expect(head.headers['x-cache']).toBe('MISS');
    const get = await request(url).get('/rates/pair/EUR/CHF').expect(200);
    expect(get.headers['x-cache']).toBe('HIT');
    expect(get.body).toEqual({ from: 'EUR', to: 'CHF', n: 1 });
    expect(hits.get('rate')).toBe(1);
  });

  it('4. a handler that throws: nothing stored, the next request runs the handler again', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table);
    hits.failNext = true;
    const failed = await request(url).get('/rates/flaky').expect(503);
    expect(failed.body.message).toBe('upstream down');
    await settle();
    expect(calls.get('PutItem')).toBe(0);
    await settle();
    expect(await scanTable(fx.admin, table)).toHaveLength(0);
    const ok = await request(url).get('/rates/flaky').expect(200);
    expect(ok.headers['x-cache']).toBe('MISS');
    expect(ok.body).toEqual({ n: 2 });
    expect(hits.get('flaky')).toBe(2);
    await settle();
    expect(calls.get('PutItem')).toBe(1);
  });

  it('5. Authorization or Cookie: not cached by default', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table);
    const a = await request(url).get('/rates/me').set('Authorization', 'Bearer alice').expect(200);
    const b = await request(url).get('/rates/me').set('Authorization', 'Bearer bob').expect(200);
    const c = await request(url).get('/rates/me').set('Cookie', 'sid=alice').expect(200);
    const d = await request(url).get('/rates/me').set('Cookie', 'sid=alice').expect(200);
    expect(a.body).toEqual({ auth: 'Bearer alice', n: 1 });
    expect(b.body).toEqual({ auth: 'Bearer bob', n: 2 });
    expect([c.body.n, d.body.n]).toEqual([3, 4]);
    for (const r of [a, b, c, d]) expect(r.headers['x-cache']).toBeUndefined();
    expect(hits.get('me')).toBe(4);
    await settle();
    expect(calls.total()).toBe(0);
    // The same route without credentials is cached, under a key no credentialed request uses.
    await request(url).get('/rates/me').expect(200);
    const anon = await request(url).get('/rates/me').expect(200);
    expect(anon.headers['x-cache']).toBe('HIT');
    expect(anon.body).toEqual({ auth: null, n: 5 });
  });

  it('5b. vary: ["authorization"]: each token gets its own entry, never another one\'s body', async () => {
    const table = await fx.dynamo.table();
    const { url, hits } = await boot(table);
    const get = (token?: string) => {
      const r = request(url).get('/rates/me-vary');
      return (token ? r.set('Authorization', token) : r).expect(200);
    };
    const alice1 = await get('Bearer alice');
    const bob1 = await get('Bearer bob');
    const alice2 = await get('Bearer alice');
    const bob2 = await get('Bearer bob');
    const anon = await get();
    expect(alice1.body).toEqual({ auth: 'Bearer alice', n: 1 });
    expect(bob1.body).toEqual({ auth: 'Bearer bob', n: 2 });
    expect(alice2.body).toEqual(alice1.body);
    expect(bob2.body).toEqual(bob1.body);
    expect([alice2.headers['x-cache'], bob2.headers['x-cache']]).toEqual(['HIT', 'HIT']);
    expect(anon.body).toEqual({ auth: null, n: 3 });
    expect(anon.headers['x-cache']).toBe('MISS');
    expect(hits.get('meVary')).toBe(3);
    await settle();
    const keys = (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S).sort();
    expect(keys).toEqual(
      [
        routeKey('RatesController.meVary', ['GET', '/rates/me-vary', 'Bearer alice']),
        routeKey('RatesController.meVary', ['GET', '/rates/me-vary', 'Bearer bob']),
        routeKey('RatesController.meVary', ['GET', '/rates/me-vary', null]),
      ].sort(),
    );
  });

  it('6a. on a controller class: every GET route cached, a handler ttl overrides the module ttl', async () => {
    const table = await fx.dynamo.table();
    const { url, hits } = await boot(table, {
      controllers: [PlainController],
      module: { ttl: 600 },
    });
    for (const path of ['/plain/a', '/plain/a', '/plain/b', '/plain/b']) {
      await request(url).get(path).expect(200);
    }
    expect([hits.get('a'), hits.get('b')]).toEqual([1, 1]);
    const a = await item(table, routeKey('PlainController.a', ['GET', '/plain/a']));
    const b = await item(table, routeKey('PlainController.b', ['GET', '/plain/b']));
    expect(Number(a!.exp!.N)).toBe(Math.ceil(Number(a!.t!.N) + 600));
    expect(Number(b!.exp!.N)).toBe(Math.ceil(Number(b!.t!.N) + 30));
  });

  it('6b. as APP_INTERCEPTOR: every GET route cached, a handler ttl overrides the module ttl', async () => {
    const table = await fx.dynamo.table();
    const { url, hits } = await boot(table, {
      controllers: [OpenController],
      global: DynamoCacheInterceptor,
      module: { ttl: 600 },
    });
    const x1 = await request(url).get('/open/x').expect(200);
    const x2 = await request(url).get('/open/x').expect(200);
    expect([x1.headers['x-cache'], x2.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    await request(url).get('/open/y').expect(200);
    await request(url).get('/open/y').expect(200);
    expect([hits.get('x'), hits.get('y')]).toEqual([1, 1]);
    const x = await item(table, routeKey('OpenController.x', ['GET', '/open/x']));
    const y = await item(table, routeKey('OpenController.y', ['GET', '/open/y']));
    expect(Number(x!.exp!.N)).toBe(Math.ceil(Number(x!.t!.N) + 600));
    expect(Number(y!.exp!.N)).toBe(Math.ceil(Number(y!.t!.N) + 30));
    await request(url).post('/open/x').expect(201);
    await request(url).post('/open/x').expect(201);
    expect(hits.get('postX')).toBe(2);
  });

  it('6d. @NoDynamoCache() keeps a route, or a whole controller, out of a global interceptor', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table, {
      controllers: [OpenController, SkippedController],
      global: DynamoCacheInterceptor,
    });
    calls.reset();
    for (const path of ['/open/fresh', '/open/fresh', '/skipped', '/skipped']) {
      const res = await request(url).get(path).expect(200);
      expect(res.headers['x-cache']).toBeUndefined();
    }
    expect([hits.get('fresh'), hits.get('skipped')]).toEqual([2, 2]);
    await settle();
    expect(calls.total()).toBe(0);
    // The controller's other routes are still cached.
    await request(url).get('/open/x').expect(200);
    expect((await request(url).get('/open/x').expect(200)).headers['x-cache']).toBe('HIT');
  });

  it('6c. without the interceptor anywhere, undecorated routes are not cached', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table, { controllers: [OpenController] });
    const r = await request(url).get('/open/x').expect(200);
    await request(url).get('/open/x').expect(200);
    expect(r.headers['x-cache']).toBeUndefined();
    expect(hits.get('x')).toBe(2);
    await settle();
    expect(calls.total()).toBe(0);
  });

  it('7. 50 concurrent identical requests on a cold key run the handler once', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table);
    const pending = Array.from({ length: 50 }, () =>
      request(url)
        .get('/rates/slow')
        .then((r) => r),
    );
    // Hold the first handler run until every request has reached the route.
    for (let i = 0; i < 2000 && hits.get('arrivals') < 50; i++) await sleep(5);
    expect(hits.get('arrivals')).toBe(50);
    hits.release();
    const responses = await Promise.all(pending);
    expect(hits.get('slow')).toBe(1);
    for (const r of responses) expect(r.body).toEqual({ n: 1 });
    const cache = responses.map((r) => r.headers['x-cache']);
    expect(cache.filter((c) => c === 'MISS')).toHaveLength(1);
    expect(cache.filter((c) => c === 'HIT')).toHaveLength(49);
    await settle();
    expect(calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
  });

  describe('trackBy override in a subclass', () => {
    it('caches under the key it returns, credentials or not', async () => {
      const table = await fx.dynamo.table();
      const { url, hits } = await boot(table, { controllers: [TenantController] });
      const get = (user: string) =>
        request(url)
          .get('/tenant/profile')
          .set('x-user', user)
          .set('Authorization', `Bearer ${user}`)
          .expect(200);
      const a1 = await get('ann');
      const b1 = await get('ben');
      const a2 = await get('ann');
      expect(a1.body).toEqual({ user: 'ann', n: 1 });
      expect(b1.body).toEqual({ user: 'ben', n: 2 });
      expect(a2.body).toEqual(a1.body);
      expect(a2.headers['x-cache']).toBe('HIT');
      expect(hits.get('profile')).toBe(2);
      await settle();
      const keys = (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S).sort();
      expect(keys).toEqual(
        [
          // A custom trackBy key is used as it is.
          buildCacheKey('', 'TenantController.profile', encodeKey(['user', 'ann'])),
          buildCacheKey('', 'TenantController.profile', encodeKey(['user', 'ben'])),
        ].sort(),
      );
    });

    it('skips the cache when it returns undefined', async () => {
      const table = await fx.dynamo.table();
      const { url, hits, calls } = await boot(table, { controllers: [TenantController] });
      const r1 = await request(url).get('/tenant/profile').expect(200);
      const r2 = await request(url).get('/tenant/profile').expect(200);
      expect([r1.body.n, r2.body.n]).toEqual([1, 2]);
      expect(r2.headers['x-cache']).toBeUndefined();
      expect(hits.get('profile')).toBe(2);
      await settle();
      expect(calls.total()).toBe(0);
    });
  });

  it('never caches a StreamableFile, and concurrent requests each get their own stream', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table);
    const one = await request(url).get('/rates/file').buffer(true).expect(200);
    expect(one.body.toString()).toBe('file-1');
    const two = await request(url).get('/rates/file').buffer(true).expect(200);
    expect(two.body.toString()).toBe('file-2');
    expect(two.headers['x-cache']).toBe('MISS');
    const together = await Promise.all(
      [1, 2, 3].map(() =>
        request(url)
          .get('/rates/file')
          .buffer(true)
          .expect(200)
          .then((r) => r),
      ),
    );
    const bodies = together.map((r) => (r.body as Buffer).toString());
    expect(bodies.every((b) => /^file-\d+$/.test(b))).toBe(true);
    expect(new Set(bodies).size).toBe(3);
    expect(hits.get('file')).toBe(5);
    await settle();
    expect(calls.get('PutItem')).toBe(0);
    await settle();
    expect(await scanTable(fx.admin, table)).toHaveLength(0);
  });

  it('never caches SSE routes or handlers that write the response with @Res()', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table, {
      controllers: [OpenController, RatesController],
      global: DynamoCacheInterceptor,
    });
    for (let i = 1; i <= 2; i++) {
      const sse = await fetch(`${url}/open/events`);
      const text = await sse.text();
      expect(text).toContain(`data: a${i}\n`);
      expect(text).toContain(`data: b${i}\n`);
      await request(url).get('/open/raw').expect(200, 'raw-body');
      const raw = await request(url).get('/rates/raw').expect(200);
      expect(raw.body).toEqual({ raw: i });
    }
    expect([hits.get('events'), hits.get('openRaw'), hits.get('raw')]).toEqual([2, 2, 2]);
    await settle();
    expect(calls.total()).toBe(0);
  });

  it('caches a route once under global + controller + handler interceptors', async () => {
    const table = await fx.dynamo.table();
    const { url, hits, calls } = await boot(table, {
      controllers: [PlainController],
      global: DynamoCacheInterceptor,
    });
    const r = await request(url).get('/plain/b').expect(200);
    expect(r.headers['x-cache']).toBe('MISS');
    await settle();
    expect(calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    await settle();
    expect(await scanTable(fx.admin, table)).toHaveLength(1);
    calls.reset();
    const again = await request(url).get('/plain/b').expect(200);
    expect(again.headers['x-cache']).toBe('HIT');
    await settle();
    expect(calls.total()).toBe(0);
    expect(hits.get('b')).toBe(1);
  });

  it('lets the outermost interceptor cache, and warns when it hides a subclass', async () => {
    const table = await fx.dynamo.table();
    const warnings: string[] = [];
    const { url, hits } = await boot(table, {
      controllers: [TenantController],
      global: DynamoCacheInterceptor,
      warnings,
    });
    await request(url).get('/tenant/profile').set('x-user', 'ann').expect(200);
    const r = await request(url).get('/tenant/profile').set('x-user', 'ben').expect(200);
    // The global base interceptor keys by URL; the controller's UserCacheInterceptor is not used.
    expect(r.headers['x-cache']).toBe('HIT');
    expect(hits.get('profile')).toBe(1);
    await settle();
    const keys = (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S);
    expect(keys).toEqual([routeKey('TenantController.profile', ['GET', '/tenant/profile'])]);
    expect(warnings).toEqual([
      expect.stringMatching(
        /TenantController\.profile: DynamoCacheInterceptor .*UserCacheInterceptor/,
      ),
    ]);
  });

  it("lets the outermost interceptor cache when the call's context is frozen too (one entry, keyed by it)", async () => {
    const table = await fx.dynamo.table();
    const { url, hits } = await boot(table, {
      controllers: [TenantController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: FreezeContext }],
      global: DynamoCacheInterceptor,
      warnings: [],
    });
    const first = await request(url).get('/tenant/profile').set('x-user', 'ann').expect(200);
    const r = await request(url).get('/tenant/profile').set('x-user', 'ben').expect(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.body).toEqual({ user: 'ann', n: 1 });
    expect(hits.get('profile')).toBe(1);
    await settle();
    const keys = (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S);
    expect(keys).toEqual([routeKey('TenantController.profile', ['GET', '/tenant/profile'])]);
  });

  it('does not wrap a @DynamoCached controller method as a service method', async () => {
    const table = await fx.dynamo.table();
    const { app, calls } = await boot(table);
    const controller = app.get(RatesController);
    expect(Object.prototype.hasOwnProperty.call(controller, 'rate')).toBe(false);
    expect(controller.rate).toBe(RatesController.prototype.rate);
    expect(controller.rate('EUR', 'USD').n).toBe(1);
    expect(controller.rate('EUR', 'USD').n).toBe(2);
    await settle();
    expect(calls.total()).toBe(0);
  });

  it('works in a feature module that does not import a non-global DynamoCacheModule', async () => {
    const table = await fx.dynamo.table();
    const { url, app } = await boot(table, {
      controllers: [],
      imports: [FeatureModule],
      module: { isGlobal: false },
    });
    const first = await request(url).get('/feature').expect(200);
    const second = await request(url).get('/feature').expect(200);
    expect(first.body).toEqual({ n: 1, v: 42 });
    expect(second.body).toEqual(first.body);
    expect(second.headers['x-cache']).toBe('HIT');
    await settle();
    expect(app.get(FeatureService).calls).toBe(1);
  });

  it('onError "throw": an L2 failure is an error response; "bypass" serves the handler', async () => {
    const missing = `missing-${Date.now()}`;
    const strict = await boot(missing, { module: { onError: 'throw' } });
    await request(strict.url).get('/rates/pair/A/B').expect(500);
    expect(strict.hits.get('rate')).toBe(0);
    const lenient = await boot(missing, { module: { onError: 'bypass' } });
    const r = await request(lenient.url).get('/rates/pair/A/B').expect(200);
    expect(r.body).toEqual({ from: 'A', to: 'B', n: 1 });
    expect(r.headers['x-cache']).toBe('MISS');
  });
});

describe('@DynamoCached providers without DynamoCacheModule', () => {
  it('still boot (the interceptor the decorator binds needs nothing) and run uncached', async () => {
    const moduleRef = await Test.createTestingModule({ providers: [FeatureService] }).compile();
    await moduleRef.init();
    const service = moduleRef.get(FeatureService);
    expect(await service.double(2)).toBe(4);
    expect(await service.double(2)).toBe(4);
    expect(service.calls).toBe(2);
    await moduleRef.close();
  });
});
