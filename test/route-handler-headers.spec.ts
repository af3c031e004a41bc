import { Controller, Get, Header, Res } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DynamoCached } from '../lib/index.js';
import { listenRoutes, settleAll, sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw } from './support/raw-http.js';

/** What the handlers use of an Express response or a Fastify reply (passthrough). */
interface ReplyLike {
  header(name: string, value: string): unknown;
}

let n = 0;

@Controller('rv')
class ReviewController {
  /** A handler with its own validator (a version number, a row's hash...). */
  @Get('tagged')
  @DynamoCached(60)
  tagged(@Res({ passthrough: true }) res: ReplyLike) {
    n++;
    res.header('ETag', '"v1"');
    return { a: 1 };
  }

  /** Varies on Accept-Language, as declared to the cache, and tells downstream caches so. */
  @Get('lang')
  @DynamoCached({ ttl: 60, vary: ['accept-language'] })
  lang(@Res({ passthrough: true }) res: ReplyLike) {
    n++;
    res.header('Cache-Control', 'public, max-age=60');
    res.header('Vary', 'Accept-Language');
    return { greeting: 'hello' };
  }

  /** A validator declared with @Header, on a stale-while-revalidate route. */
  @Get('swr-tagged')
  @Header('ETag', '"v1"')
  @DynamoCached({ ttl: 1, grace: 3600, timeout: 0 })
  swrTagged() {
    n++;
    return { a: 1 };
  }

  /** Stale-while-revalidate on a handler that sets its own Content-Type. */
  @Get('swr-csv')
  @DynamoCached({ ttl: 1, grace: 3600, timeout: 0 })
  swrCsv(@Res({ passthrough: true }) res: ReplyLike) {
    n++;
    res.header('Content-Type', 'text/csv; charset=utf-8');
    return `n,${n}\n`;
  }
}

describe.each([
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const)('route responses the handler shapes itself, on %s', (_kind, makeAdapter) => {
  const fx = useTestDynamo();

  beforeEach(() => {
    n = 0;
  });

  async function boot(table: string): Promise<number> {
    await settleAll(fx.apps);
    return listenRoutes(
      { table, client: fx.dynamo.client() },
      [ReviewController],
      makeAdapter(),
      fx.apps,
    );
  }

  it("the handler's own ETag is kept on the miss and on hits (L1, another instance's L2)", async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const tags: Record<string, string | undefined> = {};
    tags.miss = headersOf((await raw(a, '/rv/tagged')).head).etag;
    await settleAll(fx.apps);
    tags.l1 = headersOf((await raw(a, '/rv/tagged')).head).etag;
    tags.l2 = headersOf((await raw(b, '/rv/tagged')).head).etag;
    // README: "Every response that goes through the cache carries an ETag (...; the handler's own
    // ETag when it set one)".
    expect(tags).toEqual({ miss: '"v1"', l1: '"v1"', l2: '"v1"' });
    // A client revalidating with the tag the handler gave is answered 304.
    const reval = await raw(b, '/rv/tagged', { 'If-None-Match': '"v1"' });
    expect(reval.status).toBe(304);
    expect(n).toBe(1);
  });

  it('a Vary the route declares is sent on hits as on the miss (downstream caches need it)', async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const miss = await raw(a, '/rv/lang', { 'Accept-Language': 'en' });
    expect(headersOf(miss.head)['x-cache']).toBe('MISS');
    expect(headersOf(miss.head).vary).toBe('Accept-Language');
    await settleAll(fx.apps);
    for (const port of [a, b]) {
      const hit = await raw(port, '/rv/lang', { 'Accept-Language': 'en' });
      expect(headersOf(hit.head)['x-cache']).toBe('HIT');
      // The hit keeps "Cache-Control: public, max-age=60" ...
      expect(headersOf(hit.head)['cache-control']).toBe('public, max-age=60');
      // ... but drops "Vary: Accept-Language": a CDN in front then serves it to every language.
      expect(headersOf(hit.head).vary).toBe('Accept-Language');
    }
    expect(n).toBe(1);
  });

  it('a handler that sets headers through passthrough waits for its refresh even with timeout 0 (no refresh on a response already sent)', async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const first = await raw(a, '/rv/swr-csv');
    expect(first.body.toString()).toBe('n,1\n');
    await settleAll(fx.apps);
    await sleep(1300); // stale now, within grace

    // B (another instance, the stale item read from DynamoDB) runs the handler and answers its result.
    const refreshed = await raw(b, '/rv/swr-csv');
    expect(refreshed.body.toString()).toBe('n,2\n');
    expect(headersOf(refreshed.head)['content-type']).toBe('text/csv; charset=utf-8');
    await settleAll(fx.apps);
    const hit = await raw(a, '/rv/swr-csv');
    expect(hit.body.toString()).toBe('n,2\n');
    expect(headersOf(hit.head)['content-type']).toBe('text/csv; charset=utf-8');
    expect(n).toBe(2);
  });

  it("a refresh behind a stale answer keeps the handler's @Header ETag (L1 and another instance's L2; 304 on it)", async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    expect(headersOf((await raw(a, '/rv/swr-tagged')).head).etag).toBe('"v1"');
    await settleAll(fx.apps);
    await sleep(1300);
    // Stale: answered at once, refreshed behind it.
    expect(headersOf((await raw(a, '/rv/swr-tagged')).head).etag).toBe('"v1"');
    await settleAll(fx.apps);
    expect(n).toBe(2);
    const tags = {
      l1: headersOf((await raw(a, '/rv/swr-tagged')).head).etag,
      l2: headersOf((await raw(b, '/rv/swr-tagged')).head).etag,
    };
    expect(tags).toEqual({ l1: '"v1"', l2: '"v1"' });
    expect((await raw(b, '/rv/swr-tagged', { 'If-None-Match': '"v1"' })).status).toBe(304);
    expect(n).toBe(2);
  });
});
