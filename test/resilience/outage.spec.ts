import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable, type LoggerService } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { CacheEngine } from '../../lib/engine/cache-engine.js';
import {
  CircuitOpenError,
  DynamoCacheError,
  DynamoCacheService,
  DynamoCached,
  type DynamoCacheModuleOptions,
} from '../../lib/index.js';
import { scanTable, sleep } from '../support/apps.js';
import { countCalls } from '../support/dynamo-server.js';
import { bootLogged, RecordingLogger } from '../support/recording-logger.js';
import { startRestartableDynamo, type RestartableDynamo } from '../support/restartable-dynamo.js';

@Injectable()
class SquareService {
  calls = 0;

  @DynamoCached()
  async square(n: number): Promise<number> {
    this.calls++;
    return n * n;
  }
}

/** Waits (polling) until `condition` holds, failing after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

describe('DynamoDB stops in the middle of the traffic', () => {
  let dynamo: RestartableDynamo;
  const apps: TestingModule[] = [];

  beforeAll(async () => {
    dynamo = await startRestartableDynamo();
  });
  afterEach(async () => {
    // A failed test may leave the server stopped; the next one needs it.
    await dynamo.start();
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await dynamo.close();
  });

  /** A fresh application on a new table, with its own counted client, closed after the test. */
  async function boot(
    options: Partial<DynamoCacheModuleOptions>,
    logger: LoggerService | false = false,
  ) {
    const table = await dynamo.table();
    const client = dynamo.client();
    const calls = countCalls(client);
    const app = await bootLogged({ table, client, ...options }, [SquareService], logger);
    apps.push(app);
    return { table, client, calls, app };
  }

  it("'bypass': 1,000 calls, server stopped mid-way, zero failures and every result right; after a restart L2 is used again once the cool-down ends", async () => {
    const logger = new RecordingLogger();
    const cooldownMs = 2500;
    const { table, client, calls, app } = await boot(
      {
        onError: 'bypass',
        // Generous: the failures here are refused or cut connections, which fail at once; a
        // short timeout would only add spurious failures on a busy machine.
        l2Timeout: 5000,
        circuitBreaker: { failures: 5, cooldownMs },
      },
      logger,
    );
    const service = app.get(SquareService);
    const engine = app.get(CacheEngine);
    // Warm the client up (credentials, endpoint, first connection) before the measured traffic.
    expect(await service.square(-1)).toBe(1);
    calls.reset();
    service.calls = 0;

    // 1,000 distinct keys pulled by 20 concurrent callers; the server goes down after the 400th
    // call has started, while others are in flight.
    const results = new Map<number, number>();
    let failures = 0;
    let next = 0;
    let stopped: Promise<void> | undefined;
    let getItemsBeforeStop = 0;
    const caller = async (): Promise<void> => {
      while (next < 1000) {
        const n = next++;
        if (n === 400) {
          getItemsBeforeStop = calls.readKeys();
          stopped = dynamo.stop();
        }
        try {
          results.set(n, await service.square(n));
        } catch {
          failures++;
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, caller));
    await stopped;

    expect(failures).toBe(0);
    expect(results.size).toBe(1000);
    for (const [n, value] of results) expect(value).toBe(n * n);
    expect(service.calls).toBe(1000);
    // Healthy part: one key read per call (GetItem, or batched in BatchGetItem). Outage: the
    // breaker opened after a few failed requests and ~600 calls were served without trying
    // DynamoDB at all.
    expect(getItemsBeforeStop).toBeGreaterThanOrEqual(380);
    const getItemsDuringOutage = calls.readKeys() - getItemsBeforeStop;
    expect(getItemsDuringOutage).toBeLessThan(60);
    expect(engine.circuit()).toBe('open');
    // One warning for the whole outage (the circuit opening is part of it), not one per call.
    expect(logger.matching(/serving without L2/)).toHaveLength(1);
    expect(logger.matching(/circuit breaker open/)).toHaveLength(0);
    expect(logger.warnings).toHaveLength(1);
    const stats = app.get(CacheEngine).stats().total;
    expect(stats.l2Errors).toBeLessThan(60);

    // Back up: while the circuit is still open, calls do not reach DynamoDB...
    await dynamo.start();
    calls.reset();
    for (let n = 1000; n < 1010; n++) expect(await service.square(n)).toBe(n * n);
    expect(engine.circuit()).toBe('open');
    expect(calls.get('GetItem')).toBe(0);

    // ...once the cool-down ends, one probe succeeds and L2 is used for every call again.
    await until(() => engine.circuit() === 'half-open', cooldownMs + 1000);
    calls.reset();
    for (let n = 2000; n < 2050; n++) expect(await service.square(n)).toBe(n * n);
    expect(engine.circuit()).toBe('closed');
    expect(calls.get('GetItem')).toBe(50);
    expect(calls.get('PutItem')).toBe(50);
    expect(logger.matching(/L2 is back in use/)).toHaveLength(1);
    const stored = new Set((await scanTable(client, table)).map((i) => i.cache_key!.S));
    expect(stored.size).toBeGreaterThanOrEqual(380 + 50);

    // And a previously stored result is an L2 hit for a fresh application.
    const second = await bootLogged({ table, client: dynamo.client() }, [SquareService]);
    apps.push(second);
    expect(await second.get(SquareService).square(7)).toBe(49);
    expect(second.get(SquareService).calls).toBe(0);
  });

  it("'throw': while the circuit is open, calls reject at once with DynamoCacheError (GetItem, circuit open) without calling DynamoDB", async () => {
    const { calls, app } = await boot({
      onError: 'throw',
      l2Timeout: 5000,
      circuitBreaker: { failures: 2, cooldownMs: 60_000 },
    });
    const service = app.get(SquareService);
    expect(await service.square(3)).toBe(9);
    await dynamo.stop();
    try {
      for (const n of [4, 5]) {
        const err = await service.square(n).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DynamoCacheError);
        expect((err as DynamoCacheError).cause).not.toBeInstanceOf(CircuitOpenError);
      }
      calls.reset();
      const err = (await service.square(6).catch((e: unknown) => e)) as DynamoCacheError;
      expect(err).toBeInstanceOf(DynamoCacheError);
      expect(err.operation).toBe('GetItem');
      expect(err.namespace).toBe('SquareService.square');
      expect(err.message).toMatch(/circuit breaker .* is open/);
      expect(err.cause).toBeInstanceOf(CircuitOpenError);
      expect(calls.total()).toBe(0);
      expect(service.calls).toBe(1);
      // Still served from L1 while the circuit is open.
      expect(await service.square(3)).toBe(9);
    } finally {
      await dynamo.start();
    }
  });

  it('while the circuit is open, explicit set() and delete() still reach DynamoDB (a skipped overwrite would leave a stale value)', async () => {
    const { table, calls, app } = await boot({
      onError: 'bypass',
      l2Timeout: 5000,
      circuitBreaker: { failures: 2, cooldownMs: 60_000 },
    });
    const cache = app.get(DynamoCacheService);
    const engine = app.get(CacheEngine);
    await cache.set('settings', ['theme'], 'old');
    await dynamo.stop();
    for (const n of [1, 2]) expect(await app.get(SquareService).square(n)).toBe(n * n);
    expect(engine.circuit()).toBe('open');
    await dynamo.start();

    calls.reset();
    expect(await app.get(SquareService).square(3)).toBe(9);
    expect(calls.total()).toBe(0);
    await cache.set('settings', ['theme'], 'new');
    expect(calls.counts).toEqual({ PutItem: 1 });
    // The write succeeded, which is proof enough that DynamoDB is back.
    expect(engine.circuit()).toBe('closed');
    const second = await bootLogged({ table, client: dynamo.client() }, []);
    apps.push(second);
    expect(await second.get(DynamoCacheService).get('settings', ['theme'])).toBe('new');

    await dynamo.stop();
    for (const n of [4, 5]) expect(await app.get(SquareService).square(n)).toBe(n * n);
    expect(engine.circuit()).toBe('open');
    await dynamo.start();
    calls.reset();
    await cache.delete('settings', ['theme']);
    expect(calls.counts).toEqual({ PutItem: 1 }); // the tombstone
    const third = await bootLogged({ table, client: dynamo.client() }, []);
    apps.push(third);
    expect(await third.get(DynamoCacheService).lookup('settings', ['theme'])).toEqual({
      hit: false,
    });
  });

  it('circuitBreaker: false keeps trying DynamoDB on every call, with one warning for the run', async () => {
    const logger = new RecordingLogger();
    const { calls, app } = await boot(
      { onError: 'bypass', l2Timeout: 5000, circuitBreaker: false },
      logger,
    );
    const service = app.get(SquareService);
    await dynamo.stop();
    try {
      for (let n = 0; n < 20; n++) expect(await service.square(n)).toBe(n * n);
      expect(calls.get('GetItem')).toBe(20);
      expect(app.get(CacheEngine).circuit()).toBe('closed');
      expect(logger.warnings).toHaveLength(1);
      expect(logger.warnings[0]).toMatch(/SquareService\.square: GetItem .* failed/);
    } finally {
      await dynamo.start();
    }
  });

  it('a logger that throws on every warning loses no result and leaves no unhandled rejection, through the outage and the recovery', async () => {
    class ThrowingLogger extends RecordingLogger {
      override warn(message: unknown): void {
        super.warn(message);
        throw new Error('the logger is down');
      }
    }
    const logger = new ThrowingLogger();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const cooldownMs = 500;
      const { app } = await boot(
        { onError: 'bypass', l2Timeout: 5000, circuitBreaker: { failures: 2, cooldownMs } },
        logger,
      );
      const service = app.get(SquareService);
      const engine = app.get(CacheEngine);
      expect(await service.square(-1)).toBe(1);
      await dynamo.stop();
      for (let n = 0; n < 10; n++) expect(await service.square(n)).toBe(n * n);
      expect(engine.circuit()).toBe('open');
      await dynamo.start();
      await until(() => engine.circuit() === 'half-open', cooldownMs + 2000);
      for (let n = 100; n < 110; n++) expect(await service.square(n)).toBe(n * n);
      expect(engine.circuit()).toBe('closed');
      // Both warnings were attempted (and threw): the failure and "answers again".
      expect(logger.matching(/serving without L2/)).toHaveLength(1);
      expect(logger.matching(/L2 is back in use/)).toHaveLength(1);
      await sleep(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a client answering a GetItem with nothing is a failed read: no call hangs, and reads work again once it answers', async () => {
    // No L1: every call reads DynamoDB.
    const { table, client, app } = await boot({
      onError: 'bypass',
      l2Timeout: 5000,
      circuitBreaker: false,
      maxsize: 0,
    });
    const service = app.get(SquareService);
    const engine = app.get(CacheEngine);
    for (let n = 0; n < 10; n++) expect(await service.square(n)).toBe(n * n);
    // A second instance on the same table, with a client that answers.
    const appB = await bootLogged(
      { table, client: dynamo.client(), onError: 'bypass', l2Timeout: 5000, maxsize: 0 },
      [SquareService],
      false,
    );
    apps.push(appB);
    const serviceB = appB.get(SquareService);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    // One branch only: the client's GetItem answers `undefined` (a stub without a response).
    const send = client.send.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let empty = 0;
    const odd = (command: unknown, ...rest: unknown[]): Promise<unknown> => {
      if (!(command instanceof GetItemCommand)) return send(command, ...rest);
      empty++;
      return Promise.resolve(undefined);
    };
    (client as { send: unknown }).send = odd;
    try {
      service.calls = 0;
      // More at once than the reads the table keeps in flight (4): none may be left waiting.
      // Meanwhile the second instance reads the same keys: L2 hits, whatever A recomputes.
      const [values, valuesB] = await Promise.all([
        Promise.all(Array.from({ length: 10 }, (_, n) => service.square(n))),
        Promise.all(Array.from({ length: 10 }, (_, n) => serviceB.square(n))),
      ]);
      expect(values).toEqual(Array.from({ length: 10 }, (_, n) => n * n));
      expect(valuesB).toEqual(values);
      expect(serviceB.calls).toBe(0);
      // Each read answered with nothing failed and computed; the rest went out batched
      // (BatchGetItem, answered) and hit.
      expect(empty).toBeGreaterThan(0);
      expect(service.calls).toBe(empty);
      expect(engine.stats().total.l2Errors).toBe(empty);
    } finally {
      (client as { send: unknown }).send = send;
    }
    // The table's read slots were all given back: these are L2 hits again.
    service.calls = 0;
    const again = await Promise.all(Array.from({ length: 10 }, (_, n) => service.square(n)));
    expect(again).toEqual(Array.from({ length: 10 }, (_, n) => n * n));
    expect(service.calls).toBe(0);
    // What A wrote back while its reads failed is what B reads.
    expect(await Promise.all(Array.from({ length: 10 }, (_, n) => serviceB.square(n)))).toEqual(
      again,
    );
    expect(serviceB.calls).toBe(0);
    await sleep(50);
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });
});
