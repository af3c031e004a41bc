import type { TestingModule } from '@nestjs/testing';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DynamoCacheService } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { dummyClientConfig, startDynamo, type TestDynamo } from './support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

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

describe('ordered write tokens: a write the SDK retried after it landed counts as written; a set given up before an expire is refused after it', () => {
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

  it.each([1500, 0])(
    'set(v1) (latency %i ms), then expire(): the late v1 does not come back as fresh',
    async (latency) => {
      const table = await dynamo.table();
      const a = await bootCache(
        {
          table,
          clientConfig: dummyClientConfig(proxy.endpoint),
          l2Timeout: 300,
          onError: 'bypass',
          circuitBreaker: false,
          l1MaxAge: 1,
          grace: 60,
        },
        [],
      );
      const b = await bootCache(
        { table, client: dynamo.client(), onError: 'bypass', l1MaxAge: 1, grace: 60 },
        [],
      );
      apps.push(a, b);
      const ca = a.get(DynamoCacheService);
      const cb = b.get(DynamoCacheService);
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

  it('a set whose answer is lost and that the SDK retries is counted as written, not refused', async () => {
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
      apps.push(a);
      const ca = a.get(DynamoCacheService);
      const events: string[] = [];
      ca.on('write', () => events.push('write'));
      ca.on('refused', () => events.push('refused'));
      ca.on('error', () => events.push('error'));
      p.state.armed = true;
      await ca.set('prices', ['EUR'], 'v1');
      const ns = ca.stats().namespaces.prices;
      expect({
        dropped: p.state.dropped,
        events,
        l2Writes: ns?.l2Writes,
        l2Refused: ns?.l2Refused,
      }).toEqual({
        dropped: 1,
        events: ['write'],
        l2Writes: 1,
        l2Refused: 0,
      });
    } finally {
      await Promise.all(apps.splice(0).map((x) => x.close()));
      await p.close();
    }
  }, 20000);

  it('a delete whose answer is lost and that the SDK retries is counted as a delete', async () => {
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
      apps.push(a);
      const ca = a.get(DynamoCacheService);
      const events: string[] = [];
      ca.on('delete', () => events.push('delete'));
      await ca.set('prices', ['EUR'], 'v1');
      p.state.armed = true;
      await ca.delete('prices', ['EUR']);
      const ns = ca.stats().namespaces.prices;
      expect({ dropped: p.state.dropped, events, l2Deletes: ns?.l2Deletes }).toEqual({
        dropped: 1,
        events: ['delete'],
        l2Deletes: 1,
      });
    } finally {
      await Promise.all(apps.splice(0).map((x) => x.close()));
      await p.close();
    }
  }, 20000);
});

describe("two applications of one process on one table are two writers: a slow set is not refused by the other one's fill", () => {
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

  it.each([800, 0])(
    "a set made after another app's computation began is not refused by that computation's fill (set latency %i ms)",
    async (latency) => {
      const table = await dynamo.table();
      const a = await bootCache(
        {
          table,
          clientConfig: dummyClientConfig(proxy.endpoint),
          l2Timeout: 5000,
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
      const ca = a.get(DynamoCacheService);
      const cb = b.get(DynamoCacheService);
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
