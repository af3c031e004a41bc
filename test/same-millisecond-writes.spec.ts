import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { jest } from '@jest/globals';
import {
  buildCacheKey,
  DynamoCacheService,
  encodeKey,
  v8Serializer,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/**
 * Two processes writing one key in the same millisecond: DynamoDB keeps the last write, and an
 * L1 copy of the other one must not pass for it when it is checked past l1MaxAge (`t` alone is
 * the same for both).
 */
describe('writes of one key in the same millisecond from two instances', () => {
  const fx = useTestDynamo();

  async function app(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    const ref = await bootCache(
      { table, client: fx.dynamo.client(), ttl: 600, l1MaxAge: 1, ...options },
      [],
    );
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  /** Runs `writes` with the clock held at one millisecond. */
  async function inOneMillisecond(writes: () => Promise<void>): Promise<void> {
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
    try {
      await writes();
    } finally {
      clock.mockRestore();
    }
  }

  it("set and set: past l1MaxAge the instance whose write was replaced serves the other's value", async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    await inOneMillisecond(async () => {
      await a.set('ns', ['k'], 'from A');
      await b.set('ns', ['k'], 'from B'); // the last write: what DynamoDB holds
    });
    expect(await a.get('ns', ['k'])).toBe('from A'); // within l1MaxAge: its own copy
    await sleep(1100);
    expect(await a.get('ns', ['k'])).toBe('from B');
    expect(await b.get('ns', ['k'])).toBe('from B');
  });

  it('set and delete: past l1MaxAge the instance that set the value no longer serves it', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    await inOneMillisecond(async () => {
      await a.set('ns', ['k'], 'from A');
      await b.delete('ns', ['k']);
    });
    await sleep(1100);
    expect(await a.get('ns', ['k'])).toBeUndefined();
  });

  it('a computed value replaced by a set of the same millisecond: the computing instance serves the set value past l1MaxAge', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    await inOneMillisecond(async () => {
      expect(await a.wrap('ns', ['k'], async () => 'computed by A')).toBe('computed by A');
      await b.set('ns', ['k'], 'set by B');
    });
    await sleep(1100);
    expect(await a.wrap('ns', ['k'], async () => 'computed again')).toBe('set by B');
  });

  it('an item without w (written by 0.1.0 or an earlier 0.2) is checked by t alone: kept in L1 after its check, replaced when rewritten', async () => {
    const table = await fx.dynamo.table();
    const t = Date.now() / 1000;
    const put = (value: string, at: number) =>
      fx.admin.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            cache_key: { S: buildCacheKey('', 'ns', encodeKey(['k'])) },
            v: { B: v8Serializer.serialize(value) },
            t: { N: String(at) },
            exp: { N: String(Math.ceil(at + 600)) },
          },
        }),
      );
    await put('old format', t);
    const a = await app(table);
    expect(await a.get('ns', ['k'])).toBe('old format');
    await sleep(1100);
    expect(await a.get('ns', ['k'])).toBe('old format');
    // Checked against DynamoDB (t unchanged, no w on either side) and kept: no second read.
    expect(a.stats().namespaces.ns).toMatchObject({ l2Hits: 1, l1Hits: 1 });
    await put('rewritten', t + 0.001);
    await sleep(1100);
    expect(await a.get('ns', ['k'])).toBe('rewritten');
  });
});
