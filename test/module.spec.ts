import { jest } from '@jest/globals';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Inject, Injectable, Module, type LoggerService } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import {
  DYNAMO_CACHE_CLIENT,
  DYNAMO_CACHE_OPTIONS,
  DynamoCached,
  DynamoCacheError,
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
  type DynamoCacheOptionsFactory,
  type ResolvedDynamoCacheOptions,
} from '../lib/index.js';
import { countCalls, startDynamo, type TestDynamo } from './support/dynamo-server.js';

@Injectable()
class EchoService {
  calls = 0;
  @DynamoCached(60)
  async echo(value: string): Promise<string> {
    this.calls++;
    return value.toUpperCase();
  }
}

/** Collects what the application logs. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  log(): void {}
  error(message: unknown): void {
    this.lines.push(`error ${String(message)}`);
  }
  warn(message: unknown): void {
    this.lines.push(`warn ${String(message)}`);
  }
}

describe('DynamoCacheModule', () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  async function roundTrip(
    moduleImport: ReturnType<typeof DynamoCacheModule.forRoot>,
    extraProviders: unknown[] = [],
  ) {
    const app = await Test.createTestingModule({
      imports: [moduleImport],
      providers: [EchoService, ...(extraProviders as [])],
    }).compile();
    app.useLogger(false);
    await app.init();
    const service = app.get(EchoService);
    const client = app.get<DynamoDBClient>(DYNAMO_CACHE_CLIENT);
    const calls = countCalls(client);
    expect(await service.echo('a')).toBe('A');
    expect(await service.echo('a')).toBe('A');
    expect(service.calls).toBe(1);
    expect(calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    return app;
  }

  it('forRoot: creates its client from clientConfig, uses that one client, destroys it at shutdown', async () => {
    const table = await dynamo.table();
    const app = await roundTrip(
      DynamoCacheModule.forRoot({ table, ttl: 60, clientConfig: dynamo.clientConfig }),
    );
    const client = app.get<DynamoDBClient>(DYNAMO_CACHE_CLIENT);
    const destroy = jest.spyOn(client, 'destroy');
    await app.close();
    expect(destroy).toHaveBeenCalledTimes(1);
  });

  it('never destroys a client the application supplied', async () => {
    const table = await dynamo.table();
    const client = dynamo.client();
    const destroy = jest.spyOn(client, 'destroy');
    const app = await roundTrip(DynamoCacheModule.forRoot({ table, client }));
    expect(app.get(DYNAMO_CACHE_CLIENT)).toBe(client);
    await app.close();
    expect(destroy).not.toHaveBeenCalled();
  });

  it('forRootAsync: useFactory with ConfigService', async () => {
    const table = await dynamo.table();
    const app = await roundTrip(
      DynamoCacheModule.forRootAsync({
        imports: [
          ConfigModule.forRoot({
            ignoreEnvFile: true,
            load: [() => ({ CACHE_TABLE: table, CACHE_ENDPOINT: dynamo.endpoint })],
          }),
        ],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => ({
          table: config.getOrThrow<string>('CACHE_TABLE'),
          ttl: 30,
          clientConfig: {
            ...dynamo.clientConfig,
            endpoint: config.getOrThrow<string>('CACHE_ENDPOINT'),
          },
        }),
      }),
    );
    expect(app.get<ResolvedDynamoCacheOptions>(DYNAMO_CACHE_OPTIONS)).toMatchObject({
      table,
      ttl: 30,
      maxsize: 1000, // bounded by default
      keyPrefix: '',
      onError: 'bypass', // a DynamoDB outage is not an application outage
      consistentRead: false,
    });
    await app.close();
  });

  it('forRootAsync: useClass and useExisting', async () => {
    const table = await dynamo.table();
    @Injectable()
    class CacheConfig implements DynamoCacheOptionsFactory {
      createDynamoCacheOptions(): DynamoCacheModuleOptions {
        return { table, clientConfig: dynamo.clientConfig };
      }
    }
    const app1 = await roundTrip(DynamoCacheModule.forRootAsync({ useClass: CacheConfig }));
    await app1.close();

    @Module({ providers: [CacheConfig], exports: [CacheConfig] })
    class ConfigHolder {}
    const app2 = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRootAsync({ imports: [ConfigHolder], useExisting: CacheConfig }),
      ],
    }).compile();
    expect(app2.get<ResolvedDynamoCacheOptions>(DYNAMO_CACHE_OPTIONS).table).toBe(table);
    await app2.close();
  });

  it('isGlobal: feature modules inject the service without importing the module', async () => {
    const table = await dynamo.table();
    @Injectable()
    class Consumer {
      constructor(@Inject(DynamoCacheService) readonly cache: DynamoCacheService) {}
    }
    @Module({ providers: [Consumer, EchoService] })
    class FeatureModule {}
    const app = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig, isGlobal: true }),
        FeatureModule,
      ],
    }).compile();
    await app.init();
    const consumer = app.get(Consumer);
    expect(await consumer.cache.wrap('x', [1], async () => 'computed')).toBe('computed');
    const echo = app.get(EchoService);
    await echo.echo('b');
    await echo.echo('b');
    expect(echo.calls).toBe(1);
    await app.close();

    // Without isGlobal the same feature module cannot resolve DynamoCacheService.
    await expect(
      Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig }),
          FeatureModule,
        ],
      }).compile(),
    ).rejects.toThrow(/DynamoCacheService/);
  });

  describe('bad options fail at bootstrap, naming the option', () => {
    const base = (): DynamoCacheModuleOptions => ({
      table: 'tbl',
      clientConfig: dynamo.clientConfig,
    });
    it.each<[string, Partial<DynamoCacheModuleOptions> | Record<string, unknown>, RegExp]>([
      ['no table', { table: undefined }, /"table" is required/],
      ['empty table', { table: '' }, /"table" is required/],
      ['negative ttl', { ttl: -1 }, /"ttl" must be a positive number/],
      ['zero ttl', { ttl: 0 }, /"ttl" must be a positive number/],
      ['non-numeric ttl', { ttl: '60' }, /"ttl"/],
      ['negative maxsize', { maxsize: -5 }, /"maxsize" must be a non-negative integer/],
      ['fractional maxsize', { maxsize: 1.5 }, /"maxsize"/],
      ['unknown onError', { onError: 'ignore' }, /"onError" must be 'throw' or 'bypass'/],
      ['bad serializer', { serializer: { serialize: () => new Uint8Array() } }, /"serializer"/],
      ['bad keyPrefix', { keyPrefix: 42 }, /"keyPrefix"/],
    ])('%s', async (_name, patch, message) => {
      const options = { ...base(), ...patch } as DynamoCacheModuleOptions;
      const compiling = Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot(options)],
      }).compile();
      await expect(compiling).rejects.toThrow(message);
      await expect(compiling).rejects.toBeInstanceOf(DynamoCacheError);
      await expect(compiling).rejects.toMatchObject({ operation: 'config' });
    });

    it('no region anywhere', async () => {
      const saved = { ...process.env };
      delete process.env.AWS_REGION;
      delete process.env.AWS_DEFAULT_REGION;
      delete process.env.AWS_PROFILE;
      process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
      process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';
      try {
        const compiling = Test.createTestingModule({
          imports: [
            DynamoCacheModule.forRoot({
              table: 'tbl',
              clientConfig: { endpoint: dynamo.endpoint },
            }),
          ],
        }).compile();
        await expect(compiling).rejects.toThrow(/"region" is missing/);
      } finally {
        process.env = saved;
      }
    });

    it('a region from the environment is enough', async () => {
      const saved = process.env.AWS_REGION;
      process.env.AWS_REGION = 'eu-west-1';
      try {
        const app = await Test.createTestingModule({
          imports: [DynamoCacheModule.forRoot({ table: 'tbl' })],
        }).compile();
        expect(app.get<ResolvedDynamoCacheOptions>(DYNAMO_CACHE_OPTIONS).table).toBe('tbl');
        await app.close();
      } finally {
        if (saved === undefined) delete process.env.AWS_REGION;
        else process.env.AWS_REGION = saved;
      }
    });

    it('a decorator with a bad ttl fails where the class is defined, naming the method', () => {
      expect(() => {
        class Bad {
          @DynamoCached(-3)
          async m(): Promise<number> {
            return 1;
          }
        }
        return Bad;
      }).toThrow(/@DynamoCached on Bad\.m: "ttl"/);
    });

    it('one @DynamoCached(options) decorator can serve several methods (a preset)', async () => {
      const Cached5m = DynamoCached({ ttl: 300, vary: ['Accept-Language'] });
      @Injectable()
      class PresetService {
        calls = 0;
        @Cached5m
        async a(): Promise<string> {
          this.calls++;
          return 'a';
        }
        @Cached5m
        async b(): Promise<string> {
          this.calls++;
          return 'b';
        }
      }
      const app = await Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({
            table: await dynamo.table(),
            clientConfig: dynamo.clientConfig,
          }),
        ],
        providers: [PresetService],
      }).compile();
      await app.init();
      const service = app.get(PresetService);
      for (let i = 0; i < 2; i++)
        expect([await service.a(), await service.b()]).toEqual(['a', 'b']);
      expect(service.calls).toBe(2);
      await app.close();
    });

    it('a decorated method that does not return a Promise fails at bootstrap', async () => {
      @Injectable()
      class SyncService {
        @DynamoCached(10)
        sum(a: number, b: number): number {
          return a + b;
        }
      }
      const compiling = Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot({ table: 'tbl', clientConfig: dynamo.clientConfig })],
        providers: [SyncService],
      })
        .compile()
        .then((app) => app.init());
      await expect(compiling).rejects.toThrow(
        /SyncService\.sum is @DynamoCached but returns Number, not a Promise/,
      );
    });
  });

  describe('10. an unreachable endpoint', () => {
    const unreachable = { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', maxAttempts: 1 };
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

    async function boot(onError: 'throw' | 'bypass', logger: LoggerService | false) {
      const app = await Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({
            table: 'tbl',
            onError,
            clientConfig: { ...unreachable, credentials },
          }),
        ],
        providers: [EchoService],
      }).compile();
      app.useLogger(logger);
      await app.init();
      return app;
    }

    it("'throw' rejects with DynamoCacheError (operation, namespace, cause) and does not call the method", async () => {
      const app = await boot('throw', false);
      const service = app.get(EchoService);
      const error = await service.echo('x').then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(DynamoCacheError);
      expect(error).toMatchObject({ operation: 'GetItem', namespace: 'EchoService.echo' });
      expect((error as Error).cause).toBeInstanceOf(Error);
      expect(service.calls).toBe(0);
      await app.close();
    });

    it("'bypass' returns the method's result and logs once per failing run", async () => {
      const logger = new CapturingLogger();
      const app = await boot('bypass', logger);
      const service = app.get(EchoService);
      expect(await service.echo('x')).toBe('X');
      expect(await service.echo('y')).toBe('Y');
      expect(service.calls).toBe(2);
      const warnings = logger.lines.filter((l) => l.includes('EchoService.echo'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/GetItem .* failed/);
      expect(app.get(DynamoCacheService).stats().namespaces['EchoService.echo']).toMatchObject({
        misses: 2,
        l2Errors: 4, // a GetItem and a PutItem per call
        l2Writes: 0,
      });
      await app.close();
    });
  });

  it("'throw' on a failed PutItem rejects with the computed result attached and keeps it in L1", async () => {
    const table = await dynamo.table();
    const client = dynamo.client();
    // Fault injection for one branch: PutItem fails, everything else reaches dynalite.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutItemCommand') throw new Error('injected PutItem failure');
        return next(args);
      },
      { step: 'initialize', name: 'failPutItem' },
    );
    const app = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client, onError: 'throw' })],
      providers: [EchoService],
    }).compile();
    app.useLogger(false);
    await app.init();
    const service = app.get(EchoService);
    const error = (await service.echo('p').catch((err: unknown) => err)) as DynamoCacheError;
    expect(error).toBeInstanceOf(DynamoCacheError);
    expect(error.operation).toBe('PutItem');
    expect(error.result).toBe('P');
    expect(await service.echo('p')).toBe('P');
    expect(service.calls).toBe(1);
    await app.close();
  });
});
