import { Injectable } from '@nestjs/common';
import { CacheEngine } from '../../lib/engine/cache-engine.js';
import { DynamoCached } from '../../lib/index.js';
import { sleep } from '../support/apps.js';
import { countCalls } from '../support/dynamo-server.js';
import { bootLogged, RecordingLogger } from '../support/recording-logger.js';
import { startRestartableDynamo, type RestartableDynamo } from '../support/restartable-dynamo.js';

const MAXSIZE = 500;
const KEYS = 1000;
const CALLERS = 50;
const CALLS = 10_000;

@Injectable()
class InventoryService {
  calls = 0;

  @DynamoCached({ ttl: 600, maxsize: MAXSIZE })
  async stock(sku: number): Promise<{ sku: number; units: number }> {
    this.calls++;
    await sleep(2);
    return { sku, units: (sku * 37) % 101 };
  }
}

describe('load: 10,000 calls over 1,000 keys from 50 callers while DynamoDB restarts twice', () => {
  let dynamo: RestartableDynamo;

  beforeAll(async () => {
    dynamo = await startRestartableDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  // Unhandled rejections: jest-circus listens for them on the worker process and fails the
  // running test with the rejection as its error, so this test fails if the cache leaves one.
  // (A `process.on` here would not see them: the test's `process` is a sandboxed copy.)

  it('loses no result, leaves no unhandled rejection, and keeps L1 within maxsize', async () => {
    const table = await dynamo.table('load');
    const client = dynamo.client();
    const calls = countCalls(client);
    const logger = new RecordingLogger();
    const app = await bootLogged(
      {
        table,
        client,
        onError: 'bypass',
        l2Timeout: 1000,
        circuitBreaker: { failures: 5, cooldownMs: 100 },
      },
      [InventoryService],
      logger,
    );
    const service = app.get(InventoryService);
    const engine = app.get(CacheEngine);
    const namespace = engine.namespace('InventoryService.stock');

    let issued = 0;
    let wrong = 0;
    let failed = 0;
    let maxL1 = 0;
    const until = async (condition: () => boolean): Promise<void> => {
      while (!condition()) await sleep(2);
    };
    // Two outages during the traffic, the second once L2 is back in use after the first.
    const stoppedAt: number[] = [];
    const chaos = async (): Promise<void> => {
      for (const threshold of [2000, 5500]) {
        await until(() => issued >= threshold);
        stoppedAt.push(issued);
        await dynamo.stop();
        await sleep(50);
        await dynamo.start();
        const writes = engine.stats().total.l2Writes;
        await until(() => engine.stats().total.l2Writes > writes || issued >= CALLS);
      }
    };
    const chaosDone = chaos();
    // A deterministic spread of keys, so the run is the same every time.
    let seed = 12345;
    const nextSku = (): number => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % KEYS;
    };
    const caller = async (): Promise<void> => {
      while (issued < CALLS) {
        issued++;
        const sku = nextSku();
        try {
          const got = await service.stock(sku);
          if (got.sku !== sku || got.units !== (sku * 37) % 101) wrong++;
        } catch {
          failed++;
        }
        if (namespace.l1Size > maxL1) maxL1 = namespace.l1Size;
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, caller));
    await chaosDone;

    expect(failed).toBe(0);
    expect(wrong).toBe(0);
    expect(maxL1).toBeLessThanOrEqual(MAXSIZE);
    expect(namespace.l1Size).toBeLessThanOrEqual(MAXSIZE);
    // DynamoDB really went away twice while calls were being made, and was really in use.
    expect(stoppedAt).toHaveLength(2);
    for (const at of stoppedAt) expect(at).toBeLessThan(CALLS - 1000);
    const stats = app.get(CacheEngine).stats().total;
    expect(stats.l2Hits).toBeGreaterThan(250); // L2 served real traffic (about 1,000 hits in a typical run)
    expect(stats.l2Errors).toBeGreaterThan(0);
    expect(calls.readKeys()).toBeGreaterThan(1000); // typically about 2,000 keys read
    expect(stats.l1Hits + stats.l2Hits + stats.misses).toBeLessThanOrEqual(CALLS);
    await app.close();
  });
});
