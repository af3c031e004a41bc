import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import { DynamoCached, DynamoCacheService, type CacheEvent } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * `deleteByTag` concerns no namespace (its events carry namespace ''), but what it does to
 * DynamoDB is the cache's all the same: its markers are deletes and its failures L2 errors, in
 * `stats().total` as in the events (and the OpenTelemetry counters that listen to them).
 */

/** Makes every PutItem of `client` fail while `failing.on` (stands for a denied permission). */
function failPutsWhile(client: DynamoDBClient, failing: { on: boolean }): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (failing.on && String(context.commandName) === 'PutItemCommand') {
        const err = new Error('AccessDeniedException on PutItem');
        err.name = 'AccessDeniedException';
        throw err;
      }
      return next(args);
    },
    { step: 'initialize', name: 'failPutItem' },
  );
}

@Injectable()
class Orders {
  @DynamoCached({ ttl: 60, tags: (_v: unknown, id: string) => [`customer:${id}`] })
  async byCustomer(id: string): Promise<string> {
    return `orders of ${id}`;
  }
}

describe('deleteByTag in stats()', () => {
  const fx = useTestDynamo();

  it('its markers count as deletes and its failures as L2 errors in the total, as in the events', async () => {
    const failing = { on: false };
    const client = fx.dynamo.client();
    failPutsWhile(client, failing);
    const app = await bootCache({ table: await fx.dynamo.table(), client, onError: 'bypass' }, [
      Orders,
    ]);
    fx.apps.push(app);
    const cache = app.get(DynamoCacheService);
    const events: CacheEvent[] = [];
    cache.on('delete', (e) => events.push(e));
    cache.on('error', (e) => events.push(e));
    await app.get(Orders).byCustomer('42');
    await cache.settle();

    await cache.deleteByTag(['customer:42', 'customer:43']);
    expect(events.filter((e) => e.type === 'delete')).toHaveLength(2);
    expect(cache.stats().total.l2Deletes).toBe(2);

    failing.on = true;
    await cache.deleteByTag('customer:42');
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
    expect(cache.stats().total.l2Errors).toBe(1);
    // Namespaces are what callers name: none for deleteByTag.
    expect(Object.keys(cache.stats().namespaces)).toEqual(['Orders.byCustomer']);
  });
});
