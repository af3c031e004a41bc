import { Controller, Get, Header, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll, sleep } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw } from './support/raw-http.js';

/*
 * Stale-while-revalidate (`timeout: 0`) behind a conditional request: a CDN or browser revalidates
 * its copy with If-None-Match once it is stale, and the stale entry's tag matches, so it is
 * answered 304 while the handler refreshes the entry. That refresh is the route's answer as any
 * other: stored, and served to the next request (on any instance). It was refused as a "304"
 * response, which also dropped the stale entry: the next request ran the handler while it waited.
 */

const runs: Record<string, number> = {};
const run = (name: string): number => (runs[name] = (runs[name] ?? 0) + 1);

@Controller('swr')
class SwrController {
  @Get('json')
  @DynamoCached({ ttl: 1, grace: 3600, timeout: 0 })
  json() {
    return { n: run('json') };
  }

  @Get('csv')
  @Header('Content-Type', 'text/csv; charset=utf-8')
  @DynamoCached({ ttl: 1, grace: 3600, timeout: 0 })
  csv() {
    return `n\n${run('csv')}\n`;
  }
}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(`a refresh behind a 304 on %s (${testServerKind()})`, (_name, adapter) => {
  const fx = useTestDynamo();

  beforeEach(() => {
    for (const k of Object.keys(runs)) delete runs[k];
  });

  async function boot(table: string): Promise<number> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [SwrController],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication(adapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return (app.getHttpServer().address() as AddressInfo).port;
  }

  it.each([
    ['json', '{"n":2}', 'application/json; charset=utf-8'],
    ['csv', 'n\n2\n', 'text/csv; charset=utf-8'],
  ])('the %s route stores the refresh; the next request gets it', async (path, body, type) => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const first = await raw(a, `/swr/${path}`);
    await settleAll(fx.apps);
    await sleep(1100);

    const revalidated = await raw(a, `/swr/${path}`, {
      'If-None-Match': headersOf(first.head).etag!,
    });
    expect(revalidated.status).toBe(304);
    await sleep(100);
    await settleAll(fx.apps);

    for (const port of [a, b]) {
      const next = await raw(port, `/swr/${path}`);
      expect(next.status).toBe(200);
      expect(headersOf(next.head)['x-cache']).toBe('HIT');
      expect(headersOf(next.head)['content-type']).toBe(type);
      expect(next.body.toString()).toBe(body);
    }
    expect(runs[path]).toBe(2);
  });
});
