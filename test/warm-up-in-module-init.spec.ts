import { Global, Injectable, Module, type OnModuleInit, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  DynamoCached,
  DynamoCacheEvict,
  DynamoCacheModule,
  DynamoCacheService,
} from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * A provider that warms its cache in its own onModuleInit, wherever its module sits: Nest calls
 * onModuleInit of deeper modules first, so the module must have wrapped every method before the
 * first of them runs (found by review: a provider two modules below forRoot, isGlobal false,
 * called the bare method and cached nothing).
 */

/** What the warm-ups did, reset by each test. */
const seen = { computed: 0, priced: 0, evictions: 0, evictFailed: undefined as unknown };

@Injectable()
class Catalog implements OnModuleInit {
  @DynamoCached(600)
  async products(): Promise<string[]> {
    seen.computed++;
    return ['a', 'b'];
  }

  async onModuleInit(): Promise<void> {
    await this.products();
  }
}

@Module({ providers: [Catalog], exports: [Catalog] })
class CatalogModule {}

@Module({ imports: [CatalogModule], exports: [CatalogModule] })
class ShopModule {}

/** A global module of the application's own, warming in its onModuleInit. */
@Global()
@Module({ providers: [Catalog], exports: [Catalog] })
class GlobalCatalogModule {}

/** Warms its own entry, then clears it, in its own onModuleInit (a mutation at startup). */
@Injectable()
class Prices implements OnModuleInit {
  @DynamoCached(600)
  async price(): Promise<number> {
    seen.priced++;
    return 1;
  }

  @DynamoCacheEvict({ namespace: 'Prices.price', allEntries: true })
  async reset(): Promise<void> {
    seen.evictions++;
  }

  async onModuleInit(): Promise<void> {
    await this.price();
    await this.reset().catch((err: unknown) => {
      seen.evictFailed = err;
    });
  }
}

@Module({ providers: [Prices], exports: [Prices] })
class PricesModule {}

@Module({ imports: [PricesModule] })
class AdminModule {}

describe('a @DynamoCached method called from a provider’s onModuleInit (a warm-up)', () => {
  const fx = useTestDynamo();

  beforeEach(() => {
    seen.computed = 0;
    seen.priced = 0;
    seen.evictions = 0;
    seen.evictFailed = undefined;
  });

  /** Boots `imports` (forRoot among them) as an application would; the cache's table. */
  async function boot(imports: (table: string) => unknown[]): Promise<{
    catalog: Catalog;
    table: string;
  }> {
    const table = await fx.dynamo.table('warm');
    @Module({ imports: imports(table) as Type[] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    fx.apps.push(app);
    await app.get(DynamoCacheService).settle();
    return { catalog: app.get(Catalog), table };
  }

  const forRoot = (table: string, isGlobal: boolean) =>
    DynamoCacheModule.forRoot({ table, clientConfig: fx.dynamo.clientConfig, isGlobal });

  for (const isGlobal of [false, true]) {
    it(`a provider two modules below forRoot (isGlobal ${isGlobal}): the warm-up is stored, the next call a hit`, async () => {
      const { catalog, table } = await boot((t) => [forRoot(t, isGlobal), ShopModule]);
      expect(seen.computed).toBe(1);
      expect(await scanTable(fx.admin, table)).toHaveLength(1);
      expect(await catalog.products()).toEqual(['a', 'b']);
      expect(seen.computed).toBe(1);
    });
  }

  it('a feature module listed before forRoot (isGlobal true): the warm-up is stored', async () => {
    const { catalog, table } = await boot((t) => [CatalogModule, forRoot(t, true)]);
    expect(seen.computed).toBe(1);
    expect(await scanTable(fx.admin, table)).toHaveLength(1);
    await catalog.products();
    expect(seen.computed).toBe(1);
  });

  for (const isGlobal of [false, true]) {
    it(`a global module of the application's, listed before forRoot (isGlobal ${isGlobal}): the warm-up is stored`, async () => {
      const { catalog, table } = await boot((t) => [GlobalCatalogModule, forRoot(t, isGlobal)]);
      expect(seen.computed).toBe(1);
      expect(await scanTable(fx.admin, table)).toHaveLength(1);
      await catalog.products();
      expect(seen.computed).toBe(1);
    });
  }

  it('an @DynamoCacheEvict method called from an onModuleInit two modules below forRoot (isGlobal false) runs and evicts', async () => {
    const table = await fx.dynamo.table('warm');
    @Module({ imports: [forRoot(table, false), AdminModule] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    fx.apps.push(app);
    expect(seen.evictFailed).toBeUndefined();
    expect(seen.evictions).toBe(1);
    const prices = app.get(Prices);
    // The warm-up's entry was cleared: one recompute, then hits.
    await prices.price();
    await prices.price();
    expect(seen.priced).toBe(2);
  });
});
