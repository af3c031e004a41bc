import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { Agent } from 'node:http';
import { DynamoCached, DynamoCacheService } from '../../lib/index.js';
import { bootCache } from '../support/apps.js';
import { dummyClientConfig, startDynamo, type TestDynamo } from '../support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/*
 * Requests abandoned at l2Timeout must not hold the client's sockets: with a requestHandler of
 * the application's own (here a handler with two keep-alive sockets), the cache aborts them, so
 * L2 works again as soon as DynamoDB answers. (Handler options instead: module-client.spec.ts.)
 */

@Injectable()
class QuoteService {
  @DynamoCached(600)
  async quote(symbol: string): Promise<string> {
    return `quote:${symbol}`;
  }
}

describe('abandoned requests release their sockets', () => {
  let dynamo: TestDynamo;
  let proxy: TcpProxy;
  const apps: TestingModule[] = [];

  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  beforeEach(async () => {
    proxy = await startTcpProxy(Number(new URL(dynamo.endpoint).port), 0);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await proxy.close();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  async function errorsAfterRecovery(extra: { cacheMiddleware?: boolean }): Promise<number> {
    const table = await dynamo.table();
    const app = await bootCache(
      {
        table,
        l2Timeout: 200,
        onError: 'bypass',
        circuitBreaker: false,
        clientConfig: {
          ...dummyClientConfig(proxy.endpoint),
          // A handler instance (not options the module could add its timeouts to): the cache
          // passes an abort signal with each call.
          requestHandler: new DynamoDBClient({
            ...dummyClientConfig(proxy.endpoint),
            requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 2 }) },
          }).config.requestHandler,
          ...extra,
        },
      },
      [QuoteService],
    );
    apps.push(app);
    const service = app.get(QuoteService);
    const cache = app.get(DynamoCacheService);
    expect(await service.quote('warm')).toBe('quote:warm');
    await cache.settle();
    // DynamoDB stalls: both calls give up after 200 ms.
    proxy.latencyMs = 60_000;
    await Promise.all([service.quote('A'), service.quote('B')]);
    await cache.settle();
    // DynamoDB answers again.
    proxy.latencyMs = 0;
    await new Promise((r) => setTimeout(r, 300));
    const before = cache.stats().total.l2Errors;
    expect(await service.quote('C')).toBe('quote:C');
    await cache.settle();
    return cache.stats().total.l2Errors - before;
  }

  it('a requestHandler of the application: L2 works again once DynamoDB answers', async () => {
    expect(await errorsAfterRecovery({})).toBe(0);
  });

  it('the same with cacheMiddleware: true (the abort signal still goes with each call)', async () => {
    expect(await errorsAfterRecovery({ cacheMiddleware: true })).toBe(0);
  });
});
