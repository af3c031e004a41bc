import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine } from '../lib/engine/cache-engine.js';
import { DynamoCacheError } from '../lib/index.js';
import { sleep } from './support/apps.js';
import { dummyClientConfig, useTestDynamo } from './support/dynamo-server.js';
import { engineSettings } from './support/engine-settings.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const NS = 'Accounts.find';

/*
 * A result that is returned but not stored (here: `unless` keeps it out) ends the value it
 * replaces, with a tombstone. When DynamoDB goes down in the middle of the computation under
 * onError 'throw', that tombstone fails: the caller must still get the result (as `error.result`,
 * as for a failed write of a stored result), never the value the result ended.
 */
describe("a result not stored, with DynamoDB failing under onError 'throw' (dynalite)", () => {
  const fx = useTestDynamo();
  let proxy: TcpProxy;
  beforeEach(async () => {
    proxy = await startTcpProxy(Number(new URL(fx.dynamo.endpoint).port));
  });
  afterEach(() => proxy.close());

  function engine(table: string, client: DynamoDBClient): CacheEngine {
    const e = new CacheEngine(
      engineSettings(client, table, { onError: 'throw', ttl: 1, grace: 3600, l2Timeout: 500 }),
    );
    fx.apps.push({ close: () => e.close() });
    return e;
  }

  it.each(['stale value at hand', 'forced'] as const)(
    '%s: the caller gets the result, not the value it ended nor a bare error',
    async (how) => {
      const table = await fx.dynamo.table();
      const viaProxy = new DynamoDBClient({ ...dummyClientConfig(proxy.endpoint) });
      fx.apps.push({ close: async () => viaProxy.destroy() });
      const a = engine(table, viaProxy);
      const b = engine(table, fx.dynamo.client());
      const options = { unless: (value: string) => value === 'closed' };
      const nsA = a.namespace(NS, options);
      expect(await nsA.run(null, ['acct'], async () => 'open')).toBe('open');
      expect(await b.namespace(NS, options).run(null, ['acct'], async () => 'other')).toBe('open');
      if (how === 'stale value at hand') await sleep(1300); // stale, within grace

      // The account closes: the method's answer is not cached, and DynamoDB goes down meanwhile.
      const closing = nsA.run(
        null,
        ['acct'],
        async () => {
          await proxy.stop();
          return 'closed';
        },
        { forceFresh: how === 'forced' },
      );
      const outcome = await closing.then(
        (value) => ({ value }),
        (err: unknown) => ({ err }),
      );
      expect(outcome).not.toEqual({ value: 'open' });
      if ('err' in outcome) {
        expect(outcome.err).toBeInstanceOf(DynamoCacheError);
        expect((outcome.err as DynamoCacheError).result).toBe('closed');
      } else {
        expect(outcome.value).toBe('closed');
      }
    },
    20_000,
  );
});
