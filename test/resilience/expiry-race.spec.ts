import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { buildCacheKey, DynamoCacheService, encodeKey, v8Serializer } from '../../lib/index.js';
import { countCalls, useTestDynamo } from '../support/dynamo-server.js';
import { bootLogged } from '../support/recording-logger.js';

const NAMESPACE = 'prices';
const TTL = 60;

describe('race-safe expiry: a reader deleting an expired item never removes a fresh one', () => {
  const fx = useTestDynamo();

  async function cache(table: string, client: DynamoDBClient): Promise<DynamoCacheService> {
    const app = await bootLogged({ table, client, ttl: TTL }, []);
    fx.apps.push(app);
    return app.get(DynamoCacheService);
  }

  async function putExpired(table: string, key: string): Promise<void> {
    await fx.admin.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          cache_key: { S: buildCacheKey('', NAMESPACE, encodeKey([key])) },
          v: { B: v8Serializer.serialize('expired') },
          t: { N: String(Date.now() / 1000 - 2 * TTL) },
        },
      }),
    );
  }

  async function stored(table: string, key: string): Promise<unknown> {
    const out = await fx.admin.send(
      new GetItemCommand({
        TableName: table,
        Key: { cache_key: { S: buildCacheKey('', NAMESPACE, encodeKey([key])) } },
        ConsistentRead: true,
      }),
    );
    return out.Item === undefined ? undefined : v8Serializer.deserialize(out.Item.v!.B!);
  }

  it('500 times, the writer puts between the reader’s GetItem and its DeleteItem: the fresh item survives', async () => {
    const table = await fx.dynamo.table('race');
    const readerClient = fx.dynamo.client();
    const readerCalls = countCalls(readerClient);
    // Forces the worst interleaving every time: once the reader's GetItem has returned the
    // expired item, and before the reader can send its DeleteItem, the writer stores a fresh one.
    let betweenReadAndDelete: (() => Promise<void>) | undefined;
    readerClient.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'GetItemCommand' && betweenReadAndDelete !== undefined) {
          const write = betweenReadAndDelete;
          betweenReadAndDelete = undefined;
          await write();
        }
        return out;
      },
      { step: 'initialize', name: 'writeBetweenReadAndDelete' },
    );
    const reader = await cache(table, readerClient);
    const writer = await cache(table, fx.dynamo.client());

    for (let i = 0; i < 500; i++) {
      const key = `k${i % 20}`;
      await putExpired(table, key);
      betweenReadAndDelete = () => writer.set(NAMESPACE, [key], `fresh ${i}`);
      // The reader saw an expired item: a miss for it...
      expect(await reader.lookup(NAMESPACE, [key])).toEqual({ hit: false });
      // ...but its conditional delete did not remove what the writer stored meanwhile.
      expect(await stored(table, key)).toBe(`fresh ${i}`);
    }
    expect(readerCalls.get('GetItem')).toBe(500);
    expect(readerCalls.get('DeleteItem')).toBe(500);
    // No delete took effect, and the stats say so.
    expect(reader.stats().total).toMatchObject({ misses: 500, l2Deletes: 0, l2Errors: 0 });
  });

  it('without a writer, the expired item is deleted (the condition holds)', async () => {
    const table = await fx.dynamo.table('race');
    const reader = await cache(table, fx.dynamo.client());
    await putExpired(table, 'alone');
    expect(await reader.lookup(NAMESPACE, ['alone'])).toEqual({ hit: false });
    expect(await stored(table, 'alone')).toBeUndefined();
    expect(reader.stats().total.l2Deletes).toBe(1);
  });

  it("a failing clean-up DeleteItem does not fail the read, even under 'throw'", async () => {
    const table = await fx.dynamo.table('race');
    const client = fx.dynamo.client();
    // Fault injection for this one branch: DeleteItem fails, everything else reaches the server.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteItemCommand')
          throw new Error('injected DeleteItem failure');
        return next(args);
      },
      { step: 'initialize', name: 'failDeleteItem' },
    );
    const app = await bootLogged({ table, client, ttl: TTL, onError: 'throw' }, []);
    fx.apps.push(app);
    const cache = app.get(DynamoCacheService);
    await putExpired(table, 'sticky');
    expect(await cache.wrap(NAMESPACE, ['sticky'], () => 'recomputed')).toBe('recomputed');
    // The new value's PutItem replaced the expired item all the same.
    expect(await stored(table, 'sticky')).toBe('recomputed');
    expect(cache.stats().total).toMatchObject({
      misses: 1,
      l2Errors: 1,
      l2Deletes: 0,
      l2Writes: 1,
    });
  });

  it('reader and writer truly concurrent, 100 times: whatever the order, the fresh item is what remains', async () => {
    const table = await fx.dynamo.table('race');
    const reader = await cache(table, fx.dynamo.client());
    const writer = await cache(table, fx.dynamo.client());
    for (let i = 0; i < 100; i++) {
      const key = `c${i}`; // a new key each time: a hit would fill the reader’s L1
      await putExpired(table, key);
      const [seen] = await Promise.all([
        reader.lookup(NAMESPACE, [key]),
        writer.set(NAMESPACE, [key], `fresh ${i}`),
      ]);
      // The reader either missed (expired) or already saw the fresh value; never the expired one.
      expect([{ hit: false }, { hit: true, value: `fresh ${i}` }]).toContainEqual(seen);
      expect(await stored(table, key)).toBe(`fresh ${i}`);
    }
  });
});
