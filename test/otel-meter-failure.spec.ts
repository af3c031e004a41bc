import { Test } from '@nestjs/testing';
import type { MeterProvider } from '@opentelemetry/api';
import { DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { DynamoCacheMetricsModule } from '../lib/otel/index.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

describe('an OpenTelemetry meter that throws', () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  const boot = async (meterProvider: MeterProvider) => {
    const table = await dynamo.table();
    const app = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig, isGlobal: true }),
        DynamoCacheMetricsModule.forRoot({ meterProvider }),
      ],
    }).compile();
    app.useLogger(false);
    await app.init();
    return app;
  };

  it('whose instruments throw on use: cache calls still answer', async () => {
    const throwing = () => {
      throw new Error('exporter down');
    };
    const meterProvider = {
      getMeter: () => ({
        createCounter: () => ({ add: throwing }),
        createHistogram: () => ({ record: throwing }),
      }),
    } as unknown as MeterProvider;
    const app = await boot(meterProvider);
    const cache = app.get(DynamoCacheService);
    expect(await cache.wrap('ns', ['a'], () => 1)).toBe(1);
    expect(await cache.wrap('ns', ['a'], () => 2)).toBe(1);
    await app.close();
  });

  it('whose createCounter throws at bootstrap: the application (and its cache) still starts', async () => {
    const meterProvider = {
      getMeter: () => ({
        createCounter: () => {
          throw new Error('meter misconfigured');
        },
        createHistogram: () => ({ record: () => undefined }),
      }),
    } as unknown as MeterProvider;
    const outcome = await boot(meterProvider).then(
      async (app) => {
        const v = await app.get(DynamoCacheService).wrap('ns', ['a'], () => 1);
        await app.close();
        return v;
      },
      (err: unknown) => String(err),
    );
    expect(outcome).toBe(1);
  });
});
