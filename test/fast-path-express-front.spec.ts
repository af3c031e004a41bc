import {
  Controller,
  Get,
  Injectable,
  Module,
  Param,
  type INestApplication,
  type MiddlewareConsumer,
  type NestMiddleware,
  type NestModule,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import {
  DynamoCached,
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { countRouted } from './support/fast-path-fixtures.js';
import { raw, type Answer } from './support/raw-http.js';
import type { ExpressApp } from './support/express-types.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * On Express, once a URL's GET was answered by the route's fast path, later GETs of that URL are
 * answered before Express's router (lib/http/express-front.ts), as long as nothing but Nest's own
 * layers (its adapter's hook layer, body parsers) and routes that do not take the URL stand
 * before the route. "Routed" is told by counting the requests the router's first layer sees;
 * answers are compared as the bytes on the wire (the Date header aside).
 */

let computed = 0;

@Controller('open')
class RatesController {
  @Get('rates/:id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    computed++;
    return { id, rate: 1.0842, label: 'é✓', n: computed };
  }
}

@Injectable()
class NoteMiddleware implements NestMiddleware {
  static seen = 0;
  use(_req: unknown, _res: unknown, next: () => void) {
    NoteMiddleware.seen++;
    next();
  }
}

@Module({ controllers: [RatesController] })
class WithMiddlewareModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(NoteMiddleware).forRoutes('*path');
  }
}

describe(`fastPath on Express: answers before the router (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function boot(
    options: Partial<DynamoCacheModuleOptions> = {},
    setup: (app: INestApplication, express: ExpressApp) => void = () => undefined,
    imports: (new () => unknown)[] = [],
  ) {
    const table = await fx.dynamo.table();
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({
          table,
          client: fx.dynamo.client(),
          fastPath: true,
          ...options,
        }),
        ...imports,
      ],
      controllers: imports.length === 0 ? [RatesController] : [],
    }).compile();
    const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    const express = app.getHttpAdapter().getInstance() as ExpressApp;
    setup(app, express);
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    const counter = countRouted(express);
    const port = (app.getHttpServer() as { address(): AddressInfo }).address().port;
    const get = (path: string, headers?: Record<string, string>, body?: string) =>
      raw(port, path, headers, 'GET', body);
    return { app, express, counter, get };
  }

  /** A miss (through the pipeline, which installs the route's fast path), a hit at the route (learns). */
  async function learn(app: INestApplication, get: (p: string) => Promise<Answer>, path: string) {
    const miss = await get(path);
    await settleAll([app]);
    const route = await get(path);
    return { miss, route };
  }

  beforeEach(() => {
    computed = 0;
    NoteMiddleware.seen = 0;
  });

  it('answers a URL it learned without routing, with the bytes the route answered with', async () => {
    const { app, counter, get } = await boot();
    const { miss, route } = await learn(app, get, '/open/rates/eur');
    expect(miss.head).toMatch(/x-cache: MISS/i);
    expect(route.head).toMatch(/x-cache: HIT/i);
    expect(counter.routed).toBe(2);

    const front = await get('/open/rates/eur');

    expect(counter.routed).toBe(2);
    expect(front.head).toBe(route.head);
    expect(front.body.equals(route.body)).toBe(true);
    expect(front.body.equals(miss.body)).toBe(true);
    expect(front.head).toContain('X-Powered-By: Express');
    expect(computed).toBe(1);
    // Another URL of the route is routed (and learned once answered at the route).
    const other = await get('/open/rates/usd');
    expect(other.head).toMatch(/x-cache: MISS/i);
    expect(counter.routed).toBe(3);
  });

  it('replays the headers as Express set them (X-Powered-By disabled)', async () => {
    const { app, counter, get } = await boot({}, (_app, express) =>
      express.disable('x-powered-by'),
    );
    const { route } = await learn(app, get, '/open/rates/sek');
    const front = await get('/open/rates/sek');
    expect(counter.routed).toBe(2);
    expect(front.head).toBe(route.head);
    expect(front.head).not.toMatch(/x-powered-by/i);
  });

  it('a conditional request, another Host or a deleted entry is routed', async () => {
    const { app, counter, get } = await boot();
    const { route } = await learn(app, get, '/open/rates/chf');
    const etag = /etag: (.*)/i.exec(route.head)![1]!;
    const notModified = await get('/open/rates/chf', { 'If-None-Match': etag });
    expect(notModified.status).toBe(304);
    expect(counter.routed).toBe(3);
    // Another Host is another key: not in L1, computed.
    const elsewhere = await get('/open/rates/chf', { 'X-Forwarded-Host': 'other.example' });
    expect(elsewhere.head).toMatch(/x-cache: MISS/i);
    expect(counter.routed).toBe(4);
    await app
      .get(DynamoCacheService)
      .delete('RatesController.rate', ['GET', 'shop.example', '/open/rates/chf', '']);
    const after = await get('/open/rates/chf');
    expect(after.head).toMatch(/x-cache: MISS/i);
    expect(counter.routed).toBe(5);
    expect(computed).toBe(3);
  });

  it('a GET with a body is routed: the body parser answers a malformed one as the pipeline does', async () => {
    const { app, counter, get } = await boot();
    await learn(app, get, '/open/rates/jpy');
    const bad = await get(
      '/open/rates/jpy',
      { 'Content-Type': 'application/json', 'Content-Length': '1' },
      '{',
    );
    expect(bad.status).toBe(400);
    expect(counter.routed).toBe(3);
  });

  it('an app.use() middleware before the routes: every request is routed and runs it', async () => {
    let seen = 0;
    const { app, counter, get } = await boot({}, (_app, express) =>
      express.use((_req, _res, next) => {
        seen++;
        next();
      }),
    );
    await learn(app, get, '/open/rates/eur');
    await get('/open/rates/eur');
    await get('/open/rates/eur');
    expect(counter.routed).toBe(4);
    expect(seen).toBe(4);
  });

  it('CORS (enableCors) before the routes: every request is routed and gets its CORS headers', async () => {
    const { app, counter, get } = await boot({}, (app) =>
      app.enableCors({ origin: ['https://a.example', 'https://b.example'] }),
    );
    await learn(app, get, '/open/rates/eur');
    const a = await get('/open/rates/eur', { Origin: 'https://a.example' });
    const b = await get('/open/rates/eur', { Origin: 'https://b.example' });
    expect(counter.routed).toBe(4);
    expect(a.head).toContain('Access-Control-Allow-Origin: https://a.example');
    expect(b.head).toContain('Access-Control-Allow-Origin: https://b.example');
  });

  it('Nest middleware (configure/forRoutes) runs for every request', async () => {
    const { app, counter, get } = await boot({}, () => undefined, [WithMiddlewareModule]);
    await learn(app, get, '/open/rates/eur');
    await get('/open/rates/eur');
    expect(counter.routed).toBe(3);
    expect(NoteMiddleware.seen).toBe(3);
  });

  it('an Express route of the same path added before Nest’s routes still answers what it takes', async () => {
    const { app, counter, get } = await boot({}, (_app, express) =>
      express.get('/open/rates/:id', (req, res, next) => {
        if (req.headers['x-beta'] === '1') res.json({ beta: true });
        else next();
      }),
    );
    await learn(app, get, '/open/rates/eur');
    const beta = await get('/open/rates/eur', { 'X-Beta': '1' });
    expect(JSON.parse(beta.body.toString())).toEqual({ beta: true });
    const plain = await get('/open/rates/eur');
    expect(plain.head).toMatch(/x-cache: HIT/i);
    expect(counter.routed).toBe(4);
  });

  it('a request hook or an app.param() callback set after a URL was learned runs from then on', async () => {
    const { app, express, counter, get } = await boot();
    await learn(app, get, '/open/rates/eur');
    await get('/open/rates/eur');
    expect(counter.routed).toBe(2);

    let hooked = 0;
    (app.getHttpAdapter() as unknown as ExpressAdapter).setOnRequestHook((_req, _res, done) => {
      hooked++;
      done();
    });
    await get('/open/rates/eur');
    expect(hooked).toBe(1);
    expect(counter.routed).toBe(3);
    (app.getHttpAdapter() as unknown as { onRequestHook?: unknown }).onRequestHook = undefined;

    let params = 0;
    express.param('id', (_req, _res, next) => {
      params++;
      next();
    });
    await get('/open/rates/eur');
    expect(params).toBe(1);
    expect(counter.routed).toBe(4);
  });

  it('a second instance on the table learns from its own answers; a delete reaches it within l1MaxAge', async () => {
    const table = await fx.dynamo.table();
    const a = await boot({ table, l1MaxAge: 1 });
    const b = await boot({ table, l1MaxAge: 1 });
    const miss = await a.get('/open/rates/nok');
    await settleAll([a.app]);
    const fromL2 = await b.get('/open/rates/nok');
    expect(fromL2.head).toMatch(/x-cache: HIT/i);
    const route = await b.get('/open/rates/nok');
    const front = await b.get('/open/rates/nok');
    expect(b.counter.routed).toBe(2);
    expect(front.head).toBe(route.head);
    expect(front.body.equals(miss.body)).toBe(true);
    await a.app
      .get(DynamoCacheService)
      .delete('RatesController.rate', ['GET', 'shop.example', '/open/rates/nok', '']);
    await new Promise((r) => setTimeout(r, 1100));
    const after = await b.get('/open/rates/nok');
    expect(after.head).toMatch(/x-cache: MISS/i);
    expect(b.counter.routed).toBe(3);
    expect(computed).toBe(2);
  });
});
