import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoCacheError, DynamoCacheService, DynamoCached } from '../../lib/index.js';
import { dummyClientConfig } from '../support/dynamo-server.js';
import { bootLogged, RecordingLogger } from '../support/recording-logger.js';

/*
 * The one error branch this file covers with a stand-in: DynamoDB answering "throttled". No
 * emulator throttles on demand, so a loopback HTTP server answers every request the way DynamoDB
 * does when it throttles (HTTP 400, a JSON body naming the exception). The real SDK client, with
 * its real retry strategy, talks to it.
 */

@Injectable()
class FeedService {
  calls = 0;

  @DynamoCached()
  async feed(id: string): Promise<string> {
    this.calls++;
    return `feed ${id}`;
  }
}

type ThrottleError = 'ProvisionedThroughputExceededException' | 'ThrottlingException';

describe('throttling: the SDK retries, then the onError policy applies', () => {
  let server: Server;
  let endpoint: string;
  let error: ThrottleError = 'ProvisionedThroughputExceededException';
  const requests: string[] = [];
  const apps: TestingModule[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests.push(String(req.headers['x-amz-target']).split('.')[1] ?? '?');
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(
          JSON.stringify({
            __type: `com.amazonaws.dynamodb.v20120810#${error}`,
            message: 'Rate of requests exceeds the allowed throughput.',
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    requests.length = 0;
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function boot(onError: 'throw' | 'bypass', logger?: RecordingLogger) {
    const app = await bootLogged(
      {
        table: 'throttled',
        // Two attempts per call: the SDK's own retry, with its throttling back-off.
        clientConfig: { ...dummyClientConfig(endpoint), maxAttempts: 2 },
        l2Timeout: 5000,
        onError,
        circuitBreaker: false,
      },
      [FeedService],
      logger ?? false,
    );
    apps.push(app);
    return app;
  }

  it.each<ThrottleError>(['ProvisionedThroughputExceededException', 'ThrottlingException'])(
    "%s under 'throw': retried by the SDK, then DynamoCacheError with the SDK error as cause",
    async (name) => {
      error = name;
      const app = await boot('throw');
      const service = app.get(FeedService);
      const err = (await service.feed('a').catch((e: unknown) => e)) as DynamoCacheError;
      expect(err).toBeInstanceOf(DynamoCacheError);
      expect(err.operation).toBe('GetItem');
      expect((err.cause as Error).name).toBe(name);
      expect(requests).toEqual(['GetItem', 'GetItem']);
      expect(service.calls).toBe(0);
      expect(app.get(DynamoCacheService).stats().total.l2Errors).toBe(1);
    },
  );

  it("under 'bypass': retried by the SDK, then the call is served by the method, with one warning", async () => {
    error = 'ProvisionedThroughputExceededException';
    const logger = new RecordingLogger();
    const app = await boot('bypass', logger);
    const service = app.get(FeedService);
    expect(await service.feed('b')).toBe('feed b');
    expect(requests).toEqual(['GetItem', 'GetItem', 'PutItem', 'PutItem']);
    expect(service.calls).toBe(1);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(/GetItem .* failed: ProvisionedThroughputExceededException/);
  });
});
