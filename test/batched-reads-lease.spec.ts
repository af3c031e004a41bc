import type {
  BatchGetItemCommandInput,
  BatchGetItemCommandOutput,
  DynamoDBClient,
  GetItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { CacheEngine } from '../lib/engine/cache-engine.js';
import { buildCacheKey, encodeKey } from '../lib/index.js';
import { sleep } from './support/apps.js';
import { engineSettings } from './support/engine-settings.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * A read that goes out batched comes to what the same read as a single GetItem comes to. DynamoDB throttles a GetItem with ProvisionedThroughputExceededException, and a
 * BatchGetItem by leaving the keys in UnprocessedKeys. A throttled read is "a busy key": the lease
 * still applies (the caller waits for the process computing it). Two engines on one table.
 */

/** Throttles whole-item reads of `throttled` keys on `client`, and slows GetItems of `slow` keys. */
function rig(client: DynamoDBClient, throttled: Set<string>, slow: Set<string>): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      if (name === 'GetItemCommand') {
        const key = (args.input as GetItemCommandInput).Key?.cache_key?.S ?? '';
        if (throttled.has(key)) {
          throw Object.assign(new Error('Rate of requests exceeds the allowed throughput'), {
            name: 'ProvisionedThroughputExceededException',
          });
        }
        if (slow.has(key)) await sleep(300);
        return next(args);
      }
      const result = await next(args);
      if (name !== 'BatchGetItemCommand') return result;
      const input = args.input as BatchGetItemCommandInput;
      const output = result.output as BatchGetItemCommandOutput;
      for (const [table, request] of Object.entries(input.RequestItems ?? {})) {
        if (request.ProjectionExpression !== undefined) continue;
        const left = (request.Keys ?? []).filter((k) => throttled.has(k.cache_key?.S ?? ''));
        if (left.length === 0) continue;
        output.Responses = {
          ...output.Responses,
          [table]: (output.Responses?.[table] ?? []).filter(
            (item) => !throttled.has(item.cache_key?.S ?? ''),
          ),
        };
        output.UnprocessedKeys = { ...output.UnprocessedKeys, [table]: { Keys: left } };
      }
      return result;
    },
    { step: 'initialize', name: 'testThrottle' },
  );
}

describe('throttled L2 reads under a lease, batched or single', () => {
  const fx = useTestDynamo();

  function engine(client: DynamoDBClient, table: string): CacheEngine {
    const e = new CacheEngine(
      engineSettings(client, table, { ttl: 600, l2Timeout: 10_000, circuitBreaker: undefined }),
    );
    fx.apps.push({ close: () => e.drain() });
    return e;
  }

  it('a throttled read waits for the lease holder whether it went out as GetItem or in a BatchGetItem', async () => {
    const table = await fx.dynamo.table();
    const key = (id: string): string => buildCacheKey('', 'ns', encodeKey([id]));
    const throttled = new Set(['single', 'batched1', 'batched2'].map(key));
    const slow = new Set(['f1', 'f2', 'f3', 'f4'].map(key));
    const clientA = fx.dynamo.client();
    rig(clientA, throttled, slow);
    const a = engine(clientA, table).namespace('ns');
    const b = engine(fx.dynamo.client(), table).namespace('ns');

    // B computes the three keys (2.5 s each), holding their leases.
    const computedB: string[] = [];
    const onB = ['single', 'batched1', 'batched2'].map((id) =>
      b.run(undefined, [id], async () => {
        computedB.push(id);
        await sleep(2500);
        return `B:${id}`;
      }),
    );
    while (computedB.length < 3) await sleep(10);

    const computedA: string[] = [];
    const onA = (id: string): Promise<string> =>
      a.run(undefined, [id], async () => {
        computedA.push(id);
        return `A:${id}`;
      });

    // Alone: a GetItem, throttled.
    const single = onA('single');
    await sleep(50);
    // Four slow reads take the in-flight slots; the next two leave together as a BatchGetItem.
    const fillers = ['f1', 'f2', 'f3', 'f4'].map(onA);
    await sleep(20);
    const batched = ['batched1', 'batched2'].map(onA);

    const results = await Promise.all([single, ...batched]);
    await Promise.all([...fillers, ...onB]);
    // The single read waited for B's value: so must the batched ones.
    expect(results[0]).toBe('B:single');
    expect(results.slice(1)).toEqual(['B:batched1', 'B:batched2']);
    expect(computedA.filter((id) => !id.startsWith('f'))).toEqual([]);
  });
});
