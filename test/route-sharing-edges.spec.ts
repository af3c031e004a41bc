import fastifyCompress from '@fastify/compress';
import { Controller, Get, Query, Res, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import compression from 'compression';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll, sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { decoded, headersOf, raw } from './support/raw-http.js';

/*
 * Route entries at the edges of sharing: no response reaches a client it was not meant for, and
 * a value never comes back different from what the handler returned. Real compression middleware
 * of each adapter; every test boots two applications on one table.
 */

let n = 0;

@Controller('r')
class EdgesController {
  /** A body large enough for compression's default threshold (1 KB). */
  @Get('big')
  @DynamoCached(60)
  big() {
    n++;
    return { n, pad: 'x'.repeat(4096) };
  }

  /** Stale-while-revalidate: the stale entry answers, the handler refreshes behind it. */
  @Get('swr')
  @DynamoCached({ ttl: 1, grace: 3600, timeout: 0 })
  swr() {
    n++;
    return { v: n };
  }

  @Get('echo')
  @DynamoCached(60)
  echo(@Query() q: Record<string, unknown>) {
    n++;
    return { q };
  }

  /** A body whose type the handler sets, as a CSV export does. */
  @Get('csv')
  @DynamoCached(60)
  csv(@Res({ passthrough: true }) res: { header(name: string, value: string): unknown }) {
    n++;
    res.header('Content-Type', 'text/csv; charset=utf-8');
    return 'a,b\n1,2\n';
  }

  @Get('paged')
  @DynamoCached({ ttl: 60, query: ['page'] })
  paged(@Query('page') page?: unknown) {
    n++;
    return { page: page ?? null };
  }
}

type Setup = (app: INestApplication) => void | Promise<void>;

describe.each([
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const)('route entries at the edges of sharing, on %s', (kind, makeAdapter) => {
  const fx = useTestDynamo();

  beforeEach(() => {
    n = 0;
  });

  async function boot(
    table: string,
    setup?: Setup,
  ): Promise<{ port: number; app: INestApplication }> {
    await settleAll(fx.apps);
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [EdgesController],
    }).compile();
    const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
    await setup?.(app);
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return { port: (app.getHttpServer().address() as AddressInfo).port, app };
  }

  it('compression middleware: a hit never carries Content-Encoding: gzip over plain bytes', async () => {
    const table = await fx.dynamo.table();
    const setup: Setup = async (app) => {
      if (kind === 'express') app.use(compression({ threshold: 0 }) as never);
      else
        await (app as NestFastifyApplication).register(
          fastifyCompress as never,
          { threshold: 0 } as never,
        );
    };
    const a = await boot(table, setup);
    const b = await boot(table, setup);

    // A client that accepts gzip makes the miss: it goes out compressed.
    const miss = await raw(a.port, '/r/big', { 'Accept-Encoding': 'gzip' });
    expect(headersOf(miss.head)['x-cache']).toBe('MISS');
    expect(headersOf(miss.head)['content-encoding']).toBe('gzip');
    const body = decoded(miss);
    await settleAll(fx.apps);

    // Clients that do not accept gzip, on L1 (a) and on L2 (b): they must get plain JSON.
    for (const port of [a.port, b.port]) {
      const hit = await raw(port, '/r/big');
      expect(headersOf(hit.head)['x-cache']).toBe('HIT');
      // The body as the client must decode it (by its Content-Encoding), then the header.
      expect(decoded(hit)).toEqual(body);
      expect(headersOf(hit.head)['content-encoding']).toBeUndefined();
    }
    // And a client that does accept gzip must be able to decode what it is sent.
    const gz = await raw(b.port, '/r/big', { 'Accept-Encoding': 'gzip' });
    expect(decoded(gz)).toEqual(body);
    expect(n).toBe(1);
  });

  it('stale-while-revalidate: the refreshed entry carries its own ETag, never the stale body’s', async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);

    const first = await raw(a.port, '/r/swr');
    const v1 = decoded(first);
    const t1 = headersOf(first.head).etag;
    expect(v1).toEqual({ v: 1 });
    expect(t1).toMatch(/^W\/"[\w-]{27}"$/);
    await settleAll(fx.apps);
    await sleep(1300); // stale now, within grace

    const stale = await raw(a.port, '/r/swr'); // answered with v1, the handler refreshes behind it
    expect(decoded(stale)).toEqual({ v: 1 });
    await sleep(100);
    await settleAll(fx.apps);
    expect(n).toBe(2);

    // The refreshed entry (v2), from L1 and from another process's L2.
    // A client holding v1 revalidates against the second process: it must get v2, not 304.
    const reval = await raw(b.port, '/r/swr', { 'If-None-Match': t1! });
    expect(headersOf(reval.head)['x-cache']).toBe('HIT');
    expect(reval.status).toBe(200);
    expect(decoded(reval)).toEqual({ v: 2 });

    const fresh = await raw(a.port, '/r/swr');
    expect(decoded(fresh)).toEqual({ v: 2 });
    const t2 = headersOf(fresh.head).etag;
    expect(t2).toMatch(/^W\/"[\w-]{27}"$/);
    expect(t2).not.toBe(t1);
    expect(headersOf(reval.head).etag).toBe(t2);
  });

  it('a miss answered 304 (the client revalidates) is not stored: the next full response is, with its Content-Type', async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    // A client holds the body from an entry that is gone (here: in another table).
    const elsewhere = await boot(await fx.dynamo.table());
    const tag = headersOf((await raw(elsewhere.port, '/r/csv')).head).etag;
    expect(tag).toBeDefined();
    // It revalidates against a miss: 304.
    const reval = await raw(a.port, '/r/csv', { 'If-None-Match': tag });
    expect(reval.status).toBe(304);
    expect(headersOf(reval.head)['x-cache']).toBe('MISS');
    await settleAll(fx.apps);
    // Another client, another process: a miss (nothing was stored), then hits in both, each
    // with the body and the type the handler gave it.
    const labels: string[] = [];
    for (const port of [b.port, a.port, b.port]) {
      const answer = await raw(port, '/r/csv');
      await settleAll(fx.apps);
      expect(answer.status).toBe(200);
      labels.push(headersOf(answer.head)['x-cache'] ?? '');
      expect(answer.body.toString()).toBe('a,b\n1,2\n');
      expect(headersOf(answer.head)['content-type']).toBe('text/csv; charset=utf-8');
    }
    expect(labels).toEqual(['MISS', 'HIT', 'HIT']);
    expect(n).toBe(3);
  });

  it('HEAD then GET of one key: the GET gets the body and type the handler gave', async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const head = await raw(a.port, '/r/csv', {}, 'HEAD');
    expect(head.status).toBe(200);
    const headJson = await raw(a.port, '/r/echo?x=1', {}, 'HEAD');
    expect(headJson.status).toBe(200);
    await settleAll(fx.apps);
    for (const port of [a.port, b.port]) {
      const csv = await raw(port, '/r/csv');
      expect(headersOf(csv.head)['x-cache']).toBe('HIT');
      expect(csv.body.toString()).toBe('a,b\n1,2\n');
      expect(headersOf(csv.head)['content-type']).toBe('text/csv; charset=utf-8');
      const json = await raw(port, '/r/echo?x=1');
      expect(headersOf(json.head)['x-cache']).toBe('HIT');
      expect(decoded(json)).toEqual({ q: { x: '1' } });
      expect(headersOf(json.head)['content-type']).toMatch(/^application\/json/);
    }
  });

  if (kind === 'express') {
    it("Express's default (simple) query parser: parameter orders it reads differently never share an entry", async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      const b = await boot(table);
      // node:querystring reads both malformed names as U+FFFD: one parameter, two values.
      const one = await raw(a.port, '/r/echo?%E9=1&%FF=2');
      expect(decoded(one)).toEqual({ q: { '\ufffd': ['1', '2'] } });
      await settleAll(fx.apps);
      // What the handler returns for this URL: the values in the other order.
      const two = await raw(b.port, '/r/echo?%FF=2&%E9=1');
      expect(decoded(two)).toEqual({ q: { '\ufffd': ['2', '1'] } });
    });

    it("extended query parser: query: ['page'] cannot be poisoned by a name qs reads as page", async () => {
      const table = await fx.dynamo.table();
      const setup: Setup = (app) => {
        (app as unknown as { set(k: string, v: string): void }).set('query parser', 'extended');
      };
      const a = await boot(table, setup);
      const b = await boot(table, setup);
      // qs reads "[page]" as "page"; the key ignores it (not "page", nor its bracket form).
      const evil = await raw(a.port, '/r/paged?%5Bpage%5D=evil');
      expect(decoded(evil)).toEqual({ page: 'evil' });
      await settleAll(fx.apps);
      const plain = await raw(b.port, '/r/paged');
      expect(decoded(plain)).toEqual({ page: null });
    });

    it("extended query parser: 'a=1&a[]=2' and 'a[]=2&a=1' (qs: different arrays) never share an entry", async () => {
      const table = await fx.dynamo.table();
      const setup: Setup = (app) => {
        (app as unknown as { set(k: string, v: string): void }).set('query parser', 'extended');
      };
      const a = await boot(table, setup);
      const b = await boot(table, setup);
      const one = await raw(a.port, '/r/echo?a=1&a%5B%5D=2');
      expect(decoded(one)).toEqual({ q: { a: ['1', '2'] } });
      await settleAll(fx.apps);
      const two = await raw(b.port, '/r/echo?a%5B%5D=2&a=1');
      expect(decoded(two)).toEqual({ q: { a: ['2', '1'] } });
    });
  }
});
