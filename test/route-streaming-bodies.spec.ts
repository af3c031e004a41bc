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
 * Nest streams more than StreamableFile and Node streams: an async iterable (an async generator,
 * a web ReadableStream) goes out chunk by chunk, and a web Response with its own status, headers
 * and body. Such a result is read once, by the miss that sent it: it must never be stored, or the
 * next request replays what is left of it (nothing). So is a stream an interceptor between the
 * cache and the handler wrapped in a plain object (`{ data: stream }`, the usual "transform"
 * interceptor): Nest sends the stream inside it, and the cache once kept the object in L1 and
 * replayed `{"data":{}}` for the ttl.
 */

class Wrap implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((data: unknown) => ({ data })));
  }
}

const runs: Record<string, number> = {};
const run = (name: string): number => (runs[name] = (runs[name] ?? 0) + 1);

@Controller('streams')
class StreamsController {
  @Get('generator')
  @DynamoCached(60)
  async *generator() {
    const n = run('generator');
    yield { row: 1, n };
    yield { row: 2, n };
  }

  @Get('web-stream')
  @DynamoCached(60)
  webStream() {
    return new Response(`chunk ${run('webStream')}`).body;
  }

  @Get('web-response')
  @DynamoCached(60)
  webResponse() {
    return new Response(JSON.stringify({ n: run('webResponse') }), {
      headers: { 'content-type': 'application/json' },
    });
  }

  @Get('web-response-404')
  @DynamoCached({ ttl: 60, statuses: [200] })
  webResponse404() {
    return new Response(JSON.stringify({ missing: run('webResponse404') }), { status: 404 });
  }

  @Get('wrapped-generator')
  @UseInterceptors(Wrap) // listed after the cache's: between it and the handler
  @DynamoCached(60)
  async *wrappedGenerator() {
    const n = run('wrappedGenerator');
    yield `row 1 of ${n}\n`;
    yield `row 2 of ${n}\n`;
  }

  @Get('wrapped-node-stream')
  @UseInterceptors(Wrap)
  @DynamoCached(60)
  wrappedNodeStream() {
    return Readable.from([`chunk ${run('wrappedNodeStream')}`]);
  }
}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(`streamed results on %s (${testServerKind()})`, (_name, adapter) => {
  const fx = useTestDynamo();

  beforeEach(() => {
    for (const k of Object.keys(runs)) delete runs[k];
  });

  async function boot(table: string): Promise<number> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [StreamsController],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication(adapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return (app.getHttpServer().address() as AddressInfo).port;
  }

  it.each([
    ['generator', 'generator', '{"row":1,"n":2}'],
    ['web-stream', 'webStream', 'chunk 2'],
    ['web-response', 'webResponse', '{"n":2}'],
    ['web-response-404', 'webResponse404', '{"missing":2}'],
    ['wrapped-generator', 'wrappedGenerator', 'row 1 of 2'],
    ['wrapped-node-stream', 'wrappedNodeStream', 'chunk 2'],
  ])('a %s result is sent by every request, never stored', async (path, handler, second) => {
    const table = await fx.dynamo.table();
    const port = await boot(table);
    const first = await raw(port, `/streams/${path}`);
    await settleAll(fx.apps);
    const again = await raw(port, `/streams/${path}`);

    expect(again.status).toBe(first.status);
    expect(headersOf(again.head)['x-cache']).toBe('MISS');
    expect(again.body.toString()).toContain(second);
    expect(runs[handler]).toBe(2);
    expect(await scanTable(fx.admin, table)).toEqual([]);
  });
});
