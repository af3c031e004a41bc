import { Controller, Get, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { scanTable, settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw } from './support/raw-http.js';

/*
 * A handler's result can still fail on its way out, after the handler returned: the framework
 * cannot serialize it (a BigInt, a cycle), an outer interceptor throws. The client then gets the
 * exception filter's error response, not the handler's answer: that is a thrown error, which is
 * never stored, so the next request (on any instance) runs the handler again.
 */

let runs = 0;
/** What the handler reads: the first read of a row holds a BigInt column, later ones do not. */
let rows: unknown[] = [];

@Controller('report')
class ReportController {
  @Get()
  @DynamoCached(60)
  report() {
    runs++;
    return { total: rows.shift() };
  }
}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(
  `errors after the handler on %s (${testServerKind()})`,
  (_name, adapter) => {
    const fx = useTestDynamo();

    async function boot(table: string): Promise<number> {
      const moduleRef = await Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
        controllers: [ReportController],
      }).compile();
      const app: INestApplication = moduleRef.createNestApplication(adapter(), { logger: false });
      await app.listen(0, '127.0.0.1');
      fx.apps.push(app);
      return (app.getHttpServer().address() as AddressInfo).port;
    }

    it('a result that could not be sent (500) is not stored: the next request runs the handler', async () => {
      runs = 0;
      rows = [10n, 11, 12];
      const table = await fx.dynamo.table();
      const a = await boot(table);
      const b = await boot(table);

      const failed = await raw(a, '/report');
      expect(failed.status).toBe(500);
      await settleAll(fx.apps);
      expect(await scanTable(fx.admin, table)).toEqual([]);

      const again = await raw(a, '/report');
      expect(again.status).toBe(200);
      expect(headersOf(again.head)['x-cache']).toBe('MISS');
      expect(JSON.parse(again.body.toString())).toEqual({ total: 11 });
      expect(runs).toBe(2);

      // Another instance gets what A stored now, the handler's good answer.
      await settleAll(fx.apps);
      const other = await raw(b, '/report');
      expect(other.status).toBe(200);
      expect(headersOf(other.head)['x-cache']).toBe('HIT');
      expect(JSON.parse(other.body.toString())).toEqual({ total: 11 });
    });
  },
);
