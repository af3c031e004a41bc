import 'reflect-metadata';
import { Controller, Get, Injectable, Param, Post } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { EMPTY, of, type Observable } from 'rxjs';
import request from 'supertest';
import { DynamoCached, DynamoCacheModule, DynamoCachePut } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

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

  /** An update whose upstream answered nothing (EMPTY), or a value (control). */
  @Post(':k/put/:mode')
  @DynamoCachePut({ namespace: 'Rates.rate', args: (k: string) => [k] })
  put(@Param('k') _k: string, @Param('mode') mode: string): Observable<number> {
    return mode === 'empty' ? EMPTY : of(db.a!);
  }
}

describe('@DynamoCachePut on an Observable that completes without a value deletes the entry, stores nothing', () => {
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

  it.each([
    ['value', 'stored: the next read is a hit', 201, 1],
    ['empty', 'deleted: the next read computes the rate again', 500, 2],
  ] as const)('an Observable with %s: the entry is %s', async (mode, _what, status, runs) => {
    db.a = 1;
    const { url, rates } = await boot(await fx.dynamo.table());
    await request(url).get('/rates/a').expect(200);
    const res = await request(url).post(`/rates/a/put/${mode}`);
    await settleAll(fx.apps);
    const value = await rates.rate('a');
    expect({ status: res.status, value, runs: rates.runs }).toEqual({ status, value: 1, runs });
  });
});
