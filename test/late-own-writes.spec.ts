import type { TestingModule } from '@nestjs/testing';
import { DynamoCacheService } from '../lib/index.js';
import { bootCache, scanTable, sleep } from './support/apps.js';
import { dummyClientConfig, startDynamo, type TestDynamo } from './support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/*
 * Two application instances on one table. Instance A reaches DynamoDB through a proxy; one of
 * its writes is slow (a latency spike: the request is sent, DynamoDB answers late), so the cache
 * gives it up after l2Timeout and A's next write of the same key goes out. The abandoned request
 * still reaches DynamoDB, after the newer one: it is refused there (its write id is older than
 * the item's, of the same process), so the newer write stands in every instance.
 */
describe('a write given up by l2Timeout that reaches DynamoDB after a later write of the same key is refused', () => {
  let dynamo: TestDynamo;
  let proxy: TcpProxy;
  const apps: TestingModule[] = [];
  beforeAll(async () => {
    dynamo = await startDynamo();
    proxy = await startTcpProxy(Number(new URL(dynamo.endpoint).port), 0);
  });
  afterEach(async () => {
    proxy.latencyMs = 0;
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await proxy.close();
    await dynamo.close();
  });

  async function two() {
    const table = await dynamo.table();
    const a = await bootCache(
      {
        table,
        clientConfig: dummyClientConfig(proxy.endpoint),
        l2Timeout: 300,
        onError: 'bypass',
        circuitBreaker: false,
        l1MaxAge: 1,
      },
      [],
    );
    const b = await bootCache(
      { table, client: dynamo.client(), onError: 'bypass', l1MaxAge: 1 },
      [],
    );
    apps.push(a, b);
    return { table, a: a.get(DynamoCacheService), b: b.get(DynamoCacheService) };
  }

  it('set(v1) slow, then delete(): the deleted value never comes back, in any instance', async () => {
    const { table, a, b } = await two();
    proxy.latencyMs = 1500;
    await a.set('prices', ['EUR'], 'v1'); // given up after 300 ms ('bypass': resolves)
    proxy.latencyMs = 0;
    await a.delete('prices', ['EUR']); // the tombstone is written at once
    expect(await b.get('prices', ['EUR'])).toBeUndefined(); // deleted, as expected so far
    await sleep(2000); // the abandoned PutItem of v1 arrives
    const items = await scanTable(dynamo.client(), table);
    const item = items.find((i) => i.cache_key?.S?.includes('prices'));
    // After the delete, no process may read v1 again.
    expect({ hasValue: item?.v !== undefined, bGets: await b.get('prices', ['EUR']) }).toEqual({
      hasValue: false,
      bGets: undefined,
    });
  }, 20000);

  it('set(v1) slow, then set(v2): v2 stands, in the other instance and (after l1MaxAge) in the writer too', async () => {
    const { a, b } = await two();
    proxy.latencyMs = 1500;
    await a.set('prices', ['USD'], 'v1');
    proxy.latencyMs = 0;
    await a.set('prices', ['USD'], 'v2');
    expect(await b.get('prices', ['USD'])).toBe('v2');
    await sleep(2000);
    expect({ b: await b.get('prices', ['USD']), a: await a.get('prices', ['USD']) }).toEqual({
      b: 'v2',
      a: 'v2',
    });
  }, 20000);

  it('delete() slow, then set(v2): v2 stands (the late tombstone deletes nothing)', async () => {
    const { a, b } = await two();
    await a.set('prices', ['GBP'], 'v1');
    proxy.latencyMs = 1500;
    await a.delete('prices', ['GBP']);
    proxy.latencyMs = 0;
    await a.set('prices', ['GBP'], 'v2');
    expect(await b.get('prices', ['GBP'])).toBe('v2');
    await sleep(2000);
    expect({ b: await b.get('prices', ['GBP']), a: await a.get('prices', ['GBP']) }).toEqual({
      b: 'v2',
      a: 'v2',
    });
  }, 20000);
});
