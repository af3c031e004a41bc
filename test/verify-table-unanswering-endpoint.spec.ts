import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoCacheError, verifyCacheTable } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { dummyClientConfig, useTestDynamo } from './support/dynamo-server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/*
 * `verifyTable` against an endpoint that accepts connections but never answers, through an
 * application's own client (no socket timeout): each DescribeTable is bounded, so bootstrap fails
 * with the documented error instead of hanging.
 */

describe('verifyTable: an endpoint that never answers', () => {
  const fx = useTestDynamo();
  let proxy: TcpProxy;
  let client: DynamoDBClient;

  beforeEach(async () => {
    // Every byte held back for 10 minutes: the connection opens, no answer ever comes.
    proxy = await startTcpProxy(Number(new URL(fx.dynamo.endpoint).port), 600_000);
    client = new DynamoDBClient(dummyClientConfig(proxy.endpoint));
  });

  afterEach(async () => {
    client.destroy();
    await proxy.close();
  });

  it('bootstrap with an application client fails with a DescribeTable DynamoCacheError within seconds, not never', async () => {
    const table = await fx.dynamo.table('silent');
    const started = Date.now();
    const outcome = await Promise.race([
      bootCache({ table, client, verifyTable: true }, []).then(
        (moduleRef) => {
          fx.apps.push(moduleRef);
          return 'booted';
        },
        (err: unknown) => err,
      ),
      sleep(20_000).then(() => 'still bootstrapping after 20 s'),
    ]);
    expect(outcome).toBeInstanceOf(DynamoCacheError);
    const error = outcome as DynamoCacheError;
    expect(error.operation).toBe('DescribeTable');
    expect(error.message).toContain(`"${table}"`);
    expect(error.message).toMatch(/did not answer within \d+ ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('verifyCacheTable gives up one DescribeTable after callTimeoutMs', async () => {
    const table = await fx.dynamo.table('silent');
    const started = Date.now();
    const error = await verifyCacheTable(client, table, { callTimeoutMs: 300 }).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(DynamoCacheError);
    expect((error as DynamoCacheError).message).toContain('did not answer within 300 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('verifyCacheTable never outlasts its timeoutMs, whatever callTimeoutMs allows one call', async () => {
    const table = await fx.dynamo.table('silent');
    const started = Date.now();
    const error = await verifyCacheTable(client, table, {
      timeoutMs: 400,
      callTimeoutMs: 60_000,
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DynamoCacheError);
    expect((error as DynamoCacheError).operation).toBe('DescribeTable');
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
