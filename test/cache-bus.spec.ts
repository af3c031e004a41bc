import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { buildCacheKey, DynamoCacheService, encodeKey, type DynamoCacheBus } from '../lib/index.js';
import { RedisDynamoCacheBus } from '../lib/redis-bus/index.js';
import { bootCache, sleep } from './support/apps.js';
import { MemoryBus } from './support/memory-bus.js';
import { countCalls, testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { PRODUCT, RATE, ShopService, world } from './support/shop-fixture.js';

/*
 * Push invalidation between applications on one table (`bus`), with `l1MaxAge: null`: without
 * the bus, an application would serve its L1 value until the ttl (600 s here); with it, another
 * application's delete, set, expire, clear and deleteByTag reach its L1 at once.
 */

/** Calls `read` until `ok` holds of its result; fails after `ms`. */
async function eventually<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  what: string,
  ms: number,
): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (ok(await read())) return;
    if (Date.now() - start > ms) throw new Error(`${what}: not seen within ${ms} ms`);
    await sleep(10);
  }
}

/** redis-server on the PATH (CI installs it at /usr/bin/redis-server). */
const REDIS_SERVER =
  (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, 'redis-server'))
    .find((path) => existsSync(path)) ?? '/usr/bin/redis-server';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends one inline command to Redis on a connection of its own; the raw reply. */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = Buffer.alloc(0);
    socket.setTimeout(1000, () => socket.destroy(new Error(`redis: no reply to ${command}`)));
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      const headerEnd = reply.indexOf('\r\n');
      if (headerEnd === -1) return;
      const header = reply.subarray(0, headerEnd).toString();
      // A bulk string ($length) is complete once its payload and CRLF are in; the rest at the header.
      const complete =
        !header.startsWith('$') || reply.length >= headerEnd + 2 + Number(header.slice(1)) + 2;
      if (!complete) return;
      socket.end();
      resolve(reply.toString());
    });
  });
}

/** Connections Redis holds open, the asking one excluded. */
async function redisClients(port: number): Promise<number> {
  const info = await redisCommand(port, 'INFO clients');
  const match = /connected_clients:(\d+)/.exec(info);
  if (match === null) throw new Error(`redis: unexpected INFO reply ${info}`);
  return Number(match[1]) - 1;
}

describe(`cache bus (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  beforeEach(() => {
    world.version = 1;
  });

  async function app(table: string, bus: DynamoCacheBus) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await bootCache({ table, client, ttl: 600, l1MaxAge: null, bus }, [
      ShopService,
    ]);
    fx.apps.push(moduleRef);
    return { shop: moduleRef.get(ShopService), cache: moduleRef.get(DynamoCacheService), calls };
  }

  it('entries keyed by a long argument (over 512 characters): one DynamoDB item for both, B’s delete reaches A’s L1, the message carries the md5', async () => {
    const table = await fx.dynamo.table();
    const hub = new Set<MemoryBus>();
    const busA = new MemoryBus(hub);
    const busB = new MemoryBus(hub);
    const a = await app(table, busA);
    const b = await app(table, busB);
    const filter = { text: 'f'.repeat(2000), page: 1 };
    let version = 1;
    let computed = 0;
    const compute = async (): Promise<string> => `v${version}@${++computed}`;
    expect(await a.cache.wrap('search', [filter], compute)).toBe('v1@1');
    // B reads A's item: the DynamoDB key is the md5 of the whole encoding, as before.
    expect(await b.cache.wrap('search', [{ ...filter }], compute)).toBe('v1@1');
    const stored = await fx.dynamo.client().send(
      new GetItemCommand({
        TableName: table,
        Key: { cache_key: { S: buildCacheKey('', 'search', encodeKey([filter])) } },
      }),
    );
    expect(stored.Item).toBeDefined();

    version = 2;
    await b.cache.delete('search', [filter]);
    expect(busB.sent.at(-1)).toMatchObject({
      kind: 'keys',
      namespace: 'search',
      keys: [`#${buildCacheKey('', '', encodeKey([filter])).slice(1)}`],
    });
    // A's L1 copy is gone at once (l1MaxAge null: without the message A would serve v1).
    expect(await a.cache.wrap('search', [filter], compute)).toBe('v2@2');
    expect(await b.cache.wrap('search', [filter], compute)).toBe('v2@2');
  });

  it('an in-memory bus: B’s delete, set, expire, clear and deleteByTag reach A’s L1 at once; A ignores its own messages', async () => {
    const table = await fx.dynamo.table();
    const hub = new Set<MemoryBus>();
    const busA = new MemoryBus(hub);
    const busB = new MemoryBus(hub);
    const a = await app(table, busA);
    const b = await app(table, busB);
    expect(hub.size).toBe(2); // both subscribed at bootstrap

    for (const pair of ['EUR', 'GBP', 'JPY']) expect(await a.shop.rate(pair)).toBe(`${pair}@v1`);
    expect(await a.shop.product('p1')).toBe('p1@v1');
    expect((await a.shop.orders('c1')).version).toBe(1);
    expect((await a.shop.orders('c2')).version).toBe(1);
    world.version = 2;
    // Without a message, A answers from L1 (l1MaxAge null: for the whole ttl), reading nothing.
    a.calls.reset();
    expect(await a.shop.rate('EUR')).toBe('EUR@v1');
    expect(a.calls.counts).toEqual({});

    // Each change by B is seen by A's very next call, without waiting.
    await b.cache.delete(RATE, ['EUR']);
    expect(await a.shop.rate('EUR')).toBe('EUR@v2');
    await b.cache.set(RATE, ['GBP'], 'GBP set by B');
    expect(await a.shop.rate('GBP')).toBe('GBP set by B');
    await b.cache.expire(RATE, ['JPY']);
    expect(await a.shop.rate('JPY')).toBe('JPY@v2');
    await b.cache.clear(PRODUCT);
    expect(await a.shop.product('p1')).toBe('p1@v2');
    await b.cache.deleteByTag('y');
    expect((await a.shop.orders('c1')).version).toBe(2);
    // What no message touched is still served from A's L1.
    a.calls.reset();
    expect((await a.shop.orders('c2')).version).toBe(1);
    expect(a.calls.counts).toEqual({});
    // Recomputed: EUR, JPY, p1, c1 (GBP came from B's item).
    expect(a.shop.calls).toEqual({ product: 2, orders: 3, rate: 5 });
    expect(b.shop.calls).toEqual({ product: 0, orders: 0, rate: 0 });

    // What B sent: entry keys as L1 holds them, or markers.
    const sourceB = busB.sent[0]?.source;
    expect(typeof sourceB).toBe('string');
    expect(busB.sent).toEqual([
      { source: sourceB, kind: 'keys', namespace: RATE, keys: [encodeKey(['EUR'])] },
      { source: sourceB, kind: 'keys', namespace: RATE, keys: [encodeKey(['GBP'])] },
      { source: sourceB, kind: 'expire', namespace: RATE, keys: [encodeKey(['JPY'])] },
      {
        source: sourceB,
        kind: 'markers',
        markers: [{ key: `#ns:${PRODUCT}#`, t: expect.any(Number) }],
      },
      { source: sourceB, kind: 'markers', markers: [{ key: '#tag:y#', t: expect.any(Number) }] },
    ]);

    // A's own message comes back to it (the hub delivers to every subscriber) and is ignored:
    // a set in A would otherwise drop the very entry it just stored.
    expect(await b.shop.rate('CHF')).toBe('CHF@v2');
    busA.received.length = 0;
    await a.cache.set(RATE, ['CHF'], 'CHF set by A');
    const sourceA = busA.sent[0]?.source;
    expect(sourceA).not.toBe(sourceB);
    expect(busA.received).toEqual([
      { source: sourceA, kind: 'keys', namespace: RATE, keys: [encodeKey(['CHF'])] },
    ]);
    a.calls.reset();
    expect(await a.shop.rate('CHF')).toBe('CHF set by A');
    expect(a.calls.counts).toEqual({}); // still in A's L1
    // B, which did receive it, reads A's value at once.
    expect(await b.shop.rate('CHF')).toBe('CHF set by A');
    expect(b.shop.calls.rate).toBe(1);

    // Closed at shutdown.
    await Promise.all(fx.apps.splice(0).map((m) => m.close()));
    expect(hub.size).toBe(0);
  });

  describe('RedisDynamoCacheBus', () => {
    let redis: ChildProcess | undefined;
    let port = 0;
    let redisLog = '';

    /** Starts redis-server on `port` and waits until it answers. */
    async function startRedis(): Promise<void> {
      const child = spawn(
        REDIS_SERVER,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      redis = child;
      child.stdout?.on('data', (chunk: Buffer) => (redisLog += chunk.toString()));
      child.stderr?.on('data', (chunk: Buffer) => (redisLog += chunk.toString()));
      const deadline = Date.now() + 10_000;
      for (;;) {
        if (child.exitCode !== null) {
          throw new Error(`redis-server exited with ${child.exitCode}:\n${redisLog}`);
        }
        try {
          if ((await redisCommand(port, 'PING')).startsWith('+PONG')) break;
        } catch {
          // not accepting connections yet
        }
        if (Date.now() > deadline) throw new Error(`redis-server did not start:\n${redisLog}`);
        await sleep(50);
      }
    }

    async function stopRedis(): Promise<void> {
      const child = redis;
      if (child === undefined || child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }

    beforeAll(async () => {
      if (!existsSync(REDIS_SERVER)) {
        throw new Error(
          `redis-server not found (on the PATH nor at ${REDIS_SERVER}): install it (apt-get install redis-server); this test needs a real Redis and does not skip`,
        );
      }
      port = await freePort();
      await startRedis();
    });

    afterAll(stopRedis);

    /**
     * B deletes `currency`'s rate (a new version each time) until A's next call computes the
     * latest: with `l1MaxAge: null` only the bus can tell A. Deletes made before the buses are
     * connected are lost (logged); fails after 15 s.
     */
    async function untilBDeletesReachA(
      a: { shop: ShopService },
      b: { cache: DynamoCacheService },
      currency: string,
    ): Promise<void> {
      const deadline = Date.now() + 15_000;
      for (;;) {
        world.version++;
        await b.cache.delete(RATE, [currency]);
        await sleep(300);
        if ((await a.shop.rate(currency)) === `${currency}@v${world.version}`) return;
        if (Date.now() > deadline) throw new Error(`A never saw B’s delete of ${currency}`);
      }
    }

    it('Redis restarted: the bus reconnects, and B’s next delete reaches A again', async () => {
      const table = await fx.dynamo.table();
      const channel = `cache-bus-restart-${process.pid}-${Date.now()}`;
      const a = await app(
        table,
        new RedisDynamoCacheBus({ host: '127.0.0.1', port, channel, retryDelay: 200 }),
      );
      const b = await app(
        table,
        new RedisDynamoCacheBus({ host: '127.0.0.1', port, channel, retryDelay: 200 }),
      );
      world.version = 1;
      expect(await a.shop.rate('GBP')).toBe('GBP@v1');

      await stopRedis();
      await startRedis();
      // l1MaxAge null: only the bus can tell A. Deletes B makes before its connections are back
      // are lost (logged); one made after them reaches A.
      await untilBDeletesReachA(a, b, 'GBP');
      await Promise.all(fx.apps.splice(0).map((m) => m.close()));
    });

    it('started while Redis is down: the applications start, their buses connect once Redis answers, and nothing is left connected after close', async () => {
      const table = await fx.dynamo.table();
      const channel = `cache-bus-down-${process.pid}-${Date.now()}`;
      const bus = () =>
        new RedisDynamoCacheBus({ host: '127.0.0.1', port, channel, retryDelay: 200 });
      await stopRedis();
      try {
        const a = await app(table, bus());
        const b = await app(table, bus());
        // One more that stops before Redis is back: its connections must not come back either.
        const c = await app(table, bus());
        await fx.apps.splice(fx.apps.length - 1, 1)[0]?.close();
        world.version = 1;
        expect(await a.shop.rate('NOK')).toBe('NOK@v1');
        await sleep(500);
        await startRedis();
        await untilBDeletesReachA(a, b, 'NOK');
        void c;
        await Promise.all(fx.apps.splice(0).map((m) => m.close()));
        await sleep(600); // past a retry: a client left behind would have reconnected by now
        expect(await redisClients(port)).toBe(0);
      } finally {
        if (redis?.exitCode !== null) await startRedis();
      }
    });

    it('B’s delete reaches A through Redis at once; close() at shutdown closes every connection', async () => {
      const table = await fx.dynamo.table();
      const channel = `cache-bus-test-${process.pid}-${Date.now()}`;
      const a = await app(table, new RedisDynamoCacheBus({ host: '127.0.0.1', port, channel }));
      const b = await app(table, new RedisDynamoCacheBus({ host: '127.0.0.1', port, channel }));

      expect(await a.shop.rate('EUR')).toBe('EUR@v1');
      expect(await b.shop.rate('EUR')).toBe('EUR@v1');
      world.version = 2;
      await b.cache.delete(RATE, ['EUR']);
      // l1MaxAge null, ttl 600 s: only the bus can tell A before ten minutes.
      await eventually(
        () => a.shop.rate('EUR'),
        (v) => v === 'EUR@v2',
        "B's delete in A",
        2000,
      );
      expect(a.shop.calls.rate).toBe(2);
      // B reads the value A recomputed from DynamoDB.
      expect(await b.shop.rate('EUR')).toBe('EUR@v2');
      expect(b.shop.calls.rate).toBe(0);

      // Shutdown closes the bus: Redis holds no connection of either application afterwards.
      expect(await redisClients(port)).toBeGreaterThan(0);
      await Promise.all(fx.apps.splice(0).map((m) => m.close()));
      const deadline = Date.now() + 2000;
      while ((await redisClients(port)) > 0) {
        if (Date.now() > deadline) {
          throw new Error(`Redis still holds ${await redisClients(port)} connections after close`);
        }
        await sleep(20);
      }
    });
  });
});
