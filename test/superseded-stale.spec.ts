import { Controller, Get, NotFoundException } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DynamoCached, DynamoCacheService, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache, listenRoutes, settleAll, sleep } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { raw } from './support/raw-http.js';

/*
 * A refresh behind a stale answer (timeout 0) whose result is not stored (kept out by `unless`,
 * or a route's 404, an answer grace may not hide): the stale value it replaced answered every
 * later call at once until its grace ended, in this process and in every other.
 */
describe(`a refresh whose answer is not stored ends the stale value (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    const ref = await bootCache({ table, client: fx.dynamo.client(), ...options }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it('unless: once a refresh returned a result unless keeps out, neither instance serves the old value', async () => {
    const table = await fx.dynamo.table();
    const opts = {
      ttl: 1,
      grace: 3600,
      timeout: 0,
      unless: (orders: string[]) => orders.length === 0,
    };
    const a = await app(table);
    const b = await app(table);
    let orders = ['o1', 'o2'];
    let calls = 0;
    const fn = async () => {
      calls++;
      return orders;
    };
    expect(await a.wrap('orders', ['c1'], fn, opts)).toEqual(['o1', 'o2']);
    await a.settle();
    await sleep(1200); // stale, within grace
    orders = []; // the customer's orders are gone
    // Answered stale at once; the refresh behind it returns [], which is not stored.
    expect(await a.wrap('orders', ['c1'], fn, opts)).toEqual(['o1', 'o2']);
    await a.settle();
    expect(calls).toBe(2);
    expect(await a.wrap('orders', ['c1'], fn, opts)).toEqual([]);
    // Another instance finds no stale value either: it computes.
    expect(await b.wrap('orders', ['c1'], fn, opts)).toEqual([]);
    expect(calls).toBe(4);
  });

  it('unless without a stale value: nothing is written (no tombstone for a plain miss)', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const opts = { ttl: 60, unless: (v: string) => v === 'skip' };
    expect(await a.wrap('k', ['1'], async () => 'skip', opts)).toBe('skip');
    await a.settle();
    expect(a.stats().total.l2Writes + a.stats().total.l2Deletes).toBe(0);
  });

  for (const [name, adapter] of [
    ['Express', () => new ExpressAdapter()],
    ['Fastify', () => new FastifyAdapter()],
  ] as const) {
    it(`${name}: once a refresh behind a stale answer got 404, both instances answer 404`, async () => {
      let n = 0;
      let gone = false;
      @Controller('s')
      class SwrController {
        @Get('item')
        @DynamoCached({ ttl: 1, grace: 3600, timeout: 0 })
        item() {
          if (gone) throw new NotFoundException('no such item');
          return { v: ++n };
        }
      }
      const table = await fx.dynamo.table();
      const options = { table, client: fx.dynamo.client() };
      const a = await listenRoutes(options, [SwrController], adapter(), fx.apps);
      const b = await listenRoutes(options, [SwrController], adapter(), fx.apps);
      const get = async (port: number) => {
        const res = await raw(port, '/s/item', { host: 'shop.example' });
        return { status: res.status, body: res.body.toString() };
      };
      expect(await get(a)).toEqual({ status: 200, body: '{"v":1}' });
      await settleAll(fx.apps);
      await sleep(1300); // stale, within grace
      gone = true;
      // Answered stale at once; its refresh runs behind it and gets the 404.
      expect((await get(a)).status).toBe(200);
      await settleAll(fx.apps);
      expect((await get(a)).status).toBe(404);
      expect((await get(b)).status).toBe(404);
    });
  }
});
