import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine } from '../lib/engine/cache-engine.js';
import { DynamoCacheError } from '../lib/index.js';
import { sleep } from './support/apps.js';
import { dummyClientConfig, useTestDynamo } from './support/dynamo-server.js';
import { engineSettings } from './support/engine-settings.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const NS = 'Accounts.find';

/*
 * As supersede-write-fails.spec.ts, with the result that is not stored being `undefined` (the
 * usual `unless: (v) => v === undefined`, "not found"): the failed tombstone's error carries it
 * as `error.result`, an `undefined` one too. It was read as "no result" and grace answered the
 * caller with the very value the result ended.
 */
describe("an undefined result not stored, with DynamoDB failing under onError 'throw' (dynalite)", () => {
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
    '%s: the caller gets undefined (or an error carrying it), not the value it ended',
    async (how) => {
      const table = await fx.dynamo.table();
      const viaProxy = new DynamoDBClient({ ...dummyClientConfig(proxy.endpoint) });
      fx.apps.push({ close: async () => viaProxy.destroy() });
      const a = engine(table, viaProxy);
      const b = engine(table, fx.dynamo.client());
      const options = { unless: (value: string | undefined) => value === undefined };
      const nsA = a.namespace(NS, options);
      expect(await nsA.run(null, ['acct'], async () => 'open')).toBe('open');
      expect(await b.namespace(NS, options).run(null, ['acct'], async () => 'other')).toBe('open');
      if (how === 'stale value at hand') await sleep(1300); // stale, within grace

      // The account is gone: nothing to cache, and DynamoDB goes down meanwhile.
      const closing = nsA.run(
        null,
        ['acct'],
        async (): Promise<string | undefined> => {
          await proxy.stop();
          return undefined;
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
        expect((outcome.err as DynamoCacheError).result).toBeUndefined();
      } else {
        expect(outcome.value).toBeUndefined();
      }
    },
    20_000,
  );
});
