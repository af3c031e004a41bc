import {
  Controller,
  Get,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { map, type Observable } from 'rxjs';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { scanTable, settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw } from './support/raw-http.js';

/*
 * Nest sends a stream the handler returned even when an interceptor between it and the cache
 * wrapped it in a plain object (`{ data: stream }`, the usual "transform" interceptor): the object
 * cannot go out as it is, so the stream inside it goes. The cache saw a plain object, kept it in
 * L1 (the stream cannot be written to DynamoDB), and replayed it to the next request as what was
 * left of it: `{"data":{}}` for the ttl, the handler never run again.
 */

class Wrap implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((data: unknown) => ({ data })));
  }
}

const runs: Record<string, number> = {};
const run = (name: string): number => (runs[name] = (runs[name] ?? 0) + 1);

@Controller('wrapped')
class WrappedController {
  @Get('generator')
  @UseInterceptors(Wrap) // listed after the cache's: between it and the handler
  @DynamoCached(60)
  async *generator() {
    const n = run('generator');
    yield `row 1 of ${n}\n`;
    yield `row 2 of ${n}\n`;
  }

  @Get('node-stream')
  @UseInterceptors(Wrap)
  @DynamoCached(60)
  nodeStream() {
    return Readable.from([`chunk ${run('nodeStream')}`]);
  }
}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(
  `streams wrapped by an inner interceptor on %s (${testServerKind()})`,
  (_name, adapter) => {
    const fx = useTestDynamo();

    beforeEach(() => {
      for (const k of Object.keys(runs)) delete runs[k];
    });

    async function boot(table: string): Promise<number> {
      const moduleRef = await Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
        controllers: [WrappedController],
      }).compile();
      const app: INestApplication = moduleRef.createNestApplication(adapter(), { logger: false });
      await app.listen(0, '127.0.0.1');
      fx.apps.push(app);
      return (app.getHttpServer().address() as AddressInfo).port;
    }

    it.each([
      ['generator', 'generator', 'row 1 of 2'],
      ['node-stream', 'nodeStream', 'chunk 2'],
    ])(
      'a %s result wrapped in an object is sent by every request, never stored',
      async (path, handler, second) => {
        const table = await fx.dynamo.table();
        const port = await boot(table);
        const first = await raw(port, `/wrapped/${path}`);
        await settleAll(fx.apps);
        const again = await raw(port, `/wrapped/${path}`);

        expect(first.status).toBe(200);
        expect(again.status).toBe(200);
        expect(again.body.toString()).toContain(second);
        expect(headersOf(again.head)['x-cache']).toBe('MISS');
        expect(runs[handler]).toBe(2);
        expect(await scanTable(fx.admin, table)).toEqual([]);
      },
    );
  },
);
