import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import { DynamoCached, DynamoCacheService, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { dummyClientConfig, useTestDynamo } from './support/dynamo-server.js';
import { startTcpProxy } from './support/tcp-proxy.js';

@Injectable()
class Quotes {
  calls = 0;
  delayMs = 0;
  failure: Error | undefined;
  @DynamoCached({ ttl: 1, grace: 30, graceBackoff: 10 })
  async quote(symbol: string): Promise<string> {
    const n = ++this.calls;
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (this.failure !== undefined) throw this.failure;
    return `${symbol}#${n}`;
  }
}

describe('invalidations seen within l1MaxAge, counted from when DynamoDB was read; lease faults reported', () => {
  const fx = useTestDynamo();

  async function app(
    table: string,
    options: Partial<DynamoCacheModuleOptions> = {},
    client?: DynamoDBClient,
  ) {
    const ref = await bootCache(
      { table, client: client ?? fx.dynamo.client(), ttl: 600, ...options },
      [],
    );
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it('grace fallback: a value B deleted while A recomputed is no longer served by A past l1MaxAge of the delete', async () => {
    const table = await fx.dynamo.table();
    const opts = { ttl: 1, grace: 60, l1MaxAge: 1 };
    const a = await app(table, opts);
    const b = await app(table, opts);
    await b.set('ns', ['k'], 'old');
    await sleep(1200); // past its ttl, within grace: a stale value in L2

    // A recomputes; the method fails after 2.5 s, so A falls back on the stale value it read.
    const failing = a.wrap('ns', ['k'], async () => {
      await sleep(2500);
      throw new Error('upstream down');
    });
    await sleep(300);
    await b.delete('ns', ['k']);
    const deletedAt = Date.now();
    expect(await failing).toBe('old'); // its call began before the delete: fine

    await sleep(Math.max(0, deletedAt + 1500 - Date.now())); // l1MaxAge (1 s) after the delete, and more
    expect(Date.now() - deletedAt).toBeGreaterThan(1000);
    // No instance may serve the deleted value past l1MaxAge: A should look at DynamoDB,
    // find the tombstone and recompute.
    const later = await a.wrap('ns', ['k'], async () => 'new');
    expect(later).toBe('new');
  });

  it('l1MaxAge check over a slow link: A no longer serves a value B deleted past l1MaxAge of the delete', async () => {
    const table = await fx.dynamo.table();
    const proxy = await startTcpProxy(Number(new URL(fx.dynamo.endpoint).port));
    const slow = new DynamoDBClient(dummyClientConfig(proxy.endpoint));
    fx.apps.push({
      close: async () => {
        slow.destroy();
        await proxy.close();
      },
    });
    const opts = { l1MaxAge: 1, l2Timeout: 10_000 };
    const a = await app(table, opts, slow);
    const b = await app(table, opts);
    expect(await a.wrap('ns', ['k'], async () => 'old')).toBe('old');
    await sleep(1100); // past l1MaxAge: the next call checks the entry against DynamoDB

    proxy.latencyMs = 1500; // A's link: 1.5 s each way
    const checking = a.wrap('ns', ['k'], async () => 'new');
    await sleep(1700); // the check has been answered by DynamoDB, its answer is on its way back
    await b.delete('ns', ['k']);
    const deletedAt = Date.now();
    expect(await checking).toBe('old'); // began before the delete: fine
    proxy.latencyMs = 0;

    await sleep(Math.max(0, deletedAt + 1300 - Date.now()));
    expect(Date.now() - deletedAt).toBeGreaterThan(1000);
    expect(await a.wrap('ns', ['k'], async () => 'new')).toBe('new');
  });

  it('a lease claim that DynamoDB fails is counted in l2Errors and reported by an error event', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateItemCommand') {
          throw Object.assign(new Error('injected failure'), { name: 'InternalServerError' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'failUpdateItem' },
    );
    const a = await app(table, { lease: true }, client);
    const errors: unknown[] = [];
    a.on('error', (e) => errors.push(e));
    expect(await a.wrap('ns', ['k'], async () => 'v')).toBe('v');
    await a.settle();
    const l2Errors = a.stats().total.l2Errors;
    expect(l2Errors).toBe(1); // the failed claim
    // "The same outcomes are available ... through events and stats()": one error event per l2Error.
    expect(errors).toHaveLength(l2Errors);
  });

  it('graceBackoff still holds after a failure slower than l1MaxAge (the stale value read from L2 in B, checked again, not recomputed)', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const a = await bootCache({ table, client, l1MaxAge: 1 }, [Quotes]);
    fx.apps.push(a);
    expect(await a.get(Quotes).quote('X')).toBe('X#1');
    await sleep(2100); // past the 1 s ttl, within grace

    const b = await bootCache({ table, client, l1MaxAge: 1 }, [Quotes]);
    fx.apps.push(b);
    const quotes = b.get(Quotes);
    quotes.failure = new Error('upstream timed out');
    quotes.delayMs = 1200; // fails on its 1.2 s timeout: longer than l1MaxAge
    expect(await quotes.quote('X')).toBe('X#1'); // grace: A's value, read from L2
    expect(quotes.calls).toBe(1);
    // Within graceBackoff: the stale value, without calling the failing method again.
    const started = Date.now();
    expect(await quotes.quote('X')).toBe('X#1');
    expect({ calls: quotes.calls, quick: Date.now() - started < 500 }).toEqual({
      calls: 1,
      quick: true,
    });
    // A delete elsewhere still ends it: the next call computes.
    await a.get(DynamoCacheService).delete('Quotes.quote', ['X']);
    await sleep(1100);
    quotes.failure = undefined;
    quotes.delayMs = 0;
    expect(await quotes.quote('X')).toBe('X#2');
  }, 20_000);
});
