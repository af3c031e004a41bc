import { Body, Controller, Get, Inject, Injectable, Module, Post, Scope } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  DynamoCacheError,
  DynamoCached,
  DynamoCacheEvict,
  DynamoCacheInterceptor,
  DynamoCacheModule,
  DynamoCacheService,
} from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

let dynamo: TestDynamo;
beforeAll(async () => {
  dynamo = await startDynamo();
});
afterAll(async () => {
  await dynamo.close();
});

const capture = (warnings: string[]) => ({
  log() {},
  error() {},
  warn: (m: unknown) => warnings.push(String(m)),
});

describe('forRoot imported by two feature modules (isGlobal false)', () => {
  it('fails at bootstrap with a config error: two caches in one application would not see each other’s invalidations', async () => {
    const table = await dynamo.table();
    const opts = { table, clientConfig: dynamo.clientConfig }; // the very same options object

    @Injectable()
    class PricesService {
      calls = 0;
      @DynamoCached(60)
      async price(_id: string): Promise<number> {
        return ++this.calls;
      }
    }
    @Module({
      imports: [DynamoCacheModule.forRoot(opts)],
      providers: [PricesService],
      exports: [PricesService],
    })
    class PricesModule {}
    @Injectable()
    class AdminService {
      constructor(@Inject(DynamoCacheService) readonly cache: DynamoCacheService) {}
    }
    @Module({ imports: [DynamoCacheModule.forRoot(opts)], providers: [AdminService] })
    class AdminModule {}

    const app = await Test.createTestingModule({ imports: [PricesModule, AdminModule] }).compile();
    app.useLogger(false);
    const failed = await app.init().then(
      () => undefined,
      (err: unknown) => err,
    );
    await app.close();
    expect(failed).toBeInstanceOf(DynamoCacheError);
    expect((failed as DynamoCacheError).message).toMatch(
      /DynamoCacheModule is set up 2 times in this application .* Import it once, with isGlobal: true, or in one module that exports it/,
    );
  });

  it('one module that imports forRoot and exports it, imported by two feature modules: one cache', async () => {
    const table = await dynamo.table();
    @Module({
      imports: [DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig })],
      exports: [DynamoCacheModule],
    })
    class CacheModule {}
    @Injectable()
    class PricesService {
      calls = 0;
      @DynamoCached(60)
      async price(_id: string): Promise<number> {
        return ++this.calls;
      }
    }
    @Module({ imports: [CacheModule], providers: [PricesService], exports: [PricesService] })
    class PricesModule {}
    @Injectable()
    class AdminService {
      constructor(@Inject(DynamoCacheService) readonly cache: DynamoCacheService) {}
    }
    @Module({ imports: [CacheModule], providers: [AdminService] })
    class AdminModule {}
    const app = await Test.createTestingModule({ imports: [PricesModule, AdminModule] }).compile();
    app.useLogger(false);
    await app.init();
    try {
      const prices = app.get(PricesService);
      expect(await prices.price('p1')).toBe(1);
      await app.get(AdminService).cache.delete('PricesService.price', ['p1']);
      expect(await prices.price('p1')).toBe(2);
    } finally {
      await app.close();
    }
  });
});

// Transient providers
describe('transient-scoped providers', () => {
  it('@DynamoCached on a transient provider: each consumer’s instance is cached', async () => {
    const table = await dynamo.table();
    @Injectable({ scope: Scope.TRANSIENT })
    class TransientRates {
      calls = 0;
      @DynamoCached(60)
      async rate(_id: string): Promise<number> {
        return ++this.calls;
      }
    }
    @Injectable()
    class Consumer {
      constructor(readonly rates: TransientRates) {}
    }
    const warnings: string[] = [];
    const app = await bootCache(
      { table, clientConfig: dynamo.clientConfig },
      [TransientRates, Consumer],
      capture(warnings),
    );
    try {
      const rates = app.get(Consumer).rates;
      await rates.rate('a');
      await rates.rate('a');
      expect(rates.calls).toBe(1);
      expect(warnings).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('@DynamoCacheEvict on a transient provider: each consumer’s instance evicts', async () => {
    const table = await dynamo.table();
    @Injectable({ scope: Scope.TRANSIENT })
    class TransientAdmin {
      @DynamoCacheEvict({ namespace: 'X.y' })
      async evict(_id: string): Promise<string> {
        return 'done';
      }
    }
    @Injectable()
    class Consumer {
      constructor(readonly admin: TransientAdmin) {}
    }
    const warnings: string[] = [];
    const app = await bootCache(
      { table, clientConfig: dynamo.clientConfig },
      [TransientAdmin, Consumer],
      capture(warnings),
    );
    try {
      const warned = warnings.some((w) => w.includes('TransientAdmin'));
      const outcome = await app
        .get(Consumer)
        .admin.evict('a')
        .catch((e: Error) => e.message);
      expect({ warned, outcome }).toEqual({ warned: false, outcome: 'done' });
    } finally {
      await app.close();
    }
  });
});

// @DynamoCacheEvict on useFactory / useValue providers
@Injectable()
class UsersService {
  calls = 0;
  @DynamoCached(60)
  async find(_id: string): Promise<number> {
    return ++this.calls;
  }
}
class UsersAdmin {
  constructor(readonly tag: string) {}
  @DynamoCacheEvict({ namespace: 'UsersService.find' })
  async rename(id: string): Promise<string> {
    return `renamed ${id}`;
  }
}

describe('@DynamoCacheEvict on providers built by useFactory / useValue', () => {
  for (const kind of ['useFactory', 'useValue'] as const) {
    it(`${kind}: the eviction runs`, async () => {
      const table = await dynamo.table();
      const provider =
        kind === 'useFactory'
          ? { provide: UsersAdmin, useFactory: () => new UsersAdmin('factory') }
          : { provide: UsersAdmin, useValue: new UsersAdmin('value') };
      const app = await Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig })],
        providers: [UsersService, provider],
      }).compile();
      app.useLogger(false);
      await app.init();
      try {
        const users = app.get(UsersService);
        expect(await users.find('u1')).toBe(1); // @DynamoCached works on this instance kind
        expect(await app.get(UsersAdmin).rename('u1')).toBe('renamed u1');
        expect(await users.find('u1')).toBe(2);
      } finally {
        await app.close();
      }
    });
  }
});

// app.useGlobalInterceptors(new DynamoCacheInterceptor())
describe('DynamoCacheInterceptor instantiated with new', () => {
  it('useGlobalInterceptors(new DynamoCacheInterceptor()): routes answer uncached, one error says how to register it', async () => {
    const table = await dynamo.table();
    @Controller('things')
    class ThingsController {
      @Get() list() {
        return ['a'];
      }
      @Post() create(@Body() _body: unknown) {
        return { created: true };
      }
    }
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig, isGlobal: true }),
      ],
      controllers: [ThingsController],
    }).compile();
    const errors: string[] = [];
    const app = moduleRef.createNestApplication({
      logger: { log() {}, warn() {}, error: (m: unknown) => errors.push(String(m)) },
    });
    app.useGlobalInterceptors(new DynamoCacheInterceptor());
    await app.init();
    try {
      const post = await request(app.getHttpServer()).post('/things').send({});
      const get = await request(app.getHttpServer()).get('/things');
      const again = await request(app.getHttpServer()).get('/things');
      expect({ post: post.status, get: get.status, again: again.status }).toEqual({
        post: 201,
        get: 200,
        again: 200,
      });
      expect(get.headers['x-cache']).toBeUndefined();
      // One error, naming the fix.
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/created with `new`.*APP_INTERCEPTOR/);
    } finally {
      await app.close();
    }
  });
});
