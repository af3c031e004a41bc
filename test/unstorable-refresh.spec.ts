import { randomBytes } from 'node:crypto';
import { DynamoCacheService } from '../lib/index.js';
import { sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { bootLogged, RecordingLogger } from './support/recording-logger.js';

const KB = 1024;

describe('a result that replaces a stored value but cannot be stored itself (too large)', () => {
  const fx = useTestDynamo();

  async function app(table: string, extra: Record<string, unknown> = {}) {
    const logger = new RecordingLogger();
    const moduleRef = await bootLogged({ table, client: fx.dynamo.client(), ...extra }, [], logger);
    fx.apps.push(moduleRef);
    return { cache: moduleRef.get(DynamoCacheService), logger };
  }

  it('forceFresh: the replaced value is read by no instance (another one, or this one after l1MaxAge)', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { l1MaxAge: 1 });
    const b = await app(table);
    expect(await a.cache.wrap('report', [2024], async () => 'old', { ttl: 3600 })).toBe('old');
    await a.cache.settle();
    const big = randomBytes(600 * KB); // incompressible: over DynamoDB's 400 KB
    const fresh = await a.cache.wrap('report', [2024], async () => big, {
      ttl: 3600,
      forceFresh: true,
    });
    expect(Buffer.compare(fresh as Buffer, big)).toBe(0);
    await a.cache.settle();
    // (Nest's logger is global: the last application booted records every line.)
    expect(b.logger.matching(/too large for DynamoDB/)).toHaveLength(1);
    // Another instance: no item to read (a tombstone), so a miss, not the old value.
    expect(await b.cache.get('report', [2024])).toBeUndefined();
    // This instance: its L1 copy first, then (past l1MaxAge) no longer the old value either.
    expect(Buffer.isBuffer(await a.cache.get('report', [2024]))).toBe(true);
    await sleep(1200);
    expect(await a.cache.get('report', [2024])).not.toBe('old');
  });

  it('a newer value written elsewhere meanwhile is left in place', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    await a.cache.wrap('report', [2025], async () => 'old', { ttl: 3600 });
    await a.cache.settle();
    const big = randomBytes(600 * KB);
    await a.cache.wrap(
      'report',
      [2025],
      async () => {
        // While A computes, B stores a newer value.
        await b.cache.set('report', [2025], 'newer');
        return big;
      },
      { ttl: 3600, forceFresh: true },
    );
    await a.cache.settle();
    const c = await app(table);
    expect(await c.cache.get('report', [2025])).toBe('newer');
  });
});
