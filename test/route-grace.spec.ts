import { Controller, Get, NotFoundException, Res } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DynamoCached } from '../lib/index.js';
import { listenRoutes, settleAll, sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw } from './support/raw-http.js';

let n = 0;
let upstream: 'up' | 'down' | 'gone' = 'up';

@Controller('g')
class RatesController {
  @Get('rates')
  @DynamoCached({ ttl: 1, grace: 3600 })
  rates() {
    if (upstream === 'down') throw new Error('upstream timeout');
    if (upstream === 'gone') throw new NotFoundException('no rates');
    return { v: ++n };
  }

  /** A client error returned, not thrown: the status set through passthrough. */
  @Get('item')
  @DynamoCached({ ttl: 1, grace: 3600 })
  item(@Res({ passthrough: true }) res: { status(code: number): unknown }) {
    if (upstream === 'gone') {
      res.status(404);
      return { error: 'no such item' };
    }
    return { v: ++n };
  }
}

describe.each([
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const)(
  'grace on a route (%s): the last response when the handler fails',
  (_kind, makeAdapter) => {
    const fx = useTestDynamo();

    beforeEach(() => {
      n = 0;
      upstream = 'up';
    });

    const boot = (table: string): Promise<number> =>
      listenRoutes(
        { table, client: fx.dynamo.client() },
        [RatesController],
        makeAdapter(),
        fx.apps,
      );

    it('a handler that throws within grace: the request that ran it, and another instance, get the stale response', async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      const b = await boot(table);
      expect(JSON.parse((await raw(a, '/g/rates')).body.toString())).toEqual({ v: 1 });
      await settleAll(fx.apps);
      await sleep(1300); // stale, within grace
      upstream = 'down';
      for (const port of [a, b]) {
        const r = await raw(port, '/g/rates');
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body.toString())).toEqual({ v: 1 });
        expect(headersOf(r.head)['x-cache']).toBe('HIT');
      }
    });

    it('a client error (404) is the answer, not a failure: never hidden by the stale response', async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      expect(JSON.parse((await raw(a, '/g/rates')).body.toString())).toEqual({ v: 1 });
      await settleAll(fx.apps);
      await sleep(1300);
      upstream = 'gone';
      expect((await raw(a, '/g/rates')).status).toBe(404);
      expect((await raw(a, '/g/rates')).status).toBe(404);
      upstream = 'up';
      expect(JSON.parse((await raw(a, '/g/rates')).body.toString())).toEqual({ v: 2 });
    });

    it('a client error the handler returns (404 through passthrough) is its answer too: not followed by the stale 200', async () => {
      const a = await boot(await fx.dynamo.table());
      expect(JSON.parse((await raw(a, '/g/item')).body.toString())).toEqual({ v: 1 });
      await settleAll(fx.apps);
      await sleep(1300);
      upstream = 'gone';
      for (let i = 0; i < 2; i++) {
        const r = await raw(a, '/g/item');
        expect({ status: r.status, body: r.body.toString() }).toEqual({
          status: 404,
          body: JSON.stringify({ error: 'no such item' }),
        });
        await settleAll(fx.apps);
      }
    });
  },
);
