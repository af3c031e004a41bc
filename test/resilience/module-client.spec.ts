import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { Agent } from 'node:http';
import {
  DYNAMO_CACHE_CLIENT,
  DynamoCached,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
} from '../../lib/index.js';
import { bootCache } from '../support/apps.js';
import { dummyClientConfig, useTestDynamo } from '../support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/*
 * The client the module builds passes no per-call options, so the SDK's middleware cache
 * (cacheMiddleware: true) stays in use: with the default options, with l2Timeout: null, and with
 * a requestHandler given as plain options (the module fills in its timeouts). A client that cannot
 * be trusted to end requests at l2Timeout gets an abort signal per call instead.
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

/** Boots an app and records the options of every call its cache makes on its client. */
async function bootRecording(
  options: Partial<DynamoCacheModuleOptions>,
  endpoint = fx.dynamo.endpoint,
): Promise<{ app: TestingModule; client: DynamoDBClient; options: unknown[] }> {
  const table = await fx.dynamo.table();
  const app = await bootCache(
    {
      table,
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
  return { app, client, options: seen };
}

/** A miss (GetItem, PutItem) and, from a second app on the same table, an L2 hit. */
async function missThenHit(app: TestingModule): Promise<void> {
  const service = app.get(QuoteService);
  expect(await service.quote('EUR')).toBe('quote:EUR');
  await app.get(DynamoCacheService).settle();
  expect(service.calls).toBe(1);
}

describe('the client the module builds', () => {
  it('by default: cacheMiddleware on, no per-call options', async () => {
    const { app, client, options } = await bootRecording({});
    await missThenHit(app);
    expect(client.config.cacheMiddleware).toBe(true);
    expect(options.length).toBeGreaterThanOrEqual(2);
    expect(options.every((o) => o === undefined)).toBe(true);
  });

  it('with l2Timeout: null: cacheMiddleware on, no per-call options', async () => {
    const { app, client, options } = await bootRecording({ l2Timeout: null });
    await missThenHit(app);
    expect(client.config.cacheMiddleware).toBe(true);
    expect(options.length).toBeGreaterThanOrEqual(2);
    expect(options.every((o) => o === undefined)).toBe(true);
  });

  it('an explicit cacheMiddleware: false is kept', async () => {
    const { app, client } = await bootRecording({ clientConfig: { cacheMiddleware: false } });
    await missThenHit(app);
    expect(client.config.cacheMiddleware).toBe(false);
  });

  describe('with a requestHandler given as options', () => {
    let proxy: TcpProxy;
    beforeEach(async () => {
      proxy = await startTcpProxy(Number(new URL(fx.dynamo.endpoint).port), 0);
    });
    afterEach(async () => {
      await Promise.all(fx.apps.splice(0).map((a) => a.close()));
      await proxy.close();
    });

    it('keeps the middleware cache, and still ends stalled requests at l2Timeout, freeing the sockets', async () => {
      const { app, client, options } = await bootRecording(
        {
          l2Timeout: 200,
          onError: 'bypass',
          circuitBreaker: false,
          clientConfig: {
            requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 2 }) },
          },
        },
        proxy.endpoint,
      );
      const service = app.get(QuoteService);
      const cache = app.get(DynamoCacheService);
      await missThenHit(app);
      expect(client.config.cacheMiddleware).toBe(true);
      // DynamoDB stalls: both calls give up after 200 ms, and the handler ends their requests
      // (its socket timeout, filled in by the module).
      proxy.latencyMs = 60_000;
      const started = Date.now();
      await Promise.all([service.quote('A'), service.quote('B')]);
      expect(Date.now() - started).toBeLessThan(5_000);
      await cache.settle();
      // DynamoDB answers again, on the two sockets the stalled requests held.
      proxy.latencyMs = 0;
      await new Promise((r) => setTimeout(r, 300));
      const before = cache.stats().total.l2Errors;
      expect(await service.quote('C')).toBe('quote:C');
      await cache.settle();
      expect(cache.stats().total.l2Errors - before).toBe(0);
      expect(options.every((o) => o === undefined)).toBe(true);
    });

    it('with a socket timeout longer than l2Timeout: an abort signal per call', async () => {
      const { app, options } = await bootRecording(
        {
          l2Timeout: 200,
          clientConfig: { requestHandler: { socketTimeout: 5_000 } },
        },
        proxy.endpoint,
      );
      await missThenHit(app);
      expect(options.length).toBeGreaterThanOrEqual(2);
      expect(
        options.every((o) => (o as { abortSignal?: unknown })?.abortSignal !== undefined),
      ).toBe(true);
    });
  });

  it('a handler instance of the application: an abort signal per call', async () => {
    const handler = new DynamoDBClient(dummyClientConfig(fx.dynamo.endpoint)).config.requestHandler;
    const { app, options } = await bootRecording({ clientConfig: { requestHandler: handler } });
    await missThenHit(app);
    expect(options.length).toBeGreaterThanOrEqual(2);
    expect(options.every((o) => (o as { abortSignal?: unknown })?.abortSignal !== undefined)).toBe(
      true,
    );
  });

  it('a client of the application: used as is, an abort signal per call', async () => {
    const own = new DynamoDBClient(dummyClientConfig(fx.dynamo.endpoint));
    const { app, client, options } = await bootRecording({ client: own });
    expect(client).toBe(own);
    await missThenHit(app);
    expect(options.length).toBeGreaterThanOrEqual(2);
    expect(options.every((o) => (o as { abortSignal?: unknown })?.abortSignal !== undefined)).toBe(
      true,
    );
    own.destroy();
  });
});
