import { Controller, Get, Param, Query, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { scanTable, settleAll } from './support/apps.js';
import { countCalls, useTestDynamo, type CallCounter } from './support/dynamo-server.js';
import { raw } from './support/raw-http.js';
import { countInterceptions } from './support/interceptions.js';

/*
 * The spellings of one request target that routers take to one path are one route entry. A
 * fragment (`/promo/banner#1`: clients never send one, anyone can) ends the path for Express's
 * and Fastify's routers; Fastify's router decodes percent-encoding before matching, and both
 * decode route parameters. README: `query: []` is "one entry (per host)". Each test boots two
 * applications on one table; every adapter with fastPath off and on (the fast path and the
 * Express front key as the interceptor does).
 */

let runs = 0;

@Controller('promo')
class PromoController {
  @Get('banner')
  @DynamoCached({ ttl: 300, query: [] })
  banner() {
    runs++;
    return { banner: 'summer sale' };
  }

  @Get('tag/:name')
  @DynamoCached(300)
  tag(@Param('name') name: string) {
    runs++;
    return { tag: name };
  }
}

@Controller('r')
class EchoController {
  @Get('echo')
  @DynamoCached(60)
  echo(@Query() query: Record<string, unknown>) {
    runs++;
    return { query };
  }

  @Get('paged')
  @DynamoCached({ ttl: 60, query: ['page'] })
  paged(@Query('page') page?: string) {
    runs++;
    return { page: page ?? null };
  }
}

/** cache_keys of the plain spellings with `Host: shop.example`, as they were before (golden). */
const BANNER_KEY = 'PromoController.banner/1928d7c704b55248c007ee6c486d965a';
const TAG_KEY = 'PromoController.tag/ccda48d1a79ec9c69ae3a44f50611943';

const adapters = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const;

describe.each(
  adapters.flatMap(([name, make]) => [
    [name, 'fastPath off', make, false],
    [name, 'fastPath on', make, true],
  ]) as [string, string, () => ExpressAdapter | FastifyAdapter, boolean][],
)('path spellings on %s, %s', (adapter, _fast, makeAdapter, fastPath) => {
  const fx = useTestDynamo();
  const interceptions = countInterceptions();

  beforeEach(() => {
    runs = 0;
  });

  async function boot(table: string): Promise<{ port: number; calls: CallCounter }> {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client, fastPath })],
      controllers: [PromoController, EchoController],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication(makeAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return { port: (app.getHttpServer().address() as AddressInfo).port, calls };
  }

  const keys = async (table: string): Promise<string[]> =>
    (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S!).sort();

  async function get(port: number, target: string): Promise<{ status: number; body: unknown }> {
    const answer = await raw(port, target);
    await settleAll(fx.apps);
    return { status: answer.status, body: JSON.parse(answer.body.toString()) };
  }

  it('fragments (#1, #2, …) are one entry: one handler run, one PutItem, one item; a second instance reads it', async () => {
    const table = await fx.dynamo.table();
    const first = await boot(table);
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await get(first.port, `/promo/banner#${i}`));
    expect(answers).toEqual(answers.map(() => ({ status: 200, body: { banner: 'summer sale' } })));
    expect({ runs, puts: first.calls.counts.PutItem }).toEqual({ runs: 1, puts: 1 });
    expect(await keys(table)).toEqual([BANNER_KEY]);
    // The fast path keys them as the interceptor does: past the miss (which shows it the route),
    // none reaches the pipeline.
    expect(interceptions.count).toBe(fastPath ? 1 : 20);

    const second = await boot(table);
    expect(await get(second.port, '/promo/banner#elsewhere')).toEqual(answers[0]);
    expect(await get(second.port, '/promo/banner')).toEqual(answers[0]);
    expect(runs).toBe(1);
    expect(second.calls.counts.PutItem).toBeUndefined();
    expect(await keys(table)).toEqual([BANNER_KEY]);
  });

  it('percent-encoded spellings of a route parameter are one entry with the plain one', async () => {
    const table = await fx.dynamo.table();
    const first = await boot(table);
    const targets = [
      '/promo/tag/sale',
      '/promo/tag/s%61le',
      '/promo/tag/%73%61%6c%65',
      '/promo/tag/%73%61%6C%65',
      '/%70romo/tag/sale',
    ];
    // Express routes on the path as sent: an escaped letter of a static segment is another path.
    const routed = adapter === 'fastify' ? targets : targets.slice(0, 4);
    const answers = [];
    for (const target of routed) answers.push(await get(first.port, target));
    expect(answers).toEqual(routed.map(() => ({ status: 200, body: { tag: 'sale' } })));
    expect({ runs, puts: first.calls.counts.PutItem }).toEqual({ runs: 1, puts: 1 });
    expect(interceptions.count).toBe(fastPath ? 1 : routed.length);
    const stored = await keys(table);
    expect(stored).toEqual([TAG_KEY]);

    const second = await boot(table);
    expect(await get(second.port, '/promo/tag/s%61l%65')).toEqual(answers[0]);
    expect(runs).toBe(1);
    expect(await keys(table)).toEqual([TAG_KEY]);
    // Other escapes stay apart (upper-cased): `%2F` is not `/`.
    expect((await get(second.port, '/promo/tag/a%2fb')).body).toEqual({ tag: 'a/b' });
    expect((await get(second.port, '/promo/tag/a%2Fb')).body).toEqual({ tag: 'a/b' });
    expect(runs).toBe(2);
    expect(await keys(table)).toHaveLength(2);
  });

  if (adapter === 'fastify') {
    it('percent-encoded spellings of a static path, which Fastify routes to it, are one entry', async () => {
      const table = await fx.dynamo.table();
      const first = await boot(table);
      const targets = [
        '/promo/banner',
        '/promo/b%61nner',
        '/promo/ba%6Ener',
        '/promo/ba%6ener',
        '/%70romo/banner',
        '/%70romo/b%61%6E%6Eer#1',
      ];
      const answers = [];
      for (const target of targets) answers.push(await get(first.port, target));
      expect(answers).toEqual(
        targets.map(() => ({ status: 200, body: { banner: 'summer sale' } })),
      );
      expect({ runs, puts: first.calls.counts.PutItem }).toEqual({ runs: 1, puts: 1 });
      expect(await keys(table)).toEqual([BANNER_KEY]);
    });
  }

  it('a fragment the framework reads into the query never shares an entry with a query without it', async () => {
    const table = await fx.dynamo.table();
    const { port } = await boot(table);
    // Express drops the fragment; Fastify's router reads all after the path as the query.
    const withFragment = adapter === 'fastify' ? { q: '1#x' } : { q: '1' };
    const afterHash = adapter === 'fastify' ? { q: '1' } : {};
    for (let round = 0; round < 3; round++) {
      expect(await get(port, '/r/echo?q=1#x')).toEqual({
        status: 200,
        body: { query: withFragment },
      });
      expect(await get(port, '/r/echo?q=1')).toEqual({ status: 200, body: { query: { q: '1' } } });
      expect(await get(port, '/r/echo#q=1')).toEqual({ status: 200, body: { query: afterHash } });
    }
    // Only the request without a fragment was stored; those with one were served uncached.
    expect(await keys(table)).toHaveLength(1);
    expect(runs).toBe(1 + 2 * 3);
  });

  it('an allowed parameter past the fragment (which Express drops) is not keyed as sent', async () => {
    const table = await fx.dynamo.table();
    const { port } = await boot(table);
    // Express reads `x=1` (no page), Fastify `x=1` and `page=2`: keyed as `?page=2`, the page-1
    // body would answer `?page=2` on Express.
    const page = adapter === 'fastify' ? '2' : null;
    expect(await get(port, '/r/paged?x=1#&page=2')).toEqual({ status: 200, body: { page } });
    expect(await get(port, '/r/paged?page=2')).toEqual({ status: 200, body: { page: '2' } });
    expect(await get(port, '/r/paged?x=1#&page=2')).toEqual({ status: 200, body: { page } });
    expect(await get(port, '/r/paged?page=2')).toEqual({ status: 200, body: { page: '2' } });
    // A fragment after the allowed parameters changes nothing either reads: one entry.
    expect(await get(port, '/r/paged?page=2&utm=x#frag')).toEqual({
      status: 200,
      body: { page: '2' },
    });
    expect(runs).toBe(3);
    expect(await keys(table)).toHaveLength(1);
  });
});
