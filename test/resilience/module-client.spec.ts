import {
  DynamoDBClient,
  GetItemCommand,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import {
  Controller,
  Get,
  Headers,
  Injectable,
  Res,
  type ExecutionContext,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test, type TestingModule } from '@nestjs/testing';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import request from 'supertest';
import {
  DYNAMO_CACHE_CLIENT,
  DynamoCached,
  DynamoCacheInterceptor,
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
  type DynamoCacheRouteKey,
} from '../../lib/index.js';
import { bootCache, sleep } from '../support/apps.js';
import { dummyClientConfig, useTestDynamo } from '../support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/*
 * The client the module builds: socket and connection timeouts of l2Timeout, cacheMiddleware,
 * the SDK's retries of the cache's calls stopped at l2Timeout, and an abort signal per call only
 * for clients that do not end requests themselves. Then edge cases of the interceptor's hit path
 * (request and response read from the call's arguments; the default key built directly unless
 * trackBy is overridden).
 */

@Injectable()
class QuoteService {
  calls = 0;
  @DynamoCached(600)
  async quote(symbol: string): Promise<string> {
    this.calls++;
    return `quote:${symbol}`;
  }
}

const fx = useTestDynamo();

interface Booted {
  app: TestingModule;
  client: DynamoDBClient;
  service: QuoteService;
  cache: DynamoCacheService;
  /** The options of every call the cache made on its client (`undefined`: none). */
  options: unknown[];
}

/** Boots an app whose cache talks to `endpoint`, recording the options of its client calls. */
async function boot(
  options: Partial<DynamoCacheModuleOptions>,
  endpoint = fx.dynamo.endpoint,
  table?: string,
): Promise<Booted> {
  const app = await bootCache(
    {
      table: table ?? (await fx.dynamo.table()),
      ...options,
      clientConfig:
        options.client === undefined
          ? { ...dummyClientConfig(endpoint), ...options.clientConfig }
          : undefined,
    },
    [QuoteService],
  );
  fx.apps.push(app);
  const client = app.get<DynamoDBClient>(DYNAMO_CACHE_CLIENT);
  const seen: unknown[] = [];
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => unknown;
  (client as { send: unknown }).send = (command: unknown, opts?: unknown) => {
    seen.push(opts);
    return send(command, opts);
  };
  return {
    app,
    client,
    service: app.get(QuoteService),
    cache: app.get(DynamoCacheService),
    options: seen,
  };
}

/** A miss: GetItem, then PutItem. */
async function miss(b: Booted, symbol = 'EUR'): Promise<void> {
  expect(await b.service.quote(symbol)).toBe(`quote:${symbol}`);
  await b.cache.settle();
}

const noOptions = (options: unknown[]): boolean =>
  options.length >= 2 && options.every((o) => o === undefined);
const abortSignals = (options: unknown[]): boolean =>
  options.length >= 2 &&
  options.every((o) => (o as { abortSignal?: unknown } | undefined)?.abortSignal !== undefined);

/** The resolved configuration of the client's Node HTTP handler (after a first request). */
function handlerConfig(client: DynamoDBClient): Record<string, unknown> {
  const handler = client.config.requestHandler as { httpHandlerConfigs?(): object };
  return (handler.httpHandlerConfigs?.() ?? {}) as Record<string, unknown>;
}

/**
 * DynamoDB stalls (the proxy holds every byte for a minute) while two calls miss, then answers
 * again: the L2 errors of a third call made after that. 0 when the stalled requests released the
 * client's two sockets (maxSockets: 2), ≥ 1 when they still hold them.
 */
async function errorsAfterStall(b: Booted, proxy: TcpProxy): Promise<number> {
  await miss(b);
  proxy.latencyMs = 60_000;
  const started = Date.now();
  expect(await Promise.all([b.service.quote('A'), b.service.quote('B')])).toEqual([
    'quote:A',
    'quote:B',
  ]);
  // Every cache call is bounded by l2Timeout (200 ms) whatever the client does.
  expect(Date.now() - started).toBeLessThan(2_000);
  await b.cache.settle();
  proxy.latencyMs = 0;
  await sleep(400);
  const before = b.cache.stats().total.l2Errors;
  expect(await b.service.quote('C')).toBe('quote:C');
  await b.cache.settle();
  return b.cache.stats().total.l2Errors - before;
}

const twoSockets = (): Agent => new Agent({ keepAlive: true, maxSockets: 2 });

/**
 * A front for DynamoDB. Its new connections either go through (`stalled: false`) or are accepted
 * and never answered (`stalled: true`, like a DynamoDB that stopped responding). While `trickleMs`
 * > 0, the next response reaches the client one byte every 40 ms for `trickleMs`, then the rest:
 * the connection stays busy (and active, so no socket timeout ends it) that long.
 */
async function startFront(targetPort: number): Promise<{
  endpoint: string;
  stalled: boolean;
  trickleMs: number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (front.stalled) {
      client.resume();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    let until = 0;
    let timer: NodeJS.Timeout | undefined;
    const pump = (): void => {
      timer = undefined;
      if (client.destroyed || pending.length === 0) return;
      if (Date.now() >= until) {
        client.write(pending);
        pending = Buffer.alloc(0);
        return;
      }
      client.write(pending.subarray(0, 1));
      pending = pending.subarray(1);
      timer = setTimeout(pump, 40);
    };
    upstream.on('data', (chunk: Buffer) => {
      if (pending.length === 0 && timer === undefined) {
        if (front.trickleMs === 0) {
          client.write(chunk);
          return;
        }
        until = Date.now() + front.trickleMs;
      }
      pending = Buffer.concat([pending, chunk]);
      if (timer === undefined) pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const front = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stalled: false,
    trickleMs: 0,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return front;
}

describe('the client the module builds', () => {
  let proxy: TcpProxy;
  beforeEach(async () => {
    proxy = await startTcpProxy(Number(new URL(fx.dynamo.endpoint).port), 0);
  });
  afterEach(async () => {
    await Promise.all(fx.apps.splice(0).map((a) => a.close()));
    await proxy.close();
  });

  it('by default: cacheMiddleware on, no per-call options', async () => {
    const b = await boot({});
    await miss(b);
    expect(b.client.config.cacheMiddleware).toBe(true);
    expect(noOptions(b.options)).toBe(true);
  });

  it('with l2Timeout: null: cacheMiddleware on, no per-call options', async () => {
    const b = await boot({ l2Timeout: null });
    await miss(b);
    expect(b.client.config.cacheMiddleware).toBe(true);
    expect(noOptions(b.options)).toBe(true);
  });

  it('an explicit cacheMiddleware: false is kept', async () => {
    const b = await boot({ clientConfig: { cacheMiddleware: false } });
    await miss(b);
    expect(b.client.config.cacheMiddleware).toBe(false);
  });

  it('requestHandler options: the middleware cache is kept, and stalled requests end at l2Timeout, freeing the sockets', async () => {
    const b = await boot(
      {
        l2Timeout: 200,
        onError: 'bypass',
        circuitBreaker: false,
        clientConfig: { requestHandler: { httpAgent: twoSockets() } },
      },
      proxy.endpoint,
    );
    expect(await errorsAfterStall(b, proxy)).toBe(0);
    expect(b.client.config.cacheMiddleware).toBe(true);
    expect(noOptions(b.options)).toBe(true);
  });

  it('requestHandler options with a socket timeout longer than l2Timeout: an abort signal per call', async () => {
    const b = await boot({
      l2Timeout: 200,
      clientConfig: { requestHandler: { socketTimeout: 5_000 } },
    });
    await miss(b);
    expect(abortSignals(b.options)).toBe(true);
  });

  it('a handler instance of the application: an abort signal per call', async () => {
    const handler = new DynamoDBClient(dummyClientConfig(fx.dynamo.endpoint)).config.requestHandler;
    const b = await boot({ clientConfig: { requestHandler: handler } });
    await miss(b);
    expect(abortSignals(b.options)).toBe(true);
  });

  it('a client of the application: used as is, an abort signal per call', async () => {
    const own = new DynamoDBClient(dummyClientConfig(fx.dynamo.endpoint));
    const b = await boot({ client: own });
    expect(b.client).toBe(own);
    await miss(b);
    expect(abortSignals(b.options)).toBe(true);
    own.destroy();
  });

  /*
   * The module's client ends a stalled attempt with its socket timeout, which the SDK takes for a
   * transient error and would retry (maxAttempts, 3 by default) with no abort signal to stop it:
   * a write the cache gave up on (and reported as failed) would be sent again once DynamoDB
   * answers, over anything written meanwhile. The cache's calls have their retries cut off at
   * l2Timeout; the application's own calls on the client keep the SDK's retries.
   */
  describe('SDK retries of calls the cache gave up on (maxAttempts: 3, the SDK default)', () => {
    async function staleAfterRecovery(clientConfig: DynamoDBClientConfig): Promise<unknown> {
      const table = await fx.dynamo.table();
      const a = await boot(
        { l2Timeout: 200, onError: 'bypass', circuitBreaker: false, clientConfig },
        proxy.endpoint,
        table,
      );
      // Another instance of the service, talking to DynamoDB directly.
      const b = await boot({}, fx.dynamo.endpoint, table);
      await miss(a);
      proxy.latencyMs = 60_000;
      const started = Date.now();
      // The cache gives up on A's write after l2Timeout.
      await a.cache.set('rates', ['EUR'], 'v1-abandoned').catch(() => undefined);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(a.cache.stats().total.l2Errors).toBeGreaterThanOrEqual(1);
      // Later, B writes a newer value; then A's DynamoDB answers again.
      await b.cache.set('rates', ['EUR'], 'v2');
      proxy.latencyMs = 0;
      await sleep(1_500);
      const reader = await boot({}, fx.dynamo.endpoint, table);
      return reader.cache.get('rates', ['EUR']);
    }

    // The module's default client (no requestHandler), with the SDK's default maxAttempts.
    it('a write the cache abandoned at l2Timeout is not retried by the SDK once DynamoDB answers again, so it cannot overwrite a newer value', async () => {
      expect(
        await staleAfterRecovery({ ...dummyClientConfig(proxy.endpoint), maxAttempts: 3 }),
      ).toBe('v2');
    });

    it('the same with a handler instance, given an abort signal per call: the abandoned write is not retried', async () => {
      const handler = new DynamoDBClient({
        ...dummyClientConfig(proxy.endpoint),
        requestHandler: { httpAgent: new Agent({ keepAlive: true }) },
      }).config.requestHandler;
      expect(
        await staleAfterRecovery({
          ...dummyClientConfig(proxy.endpoint),
          maxAttempts: 3,
          requestHandler: handler,
        }),
      ).toBe('v2');
    });

    it("a call of the application's own on DYNAMO_CACHE_CLIENT keeps the SDK's retries past l2Timeout", async () => {
      const table = await fx.dynamo.table();
      const b = await boot(
        {
          l2Timeout: 200,
          onError: 'bypass',
          circuitBreaker: false,
          clientConfig: { maxAttempts: 3 },
        },
        proxy.endpoint,
        table,
      );
      await miss(b);
      // The first attempt stalls and ends at its socket timeout; DynamoDB answers the retry.
      proxy.latencyMs = 60_000;
      setTimeout(() => {
        proxy.latencyMs = 0;
      }, 100);
      const started = Date.now();
      const out = await b.client.send(
        new GetItemCommand({ TableName: table, Key: { cache_key: { S: 'not-a-cache-key' } } }),
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      expect(out.Item).toBeUndefined();
      expect(out.$metadata.attempts).toBeGreaterThanOrEqual(2);
    });

    it('every cache call is still bounded by l2Timeout, and L2 answers again once DynamoDB does', async () => {
      const b = await boot(
        {
          l2Timeout: 200,
          onError: 'bypass',
          circuitBreaker: false,
          clientConfig: { maxAttempts: 3, requestHandler: { httpAgent: twoSockets() } },
        },
        proxy.endpoint,
      );
      await miss(b);
      proxy.latencyMs = 60_000;
      const started = Date.now();
      await Promise.all([b.service.quote('A'), b.service.quote('B')]);
      expect(Date.now() - started).toBeLessThan(1_000);
      await b.cache.settle();
      proxy.latencyMs = 0;
      // The retries of the stalled attempts have run out by then.
      await sleep(1_500);
      const before = b.cache.stats().total.l2Errors;
      expect(await b.service.quote('C')).toBe('quote:C');
      await b.cache.settle();
      expect(b.cache.stats().total.l2Errors - before).toBe(0);
      expect(noOptions(b.options)).toBe(true);
    });
  });

  /*
   * The module's client has a pool of sockets (the SDK's default is 50): a call made while all of
   * them are busy waits in the HTTP agent's queue, where no socket timeout runs. A call the cache
   * gave up on at l2Timeout (and reported as failed) must not leave later, when a socket frees:
   * a write would then land over anything written meanwhile. The connection timeout the module
   * fills in drops it: the SDK's handler counts it from the start of the request until the
   * request has a socket (without it, this test fails: the abandoned write lands).
   */
  describe('a cache call waiting for a free socket when l2Timeout passes', () => {
    it('is dropped from the queue: a write the cache gave up on while it waited never overwrites a newer value, and no per-call options are passed', async () => {
      const front = await startFront(Number(new URL(fx.dynamo.endpoint).port));
      try {
        const table = await fx.dynamo.table();
        const a = await boot(
          {
            l2Timeout: 200,
            onError: 'bypass',
            circuitBreaker: false,
            clientConfig: {
              requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 1 }) },
            },
          },
          front.endpoint,
          table,
        );
        // Another instance of the service, talking to DynamoDB directly.
        const b = await boot({}, fx.dynamo.endpoint, table);
        await miss(a);
        // The application's own call on the client holds its only socket for about 700 ms.
        front.trickleMs = 700;
        const ownStarted = Date.now();
        const own = a.client.send(
          new GetItemCommand({ TableName: table, Key: { cache_key: { S: 'not-a-cache-key' } } }),
        );
        await sleep(50);
        front.trickleMs = 0;
        // Queued behind it, the cache's write is given up at l2Timeout.
        const started = Date.now();
        await a.cache.set('rates', ['EUR'], 'v1-abandoned').catch(() => undefined);
        expect(Date.now() - started).toBeLessThan(500);
        expect(a.cache.stats().total.l2Errors).toBeGreaterThanOrEqual(1);
        // Later, B writes a newer value; then the socket frees.
        await b.cache.set('rates', ['EUR'], 'v2');
        // The application's own call is not bounded by l2Timeout.
        expect((await own).Item).toBeUndefined();
        expect(Date.now() - ownStarted).toBeGreaterThanOrEqual(500);
        await sleep(300);
        const reader = await boot({}, fx.dynamo.endpoint, table);
        expect(await reader.cache.get('rates', ['EUR'])).toBe('v2');
        // The socket serves the cache again.
        const before = a.cache.stats().total.l2Errors;
        await miss(a, 'GBP');
        expect(a.cache.stats().total.l2Errors - before).toBe(0);
        expect(a.client.config.cacheMiddleware).toBe(true);
        expect(noOptions(a.options)).toBe(true);
      } finally {
        await Promise.all(fx.apps.splice(0).map((app) => app.close()));
        await front.close();
      }
    });
  });

  /*
   * The SDK's handler takes a timeout of 0 for "none": such a client ends nothing itself, so the
   * cache passes an abort signal per call.
   */
  describe('a timeout of 0 in requestHandler options (the SDK: no timeout)', () => {
    it('socketTimeout: 0 (none): an abort signal per call, so stalled requests release their sockets', async () => {
      const b = await boot(
        {
          l2Timeout: 200,
          onError: 'bypass',
          circuitBreaker: false,
          clientConfig: { requestHandler: { httpAgent: twoSockets(), socketTimeout: 0 } },
        },
        proxy.endpoint,
      );
      expect(await errorsAfterStall(b, proxy)).toBe(0);
    });

    it('connectionTimeout: 0 (none): an abort signal per call', async () => {
      const b = await boot({
        l2Timeout: 200,
        clientConfig: { requestHandler: { connectionTimeout: 0 } },
      });
      await miss(b);
      expect(handlerConfig(b.client).connectionTimeout).toBe(0);
      expect(abortSignals(b.options)).toBe(true);
    });
  });

  /*
   * A handler written as an object literal ({ handle, … }, e.g. a wrapper around the SDK's
   * handler that counts or logs requests) is used by the SDK as it is (anything with a handle()
   * function is a handler) and takes no timeouts from the module: an abort signal per call.
   */
  it('a requestHandler object literal with handle() is a handler, not options: an abort signal per call, stalled requests release their sockets', async () => {
    const inner = new DynamoDBClient({
      ...dummyClientConfig(proxy.endpoint),
      requestHandler: { httpAgent: twoSockets() },
    }).config.requestHandler as unknown as {
      handle(request: unknown, options?: unknown): Promise<unknown>;
      updateHttpClientConfig(key: never, value: never): void;
      httpHandlerConfigs(): object;
      destroy(): void;
    };
    let sent = 0;
    const wrapper = {
      handle: (req: unknown, options?: unknown) => {
        sent++;
        return inner.handle(req, options);
      },
      updateHttpClientConfig: (key: never, value: never) =>
        inner.updateHttpClientConfig(key, value),
      httpHandlerConfigs: () => inner.httpHandlerConfigs(),
      destroy: () => inner.destroy(),
    };
    const b = await boot(
      {
        l2Timeout: 200,
        onError: 'bypass',
        circuitBreaker: false,
        clientConfig: { requestHandler: wrapper as DynamoDBClientConfig['requestHandler'] },
      },
      proxy.endpoint,
    );
    expect(await errorsAfterStall(b, proxy)).toBe(0);
    expect(sent).toBeGreaterThan(0);
    expect(abortSignals(b.options)).toBe(true);
  });

  /*
   * The SDK's handler arms a socket timeout of 6 s or more only 3 s after the request starts, so
   * with l2Timeout >= 6000 the cache passes an abort signal per call, which frees a stalled
   * request's socket at l2Timeout. (A switchable front stands for DynamoDB here: the TCP proxy
   * would let dynalite's 5 s keep-alive timeout end the stalled connection first.)
   */
  describe('l2Timeout of 6 s or more', () => {
    async function readAfterStallMs(
      requestHandler: DynamoDBClientConfig['requestHandler'],
    ): Promise<number> {
      const front = await startFront(Number(new URL(fx.dynamo.endpoint).port));
      try {
        const b = await boot(
          {
            l2Timeout: 6_000,
            onError: 'bypass',
            circuitBreaker: false,
            clientConfig: { requestHandler },
          },
          front.endpoint,
        );
        front.stalled = true;
        const started = Date.now();
        expect(await b.cache.get('rates', ['A'])).toBeUndefined();
        expect(Date.now() - started).toBeLessThan(6_500);
        // DynamoDB answers again (new connections); the stalled one stays stalled.
        front.stalled = false;
        const t = Date.now();
        expect(await b.cache.get('rates', ['B'])).toBeUndefined();
        expect(b.cache.stats().total.l2Errors).toBe(1);
        return Date.now() - t;
      } finally {
        await Promise.all(fx.apps.splice(0).map((a) => a.close()));
        await front.close();
      }
    }

    it('l2Timeout >= 6000 (the SDK arms such socket timeouts 3 s late): an abort signal per call frees the socket at l2Timeout', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      expect(await readAfterStallMs({ httpAgent: agent })).toBeLessThan(1_000);
    }, 30_000);

    it('the same with an abort signal per call (connectionTimeout > l2Timeout): the socket is free at l2Timeout', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      expect(await readAfterStallMs({ httpAgent: agent, connectionTimeout: 60_000 })).toBeLessThan(
        1_000,
      );
    }, 30_000);
  });

  describe('edge cases that hold', () => {
    it('a requestHandler provider function: an abort signal per call, stalled requests release their sockets', async () => {
      const b = await boot(
        {
          l2Timeout: 200,
          onError: 'bypass',
          circuitBreaker: false,
          clientConfig: {
            requestHandler: (async () => ({ httpAgent: twoSockets() })) as never,
          },
        },
        proxy.endpoint,
      );
      expect(await errorsAfterStall(b, proxy)).toBe(0);
      expect(abortSignals(b.options)).toBe(true);
    });

    it('options with httpsAgent: kept, timeouts filled in, cacheMiddleware and no per-call options', async () => {
      const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 7 });
      const b = await boot({ l2Timeout: 300, clientConfig: { requestHandler: { httpsAgent } } });
      await miss(b);
      expect(b.client.config.cacheMiddleware).toBe(true);
      expect(noOptions(b.options)).toBe(true);
      const config = handlerConfig(b.client);
      expect(config.httpsAgent).toBe(httpsAgent);
      expect(config.connectionTimeout).toBe(300);
      expect(config.socketTimeout).toBe(300);
      httpsAgent.destroy();
    });

    it('requestTimeout only: kept, socket and connection timeouts filled in, stalled requests release their sockets', async () => {
      const b = await boot(
        {
          l2Timeout: 200,
          onError: 'bypass',
          circuitBreaker: false,
          clientConfig: { requestHandler: { httpAgent: twoSockets(), requestTimeout: 5_000 } },
        },
        proxy.endpoint,
      );
      expect(await errorsAfterStall(b, proxy)).toBe(0);
      expect(noOptions(b.options)).toBe(true);
      const config = handlerConfig(b.client);
      expect(config.requestTimeout).toBe(5_000);
      expect(config.socketTimeout).toBe(200);
      expect(config.connectionTimeout).toBe(200);
    });

    it('connectionTimeout larger than l2Timeout: an abort signal per call, stalled requests release their sockets', async () => {
      const b = await boot(
        {
          l2Timeout: 200,
          onError: 'bypass',
          circuitBreaker: false,
          clientConfig: { requestHandler: { httpAgent: twoSockets(), connectionTimeout: 5_000 } },
        },
        proxy.endpoint,
      );
      expect(await errorsAfterStall(b, proxy)).toBe(0);
      expect(abortSignals(b.options)).toBe(true);
    });

    it('a timeout that is not a number: the options are left alone, an abort signal per call', async () => {
      const b = await boot({
        l2Timeout: 200,
        clientConfig: { requestHandler: { socketTimeout: '200' as unknown as number } },
      });
      await miss(b);
      expect(abortSignals(b.options)).toBe(true);
      expect(handlerConfig(b.client).connectionTimeout).toBeUndefined();
    });

    it('requestHandler: undefined spelled out: like none (timeouts filled in, no per-call options)', async () => {
      const b = await boot({ l2Timeout: 250, clientConfig: { requestHandler: undefined } });
      await miss(b);
      expect(b.client.config.cacheMiddleware).toBe(true);
      expect(noOptions(b.options)).toBe(true);
      expect(handlerConfig(b.client).socketTimeout).toBe(250);
      expect(handlerConfig(b.client).connectionTimeout).toBe(250);
    });

    it('requestHandler: undefined with l2Timeout: null: cacheMiddleware, no timeouts, no per-call options', async () => {
      const b = await boot({ l2Timeout: null, clientConfig: { requestHandler: undefined } });
      await miss(b);
      expect(b.client.config.cacheMiddleware).toBe(true);
      expect(noOptions(b.options)).toBe(true);
      expect(handlerConfig(b.client).socketTimeout).toBeUndefined();
    });

    it('a client of the application with a socket timeout of its own: still an abort signal per call', async () => {
      const own = new DynamoDBClient({
        ...dummyClientConfig(fx.dynamo.endpoint),
        requestHandler: { socketTimeout: 100, connectionTimeout: 100 },
      });
      const b = await boot({ l2Timeout: 200, client: own });
      expect(b.client).toBe(own);
      await miss(b);
      expect(abortSignals(b.options)).toBe(true);
      own.destroy();
    });

    it('the socket timeout does not end idle keep-alive sockets: one socket serves calls far apart', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const b = await boot(
        { l2Timeout: 100, clientConfig: { requestHandler: { httpAgent: agent } } },
        proxy.endpoint,
      );
      await miss(b, 'A');
      const free = Object.values(agent.freeSockets).flat();
      expect(free).toHaveLength(1);
      const socket = free[0]!;
      // Idle for several times the socket timeout.
      await sleep(500);
      expect(socket.destroyed).toBe(false);
      await miss(b, 'B');
      expect(Object.values(agent.freeSockets).flat()).toEqual([socket]);
      expect(b.cache.stats().total.l2Errors).toBe(0);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The interceptor's hit path.
// ---------------------------------------------------------------------------------------------

/** What a passthrough handler uses of an Express response or a Fastify reply. */
interface ReplyLike {
  header(name: string, value: string): unknown;
  status(code: number): unknown;
}

@Controller('r')
class RoutesController {
  runs: Record<string, number> = {};
  private run(name: string): number {
    this.runs[name] = (this.runs[name] ?? 0) + 1;
    return this.runs[name];
  }

  @Get('plain')
  @DynamoCached(60)
  plain(@Headers('x-tenant') tenant?: string) {
    return { tenant: tenant ?? null, n: this.run('plain') };
  }

  @Get('pass')
  @DynamoCached({ ttl: 60, statuses: [200, 404] })
  pass(@Res({ passthrough: true }) res: ReplyLike) {
    res.header('Cache-Control', 'public, max-age=60');
    res.header('Content-Language', 'de');
    res.status(404);
    return { missing: true, n: this.run('pass') };
  }
}

type Req = { headers: Record<string, string | string[] | undefined>; url?: string };
const tenantOf = (context: ExecutionContext): string | null => {
  const tenant = context.switchToHttp().getRequest<Req>().headers['x-tenant'];
  return typeof tenant === 'string' ? tenant : null;
};

/** trackBy overridden by a method: by tenant and URL. */
@Injectable()
class SyncTenantInterceptor extends DynamoCacheInterceptor {
  override trackBy(context: ExecutionContext): DynamoCacheRouteKey | undefined {
    return [tenantOf(context), context.switchToHttp().getRequest<Req>().url];
  }
}

/** trackBy overridden by an async method. */
@Injectable()
class AsyncTenantInterceptor extends DynamoCacheInterceptor {
  override async trackBy(context: ExecutionContext): Promise<DynamoCacheRouteKey | undefined> {
    await sleep(1);
    return [tenantOf(context), context.switchToHttp().getRequest<Req>().url];
  }
}

/** trackBy extending the default key with the tenant. */
@Injectable()
class SuperTenantInterceptor extends DynamoCacheInterceptor {
  override trackBy(context: ExecutionContext): DynamoCacheRouteKey | undefined {
    const base = super.trackBy(context) as DynamoCacheRouteKey | undefined;
    return base === undefined ? undefined : [...base, tenantOf(context)];
  }
}

/** trackBy replaced on the instance, not on the prototype. */
@Injectable()
class InstanceTenantInterceptor extends DynamoCacheInterceptor {
  constructor() {
    super();
    this.trackBy = (context) => [tenantOf(context), context.switchToHttp().getRequest<Req>().url];
  }
}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(
  'the interceptor on %s: edge cases of the hit path',
  (_name, makeAdapter) => {
    let apps: INestApplication[] = [];
    afterEach(async () => {
      await Promise.all(apps.map((a) => a.close()));
      apps = [];
    });

    async function serve(global?: Type<DynamoCacheInterceptor>): Promise<{ url: string }> {
      const table = await fx.dynamo.table();
      const moduleRef = await Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({
            table,
            isGlobal: true,
            clientConfig: dummyClientConfig(fx.dynamo.endpoint),
          }),
        ],
        controllers: [RoutesController],
        providers: global ? [{ provide: APP_INTERCEPTOR, useClass: global }] : [],
      }).compile();
      const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
      await app.listen(0, '127.0.0.1');
      apps.push(app);
      const { port } = app.getHttpServer().address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}` };
    }

    it('the default key: HIT whatever x-tenant says (the header is not part of it)', async () => {
      const { url } = await serve();
      const a = await request(url).get('/r/plain').set('x-tenant', 'a').expect(200);
      expect(a.headers['x-cache']).toBe('MISS');
      const b = await request(url).get('/r/plain').set('x-tenant', 'b').expect(200);
      expect(b.headers['x-cache']).toBe('HIT');
      expect(b.body).toEqual({ tenant: 'a', n: 1 });
    });

    it('HEAD after GET is a HIT (keyed as GET); GET after HEAD is a HIT with the body', async () => {
      const { url } = await serve();
      await request(url).get('/r/plain?x=1').expect(200);
      const head = await request(url).head('/r/plain?x=1').expect(200);
      expect(head.headers['x-cache']).toBe('HIT');
      const first = await request(url).head('/r/plain?x=2').expect(200);
      expect(first.headers['x-cache']).toBe('MISS');
      const get = await request(url).get('/r/plain?x=2').expect(200);
      expect(get.headers['x-cache']).toBe('HIT');
      expect(get.body).toEqual({ tenant: null, n: 2 });
    });

    it('@Res({ passthrough: true }): a HIT replays the status and the headers on the response', async () => {
      const { url } = await serve();
      const a = await request(url).get('/r/pass').expect(404);
      expect(a.headers['x-cache']).toBe('MISS');
      const b = await request(url).get('/r/pass').expect(404);
      expect(b.headers['x-cache']).toBe('HIT');
      expect(b.headers['content-language']).toBe('de');
      expect(b.headers['cache-control']).toBe('public, max-age=60');
      expect(b.headers.etag).toBe(a.headers.etag);
      expect(b.body).toEqual({ missing: true, n: 1 });
    });

    it.each([
      ['a method', SyncTenantInterceptor],
      ['an async method', AsyncTenantInterceptor],
      ['a method calling super.trackBy', SuperTenantInterceptor],
      ['an instance property', InstanceTenantInterceptor],
    ] as [string, Type<DynamoCacheInterceptor>][])(
      'a subclass overriding trackBy with %s: its key is used (tenants apart), hits replay',
      async (_kind, Subclass) => {
        const { url } = await serve(Subclass);
        const a = await request(url).get('/r/plain').set('x-tenant', 'a').expect(200);
        expect(a.headers['x-cache']).toBe('MISS');
        const a2 = await request(url).get('/r/plain').set('x-tenant', 'a').expect(200);
        expect(a2.headers['x-cache']).toBe('HIT');
        expect(a2.headers.etag).toBe(a.headers.etag);
        const b = await request(url).get('/r/plain').set('x-tenant', 'b').expect(200);
        expect(b.headers['x-cache']).toBe('MISS');
        expect(b.body).toEqual({ tenant: 'b', n: 2 });
        const pass = await request(url).get('/r/pass').set('x-tenant', 'a').expect(404);
        expect(pass.headers['x-cache']).toBe('MISS');
        const pass2 = await request(url).get('/r/pass').set('x-tenant', 'a').expect(404);
        expect(pass2.headers['x-cache']).toBe('HIT');
        expect(pass2.headers['content-language']).toBe('de');
      },
    );
  },
);
