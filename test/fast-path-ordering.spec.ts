import {
  Controller,
  Get,
  Module,
  Param,
  type DynamicModule,
  type INestApplication,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, RouteConstraints } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { DynamoCached, DynamoCacheModule, type DynamoCacheModuleOptions } from '../lib/index.js';
import { baseUrl, FAST_PATH, fetch, TokenMiddleware, warm } from './support/fast-path-fixtures.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * `fastPath` answers only after everything the application puts in front of its routes, and
 * only for the route the framework itself chose: Fastify route constraints, `onRequest` hooks
 * added in main.ts, a global cache module's position among Nest middleware, Express rewrites,
 * Express JSON settings. Each test states what the pipeline answers (what `fastPath: false`
 * answers); each failed while the fast path was a Nest middleware.
 */

let computed = 0;

@Controller('p')
class RatesController {
  @Get('rates/:id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    computed++;
    return { id, n: computed };
  }
}

@Controller('beta/p')
class BetaRatesController {
  @Get('rates/:id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    computed++;
    return { beta: true, id, n: computed };
  }
}

/** One path, two handlers told apart by a Fastify route constraint (a tenant header). */
@Controller('t')
class TenantController {
  @Get('report')
  @RouteConstraints({ tenant: 'a' })
  @DynamoCached(60)
  forA() {
    computed++;
    return { tenant: 'a', secret: 'a-only', n: computed };
  }

  @Get('report')
  @RouteConstraints({ tenant: 'b' })
  @DynamoCached(60)
  forB() {
    computed++;
    return { tenant: 'b', secret: 'b-only', n: computed };
  }
}

/** A Fastify (find-my-way) constraint strategy: routes by the `x-tenant` request header. */
const tenantConstraint = {
  name: 'tenant',
  storage() {
    const m = new Map<string, unknown>();
    return {
      get: (k: string) => m.get(k) ?? null,
      set: (k: string, v: unknown) => void m.set(k, v),
    };
  },
  deriveConstraint(req: { headers: Record<string, string | undefined> }) {
    return req.headers['x-tenant'];
  },
  validate(value: unknown) {
    if (typeof value !== 'string') throw new Error('tenant must be a string');
  },
  mustMatchWhenDerived: true,
};

/** An authentication middleware: 401 unless `x-token: ok`. */
@Module({})
class AuthModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(TokenMiddleware).forRoutes('{*path}');
  }
}

const adapters = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const;

describe(`fastPath after what the application puts before its routes (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function cacheModule(
    options: Partial<DynamoCacheModuleOptions> & { isGlobal?: boolean } = {},
  ) {
    const table = await fx.dynamo.table();
    return DynamoCacheModule.forRoot({
      table,
      client: fx.dynamo.client(),
      fastPath: FAST_PATH,
      ...options,
    });
  }

  async function listen(app: INestApplication): Promise<string> {
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return baseUrl(app);
  }

  /*
   * Fastify routes by more than the path: route constraints (`@RouteConstraints`, custom
   * strategies given to the adapter) pick one of several handlers of a path from request headers.
   * FastPathRoutes maps a path to the ONE route that last served it (lib/http/fast-path.ts,
   * `remember`/`answer`) and keys the request without the constraint, so tenant b (and a request
   * with no tenant at all) is answered with tenant a's cached response.
   */
  it('fastify: a path with two constrained handlers: each answers for itself', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [await cacheModule()],
      controllers: [TenantController],
    }).compile();
    const app = moduleRef.createNestApplication(
      new FastifyAdapter({ constraints: { tenant: tenantConstraint } } as never),
      { logger: false },
    );
    const url = await listen(app);
    const a = await warm(app, `${url}/t/report`, { 'x-tenant': 'a' });
    expect(JSON.parse(a.hit.body.toString())).toMatchObject({ tenant: 'a' });

    // Pipeline: Fastify routes it to forB -> 200 {"tenant":"b","secret":"b-only",...} (MISS).
    // Fast path: 200 {"tenant":"a","secret":"a-only",...} X-Cache: HIT (tenant a's data).
    const b = await fetch(`${url}/t/report`, { 'x-tenant': 'b' });
    expect(JSON.parse(b.body.toString())).toMatchObject({ tenant: 'b', secret: 'b-only' });

    // Pipeline: no handler matches a request without the constrained header -> 404.
    // Fast path: 200 with tenant a's response.
    const none = await fetch(`${url}/t/report`);
    expect(none.status).toBe(404);
  });

  /*
   * NestFactory.create() registers @fastify/middie (so the fast path middleware's onRequest hook)
   * before main.ts runs: an `onRequest` hook added in main.ts (the documented @fastify/jwt pattern,
   * @fastify/helmet, request ids) runs AFTER Nest middleware, so the fast path answers before it.
   * The README only warns about hooks "after onRequest" (preHandler, onSend).
   */
  it('fastify (NestFactory.create): an onRequest auth hook added in main.ts runs before any cached answer', async () => {
    const imports: DynamicModule[] = [await cacheModule()];
    @Module({ imports, controllers: [RatesController] })
    class AppModule {}
    const app = await NestFactory.create<INestApplication>(AppModule, new FastifyAdapter(), {
      logger: false,
    });
    const fastify = app.getHttpAdapter().getInstance() as {
      addHook(
        name: 'onRequest',
        hook: (
          req: { headers: Record<string, unknown> },
          reply: {
            header(n: string, v: string): void;
            code(n: number): { send(b: unknown): void };
          },
          done: () => void,
        ) => void,
      ): void;
    };
    fastify.addHook('onRequest', (req, reply, done) => {
      reply.header('x-request-id', 'rid-1');
      if (req.headers['x-token'] === 'ok') return done();
      reply.code(401).send({ error: 'unauthorized' });
    });
    const url = await listen(app);
    const { hit } = await warm(app, `${url}/p/rates/eur`, { 'x-token': 'ok' });

    // Pipeline: the hook sets X-Request-Id on every response.
    // Fast path: the authorised hit comes back without it.
    expect(hit.headers['x-request-id']).toBe('rid-1');

    // Pipeline: the hook refuses the anonymous request -> 401 {"error":"unauthorized"}.
    // Fast path: 200 with the cached rate, X-Cache: HIT.
    const anonymous = await fetch(`${url}/p/rates/eur`);
    expect(anonymous.status).toBe(401);
  });

  describe.each(adapters)('on %s', (_name, makeAdapter) => {
    /*
     * Nest registers the middleware of GLOBAL modules first (MiddlewareModule.registerMiddleware
     * sorts distance Number.MAX_VALUE ahead of everything). With `isGlobal: true`, the fast path
     * therefore runs before the root module's own middleware, whatever the import order; the
     * README says it runs after "modules configured before it" and advises "a module imported
     * before DynamoCacheModule" for authentication.
     */
    it('isGlobal: the root module’s auth middleware (configure) runs before any cached answer', async () => {
      const imports: DynamicModule[] = [await cacheModule({ isGlobal: true })];
      @Module({ imports, controllers: [RatesController] })
      class AppModule implements NestModule {
        configure(consumer: MiddlewareConsumer) {
          consumer.apply(TokenMiddleware).forRoutes('{*path}');
        }
      }
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
      const url = await listen(app);
      await warm(app, `${url}/p/rates/usd`, { 'x-token': 'ok' });

      // Pipeline (and fastPath with isGlobal: false): 401 "unauthorized".
      // Fast path: 200 with the cached rate, X-Cache: HIT.
      const anonymous = await fetch(`${url}/p/rates/usd`);
      expect(anonymous.status).toBe(401);
    });

    it('isGlobal: an auth module’s middleware runs before any cached answer', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [AuthModule, await cacheModule({ isGlobal: true })],
        controllers: [RatesController],
      }).compile();
      const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
      const url = await listen(app);
      await warm(app, `${url}/p/rates/gbp`, { 'x-token': 'ok' });

      // Pipeline: 401 "unauthorized". Fast path: 200 with the cached rate.
      const anonymous = await fetch(`${url}/p/rates/gbp`);
      expect(anonymous.status).toBe(401);
    });
  });

  /*
   * Express routes on req.url, which middleware before Nest's may rewrite from request headers
   * (locale, beta/canary, tenant prefixes); the cache keys on originalUrl. The normal pipeline
   * stays right (each handler has its own namespace); the fast path maps originalUrl's path to
   * the route that last served it and answers from THAT route's namespace.
   */
  it('express: a header-dependent rewrite to another handler gets that handler’s response', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [await cacheModule()],
      controllers: [RatesController, BetaRatesController],
    }).compile();
    const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    app.use(
      (req: { url: string; headers: Record<string, unknown> }, _res: unknown, next: () => void) => {
        if (req.headers['x-beta'] === '1') req.url = `/beta${req.url}`;
        next();
      },
    );
    const url = await listen(app);
    await warm(app, `${url}/p/rates/chf`);

    // Pipeline: routed to BetaRatesController -> {"beta":true,"id":"chf",...} (MISS).
    // Fast path: {"id":"chf","n":...} X-Cache: HIT (RatesController's entry).
    const beta = await fetch(`${url}/p/rates/chf`, { 'x-beta': '1' });
    expect(JSON.parse(beta.body.toString())).toMatchObject({ beta: true });
  });

  /*
   * An entry flagged `json: true` by the process that wrote it (no Express JSON settings) and read
   * by an app with `json spaces`: the pipeline's replay checks the READER's settings
   * (sendStoredJson -> plainExpressJson) and sends res.json's pretty text; the fast path
   * (FastPathRoutes.answer) checks only `stored.json` and sends the compact text. Two requests
   * for the same URL to the same app get different bytes and Content-Length.
   */
  it('express: an app with `json spaces` answers a hit with the same bytes as through the pipeline', async () => {
    const table = await fx.dynamo.table();
    const boot = async (spaces: boolean) => {
      const moduleRef = await Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({ table, client: fx.dynamo.client(), fastPath: FAST_PATH }),
        ],
        controllers: [RatesController],
      }).compile();
      const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
      if (spaces) (app as unknown as { set(k: string, v: unknown): void }).set('json spaces', 2);
      return { app, url: await listen(app) };
    };
    const writer = await boot(false);
    const reader = await boot(true);
    await fetch(`${writer.url}/p/rates/jpy`);
    await settleAll([writer.app]);

    const viaPipeline = await fetch(`${reader.url}/p/rates/jpy`); // L2 hit, fills L1
    expect(viaPipeline.headers['x-cache']).toBe('HIT');
    // Pipeline: "{\n  \"id\": \"jpy\",\n  \"n\": ...\n}" (Content-Length 25 or so).
    // Fast path: "{\"id\":\"jpy\",\"n\":...}" (compact).
    const fast = await fetch(`${reader.url}/p/rates/jpy`);
    expect(fast.body.toString()).toBe(viaPipeline.body.toString());
    expect(fast.headers['content-length']).toBe(viaPipeline.headers['content-length']);
  });
});
