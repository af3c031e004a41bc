import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import {
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { DynamoCacheHealthIndicator } from '../lib/terminus/index.js';
import { scanTable } from './support/apps.js';
import {
  countCalls,
  dummyClientConfig,
  testServerKind,
  useTestDynamo,
} from './support/dynamo-server.js';
import { startRestartableDynamo, type RestartableDynamo } from './support/restartable-dynamo.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/* DynamoCacheHealthIndicator (nestjs-dynamo-cache/terminus) behind a real Terminus endpoint. */

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly cache: DynamoCacheHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.cache.isHealthy('cache', { timeout: 2000 })]);
  }
}

/** An HTTP application with the cache module, Terminus and GET /health. */
async function healthApp(options: DynamoCacheModuleOptions) {
  const moduleRef = await Test.createTestingModule({
    imports: [DynamoCacheModule.forRoot(options), TerminusModule.forRoot({ logger: false })],
    controllers: [HealthController],
    providers: [DynamoCacheHealthIndicator],
  }).compile();
  const http: INestApplication = moduleRef.createNestApplication({ logger: false });
  await http.listen(0, '127.0.0.1');
  const { port } = http.getHttpServer().address() as AddressInfo;
  return {
    http,
    cache: http.get(DynamoCacheService),
    indicator: http.get(DynamoCacheHealthIndicator),
    health: () => request(`http://127.0.0.1:${port}`).get('/health'),
  };
}

describe(`DynamoCacheHealthIndicator on a live server (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  it('up: GET /health is 200 with table, region, closed circuit and latency, after exactly one GetItem that writes nothing', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const app = await healthApp({ table, client });
    fx.apps.push(app.http);

    const res = await app.health().expect(200);
    expect(res.body).toMatchObject({ status: 'ok', error: {} });
    expect(res.body.info).toEqual({
      cache: {
        status: 'up',
        table,
        region: 'us-east-1',
        circuit: 'closed',
        latencyMs: expect.any(Number),
      },
    });
    expect(res.body.info.cache.latencyMs).toBeGreaterThanOrEqual(0);
    // One real read of a key no entry uses; nothing is written.
    expect(calls.counts).toEqual({ GetItem: 1 });
    expect(await scanTable(fx.admin, table)).toEqual([]);
  });

  it('table option: checks the table named, not the module table', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const app = await healthApp({ table, client });
    fx.apps.push(app.http);
    const missing = `missing-${Date.now()}`;

    const other = await app.indicator.isHealthy('other', { table: missing });
    expect(other).toEqual({
      other: {
        status: 'down',
        table: missing,
        region: 'us-east-1',
        circuit: 'closed',
        latencyMs: expect.any(Number),
        message: expect.any(String),
      },
    });
    expect(other.other.message).not.toBe('');
    expect(await app.indicator.isHealthy('cache')).toMatchObject({
      cache: { status: 'up', table },
    });
  });

  it('a server that accepts connections but never answers: down within its timeout, the message naming it', async () => {
    const table = await fx.dynamo.table();
    // Every byte held back for a minute: the connection opens, no answer comes.
    const proxy: TcpProxy = await startTcpProxy(Number(new URL(fx.dynamo.endpoint).port), 60_000);
    const client = new DynamoDBClient(dummyClientConfig(proxy.endpoint));
    try {
      const app = await healthApp({ table, client });
      fx.apps.push(app.http);

      const started = performance.now();
      const result = await app.indicator.isHealthy('cache', { timeout: 300 });
      const elapsed = performance.now() - started;
      expect(result).toEqual({
        cache: {
          status: 'down',
          table,
          region: 'us-east-1',
          circuit: 'closed',
          latencyMs: expect.any(Number),
          message: 'no answer within 300 ms',
        },
      });
      expect(elapsed).toBeLessThan(1500);
    } finally {
      client.destroy();
      await proxy.close();
    }
  });
});

describe(`DynamoCacheHealthIndicator when DynamoDB is unavailable (${testServerKind()})`, () => {
  let dynamo: RestartableDynamo;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    dynamo = await startRestartableDynamo();
  });
  afterEach(async () => {
    // A failed test may leave the server stopped.
    await dynamo.start();
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await dynamo.close();
  });

  it('server stopped: 503, down with table, region and the failure; 200 again once it is back', async () => {
    const table = await dynamo.table();
    const client = dynamo.client();
    const app = await healthApp({ table, client });
    apps.push(app.http);
    await app.health().expect(200);

    await dynamo.stop();
    const res = await app.health().expect(503);
    expect(res.body).toMatchObject({ status: 'error', info: {} });
    expect(res.body.error).toEqual({
      cache: {
        status: 'down',
        table,
        region: 'us-east-1',
        circuit: 'closed',
        latencyMs: expect.any(Number),
        message: expect.any(String),
      },
    });
    // The connection is refused (not a timeout).
    expect(res.body.error.cache.message).toMatch(/ECONNREFUSED/);

    await dynamo.start();
    const back = await app.health().expect(200);
    expect(back.body.info.cache).toMatchObject({ status: 'up', table });
  });

  it('circuit open: 503 without any DynamoDB call, even though the server answers again', async () => {
    const table = await dynamo.table();
    const client = dynamo.client();
    const calls = countCalls(client);
    const app = await healthApp({
      table,
      client,
      onError: 'bypass',
      circuitBreaker: { failures: 2, cooldownMs: 60_000 },
    });
    apps.push(app.http);

    await dynamo.stop();
    // A miss: its GetItem and its PutItem fail, two consecutive failures.
    expect(await app.cache.wrap('reports', ['r1'], async () => 'computed')).toBe('computed');
    expect(calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    expect(app.cache.circuitState()).toBe('open');

    await dynamo.start();
    // The server answers (through another client)...
    const admin = dynamo.client();
    await admin.send(new GetItemCommand({ TableName: table, Key: { cache_key: { S: 'x' } } }));

    // ...but the circuit is open: down, and the check itself calls nothing.
    calls.reset();
    const res = await app.health().expect(503);
    expect(res.body.error).toEqual({
      cache: {
        status: 'down',
        table,
        region: 'us-east-1',
        circuit: 'open',
        message: 'circuit breaker open: DynamoDB is being skipped',
      },
    });
    expect(calls.total()).toBe(0);
    expect(app.cache.circuitState()).toBe('open');
  });
});
