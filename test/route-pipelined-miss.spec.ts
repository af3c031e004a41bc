import { Controller, Get, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { raw } from './support/raw-http.js';
import { within } from './support/waits.js';

/*
 * One client pipelines an uncached slow request (a long poll, an export) and then a GET of a cold
 * cached route on one keep-alive connection. Node runs both handlers at once but sends the second
 * response only after the first. The cached route's flight decides whether to store once that
 * response is ended (its headers final), not once its bytes leave: every other client's identical
 * request, which joins that flight, is answered without waiting for client 1's slow request.
 */

let runs = 0;
let openSlow!: () => void;

@Controller('r')
class PipelineController {
  /** Uncached: answers when the test opens it (a long poll). */
  @Get('slow')
  async slow() {
    await new Promise<void>((resolve) => (openSlow = resolve));
    return { slow: true };
  }

  @Get('cached')
  @DynamoCached(60)
  cached() {
    runs++;
    return { v: runs };
  }
}

describe.each([
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const)('pipelined requests on %s', (_kind, makeAdapter) => {
  const fx = useTestDynamo();

  async function boot(table: string): Promise<number> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [PipelineController],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication(makeAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return (app.getHttpServer().address() as AddressInfo).port;
  }

  it("another client's GET of the cold route is answered while the first client's pipelined response waits its turn", async () => {
    runs = 0;
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);

    // Client 1: GET /r/slow then GET /r/cached, pipelined on one connection.
    const socket: Socket = connect(a, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('data', () => undefined);
    socket.write(
      'GET /r/slow HTTP/1.1\r\nHost: shop.example\r\n\r\n' +
        'GET /r/cached HTTP/1.1\r\nHost: shop.example\r\n\r\n',
    );
    // The cached handler has run (its result is ready) for client 1.
    const deadline = Date.now() + 5000;
    while (runs === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(runs).toBe(1);

    // Instance B answers: the table is reachable, the route works.
    const other = await within(raw(b, '/r/cached'), 'client 3 on instance B', 3000);
    expect(other.status).toBe(200);

    // Client 2, on its own connection, same URL, same instance: answered from client 1's result
    // (stored once its response was ended), while client 1's answer still waits its turn.
    try {
      const late = await within(raw(a, '/r/cached'), 'client 2 on instance A', 10_000);
      expect(late.status).toBe(200);
      // Client 1's result (the first run of the handler), not a run of its own.
      expect(JSON.parse(late.body.toString('utf8'))).toEqual({ v: 1 });
    } finally {
      openSlow();
      socket.destroy();
      await settleAll(fx.apps);
    }
  });
});
