import { Controller, Get, Query, type INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { raw } from './support/raw-http.js';

/*
 * Fastify's `useSemicolonDelimiter` (the default of Fastify 4, an option of 5) ends the path at
 * `;`: all that follows is its query string, `?` included. `/items;a=1?b=2&c=3` then reads
 * `a` = `1?b=2` and `c` = `3`, while `/items;a=1?c=3&b=2` reads `a` = `1?c=3` and `b` = `2`: the
 * parameter right after `?` is part of the one before it. Sorting (or filtering) what follows `?`
 * made those two, which the handler reads differently, one key. Two instances on one table, one
 * client each: neither may get the other's answer.
 */

@Controller('items')
class ItemsController {
  @Get()
  @DynamoCached(60)
  all(@Query() query: Record<string, unknown>) {
    return { query };
  }

  @Get('page')
  @DynamoCached({ ttl: 60, query: ['page'] })
  page(@Query('page') page?: string) {
    return { page: page ?? null };
  }
}

describe(`keys of paths with ";" on Fastify with useSemicolonDelimiter (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function boot(table: string): Promise<number> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [ItemsController],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication(
      new FastifyAdapter({ useSemicolonDelimiter: true }),
      { logger: false },
    );
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return (app.getHttpServer().address() as AddressInfo).port;
  }

  it.each([
    ['/items;a=1?b=2&c=3', '/items;a=1?c=3&b=2'],
    ['/items/page;x=1?page=2', '/items/page;x=1?junk=1&page=2'],
  ])('%s and %s are answered each as read', async (one, two) => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const first = await raw(a, one);
    await settleAll(fx.apps);
    const second = await raw(b, two);
    const fresh = await fx.dynamo.table();
    const reference = await raw(await boot(fresh), two);
    expect(first.status).toBe(200);
    expect(JSON.parse(second.body.toString())).toEqual(JSON.parse(reference.body.toString()));
  });
});
