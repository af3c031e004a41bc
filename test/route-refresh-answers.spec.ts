import { connect } from 'node:net';
import { Controller, Get } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DynamoCached, DynamoCacheService } from '../lib/index.js';
import { bootCache, listenRoutes, settleAll, sleep } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw } from './support/raw-http.js';

/*
 * What a refresh's answer does to the stored response it would replace. Only an answer for every
 * request (a 404) ends it; what concerns one request (a 304 to a browser's If-None-Match, a
 * client that left) leaves it for grace; and a refresh never writes over an expiry made after it
 * began. A client that leaves during a miss does not hold the key for the requests after it.
 */
let n = 0;
let upstream: 'up' | 'down' = 'up';

@Controller('c')
class RatesController {
  @Get('rates')
  @DynamoCached({ ttl: 1, grace: 3600 })
  async rates() {
    if (upstream === 'down') throw new Error('upstream timeout');
    n++;
    await sleep(150);
    return { rate: 1.1 }; // the same body on every refresh: the same ETag
  }
}

const adapters = [
  ['Express', () => new ExpressAdapter()],
  ['Fastify', () => new FastifyAdapter()],
] as const;

describe.each(adapters)(`route refreshes on %s (${testServerKind()})`, (_name, makeAdapter) => {
  const fx = useTestDynamo();
  beforeEach(() => {
    n = 0;
    upstream = 'up';
  });

  async function twoInstances(): Promise<[number, number]> {
    const options = { table: await fx.dynamo.table(), client: fx.dynamo.client() };
    const a = await listenRoutes(options, [RatesController], makeAdapter(), fx.apps);
    const b = await listenRoutes(options, [RatesController], makeAdapter(), fx.apps);
    return [a, b];
  }

  it('a refresh answered 304 (a browser revalidating) leaves the stale response that grace serves, in both instances', async () => {
    const [a, b] = await twoInstances();
    const first = await raw(a, '/c/rates');
    expect(first.status).toBe(200);
    const etag = headersOf(first.head).etag as string;
    await settleAll(fx.apps);
    await sleep(1300); // stale, within grace
    expect((await raw(a, '/c/rates', { 'If-None-Match': etag })).status).toBe(304);
    await settleAll(fx.apps);
    expect(n).toBe(2); // the handler ran for the conditional request
    upstream = 'down';
    for (const port of [a, b]) {
      const got = await raw(port, '/c/rates');
      expect({ status: got.status, body: got.body.toString() }).toEqual({
        status: 200,
        body: '{"rate":1.1}',
      });
    }
  });

  it('a client that leaves during a cold miss does not hold the next identical request', async () => {
    const [a] = await twoInstances();
    const socket = connect(a, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('GET /c/rates HTTP/1.1\r\nHost: shop.example\r\n\r\n');
    await sleep(50); // the handler is running
    socket.destroy();
    await sleep(50);
    const started = Date.now();
    const next = await Promise.race([
      raw(a, '/c/rates', { host: 'shop.example' }),
      sleep(5000).then(() => undefined),
    ]);
    expect(next?.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5000);
    await settleAll(fx.apps);
  });
});

describe(`a refresh in flight never writes over a later expire (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(table: string) {
    const ref = await bootCache({ table, client: fx.dynamo.client() }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it('B expires while A refreshes with a result unless keeps out: B still serves the expired value for grace', async () => {
    const table = await fx.dynamo.table();
    const [a, b] = [await app(table), await app(table)];
    const opts = { ttl: 1, grace: 3600, unless: (v: string) => v === 'none' };
    expect(await a.wrap('report', ['k'], async () => 'v1', opts)).toBe('v1');
    await a.settle();
    expect(await b.wrap('report', ['k'], async () => 'unused', opts)).toBe('v1');
    await sleep(1200); // stale, within grace
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const refresh = a.wrap(
      'report',
      ['k'],
      async () => {
        await gate;
        return 'none';
      },
      opts,
    );
    await sleep(50);
    await b.expire('report', ['k']); // after A's computation began
    open();
    expect(await refresh).toBe('none');
    await a.settle();
    const failing = async (): Promise<string> => {
      throw new Error('upstream down');
    };
    expect(await b.wrap('report', ['k'], failing, opts)).toBe('v1');
  });
});
