import { TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { DynamoCacheModule } from '../lib/index.js';
import { DynamoCacheHealthIndicator } from '../lib/terminus/index.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

describe("a health check timeout beyond setTimeout's range", () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });
  it.each([
    ['control 10 min', 600_000],
    ['3e9 ms', 3e9],
  ])('%s: a live table is up', async (_n, timeout) => {
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
