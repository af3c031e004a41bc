import 'reflect-metadata';
import { Controller, Get, Injectable, Param, Post } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { EMPTY, map, timer, type Observable } from 'rxjs';
import request from 'supertest';
import { DynamoCached, DynamoCacheEvict, DynamoCacheModule, DynamoCachePut } from '../lib/index.js';
import { settleAll, sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * A POST route handler that returns an Observable (Nest subscribes to it; the usual shape with
 * HttpService or any rxjs pipeline) and evicts the entry it changes (or puts its answer there):
 * the eviction or put waits for the Observable to complete, the put stores its last value, and
 * one that errors evicts nothing (one that completes without a value deletes the entry).
 */

const db: Record<string, number> = { a: 1 };

@Injectable()
class Rates {
  runs = 0;
  @DynamoCached(600)
  async rate(k: string): Promise<number> {
    this.runs++;
    return db[k] ?? 0;
  }
}

@Controller('rates')
class RatesController {
  constructor(private readonly rates: Rates) {}

  @Get(':k')
  async get(@Param('k') k: string) {
    return { rate: await this.rates.rate(k) };
  }

  /** The update reaches the database 200 ms after the request (an upstream call). */
  @Post(':k/:v')
  @DynamoCacheEvict({ namespace: 'Rates.rate', args: (k: string) => [k] })
  set(@Param('k') k: string, @Param('v') v: string): Observable<{ rate: number }> {
    return timer(200).pipe(
      map(() => {
        db[k] = Number(v);
        return { rate: db[k]! };
      }),
    );
  }

  /** The same update, storing its answer as the new rate (the put decorator). */
  @Post(':k/put/:v')
  @DynamoCachePut({ namespace: 'Rates.rate', args: (k: string) => [k] })
  put(@Param('k') k: string, @Param('v') v: string): Observable<number> {
    return timer(50).pipe(
      map(() => {
        db[k] = Number(v);
        return db[k]!;
      }),
    );
  }

  /** An update whose upstream answered nothing (the Observable completes without a value). */
  @Post(':k/empty/put')
  @DynamoCachePut({ namespace: 'Rates.rate', args: (k: string) => [k] })
  putNothing(@Param('k') _k: string): Observable<number> {
    return EMPTY;
  }

  /** An update that fails (its Observable errors): nothing should be evicted. */
  @Post(':k/fail/now')
  @DynamoCacheEvict({ namespace: 'Rates.rate', args: (k: string) => [k] })
  fail(@Param('k') _k: string): Observable<never> {
    return timer(50).pipe(
      map(() => {
        throw new Error('upstream refused the update');
      }),
    );
  }
}

describe('@DynamoCacheEvict and @DynamoCachePut on a route handler returning an Observable', () => {
  const fx = useTestDynamo();

  async function boot(table: string) {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, clientConfig: fx.dynamo.clientConfig })],
      controllers: [RatesController],
      providers: [Rates],
    }).compile();
    const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return {
      url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`,
      rates: app.get(Rates),
    };
  }

  it('a read made while the update runs does not leave the old rate cached after it', async () => {
    db.a = 1;
    const { url } = await boot(await fx.dynamo.table());
    expect((await request(url).get('/rates/a').expect(200)).body).toEqual({ rate: 1 });

    const update = request(url)
      .post('/rates/a/2')
      .then((r) => r);
    await sleep(100); // the update is under way; someone reads the rate meanwhile
    await request(url).get('/rates/a').expect(200);
    const res = await update;
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ rate: 2 });
    await settleAll(fx.apps);
    expect(db.a).toBe(2);

    // After the POST answered 201, the cache should answer the new rate.
    expect((await request(url).get('/rates/a').expect(200)).body).toEqual({ rate: 2 });
  });

  it('an update whose Observable errors evicts nothing', async () => {
    db.a = 1;
    const { url, rates } = await boot(await fx.dynamo.table());
    await request(url).get('/rates/a').expect(200);
    const runs = rates.runs;
    await request(url).post('/rates/a/fail/now').expect(500);
    await request(url).get('/rates/a').expect(200);
    expect(rates.runs).toBe(runs); // still a hit
  });

  it('@DynamoCachePut on an Observable route: the rate read afterwards is the number the route answered', async () => {
    db.a = 1;
    const { url, rates } = await boot(await fx.dynamo.table());
    await request(url).get('/rates/a').expect(200);
    const res = await request(url).post('/rates/a/put/3').expect(201);
    expect(res.text).toBe('3');
    await settleAll(fx.apps);
    const value = await rates.rate('a');
    expect(typeof value).toBe('number');
    expect(value).toBe(3);
  });

  it('@DynamoCachePut on an Observable that completes without a value: Nest answers 500, and the entry is deleted, not replaced by undefined', async () => {
    db.a = 1;
    const { url, rates } = await boot(await fx.dynamo.table());
    await request(url).get('/rates/a').expect(200);
    await request(url).post('/rates/a/empty/put').expect(500);
    await settleAll(fx.apps);
    // Deleted: the next read computes the rate again (a number, not undefined).
    expect({ value: await rates.rate('a'), runs: rates.runs }).toEqual({ value: 1, runs: 2 });
  });
});
