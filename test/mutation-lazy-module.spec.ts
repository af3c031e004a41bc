import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { LazyModuleLoader } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  DynamoCached,
  DynamoCacheError,
  DynamoCacheEvict,
  DynamoCacheModule,
  DynamoCachePut,
} from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * @DynamoCacheEvict and @DynamoCachePut on a provider of a module loaded with LazyModuleLoader,
 * which the cache module never sees at bootstrap (found by review: the call rejected with a
 * config error before running, and the application's write was lost).
 */

/** The database behind the applications of a test. */
const db: Record<string, number> = {};
const computed: string[] = [];

@Injectable()
class Rates {
  @DynamoCached(600)
  async rate(pair: string): Promise<number> {
    computed.push(pair);
    return db[pair] ?? 0;
  }
}

@Injectable()
class RatesAdmin {
  @DynamoCacheEvict({ namespace: 'Rates.rate', args: (pair: string) => [pair] })
  async update(pair: string, value: number): Promise<number> {
    db[pair] = value;
    return value;
  }

  @DynamoCachePut({ namespace: 'Rates.rate', args: (pair: string) => [pair] })
  async replace(pair: string, value: number): Promise<number> {
    db[pair] = value;
    return value;
  }
}

@Module({ providers: [RatesAdmin], exports: [RatesAdmin] })
class AdminModule {}

describe('@DynamoCacheEvict / @DynamoCachePut on a provider of a lazily loaded module', () => {
  const fx = useTestDynamo();

  beforeEach(() => {
    for (const pair of Object.keys(db)) delete db[pair];
    Object.assign(db, { 'EUR-USD': 1.1, 'USD-JPY': 150 });
    computed.length = 0;
  });

  async function boot(table: string, isGlobal: boolean): Promise<TestingModule> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, clientConfig: fx.dynamo.clientConfig, isGlobal }),
      ],
      providers: [Rates],
    }).compile();
    moduleRef.useLogger(false);
    await moduleRef.init();
    fx.apps.push(moduleRef);
    return moduleRef;
  }

  async function lazyAdmin(app: TestingModule): Promise<RatesAdmin> {
    const admin = await app.get(LazyModuleLoader).load(() => AdminModule);
    return admin.get(RatesAdmin);
  }

  for (const isGlobal of [true, false]) {
    it(`evict (isGlobal ${isGlobal}): the method runs and resolves, the entry recomputes with the new value`, async () => {
      const app = await boot(await fx.dynamo.table(), isGlobal);
      const rates = app.get(Rates);
      expect(await rates.rate('EUR-USD')).toBe(1.1);
      const admin = await lazyAdmin(app);
      expect(await admin.update('EUR-USD', 1.2)).toBe(1.2);
      expect(db['EUR-USD']).toBe(1.2);
      expect(await rates.rate('EUR-USD')).toBe(1.2);
      expect(computed).toEqual(['EUR-USD', 'EUR-USD']);
      // The second call of the same instance finds the cache as the first did.
      expect(await admin.update('EUR-USD', 1.3)).toBe(1.3);
      expect(await rates.rate('EUR-USD')).toBe(1.3);
    });

    it(`put (isGlobal ${isGlobal}): the method's result is stored, the next read a hit with it`, async () => {
      const app = await boot(await fx.dynamo.table(), isGlobal);
      const rates = app.get(Rates);
      expect(await rates.rate('USD-JPY')).toBe(150);
      const admin = await lazyAdmin(app);
      expect(await admin.replace('USD-JPY', 151)).toBe(151);
      expect(await rates.rate('USD-JPY')).toBe(151);
      expect(computed).toEqual(['USD-JPY']);
    });
  }

  it("two applications in one process: each lazy instance evicts in its own application's cache only", async () => {
    const [tableA, tableB] = [await fx.dynamo.table(), await fx.dynamo.table()];
    const [appA, appB] = [await boot(tableA, true), await boot(tableB, true)];
    expect(await appA.get(Rates).rate('EUR-USD')).toBe(1.1);
    expect(await appB.get(Rates).rate('EUR-USD')).toBe(1.1);
    const [adminA, adminB] = [await lazyAdmin(appA), await lazyAdmin(appB)];
    expect(adminA).not.toBe(adminB);

    const itemsA = await scanTable(fx.admin, tableA);
    const itemsB = await scanTable(fx.admin, tableB);
    expect(await adminB.update('EUR-USD', 1.2)).toBe(1.2);
    expect(await scanTable(fx.admin, tableA)).toEqual(itemsA);
    expect(await scanTable(fx.admin, tableB)).not.toEqual(itemsB);
    expect(await appA.get(Rates).rate('EUR-USD')).toBe(1.1); // A's entry: still a hit
    expect(await appB.get(Rates).rate('EUR-USD')).toBe(1.2);
    expect(computed).toEqual(['EUR-USD', 'EUR-USD', 'EUR-USD']);
  });

  it('an instance built with new, while an application runs, still rejects with a config error without running', async () => {
    await boot(await fx.dynamo.table(), true);
    const err = await new RatesAdmin().update('EUR-USD', 9).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DynamoCacheError);
    expect((err as DynamoCacheError).operation).toBe('config');
    expect((err as Error).message).toContain('RatesAdmin.update');
    expect(db['EUR-USD']).toBe(1.1);
  });

  it('after its application closed, a lazy instance rejects with a config error without running', async () => {
    const app = await boot(await fx.dynamo.table(), true);
    const admin = await lazyAdmin(app);
    await app.close();
    fx.apps.splice(fx.apps.indexOf(app), 1);
    const err = await admin.update('EUR-USD', 9).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as DynamoCacheError).operation).toBe('config');
    expect(db['EUR-USD']).toBe(1.1);
  });
});
