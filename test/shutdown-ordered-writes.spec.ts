import { DynamoCacheService, v8Serializer } from '../lib/index.js';
import { bootCache, scanTable, sleep } from './support/apps.js';
import { dummyClientConfig, startDynamo, type TestDynamo } from './support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/*
 * App shutdown (close) waits for the cache writes the application asked for before it, within
 * l2Timeout per DynamoDB call: also a write queued behind an earlier one of the same key, and a
 * deleteMany of many BatchWriteItem calls. Two instances on one table: A writes and closes, B reads.
 */
describe('shutdown waits for writes queued behind others and for every call of a deleteMany', () => {
  let dynamo: TestDynamo;
  let proxy: TcpProxy;
  beforeAll(async () => {
    dynamo = await startDynamo();
    proxy = await startTcpProxy(Number(new URL(dynamo.endpoint).port), 0);
  });
  afterAll(async () => {
    await proxy.close();
    await dynamo.close();
  });

  async function boot(table: string, viaProxy: boolean) {
    return bootCache(
      {
        table,
        ttl: 600,
        serializer: v8Serializer,
        l1MaxAge: null,
        clientConfig: dummyClientConfig(viaProxy ? proxy.endpoint : dynamo.endpoint),
        l2Timeout: 1000,
      },
      [],
    );
  }

  it('set(k, v1); set(k, v2); close(): the other instance reads v2', async () => {
    const table = await dynamo.table('rv');
    proxy.latencyMs = 50;
    const a = await boot(table, true);
    const b = await boot(table, false);
    const cacheA = a.get(DynamoCacheService);
    const first = cacheA.set('ns', ['k'], 'v1');
    const second = cacheA.set('ns', ['k'], 'v2');
    const outcomes = Promise.allSettled([first, second]);
    await a.close();
    const settled = await outcomes;
    await sleep(300);
    expect(await b.get(DynamoCacheService).get('ns', ['k'])).toBe('v2');
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled']);
    await b.close();
  });

  it('set(k, v1); delete(k); close(): the other instance no longer reads v1', async () => {
    const table = await dynamo.table('rv');
    proxy.latencyMs = 50;
    const a = await boot(table, true);
    const b = await boot(table, false);
    const cacheA = a.get(DynamoCacheService);
    const outcomes = Promise.allSettled([
      cacheA.set('ns', ['k'], 'v1'),
      cacheA.delete('ns', ['k']),
    ]);
    await a.close();
    const settled = await outcomes;
    await sleep(300);
    expect(await b.get(DynamoCacheService).get('ns', ['k'])).toBeUndefined();
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled']);
    await b.close();
  });

  it('deleteMany of 400 keys (16 BatchWriteItem calls, each well within l2Timeout), then close(): every key tombstoned', async () => {
    const table = await dynamo.table('rv');
    proxy.latencyMs = 0;
    const a = await boot(table, true);
    const b = await boot(table, false);
    const cacheA = a.get(DynamoCacheService);
    const cacheB = b.get(DynamoCacheService);
    const ids = Array.from({ length: 400 }, (_, i) => i);
    await Promise.all(ids.map((i) => cacheB.set('ns', [i], `v${i}`)));
    // Each call ~120 ms or more: 16 of them take longer than one l2Timeout (1000 ms).
    proxy.latencyMs = 60;
    const deleted = cacheA
      .deleteMany(
        'ns',
        ids.map((i) => [i]),
      )
      .then(
        () => 'ok',
        (e: unknown) => String(e),
      );
    await a.close();
    const outcome = await deleted;
    const items = await scanTable(dynamo.client(), table);
    const withValue = items.filter((it) => it.v !== undefined).length;
    expect({ outcome, withValue }).toEqual({ outcome: 'ok', withValue: 0 });
    await b.close();
  });
});
