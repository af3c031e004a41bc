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
 * as for a failed write of a stored result), never the value the result ended. An `undefined`
 * result (the usual `unless: (v) => v === undefined`, "not found") is a result too: attached as
 * `error.result`, it was once read as "no result", and grace answered with the ended value.
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

  it.each([
    ['stale value at hand', 'closed'],
    ['forced', 'closed'],
    ['stale value at hand', undefined],
    ['forced', undefined],
  ] as const)(
    '%s, result %p: the caller gets the result, not the value it ended nor a bare error',
    async (how, result) => {
      const table = await fx.dynamo.table();
      const viaProxy = new DynamoDBClient({ ...dummyClientConfig(proxy.endpoint) });
      fx.apps.push({ close: async () => viaProxy.destroy() });
      const a = engine(table, viaProxy);
      const b = engine(table, fx.dynamo.client());
      const options = { unless: (value: string | undefined) => value === result };
      const nsA = a.namespace(NS, options);
      expect(await nsA.run(null, ['acct'], async () => 'open')).toBe('open');
      expect(await b.namespace(NS, options).run(null, ['acct'], async () => 'other')).toBe('open');
      if (how === 'stale value at hand') await sleep(1300); // stale, within grace

      // The account closes (or is gone): the answer is not cached, and DynamoDB goes down meanwhile.
      const closing = nsA.run(
        null,
        ['acct'],
        async (): Promise<string | undefined> => {
          await proxy.stop();
          return result;
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
        expect('result' in (outcome.err as DynamoCacheError)).toBe(true);
        expect((outcome.err as DynamoCacheError).result).toBe(result);
      } else {
        expect(outcome.value).toBe(result);
      }
    },
    20_000,
  );
});
