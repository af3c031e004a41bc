import type { TestingModule } from '@nestjs/testing';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DynamoCacheService } from '../lib/index.js';
import { bootCache, scanTable, sleep } from './support/apps.js';
import { dummyClientConfig, startDynamo, type TestDynamo } from './support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/*
 * Two application instances on one table. Instance A reaches DynamoDB through a proxy; one of
 * its writes is slow (a latency spike: the request is sent, DynamoDB answers late), so the cache
 * gives it up after l2Timeout and A's next write of the same key goes out. The abandoned request
 * still reaches DynamoDB, after the newer one: it is refused there (its write token is older than
 * the item's, of the same application), so the newer write stands in every instance; an `expire`
 * orders it too. A write the SDK sent again after it landed (its answer lost) still counts as
 * written, and another application of the same process is another writer: its fill never refuses
 * a later set.
 */

/** A proxy that, once armed, forwards the next PutItem but cuts the connection instead of its answer. */
async function dropPutAnswerProxy(targetPort: number) {
  const state = { armed: false, dropped: 0 };
  const server: Server = createServer((client: Socket) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    let dropThis = false;
    client.on('data', (chunk) => {
      if (state.armed && chunk.toString('latin1').includes('DynamoDB_20120810.PutItem')) {
        state.armed = false;
        dropThis = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (dropThis) {
        state.dropped++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    state,
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("one application's writes of a key stand in the order they were made, whatever reaches DynamoDB late", () => {
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

  /** A behind the proxy (its writes given up after `l2Timeout`), B straight to DynamoDB. */
  async function two(o: { l2Timeout?: number; grace?: number } = {}) {
    const table = await dynamo.table();
    const a = await bootCache(
      {
        table,
        clientConfig: dummyClientConfig(proxy.endpoint),
        l2Timeout: o.l2Timeout ?? 300,
        onError: 'bypass',
        circuitBreaker: false,
        l1MaxAge: 1,
        grace: o.grace,
      },
      [],
    );
    const b = await bootCache(
      { table, client: dynamo.client(), onError: 'bypass', l1MaxAge: 1, grace: o.grace },
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

  it.each([1500, 0])(
    'set(v1) (latency %i ms), then expire(): the late v1 does not come back as fresh',
    async (latency) => {
      const { a: ca, b: cb } = await two({ grace: 60 });
      await ca.set('prices', ['EUR'], 'v0');
      proxy.latencyMs = latency;
      await ca.set('prices', ['EUR'], 'v1'); // given up after 300 ms
      proxy.latencyMs = 0;
      await ca.expire('prices', ['EUR']); // expires v0 in DynamoDB (UpdateItem)
      await sleep(2000); // the abandoned PutItem of v1 arrives
      let calls = 0;
      const got = await cb.wrap('prices', ['EUR'], async () => {
        calls++;
        return 'recomputed';
      });
      // After expire(), the next call recomputes.
      expect({ got, calls }).toEqual({ got: 'recomputed', calls: 1 });
    },
    20000,
  );

  /**
   * A behind a proxy that drops the answer of its next PutItem once armed (the SDK, allowed 3
   * attempts, sends the write again), B straight to DynamoDB; `run` gets A's and B's caches.
   */
  async function answerLost(
    run: (a: DynamoCacheService, b: DynamoCacheService, arm: () => void) => Promise<void>,
  ) {
    const table = await dynamo.table();
    const p = await dropPutAnswerProxy(Number(new URL(dynamo.endpoint).port));
    try {
      const a = await bootCache(
        {
          table,
          clientConfig: { ...dummyClientConfig(p.endpoint), maxAttempts: 3 },
          onError: 'bypass',
          circuitBreaker: false,
        },
        [],
      );
      const b = await bootCache({ table, client: dynamo.client(), onError: 'bypass' }, []);
      apps.push(a, b);
      await run(a.get(DynamoCacheService), b.get(DynamoCacheService), () => (p.state.armed = true));
      expect(p.state.dropped).toBe(1);
    } finally {
      await Promise.all(apps.splice(0).map((x) => x.close()));
      await p.close();
    }
  }

  it('a set whose answer is lost and that the SDK retries is counted as written, not refused; the other instance reads it', async () => {
    await answerLost(async (ca, cb, arm) => {
      const events: string[] = [];
      ca.on('write', () => events.push('write'));
      ca.on('refused', () => events.push('refused'));
      ca.on('error', () => events.push('error'));
      arm();
      await ca.set('prices', ['EUR'], 'v1');
      const ns = ca.stats().namespaces.prices;
      expect({ events, l2Writes: ns?.l2Writes, l2Refused: ns?.l2Refused }).toEqual({
        events: ['write'],
        l2Writes: 1,
        l2Refused: 0,
      });
      expect(await cb.get('prices', ['EUR'])).toBe('v1');
    });
  }, 20000);

  it('a delete whose answer is lost and that the SDK retries is counted as a delete; the other instance reads none', async () => {
    await answerLost(async (ca, cb, arm) => {
      const events: string[] = [];
      ca.on('delete', () => events.push('delete'));
      await ca.set('prices', ['EUR'], 'v1');
      arm();
      await ca.delete('prices', ['EUR']);
      const ns = ca.stats().namespaces.prices;
      expect({ events, l2Deletes: ns?.l2Deletes }).toEqual({ events: ['delete'], l2Deletes: 1 });
      expect(await cb.get('prices', ['EUR'])).toBeUndefined();
    });
  }, 20000);

  it.each([800, 0])(
    "a set made after another app's computation began is not refused by that computation's fill (set latency %i ms)",
    async (latency) => {
      const { table, a: ca, b: cb } = await two({ l2Timeout: 5000 });
      // B starts computing the entry from data that is about to change.
      const computing = cb.wrap('prices', ['EUR'], async () => {
        await sleep(300);
        return 'old';
      });
      await sleep(50);
      // A then sets the new value (its PutItem takes `latency` ms to arrive).
      proxy.latencyMs = latency;
      const setting = ca.set('prices', ['EUR'], 'new');
      await computing; // B's fill (started before the set) lands first
      await setting;
      proxy.latencyMs = 0;
      const c = await bootCache({ table, client: dynamo.client(), onError: 'bypass' }, []);
      apps.push(c);
      const stats = ca.stats().namespaces.prices;
      // The set was made after B's computation began: it is the value every process reads.
      expect({
        third: await c.get(DynamoCacheService).get('prices', ['EUR']),
        aRefused: stats.l2Refused,
      }).toEqual({
        third: 'new',
        aRefused: 0,
      });
    },
    20000,
  );
});
