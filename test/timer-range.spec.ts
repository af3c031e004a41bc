import { TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { DynamoCacheHealthIndicator } from '../lib/terminus/index.js';
import { bootCache, sleep } from './support/apps.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

/*
 * Durations past what Node's timers take (2^31 - 1 ms, about 24.8 days; a longer one fires after
 * 1 ms) wait as long as they can instead of firing at once. Each beside a control of 10 minutes.
 */
describe("timeouts beyond setTimeout's range", () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  const timeouts: [string, number][] = [
    ['10 minutes (control)', 600_000],
    ['3e9 ms (about 35 days)', 3e9],
  ];

  it.each(timeouts)(
    'soft timeout of %s: a stale call waits for a 300 ms recomputation',
    async (_name, timeout) => {
      const table = await dynamo.table();
      const app = await bootCache({ table, clientConfig: dynamo.clientConfig }, []);
      const cache = app.get(DynamoCacheService);
      const opts = { ttl: 1, grace: 3600, timeout };
      try {
        expect(await cache.wrap('ns', ['k'], () => 'old', opts)).toBe('old');
        await sleep(1100);
        const got = await cache.wrap(
          'ns',
          ['k'],
          async () => {
            await sleep(300);
            return 'new';
          },
          opts,
        );
        expect(got).toBe('new');
      } finally {
        await cache.settle();
        await app.close();
      }
    },
  );

  it.each(timeouts)('health check timeout of %s: a live table is up', async (_name, timeout) => {
    const table = await dynamo.table();
    const app = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig }),
        TerminusModule.forRoot({ logger: false }),
      ],
      providers: [DynamoCacheHealthIndicator],
    }).compile();
    app.useLogger(false);
    await app.init();
    const result = await app.get(DynamoCacheHealthIndicator).isHealthy('cache', { timeout });
    await app.close();
    expect(result.cache.status).toBe('up');
  });
});
