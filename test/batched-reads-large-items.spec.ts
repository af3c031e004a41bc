import type { TestingModule } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { DynamoCacheService } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { countCalls, startDynamo, type TestDynamo } from './support/dynamo-server.js';

/*
 * Large items read concurrently by another instance: the reads batch, and a BatchGetItem answer
 * is limited in size (DynamoDB: 16 MB; dynalite: about 1.4 MB), so the server leaves the rest
 * unprocessed. That is not throttling: they are asked for again at once, and every entry is found
 * as by single reads, without an error. (A long l2Timeout, so that a loaded machine's slowness is
 * not what is measured: backed off as throttled, the keys ran out of retries whatever the time.)
 */
describe('concurrent reads of large items', () => {
  let dynamo: TestDynamo;
  const apps: TestingModule[] = [];
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it('100 concurrent gets of 120 KB entries find every entry, as 100 sequential gets do', async () => {
    const table = await dynamo.table();
    const boot = async () => {
      const client = dynamo.client();
      const app = await bootCache({ table, client, onError: 'bypass', l2Timeout: 15_000 }, []);
      apps.push(app);
      return { cache: app.get(DynamoCacheService), calls: countCalls(client) };
    };
    const writer = await boot();
    const N = 100;
    for (let i = 0; i < N; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          writer.cache.set('blobs', [i + j], randomBytes(120 * 1024)),
        ),
      );
    }
    const sequential = await boot();
    let seqHits = 0;
    for (let i = 0; i < N; i++) if ((await sequential.cache.lookup('blobs', [i])).hit) seqHits++;

    const concurrent = await boot();
    const errs: string[] = [];
    concurrent.cache.on('error', (e) => errs.push(String(e.error?.message).slice(0, 140)));
    const found = await Promise.all(
      Array.from({ length: N }, (_, i) => concurrent.cache.lookup('blobs', [i])),
    );
    const stats = concurrent.cache.stats().total;
    expect({
      seqHits,
      concurrentHits: found.filter((f) => f.hit).length,
      l2Errors: stats.l2Errors,
      errs,
      batched: (concurrent.calls.counts.BatchGetItem ?? 0) > 0,
    }).toEqual({ seqHits: N, concurrentHits: N, l2Errors: 0, errs: [], batched: true });
  }, 60000);
});
