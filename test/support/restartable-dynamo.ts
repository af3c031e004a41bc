import dynalite from 'dynalite';
import { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { testDynamoAt, type TestDynamo } from './dynamo-server.js';
import { startTcpProxy } from './tcp-proxy.js';

/** A DynamoDB server a test can take down and bring back on the same port, data intact. */
export interface RestartableDynamo extends TestDynamo {
  /** Stops the server: open connections are cut, new ones refused. */
  stop(): Promise<void>;
  /** Starts it again on the same port (nothing to do when it is running). */
  start(): Promise<void>;
}

/**
 * dynalite in-process, its HTTP listener stopped and restarted on the same port, its data kept
 * (as a server with durable storage would). dynalite's own `close()` would also close and then
 * recreate its in-memory database, losing the tables, so the plain `http.Server` close is used. With `DYNAMO_CACHE_TEST_ENDPOINT` set (DynamoDB Local in CI), whose process a test
 * cannot stop, a loopback proxy in front of it is stopped instead: clients see the same refused
 * connections.
 */
export async function startRestartableDynamo(): Promise<RestartableDynamo> {
  const external = process.env.DYNAMO_CACHE_TEST_ENDPOINT;
  let endpoint: string;
  let stop: () => Promise<void>;
  let start: () => Promise<void>;
  let shutdown: () => Promise<void>;
  let running = true;
  if (external) {
    const proxy = await startTcpProxy(Number(new URL(external).port));
    endpoint = proxy.endpoint;
    stop = () => proxy.stop();
    start = () => proxy.start();
    shutdown = () => proxy.close();
  } else {
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    endpoint = `http://127.0.0.1:${port}`;
    stop = async () => {
      const closed = new Promise<void>((resolve) =>
        HttpServer.prototype.close.call(server, () => resolve()),
      );
      server.closeAllConnections();
      await closed;
    };
    start = () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    shutdown = () => new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return {
    ...testDynamoAt(endpoint, () => (running ? shutdown() : Promise.resolve()), 'resilience'),
    async stop() {
      if (!running) return;
      running = false;
      await stop();
    },
    async start() {
      if (running) return;
      await start();
      running = true;
    },
  };
}
