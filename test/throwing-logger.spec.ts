import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import { DynamoCached, DynamoCacheService, type DynamoCacheBus } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';
import { RecordingLogger } from './support/recording-logger.js';

class ThrowingLogger extends RecordingLogger {
  override warn(message: unknown): void {
    super.warn(message);
    throw new Error('the logger is down');
  }
}

@Injectable()
class Svc {
  /** A value the serializer rejects: "served and kept in L1 only, with one warning". */
  @DynamoCached(60)
  async withFunction(x: string): Promise<{ x: string; f: () => void }> {
    return { x, f: () => undefined };
  }
  /** A ttl function that throws: "leaves that result uncached (one warning)". */
  @DynamoCached({
    ttl: () => {
      throw new Error('bad ttl fn');
    },
  })
  async badTtl(x: string): Promise<string> {
    return x + '!';
  }
  @DynamoCached(60)
  async plain(x: string): Promise<string> {
    return x + '?';
  }
}

describe('a logger that throws loses no result', () => {
  let dynamo: TestDynamo;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeAll(async () => {
    dynamo = await startDynamo();
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await dynamo.close();
  });
  beforeEach(() => {
    unhandled.length = 0;
  });

  const settle = (p: Promise<unknown>) =>
    p.then(
      (value) => ({ value }),
      (error: unknown) => ({ error: String(error) }),
    );

  /** An application whose logger throws, on a table of its own. */
  async function boot(bus?: DynamoCacheBus) {
    const table = await dynamo.table();
    const app = await bootCache(
      { table, clientConfig: dynamo.clientConfig, ...(bus === undefined ? {} : { bus }) },
      [Svc],
      new ThrowingLogger(),
    );
    return { table, app, cache: app.get(DynamoCacheService) };
  }

  /** What `call` gave its caller, once the cache's own work is over and the app closed. */
  async function outcome(
    app: { close(): Promise<void> },
    cache: DynamoCacheService,
    call: Promise<unknown>,
  ) {
    const out = await settle(call);
    await cache.settle();
    await sleep(50);
    await app.close();
    return out;
  }

  it('an unserializable result: the caller gets it', async () => {
    const { app, cache } = await boot();
    const out = await outcome(app, cache, app.get(Svc).withFunction('a'));
    expect(out).toMatchObject({ value: { x: 'a' } });
    expect(unhandled).toEqual([]);
  });

  it('a ttl function that throws: the caller gets the result', async () => {
    const { app, cache } = await boot();
    expect(await outcome(app, cache, app.get(Svc).badTtl('a'))).toEqual({ value: 'a!' });
    expect(unhandled).toEqual([]);
  });

  it('a corrupt L2 item: the caller gets the method result', async () => {
    const { table, app, cache } = await boot();
    const client = dynamo.client();
    // Find the key by writing once through a throwaway namespace instance is overkill: write a
    // corrupt item at the key the cache uses (namespace Svc.plain, args ['a']).
    const { buildCacheKey, encodeKey } = await import('../lib/engine/keys/cache-key.js');
    const key = buildCacheKey('', 'Svc.plain', encodeKey(['a']));
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: key },
          v: { B: new Uint8Array([1, 2, 3]) },
          t: { N: String(Date.now() / 1000) },
        },
      }),
    );
    expect(await outcome(app, cache, app.get(Svc).plain('a'))).toEqual({ value: 'a?' });
    expect(unhandled).toEqual([]);
  });

  it('a bus whose publish rejects: a delete resolves and nothing is left unhandled', async () => {
    const { app, cache } = await boot({
      publish: () => Promise.reject(new Error('redis down')),
      subscribe: () => undefined,
    });
    expect(await outcome(app, cache, cache.delete('Svc.plain', ['a']))).toEqual({
      value: undefined,
    });
    expect(unhandled).toEqual([]);
  });

  it('a bus whose publish throws synchronously: a delete and a set resolve', async () => {
    const { app, cache } = await boot({
      publish: () => {
        throw new Error('redis down');
      },
      subscribe: () => undefined,
    });
    expect(await settle(cache.delete('Svc.plain', ['a']))).toEqual({ value: undefined });
    expect(await outcome(app, cache, cache.set('Svc.plain', ['b'], 'x'))).toEqual({
      value: undefined,
    });
    expect(unhandled).toEqual([]);
  });
});
