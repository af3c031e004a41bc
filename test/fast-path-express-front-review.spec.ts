import {
  Controller,
  Get,
  Headers,
  HttpCode,
  Module,
  Param,
  VersioningType,
  type INestApplication,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, Agent } from 'node:http';
import { createRequire } from 'node:module';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DynamoCached } from '../lib/index.js';
import { FRONT_URL_LIMIT } from '../lib/http/express-front.js';
import { expressFrontHarness } from './support/express-front-harness.js';
import {
  express,
  type ExpressApp,
  type ExpressReq as Req,
  type ExpressRes as Res,
  type Mw,
} from './support/express-types.js';
import { headersOf, raw } from './support/raw-http.js';
import { settleAll } from './support/apps.js';
import { RecordingLogger } from './support/recording-logger.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * A review of lib/http/express-front.ts (answers before Express's router). The first block's
 * tests each failed on the first version (a defect, since fixed; the comment says what it
 * answered); the second, behaviour checked and found right. "Routed" is told by counting the
 * requests the router's first layer sees.
 */

const require = createRequire(import.meta.url);
const cors = require('cors') as (options: { origin: string[] }) => Mw;

let computed = 0;

@Controller('open')
class RatesController {
  @Get('rates/:id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    computed++;
    return { id, rate: 1.0842, n: computed };
  }

  /** Not cached: where a rewrite in a parent app sends some requests. */
  @Get('legacy')
  legacy() {
    return { legacy: true };
  }

  /** Ignores the query string: junk parameters share one entry. */
  @Get('padded')
  @DynamoCached({ ttl: 60, query: [] })
  padded() {
    computed++;
    return { padded: true, n: computed };
  }

  @Get('greet')
  @DynamoCached({ ttl: 60, vary: ['accept-language'] })
  greet(@Headers('accept-language') language: string | undefined) {
    computed++;
    return { language, n: computed };
  }

  @Get('empty')
  @HttpCode(204)
  @DynamoCached({ ttl: 60, statuses: [204] })
  empty() {
    computed++;
    return { n: computed };
  }

  @Get('created')
  @HttpCode(201)
  @DynamoCached({ ttl: 60, statuses: [201] })
  created() {
    computed++;
    return { created: true, n: computed };
  }
}

@Controller({ path: 'ver', version: '1' })
class VersionedController {
  @Get(':id')
  @DynamoCached(60)
  one(@Param('id') id: string) {
    computed++;
    return { v: 1, id, n: computed };
  }
}

@Controller('ping')
class PingController {
  @Get()
  ping() {
    return { pong: true };
  }
}
@Module({ controllers: [PingController] })
class PingModule {}

describe(`fastPath on Express, before the router: review (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const { servers, nest, boot, bootMounted, learn } = expressFrontHarness<ExpressApp>(fx, [
    RatesController,
  ]);

  beforeEach(() => {
    computed = 0;
  });

  describe('defects found, each fixed', () => {
    it('D1 app.disable("x-powered-by") after a URL was learned: no X-Powered-By from then on', async () => {
      const { app, express: instance, counter, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      await learn(app, get, '/open/rates/usd');
      instance.disable('x-powered-by');
      // What Express answers now (another URL, answered at the route): no X-Powered-By.
      await learn(app, get, '/open/rates/gbp');
      const viaRoute = await get('/open/rates/gbp');
      expect(viaRoute.head).not.toMatch(/x-powered-by/i);
      const front = await get('/open/rates/eur');
      expect(counter.routed).toBe(6); // the front did answer /open/rates/eur
      expect(front.head).not.toMatch(/x-powered-by/i); // Was: 'X-Powered-By: Express'
    });

    it('D2 mounted in a parent app with CORS: each Origin gets its own Access-Control-Allow-Origin', async () => {
      const { app, get } = await bootMounted((parent) =>
        parent.use(cors({ origin: ['https://a.example', 'https://b.example'] })),
      );
      await learn(app, get, '/open/rates/eur', { Origin: 'https://a.example' });
      const b = await get('/open/rates/eur', { Origin: 'https://b.example' });
      expect(b.head).toMatch(/x-cache: HIT/i);
      // Was: the parent's cors set b, the front's writeHead overwrote it with a.
      expect(headersOf(b.head)['access-control-allow-origin']).toBe('https://b.example');
      const none = await get('/open/rates/eur', { Origin: 'https://evil.example' });
      expect(headersOf(none.head)['access-control-allow-origin']).toBeUndefined();
    });

    it('D3 mounted in a parent app whose middleware sets a per-request header: each request’s value is sent', async () => {
      let seq = 0;
      const { app, get } = await bootMounted((parent) =>
        parent.use((_req: Req, res: Res, next: () => void) => {
          res.setHeader('X-Request-Id', `req-${++seq}`);
          next();
        }),
      );
      await learn(app, get, '/open/rates/eur');
      const third = await get('/open/rates/eur');
      expect(seq).toBe(3); // the parent middleware did run…
      expect(headersOf(third.head)['x-request-id']).toBe('req-3'); // Was: 'req-2'
    });

    it('D10 a header the stored answer sets, which a parent set to the same value while the URL was learned, is still set by the answer', async () => {
      // The parent marks responses public, except for requests that say x-private: the route's
      // stored answer (Cache-Control from the miss) overwrites it at the route, every time.
      const { app, counter, get } = await bootMounted((parent) =>
        parent.use((req: { headers: Record<string, unknown> }, res: Res, next: () => void) => {
          res.setHeader(
            'Cache-Control',
            req.headers['x-private'] === '1' ? 'no-store' : 'public, max-age=60',
          );
          next();
        }),
      );
      await learn(app, get, '/open/rates/eur');
      const routed = counter.routed;
      const other = await get('/open/rates/eur', { 'x-private': '1' });
      expect(counter.routed).toBe(routed); // answered before the router…
      // …as the route answers it. Was: 'no-store' (left as the parent set it).
      expect(headersOf(other.head)['cache-control']).toBe('public, max-age=60');
    });

    it('D11 a parent that rewrites long URLs to short ones: the long URL (the answer’s key) is not kept', async () => {
      // The cache keys the answer by originalUrl (the client's URL); the front would keep it
      // beside the short URL it routes, so a client could pin 10,000 long ones.
      const { app, counter, get } = await bootMounted((parent) =>
        parent.use((req: Req, _res: Res, next: () => void) => {
          if (req.url.startsWith('/long/')) req.url = '/open/rates/eur';
          next();
        }),
      );
      const long = `/long/${'x'.repeat(1_500)}`;
      await learn(app, get, long);
      const routed = counter.routed;
      const again = await get(long);
      expect(again.head).toMatch(/x-cache: HIT/i);
      expect(counter.routed).toBe(routed + 1); // Was: routed (kept, answered before the router)
      // A short one is kept and answered there, as before.
      await learn(app, get, '/long/short');
      const kept = counter.routed;
      await get('/long/short');
      expect(counter.routed).toBe(kept);
    });

    it('D4 mounted in a parent app that rewrites req.url: answered where Express routes it', async () => {
      const { app, get } = await bootMounted((parent) =>
        parent.use((req: Req, _res: Res, next: () => void) => {
          if (req.headers['x-legacy'] === '1') req.url = '/open/legacy';
          next();
        }),
      );
      await learn(app, get, '/open/rates/eur');
      const rewritten = await get('/open/rates/eur', { 'X-Legacy': '1' });
      // Express routes it to /open/legacy (uncached). Was: the cached /open/rates/eur answer.
      expect(JSON.parse(rewritten.body.toString())).toEqual({ legacy: true });
    });

    it('D5 a request target with a fragment: an earlier route of its path still answers it', async () => {
      // A route ignoring the query string: a fragment is cached there (with `query: 'all'` it is
      // not, as Fastify would read `x` as a query parameter).
      const { app, counter, get } = await boot({}, (_app, instance) =>
        instance.get('/open/padded', (req, res, next) => {
          if (req.headers['x-beta'] === '1') res.json({ beta: true });
          else next();
        }),
      );
      await learn(app, get, '/open/padded#x');
      expect(counter.routed).toBe(2);
      const beta = await get('/open/padded#x', { 'X-Beta': '1' });
      // Express routes on parseurl's pathname '/open/padded': the earlier route answers.
      expect(counter.routed).toBe(3); // Was: 2 (answered before the router)
      expect(JSON.parse(beta.body.toString())).toEqual({ beta: true });
    });

    it('D6 two Nest apps on one Express instance: the second adapter’s request hook runs', async () => {
      let b: INestApplication | undefined;
      const {
        app,
        express: instance,
        get,
      } = await boot({}, async (_app, instance) => {
        // The second app's adapter puts its hook layer (same source as the first's) before the routes.
        const ref = await Test.createTestingModule({ imports: [PingModule] }).compile();
        b = ref.createNestApplication(new ExpressAdapter(instance), { logger: false });
        fx.apps.push(b);
      });
      expect(instance.router.stack.length).toBeGreaterThan(2);
      await learn(app, get, '/open/rates/eur');
      let hooked = 0;
      (b!.getHttpAdapter() as unknown as ExpressAdapter).setOnRequestHook((_req, _res, done) => {
        hooked++;
        done();
      });
      await get('/open/rates/eur');
      expect(hooked).toBe(1); // Was: 0 (the front checks only the first adapter's hooks)
    });

    it('D7 memory: long client-chosen URLs are not kept', async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const pad = 'p'.repeat(12_000);
      /** Heap growth (MB, after gc) over 3,000 distinct junk-query GETs of one cached entry. */
      async function growth(blockFront: boolean) {
        // l1MaxAge off: every request of the run is a hit at the route or before it (past
        // l1MaxAge some would go through the pipeline, and the front would learn fewer URLs).
        const { app, port, get } = await boot({ l1MaxAge: null }, (_app, instance) => {
          // An app.use() middleware: the front never learns (the control).
          if (blockFront) instance.use((_req: Req, _res: Res, next: () => void) => next());
        });
        await learn(app, get, '/open/padded'); // one entry: the route ignores the query string
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        const once = (path: string) =>
          new Promise<number>((resolve, reject) => {
            const r = httpRequest(
              { host: '127.0.0.1', port, path, agent, headers: { host: 'shop.example' } },
              (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode ?? 0));
              },
            );
            r.on('error', reject);
            r.end();
          });
        for (let i = 0; i < 200; i++) await once(`/open/padded?w=${i}&pad=${pad}`);
        gc();
        const before = process.memoryUsage().heapUsed;
        for (let i = 0; i < 3_000; i++) await once(`/open/padded?n=${i}&pad=${pad}`);
        gc();
        const after = process.memoryUsage().heapUsed;
        agent.destroy();
        return (after - before) / 1024 / 1024;
      }
      const control = await growth(true);
      expect(control).toBeLessThan(8); // the route-level fast path alone keeps nothing
      const front = await growth(false);
      // One cache entry, one DynamoDB item: nothing client-chosen should stay. Was: ~36 MB
      // (3,000 × 12 KB URL strings in the front's memory; up to FRONT_URL_LIMIT × max header size).
      expect(front).toBeLessThan(8);
    }, 120_000);

    it('D8 a wrapper of app.handle installed at startup (APM, tracing) runs for every request', async () => {
      let traced = 0;
      const { app, get } = await boot({}, (_app, instance) => {
        const inner = instance as unknown as { handle: (...a: unknown[]) => unknown };
        const original = inner.handle;
        inner.handle = function (this: unknown, ...args: unknown[]) {
          traced++;
          return original.apply(this, args);
        };
      });
      await learn(app, get, '/open/rates/eur');
      await get('/open/rates/eur');
      expect(traced).toBe(3); // Was: 2 (the front wraps the tracer's wrapper, and answers first)
    });

    it('D9 an app.response.send extension runs for every request', async () => {
      let sends = 0;
      const { app, get } = await boot({}, (_app, instance) => {
        const proto = (instance as unknown as { response: { send(body: unknown): unknown } })
          .response;
        const send = proto.send;
        proto.send = function (this: Res, body: unknown) {
          this.setHeader('X-Send-Seq', String(++sends));
          return send.call(this, body);
        };
      });
      await learn(app, get, '/open/rates/eur');
      const third = await get('/open/rates/eur');
      expect(headersOf(third.head)['x-send-seq']).toBe('3'); // Was: '2', and sends stays 2
    });
  });

  describe('verified', () => {
    it('V1 HEAD of a learned URL is routed (the route answers it as before)', async () => {
      const { app, counter, get } = await boot();
      const { route } = await learn(app, get, '/open/rates/eur');
      const head = await get('/open/rates/eur', {}, 'HEAD');
      expect(counter.routed).toBe(3);
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      expect(headersOf(head.head)['content-length']).toBe(headersOf(route.head)['content-length']);
    });

    it('V2 an absolute-form target is never learned: routed every time', async () => {
      const { app, counter, get } = await boot();
      await learn(app, get, 'http://shop.example/open/rates/eur');
      const again = await get('http://shop.example/open/rates/eur');
      expect(again.head).toMatch(/x-cache: HIT/i);
      expect(counter.routed).toBe(3);
      // The origin form is its own URL (its own key), learned on its own.
      const origin = await get('/open/rates/eur');
      expect(origin.head).toMatch(/x-cache: MISS/i);
    });

    it('V3 case, trailing-slash and query-order variants are their own URLs; each front answer equals its route answer', async () => {
      const { app, counter, get } = await boot();
      for (const target of ['/OPEN/rates/EUR', '/open/rates/eur/', '/open/rates/eur?b=2&a=1']) {
        const { route } = await learn(app, get, target);
        const before = counter.routed;
        const front = await get(target);
        expect(counter.routed).toBe(before);
        expect(front.head).toBe(route.head);
        expect(front.body.equals(route.body)).toBe(true);
      }
      // '//open/…' does not match the route: a 404 through the router.
      const slashes = await get('//open/rates/eur');
      expect(slashes.status).toBe(404);
    });

    it('V4 json spaces set after learning: routed, answered through the pipeline with spaces', async () => {
      const { app, express: instance, counter, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      instance.set('json spaces', 2);
      const after = await get('/open/rates/eur');
      expect(counter.routed).toBe(3);
      expect(after.body.toString()).toContain('\n  "id"');
    });

    it('V5 global prefix and URI versioning: the front answers as the route did', async () => {
      const { app, counter, get } = await boot(
        {},
        (nestApp) => {
          nestApp.setGlobalPrefix('api');
          nestApp.enableVersioning({ type: VersioningType.URI });
        },
        [VersionedController],
      );
      const { route } = await learn(app, get, '/api/v1/ver/x');
      const front = await get('/api/v1/ver/x');
      expect(counter.routed).toBe(2);
      expect(front.head).toBe(route.head);
      expect(front.body.equals(route.body)).toBe(true);
    });

    it('V6 useStaticAssets before the routes: never learned, the static file wins', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'front-static-'));
      mkdirSync(join(dir, 'open', 'rates'), { recursive: true });
      writeFileSync(join(dir, 'open', 'rates', 'file'), 'static');
      const { app, counter, get } = await boot({}, (nestApp) => {
        nestApp.useStaticAssets(dir);
      });
      await learn(app, get, '/open/rates/eur');
      await get('/open/rates/eur');
      expect(counter.routed).toBe(3);
      expect((await get('/open/rates/file')).body.toString()).toBe('static');
    });

    it('V7 a 201 route: the front replays 201 and the same bytes', async () => {
      const { app, counter, get } = await boot();
      const { route } = await learn(app, get, '/open/created');
      expect(route.status).toBe(201);
      const front = await get('/open/created');
      expect(counter.routed).toBe(2);
      expect(front.head).toBe(route.head);
    });

    it('V8 keep-alive pipelining and Expect: 100-continue: answers in order, as the route gave them', async () => {
      const { app, counter, port, get } = await boot();
      const { route } = await learn(app, get, '/open/rates/eur');
      const all = await new Promise<Buffer>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        const req = (extra = '') =>
          `GET /open/rates/eur HTTP/1.1\r\nHost: shop.example\r\n${extra}\r\n`;
        socket.write(req() + req('Expect: 100-continue\r\n') + req('Connection: close\r\n'));
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', reject);
        socket.on('end', () => resolve(Buffer.concat(chunks)));
      });
      const text = all.toString('latin1');
      expect(text.match(/HTTP\/1\.1 200 OK/g)!.length).toBe(3);
      expect(text.split(route.body.toString('latin1')).length - 1).toBe(3);
      expect(text).toContain('HTTP/1.1 100 Continue');
      expect(counter.routed).toBe(2);
    });

    it('V9 mounted at a path with no per-request parent headers: the front answers as the route did', async () => {
      let seen = 0;
      const { app, counter, get } = await bootMounted(
        (parent) =>
          parent.use((_req: Req, _res: Res, next: () => void) => {
            seen++;
            next();
          }),
        '/api',
      );
      const { route } = await learn(app, get, '/api/open/rates/eur');
      const front = await get('/api/open/rates/eur');
      expect(counter.routed).toBe(2);
      expect(seen).toBe(3); // the parent's middleware still runs
      expect(front.head).toBe(route.head);
      expect(front.body.equals(route.body)).toBe(true);
    });

    it('V10 the URL memory is bounded: after FRONT_URL_LIMIT other URLs, a learned URL is routed again', async () => {
      // l1MaxAge off: past it (5 s by default, less on a slow machine's 10,000 requests) the entry
      // is checked through the pipeline, and the URLs asked meanwhile would not be learned.
      const { app, counter, port, get } = await boot({ l1MaxAge: null });
      await learn(app, get, '/open/padded?n=first');
      await get('/open/padded?n=first');
      expect(counter.routed).toBe(2);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const once = (path: string) =>
        new Promise<void>((resolve, reject) => {
          const r = httpRequest(
            { host: '127.0.0.1', port, path, agent, headers: { host: 'shop.example' } },
            (res) => {
              res.resume();
              res.on('end', () => resolve());
            },
          );
          r.on('error', reject);
          r.end();
        });
      for (let i = 0; i < FRONT_URL_LIMIT; i++) await once(`/open/padded?n=${i}`);
      agent.destroy();
      const before = counter.routed;
      await get('/open/padded?n=first');
      expect(counter.routed).toBe(before + 1);
    }, 120_000);
    it('V11 learn() throws on "/p#%ZZ" behind an `OPTIONS /*splat` route (URIError from its param decoding) after the answer went out: nothing visible', async () => {
      const logger = new RecordingLogger();
      const { app, port, get } = await boot(
        {},
        (_app, instance) =>
          (instance as unknown as { options(path: string, fn: Mw): void }).options(
            '/*splat',
            (_req, res) => res.json({ preflight: true }),
          ),
        [RatesController],
        logger,
      );
      // A route ignoring the query string, where a fragment is cached (see D5).
      await get('/open/padded#%ZZ');
      await settleAll([app]);
      // Nest maps the URIError to a 400 and, headers being sent, only ends the response.
      const all = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        const req = (extra = '') =>
          `GET /open/padded#%ZZ HTTP/1.1\r\nHost: shop.example\r\n${extra}\r\n`;
        socket.write(req() + req() + req('Connection: close\r\n'));
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
        socket.on('error', reject);
        socket.on('end', () => resolve(text));
      });
      expect(all.match(/HTTP\/1\.1 200 OK/g)!.length).toBe(3);
      expect(all.match(/x-cache: HIT/gi)!.length).toBe(3);
      expect(logger.errors).toEqual([]);
    });

    it('V12 app.set("etag", "strong") after learning: no difference (the answer always carries its ETag)', async () => {
      const { app, express: instance, counter, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      instance.set('etag', 'strong');
      const { route } = await learn(app, get, '/open/rates/usd');
      const front = await get('/open/rates/eur');
      expect(counter.routed).toBe(4);
      expect(headersOf(front.head).etag).toMatch(/^W\//);
      expect(headersOf(route.head).etag).toMatch(/^W\//);
    });

    it('V13 an onResponseHook set after learning: routed, and the hook runs', async () => {
      const { app, counter, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      let finished = 0;
      (app.getHttpAdapter() as unknown as ExpressAdapter).setOnResponseHook(() => {
        finished++;
      });
      await get('/open/rates/eur');
      await new Promise((r) => setTimeout(r, 20));
      expect(counter.routed).toBe(3);
      expect(finished).toBe(1);
    });

    it('V14 a vary route: another Accept-Language is not answered from the learned URL', async () => {
      const { app, counter, get } = await boot();
      await learn(app, get, '/open/greet', { 'Accept-Language': 'en' });
      const en = await get('/open/greet', { 'Accept-Language': 'en' });
      expect(counter.routed).toBe(2);
      expect(JSON.parse(en.body.toString()).language).toBe('en');
      const fr = await get('/open/greet', { 'Accept-Language': 'fr' });
      expect(counter.routed).toBe(3);
      expect(fr.head).toMatch(/x-cache: MISS/i);
      expect(JSON.parse(fr.body.toString()).language).toBe('fr');
    });

    it('V15 a Node server wrapper that rewrites req.url before the (unmounted) app: keyed by the rewritten URL, consistent', async () => {
      const instance = express();
      const app = await nest(instance);
      await app.init();
      const server = createServer((req, res) => {
        if (req.headers['x-legacy'] === '1') req.url = '/open/legacy';
        instance(req, res);
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as AddressInfo).port;
      const get = (t: string, h?: Record<string, string>) => raw(port, t, h);
      await learn(app, get, '/open/rates/eur');
      const rewritten = await get('/open/rates/eur', { 'X-Legacy': '1' });
      expect(JSON.parse(rewritten.body.toString())).toEqual({ legacy: true });
    });

    it('V16 a cached 204 route: routed every time (never stored as JSON), 204 with no body', async () => {
      const { counter, get } = await boot();
      for (let i = 0; i < 3; i++) {
        const r = await get('/open/empty');
        expect(r.status).toBe(204);
        expect(r.body.length).toBe(0);
      }
      expect(counter.routed).toBe(3);
    });
  });
});
