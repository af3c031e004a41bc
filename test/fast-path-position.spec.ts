import {
  Controller,
  Get,
  Head,
  Injectable,
  Module,
  Param,
  Req,
  RequestMethod,
  type DynamicModule,
  type INestApplication,
  type MiddlewareConsumer,
  type NestModule,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { DynamoCached, DynamoCacheModule, type DynamoCacheModuleOptions } from '../lib/index.js';
import { baseUrl, FAST_PATH, fetch, TokenMiddleware, warm } from './support/fast-path-fixtures.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * `fastPath` answers in the route handler's own position: after route-level middleware
 * (`forRoutes(Controller)`, `forRoutes({ path, method })`), routes added in main.ts, Fastify
 * preHandler hooks added late or per route; for the handler the framework chose (`@Head` beside
 * `@Get`); keyed by the URL as sent (Fastify `rewriteUrl`). Each test states what the pipeline
 * answers (what `fastPath: false` answers: FAST_PATH_OFF=1 runs the file that way); each failed
 * while the fast path answered earlier than the handler.
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

/** One path, a HEAD handler (declared first, so Express routes HEAD to it) and a GET handler. */
@Controller('doc')
class DocController {
  @Head(':id')
  @DynamoCached(60)
  exists(@Param('id') id: string) {
    computed++;
    return { id, exists: true };
  }

  @Get(':id')
  @DynamoCached(60)
  read(@Param('id') id: string) {
    computed++;
    return { id, body: 'the full document', n: computed };
  }
}

/** A report per tenant: the tenant is the prefix Fastify's rewriteUrl took off the URL. */
@Controller('r')
class ReportController {
  @Get('report')
  @DynamoCached(60)
  report(@Req() req: { originalUrl: string }) {
    const tenant = /^\/(acme|globex)\//.exec(req.originalUrl)?.[1] ?? 'public';
    computed++;
    return { tenant, figures: `${tenant} figures`, n: computed };
  }
}

/** An authentication middleware: 401 unless `x-token: ok`. */
type Hook = (
  req: { headers: Record<string, unknown> },
  reply: { code(n: number): { send(b: unknown): void } },
  done: () => void,
) => void;

/** A Fastify auth hook: 401 unless `x-token: ok`. */
const authHook: Hook = (req, reply, done) => {
  if (req.headers['x-token'] === 'ok') return done();
  reply.code(401).send({ error: 'unauthorized' });
};

interface FastifyLike {
  addHook(name: string, hook: unknown): void;
}

describe(`fastPath in the handler's position (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function cacheModule(options: Partial<DynamoCacheModuleOptions> = {}) {
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

  describe('express: route-level middleware and routes added in main.ts', () => {
    /*
     * Nest registers middleware bound to a controller (`forRoutes(Controller)`, the form Nest's
     * docs use) or to a method (`forRoutes({ path, method: GET })`) with
     * ExpressAdapter.createMiddlewareFactory -> `app.get(path, mw)`: a ROUTE layer. The stack is
     * then [query, json, urlencoded, (fast path), get mw, get handler]: installOnExpress
     * (lib/http/fast-path-adapters.ts, `stack.findIndex((l) => l.route !== undefined)`) puts the
     * fast path in front of the auth middleware.
     */
    it('forRoutes(Controller): the auth middleware runs before any cached answer', async () => {
      const imports: DynamicModule[] = [await cacheModule()];
      @Module({ imports, controllers: [RatesController] })
      class AppModule implements NestModule {
        configure(consumer: MiddlewareConsumer) {
          consumer.apply(TokenMiddleware).forRoutes(RatesController);
        }
      }
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
      const url = await listen(app);
      await warm(app, `${url}/p/rates/eur`, { 'x-token': 'ok' });

      // Pipeline: 401 "unauthorized". Fast path: 200 with the cached rate, X-Cache: HIT.
      const anonymous = await fetch(`${url}/p/rates/eur`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.toString()).toBe('unauthorized');
    });

    it('forRoutes({ path, method: GET }): the auth middleware runs before any cached answer', async () => {
      const imports: DynamicModule[] = [await cacheModule()];
      @Module({ imports, controllers: [RatesController] })
      class AppModule implements NestModule {
        configure(consumer: MiddlewareConsumer) {
          consumer
            .apply(TokenMiddleware)
            .forRoutes({ path: 'p/rates/:id', method: RequestMethod.GET });
        }
      }
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
      const url = await listen(app);
      await warm(app, `${url}/p/rates/usd`, { 'x-token': 'ok' });

      // Pipeline: 401 "unauthorized". Fast path: 200 with the cached rate, X-Cache: HIT.
      const anonymous = await fetch(`${url}/p/rates/usd`);
      expect(anonymous.status).toBe(401);
    });

    /*
     * main.ts registers a health route on the Express instance (so that it skips auth), then the
     * auth middleware. That Express route is the first route layer: the fast path goes before it,
     * so before the auth middleware (and before Nest's body parsers and all Nest middleware).
     */
    it('an Express route added in main.ts before app.use(auth): auth runs before any cached answer', async () => {
      const imports: DynamicModule[] = [await cacheModule()];
      @Module({ imports, controllers: [RatesController] })
      class AppModule {}
      const app = await NestFactory.create<INestApplication>(AppModule, new ExpressAdapter(), {
        logger: false,
      });
      const server = app.getHttpAdapter().getInstance() as {
        get(path: string, h: (req: unknown, res: { send(b: string): void }) => void): void;
      };
      server.get('/healthz', (_req, res) => res.send('ok'));
      app.use(new TokenMiddleware().use);
      const url = await listen(app);
      expect((await fetch(`${url}/healthz`)).body.toString()).toBe('ok');
      await warm(app, `${url}/p/rates/gbp`, { 'x-token': 'ok' });

      // Pipeline: 401 "unauthorized". Fast path: 200 with the cached rate, X-Cache: HIT.
      const anonymous = await fetch(`${url}/p/rates/gbp`);
      expect(anonymous.status).toBe(401);
    });
  });

  /*
   * Express: FastPathRoutes keys a route by its path alone (FastPathRoutes.remember, byPath), and
   * rememberFast records HEAD requests too (the interceptor caches HEAD, keyed as GET). A
   * `@Head(':id')` handler's request remembers the path for THAT route; its result is stored in
   * its own namespace under the GET key. The next GET of the path is answered from the HEAD
   * handler's namespace with the HEAD handler's body.
   */
  it('express: a GET is never answered with the response of the @Head handler of its path', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [await cacheModule()],
      controllers: [DocController],
    }).compile();
    const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    const url = await listen(app);
    const { hit } = await warm(app, `${url}/doc/42`);
    expect(JSON.parse(hit.body.toString())).toMatchObject({ body: 'the full document' });
    const head = await fetch(`${url}/doc/42`, {}, 'HEAD');
    expect(head.status).toBe(200);
    await settleAll([app]);
    await fetch(`${url}/doc/42`, {}, 'HEAD'); // HEAD hit: remembers /doc/42 -> the HEAD route

    // Pipeline: routed to read() -> its cached {"id":"42","body":"the full document",...}.
    // Fast path: 200 {"id":"42","exists":true}, X-Cache: HIT (exists()'s entry).
    const get = await fetch(`${url}/doc/42`);
    expect(JSON.parse(get.body.toString())).toMatchObject({ body: 'the full document' });
  });

  describe('fastify: preHandler hooks added late or per route', () => {
    /*
     * FastifyAdapter.init() does not make the instance ready: hooks may still be added after
     * app.init() (serverless handlers, apps that call init() then configure the instance and
     * listen). installOnFastify added its preHandler at onApplicationBootstrap, so a preHandler
     * added afterwards runs after it: cached answers skip it.
     */
    it('a preHandler auth hook added after app.init() runs before any cached answer', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [await cacheModule()],
        controllers: [RatesController],
      }).compile();
      const app = moduleRef.createNestApplication(new FastifyAdapter(), { logger: false });
      await app.init();
      (app.getHttpAdapter().getInstance() as FastifyLike).addHook('preHandler', authHook);
      const url = await listen(app);
      await warm(app, `${url}/p/rates/chf`, { 'x-token': 'ok' });

      // Pipeline: 401 {"error":"unauthorized"}. Fast path: 200 with the cached rate.
      const anonymous = await fetch(`${url}/p/rates/chf`);
      expect(anonymous.status).toBe(401);
    });

    /*
     * A provider of the root module adds its hook at onApplicationBootstrap; Nest calls that hook
     * on the root module last (modules sorted by distance), after DynamoCacheFastPath's.
     */
    it('a preHandler auth hook added by a root provider at onApplicationBootstrap runs before any cached answer', async () => {
      @Injectable()
      class AuthHookInstaller implements OnApplicationBootstrap {
        constructor(private readonly host: HttpAdapterHost) {}
        onApplicationBootstrap() {
          (this.host.httpAdapter.getInstance() as FastifyLike).addHook('preHandler', authHook);
        }
      }
      const moduleRef = await Test.createTestingModule({
        imports: [await cacheModule()],
        controllers: [RatesController],
        providers: [AuthHookInstaller],
      }).compile();
      const app = moduleRef.createNestApplication(new FastifyAdapter(), { logger: false });
      const url = await listen(app);
      await warm(app, `${url}/p/rates/sek`, { 'x-token': 'ok' });

      // Pipeline: 401 {"error":"unauthorized"}. Fast path: 200 with the cached rate.
      const anonymous = await fetch(`${url}/p/rates/sek`);
      expect(anonymous.status).toBe(401);
    });

    /*
     * Route-level hooks (set through an `onRoute` hook, as @fastify/auth-style setups and route
     * config based auth do) run after every instance-level hook of the same kind: a route-level
     * preHandler always runs after the fast path's instance-level one.
     */
    it('a route-level preHandler (set by an onRoute hook) runs before any cached answer', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [await cacheModule()],
        controllers: [RatesController],
      }).compile();
      const app = moduleRef.createNestApplication(new FastifyAdapter(), { logger: false });
      (app.getHttpAdapter().getInstance() as FastifyLike).addHook(
        'onRoute',
        (route: { url: string; preHandler?: unknown }) => {
          if (route.url.startsWith('/p/')) route.preHandler = authHook;
        },
      );
      const url = await listen(app);
      await warm(app, `${url}/p/rates/nok`, { 'x-token': 'ok' });

      // Pipeline: 401 {"error":"unauthorized"}. Fast path: 200 with the cached rate.
      const anonymous = await fetch(`${url}/p/rates/nok`);
      expect(anonymous.status).toBe(401);
    });
  });

  /*
   * Fastify's `rewriteUrl` routes on the rewritten URL and keeps the original in
   * `raw.originalUrl`. The interceptor keys by Nest's getRequestUrl (`raw.originalUrl ||
   * raw.url`: the URL as sent); installOnFastify keys by `request.raw.url` (the rewritten one).
   * So a request for `/acme/r/report` is looked up under `/r/report`, and answered with that
   * URL's entry. (Any onRequest hook that edits raw.url after middie set raw.originalUrl does
   * the same.)
   */
  it('fastify rewriteUrl: a hit is keyed by the URL as sent, as the interceptor keys it', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [await cacheModule()],
      controllers: [ReportController],
    }).compile();
    const app = moduleRef.createNestApplication(
      new FastifyAdapter({
        rewriteUrl: (req: { url?: string }) => (req.url ?? '/').replace(/^\/(acme|globex)\//, '/'),
      } as never),
      { logger: false },
    );
    const url = await listen(app);
    await warm(app, `${url}/r/report`);

    // Pipeline: keyed /acme/r/report -> MISS, 200 {"tenant":"acme","figures":"acme figures",...}.
    // Fast path: keyed /r/report -> 200 {"tenant":"public","figures":"public figures",...} HIT.
    const acme = await fetch(`${url}/acme/r/report`);
    expect(JSON.parse(acme.body.toString())).toMatchObject({ tenant: 'acme' });
  });
});
