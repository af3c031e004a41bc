import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { DynamoCacheError, DynamoCached, L2TimeoutError } from '../../lib/index.js';
import { sleep } from '../support/apps.js';
import {
  countCalls,
  dummyClientConfig,
  startDynamo,
  type TestDynamo,
} from '../support/dynamo-server.js';
import { bootLogged, RecordingLogger } from '../support/recording-logger.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const METHOD_MS = 20;

@Injectable()
class QuoteService {
  calls = 0;

  @DynamoCached()
  async quote(symbol: string): Promise<string> {
    this.calls++;
    await sleep(METHOD_MS);
    return `quote:${symbol}`;
  }
}

/** Runs `call`, returning its outcome and how long it took. */
async function timed<T>(
  call: () => Promise<T>,
): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = performance.now();
  try {
    const value = await call();
    return { ms: performance.now() - started, value };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

describe('l2Timeout: DynamoDB behind a loopback proxy that adds 2 s of latency', () => {
  let dynamo: TestDynamo;
  let proxy: TcpProxy;
  const apps: TestingModule[] = [];

  beforeAll(async () => {
    dynamo = await startDynamo();
    proxy = await startTcpProxy(Number(new URL(dynamo.endpoint).port), 2000);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await proxy.close();
    await dynamo.close();
  });

  async function boot(options: { onError: 'throw' | 'bypass'; circuitBreaker?: false }) {
    const table = await dynamo.table();
    const logger = new RecordingLogger();
    // A module-created client, pointed at the slow proxy.
    const app = await bootLogged(
      { table, clientConfig: dummyClientConfig(proxy.endpoint), l2Timeout: 50, ...options },
      [QuoteService],
      logger,
    );
    apps.push(app);
    return { service: app.get(QuoteService), logger };
  }

  it("'bypass': every call returns its value within the method's time plus the abandoned GetItem and PutItem", async () => {
    const { service, logger } = await boot({ onError: 'bypass', circuitBreaker: false });
    for (const symbol of ['AAA', 'BBB', 'CCC']) {
      const { ms, value, error } = await timed(() => service.quote(symbol));
      expect(error).toBeUndefined();
      expect(value).toBe(`quote:${symbol}`);
      // Method 20 ms + GetItem 50 ms + PutItem 50 ms, against 4 s for a round trip through the
      // proxy: the bound is generous because it asserts the abandonment, not speed.
      expect(ms).toBeLessThan(1000);
    }
    expect(service.calls).toBe(3);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(/GetItem .* timed out after 50 ms \(l2Timeout\)/);
  });

  it("'throw': a GetItem slower than l2Timeout rejects with DynamoCacheError (cause L2TimeoutError) without calling the method", async () => {
    const { service } = await boot({ onError: 'throw' });
    const { ms, error } = await timed(() => service.quote('DDD'));
    expect(ms).toBeLessThan(1000);
    expect(error).toBeInstanceOf(DynamoCacheError);
    expect(error).toMatchObject({ operation: 'GetItem', namespace: 'QuoteService.quote' });
    expect((error as Error).message).toMatch(/timed out after 50 ms/);
    expect((error as Error).cause).toBeInstanceOf(L2TimeoutError);
    expect(service.calls).toBe(0);
  });

  it("a PutItem slower than l2Timeout is abandoned too: 'throw' rejects with the result attached and keeps it in L1", async () => {
    const table = await dynamo.table();
    // The application's own client: GetItem goes straight to dynalite, PutItem through the proxy.
    const client = dynamo.client();
    const calls = countCalls(client);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutItemCommand') {
          const request = (args as { request: { port?: number } }).request;
          request.port = proxy.port;
        }
        return next(args);
      },
      { step: 'finalizeRequest', name: 'putItemThroughSlowProxy' },
    );
    // Connection and credentials ready, so the direct GetItem is well within its 300 ms.
    await client.send(new DescribeTableCommand({ TableName: table }));
    const app = await bootLogged(
      { table, client, onError: 'throw', l2Timeout: 300, circuitBreaker: false },
      [QuoteService],
    );
    apps.push(app);
    const service = app.get(QuoteService);
    const { ms, error } = await timed(() => service.quote('EEE'));
    expect(ms).toBeLessThan(1000);
    expect(error).toBeInstanceOf(DynamoCacheError);
    expect(error).toMatchObject({ operation: 'PutItem', result: 'quote:EEE' });
    expect((error as Error).cause).toBeInstanceOf(L2TimeoutError);
    expect(calls.counts).toEqual({ DescribeTable: 1, GetItem: 1, PutItem: 1 });
    // The result was kept in L1 all the same.
    expect(await service.quote('EEE')).toBe('quote:EEE');
    expect(service.calls).toBe(1);
  });
});
