import { Injectable } from '@nestjs/common';
import { DynamoCached } from '../../lib/index.js';
import { scanTable, sleep } from '../support/apps.js';
import { dummyClientConfig, startDynamo, type TestDynamo } from '../support/dynamo-server.js';
import { bootLogged } from '../support/recording-logger.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

@Injectable()
class OrderService {
  computed = 0;

  @DynamoCached(600)
  async total(orderId: number): Promise<number> {
    const value = orderId * 3;
    this.computed++;
    return value;
  }
}

@Injectable()
class GatedOrderService {
  started = 0;
  release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));

  @DynamoCached(600)
  async total(orderId: number): Promise<number> {
    this.started++;
    await this.gate;
    return orderId * 3;
  }
}

describe('graceful shutdown', () => {
  let dynamo: TestDynamo;
  let proxy: TcpProxy;

  beforeAll(async () => {
    dynamo = await startDynamo();
    // Each request and response is held back, so writes are still in flight at shutdown.
    proxy = await startTcpProxy(Number(new URL(dynamo.endpoint).port), 150);
  });
  afterAll(async () => {
    await proxy.close();
    await dynamo.close();
  });

  it('lets 100 writes in flight finish before the module destroys its client: all 100 items are in the table', async () => {
    const table = await dynamo.table('shutdown');
    proxy.latencyMs = 150;
    const app = await bootLogged(
      { table, clientConfig: dummyClientConfig(proxy.endpoint), l2Timeout: 5000 },
      [OrderService],
    );
    const service = app.get(OrderService);
    const results = Promise.all(Array.from({ length: 100 }, (_, i) => service.total(i)));
    // Every method has returned (after its GetItem), so every PutItem is now on the wire.
    while (service.computed < 100) await sleep(5);
    await sleep(0);
    const items = await scanTable(dynamo.client(), table);
    expect(items.length).toBeLessThan(100);

    await app.close();
    expect(await results).toEqual(Array.from({ length: 100 }, (_, i) => i * 3));
    const stored = await scanTable(dynamo.client(), table);
    expect(stored).toHaveLength(100);
  });

  it('does not wait longer than l2Timeout for a DynamoDB that does not answer', async () => {
    const table = await dynamo.table('shutdown');
    const app = await bootLogged(
      {
        table,
        clientConfig: dummyClientConfig(proxy.endpoint),
        l2Timeout: 400,
        onError: 'bypass',
      },
      [GatedOrderService],
    );
    const service = app.get(GatedOrderService);
    // GetItems answer in time (~200 ms); then the proxy turns unresponsive before the methods
    // return, so the PutItems cannot.
    proxy.latencyMs = 100;
    const results = Promise.all(Array.from({ length: 20 }, (_, i) => service.total(i)));
    while (service.started < 20) await sleep(5);
    proxy.latencyMs = 10_000;
    service.release();
    await sleep(0);
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await results).toEqual(Array.from({ length: 20 }, (_, i) => i * 3));
  });
});
