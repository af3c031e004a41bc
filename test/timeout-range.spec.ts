import { DynamoCacheService } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

describe("a soft timeout beyond setTimeout's range", () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it.each([
    ['control: timeout 10 minutes', 600_000],
    ['timeout 3e9 ms (about 35 days)', 3e9],
  ])('%s: a stale call waits for a 300 ms recomputation', async (_name, timeout) => {
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
  });
});
