import { Controller, Get, Param } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ExpressAdapter } from '@nestjs/platform-express';
import { gzipSync } from 'node:zlib';
import { DynamoCached } from '../lib/index.js';
import { FRONT_URL_MAX } from '../lib/http/express-front.js';
import { expressFrontHarness } from './support/express-front-harness.js';
import {
  express,
  type ExpressApp,
  type ExpressReq as Req,
  type ExpressRes as Res,
  type Mw,
} from './support/express-types.js';
import { decoded, headersOf } from './support/raw-http.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * A second review of lib/http/express-front.ts (answers before Express's router). The first
 * block: defects found, since fixed (each test asserts what Express + Nest answer at the route;
 * the comments say what the first version answered); the second: behaviour checked and found
 * right. "Routed" is told by counting the requests the
 * router's first layer sees.
 */

let computed = 0;

@Controller('open')
class RatesController {
  @Get('rates/:id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    computed++;
    return { id, rate: 1.0842, n: computed, pad: 'x'.repeat(64) };
  }

  /** Ignores the query string: junk parameters share one entry. */
  @Get('padded')
  @DynamoCached({ ttl: 60, query: [] })
  padded() {
    computed++;
    return { padded: true, n: computed };
  }
}

@Controller('health')
class HealthController {
  @Get()
  @DynamoCached(60)
  health() {
    computed++;
    return { ok: true, n: computed };
  }
}

describe(`fastPath on Express, before the router: review 2 (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const h = expressFrontHarness<ExpressApp>(fx, [RatesController]);
  const { bootMounted, learn } = h;
  /** A Nest app listening on its own adapter's server. */
  const boot = (
    setup?: (app: NestExpressApplication, express: ExpressApp) => void | Promise<void>,
    controllers?: (new () => unknown)[],
  ) => h.boot({}, setup, controllers);

  beforeEach(() => {
    computed = 0;
  });

  describe('defects found, each fixed', () => {
    it('N1 mounted in a parent app that compresses per request (sets Content-Encoding as the response is sent): a client that does not accept gzip gets plain JSON', async () => {
      // What compression() does, minus streaming: on the way out, gzip when the client accepts
      // it and the body is not already encoded.
      const { app, get } = await bootMounted((parent) =>
        parent.use((req: Req, res: Res, next: () => void) => {
          const end = res.end;
          res.end = function (this: Res, chunk?: unknown, ...rest: unknown[]) {
            if (
              !this.headersSent &&
              Buffer.isBuffer(chunk) &&
              /\bgzip\b/.test(req.headers['accept-encoding'] ?? '') &&
              this.getHeader('content-encoding') === undefined
            ) {
              this.setHeader('Content-Encoding', 'gzip');
              this.setHeader('Vary', 'Accept-Encoding');
              this.removeHeader('Content-Length');
              return end.call(this, gzipSync(chunk), ...rest);
            }
            return end.call(this, chunk, ...rest);
          };
          next();
        }),
      );
      const miss = await get('/open/rates/eur'); // plain: stored as JSON
      await settleAll([app]);
      const gz = await get('/open/rates/eur', { 'Accept-Encoding': 'gzip' }); // at the route: learns
      expect(gz.head).toMatch(/x-cache: HIT/i);
      expect(headersOf(gz.head)['content-encoding']).toBe('gzip');
      const plain = await get('/open/rates/eur'); // now answered before the router
      // At the route: no Content-Encoding, the JSON. Was: 'Content-Encoding: gzip' on plain bytes.
      expect(headersOf(plain.head)['content-encoding']).toBeUndefined();
      expect(decoded(plain)).toEqual(JSON.parse(miss.body.toString()));
      // A client that accepts gzip: now the plain bytes, labelled gzip (the parent sees it "already encoded").
      const gz2 = await get('/open/rates/eur', { 'Accept-Encoding': 'gzip' });
      expect(decoded(gz2)).toEqual(JSON.parse(miss.body.toString()));
    });

    it('N2 a wrapper of the router’s handle on its prototype (tracing, installed at startup) runs for every request', async () => {
      let proto: { handle: (...a: unknown[]) => unknown } | undefined;
      let original: ((...a: unknown[]) => unknown) | undefined;
      let traced = 0;
      try {
        const { app, get } = await boot((_app, instance) => {
          // The router is an object whose prototype's prototype is Router.prototype.
          proto = Object.getPrototypeOf(Object.getPrototypeOf(instance.router)) as {
            handle: (...a: unknown[]) => unknown;
          };
          original = proto.handle;
          const inner = original;
          proto.handle = function (this: unknown, ...args: unknown[]) {
            traced++;
            return inner.apply(this, args);
          };
        });
        await learn(app, get, '/open/rates/eur');
        await get('/open/rates/eur');
        expect(traced).toBe(3); // Was: 2 (the front answers without calling it)
      } finally {
        if (proto !== undefined && original !== undefined) proto.handle = original;
      }
    });

    it('N3 an extension of Express’s shared response prototype (express.response.send) runs for every request', async () => {
      const shared = (express as unknown as { response: { send(body: unknown): unknown } })
        .response;
      const send = shared.send;
      let sends = 0;
      try {
        shared.send = function (this: Res, body: unknown) {
          this.setHeader('X-Send-Seq', String(++sends));
          return send.call(this, body);
        };
        const { app, get } = await boot();
        await learn(app, get, '/open/rates/eur');
        const third = await get('/open/rates/eur');
        expect(headersOf(third.head)['x-send-seq']).toBe('3'); // Was: '2' (and sends stays 2)
      } finally {
        shared.send = send;
      }
    });

    it('N4 a layer before the route replaced in place (stack length unchanged) by a middleware: it runs', async () => {
      let ran = 0;
      const { app, express: instance, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      const stack = instance.router.stack;
      const index = stack.findIndex((l) => l.route !== undefined);
      expect(index).toBeGreaterThan(1);
      instance.use((_req: Req, _res: Res, next: () => void) => {
        ran++;
        next();
      });
      const added = stack.pop()!;
      stack.splice(1, 1, added); // a body parser's place (a GET without body: it did nothing)
      const after = await get('/open/rates/eur');
      expect(after.status).toBe(200);
      expect(ran).toBe(1); // Was: 0
    });

    it('N5 an earlier Express route of the same path that takes GET only after learning (route.get added): it answers', async () => {
      let route: { get(fn: Mw): unknown; post(fn: Mw): unknown } | undefined;
      const { app, get } = await boot((_app, instance) => {
        const r = instance.route('/open/rates/eur');
        r.post((_req, res) => res.json({ posted: true }));
        route = r;
      });
      await learn(app, get, '/open/rates/eur');
      route!.get((_req, res) => res.json({ override: true }));
      const after = await get('/open/rates/eur');
      expect(JSON.parse(after.body.toString())).toEqual({ override: true }); // Was: the cached answer
    });
  });

  describe('verified', () => {
    it('W1 odd URLs (";", %2F, %-encoded id, a long query under the limit): the front answers each as its route did', async () => {
      const { app, counter, get } = await boot();
      const long = `/open/rates/eur?q=${'a'.repeat(FRONT_URL_MAX - 30)}`;
      expect(long.length).toBeLessThanOrEqual(FRONT_URL_MAX);
      for (const target of [
        '/open/rates/eur;v=1',
        '/open/rates/a%2Fb',
        '/open/rates/%65ur',
        long,
      ]) {
        const { route } = await learn(app, get, target);
        const before = counter.routed;
        const front = await get(target);
        expect(counter.routed).toBe(before);
        expect(front.head).toBe(route.head);
        expect(front.body.equals(route.body)).toBe(true);
      }
    });

    it('W2 a URL over FRONT_URL_MAX is never answered before the router', async () => {
      const { app, counter, get } = await boot();
      const long = `/open/rates/eur?q=${'a'.repeat(FRONT_URL_MAX)}`;
      await learn(app, get, long);
      await get(long);
      expect(counter.routed).toBe(3);
    });

    it('W3 a route added after learning (after the Nest route): routed once, learned again, same answer', async () => {
      const { app, express: instance, counter, get } = await boot();
      const { route } = await learn(app, get, '/open/rates/eur');
      instance.get('/late', (_req, res) => res.json({ late: true }));
      const routedAgain = await get('/open/rates/eur');
      expect(counter.routed).toBe(3);
      const front = await get('/open/rates/eur');
      expect(counter.routed).toBe(3);
      expect(front.head).toBe(route.head);
      expect(routedAgain.body.equals(route.body)).toBe(true);
    });

    it('W4 a layer before the route removed after learning: routed', async () => {
      const { app, express: instance, counter, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      instance.router.stack.splice(1, 1);
      await get('/open/rates/eur');
      expect(counter.routed).toBe(3);
    });

    it('W5 two apps on two Express instances in one process: each front answers its own bytes and headers', async () => {
      const a = await boot();
      const b = await boot((_app, instance) => instance.disable('x-powered-by'));
      const ra = (await learn(a.app, a.get, '/open/rates/eur')).route;
      const rb = (await learn(b.app, b.get, '/open/rates/eur')).route;
      const fa = await a.get('/open/rates/eur');
      const fb = await b.get('/open/rates/eur');
      expect(a.counter.routed).toBe(2);
      expect(b.counter.routed).toBe(2);
      expect(fa.head).toBe(ra.head);
      expect(fb.head).toBe(rb.head);
      expect(fa.head).toMatch(/x-powered-by/i);
      expect(fb.head).not.toMatch(/x-powered-by/i);
    });

    it('W6 an onRequestHook set after learning: routed, and the hook runs', async () => {
      const { app, counter, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      let hooked = 0;
      (app.getHttpAdapter() as unknown as ExpressAdapter).setOnRequestHook((_req, _res, done) => {
        hooked++;
        done();
      });
      await get('/open/rates/eur');
      expect(counter.routed).toBe(3);
      expect(hooked).toBe(1);
    });

    it('W7 global prefix with an excluded route: the excluded path is answered as its route did', async () => {
      const { app, counter, get } = await boot(
        (nestApp) => {
          nestApp.setGlobalPrefix('api', { exclude: ['health'] });
        },
        [HealthController, RatesController],
      );
      const { route } = await learn(app, get, '/health');
      const front = await get('/health');
      expect(counter.routed).toBe(2);
      expect(front.head).toBe(route.head);
      expect(front.body.equals(route.body)).toBe(true);
      expect((await get('/api/health')).status).toBe(404);
    });

    it('W8 mounted in a parent that sets an array-valued header per request: each request’s values are sent', async () => {
      let seq = 0;
      const { app, counter, get } = await bootMounted((parent) =>
        parent.use((_req: Req, res: Res, next: () => void) => {
          seq++;
          res.setHeader('X-Trace', ['fixed', `seq-${seq}`]);
          next();
        }),
      );
      await learn(app, get, '/open/rates/eur');
      const front = await get('/open/rates/eur');
      expect(counter.routed).toBe(2);
      // Sent as two lines, in this order: 'fixed', then this request's.
      expect(front.head).toMatch(/X-Trace: fixed\r\nX-Trace: seq-3/);
    });

    it('W9 a query-ignoring route: many query variants share one answer; each front answer equals its route answer', async () => {
      const { app, counter, get } = await boot();
      const { route } = await learn(app, get, '/open/padded?a=1');
      await get('/open/padded?b=2'); // at the route: learns its own URL
      const before = counter.routed;
      const fa = await get('/open/padded?a=1');
      const fb = await get('/open/padded?b=2');
      expect(counter.routed).toBe(before);
      expect(fa.head).toBe(route.head);
      expect(fb.head).toBe(route.head);
      expect(fb.body.equals(route.body)).toBe(true);
    });

    it('W10 a request with Content-Length: 0 is routed (a body parser might act on it)', async () => {
      const { app, counter, get } = await boot();
      await learn(app, get, '/open/rates/eur');
      const r = await get('/open/rates/eur', { 'Content-Length': '0' });
      expect(r.status).toBe(200);
      expect(counter.routed).toBe(3);
    });
  });
});
