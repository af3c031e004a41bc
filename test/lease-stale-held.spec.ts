import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine, type CacheEngineSettings } from '../lib/engine/cache-engine.js';
import { DEFAULT_LEASE } from '../lib/index.js';
import { sleep } from './support/apps.js';
import { engineSettings } from './support/engine-settings.js';
import { useTestDynamo } from './support/dynamo-server.js';

const NS = 'Rates.rate';

/**
 * A process with a stale value that finds another process refreshing the key (its lease held)
 * serves the stale value: it must not claim the lease again on every call meanwhile (each claim is
 * a write on the lease item, and the holder writes a copy of its value for every 25 claims).
 */
describe('a stale value served while another process holds the lease (dynalite)', () => {
  const fx = useTestDynamo();

  /** A client counting lease claims (UpdateItem on `…#lease`) and copies written. */
  function counted(): { client: DynamoDBClient; claims: () => number; copies: () => number } {
    const client = fx.dynamo.client();
    let claims = 0;
    let copies = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as {
          Key?: { cache_key?: { S?: string } };
          RequestItems?: Record<string, unknown[]>;
        };
        const key = input.Key?.cache_key?.S;
        if (context.commandName === 'UpdateItemCommand' && key?.endsWith('#lease')) claims++;
        if (context.commandName === 'BatchWriteItemCommand') {
          for (const writes of Object.values(input.RequestItems ?? {})) copies += writes.length;
        }
        return next(args);
      },
      { step: 'initialize', name: 'leaseCounter' },
    );
    return { client, claims: () => claims, copies: () => copies };
  }

  function engine(table: string, client: DynamoDBClient, extra: Partial<CacheEngineSettings> = {}) {
    const e = new CacheEngine(
      engineSettings(client, table, {
        ttl: 4,
        grace: 3600,
        timeout: 0,
        lease: { ...DEFAULT_LEASE, pollMs: 20 },
        ...extra,
      }),
    );
    fx.apps.push({ close: () => e.close() });
    return e;
  }

  it.each([
    ['with L1', 1000],
    ['without L1 (maxsize 0)', 0],
  ])(
    '%s: calls during a 2 s refresh elsewhere claim the lease about once a second, not once each',
    async (_label, maxsize) => {
      const table = await fx.dynamo.table();
      const ca = counted();
      const cb = counted();
      const a = engine(table, ca.client, { maxsize });
      const b = engine(table, cb.client, { maxsize });
      let computed = 0;
      const slow = (ms: number) => async () => {
        computed++;
        await sleep(ms);
        return `v${computed}`;
      };
      expect(await a.namespace(NS).run(null, ['EUR'], slow(0))).toBe('v1');
      expect(await b.namespace(NS).run(null, ['EUR'], slow(0))).toBe('v1');
      await Promise.all([a.drain(), b.drain()]);
      await sleep(4300); // stale, within grace

      // A refreshes, slowly (timeout 0: its caller gets the stale value at once).
      expect(await a.namespace(NS).run(null, ['EUR'], slow(2000))).toBe('v1');
      await sleep(100); // A holds the lease
      const before = cb.claims();
      // B is called all through A's refresh: each call answered with the stale value.
      const answers: string[] = [];
      const end = Date.now() + 1800;
      while (Date.now() < end) {
        answers.push(await b.namespace(NS).run(null, ['EUR'], slow(0)));
        await sleep(5);
      }
      const claims = cb.claims() - before;
      await Promise.all([a.drain(), b.drain()]);
      expect(computed).toBe(2); // one refresh for the table
      expect(new Set(answers)).toEqual(new Set(['v1']));
      expect(answers.length).toBeGreaterThan(50);
      // About one claim a second while the lease is held (not one per call), and no copies
      // written for waiters that never waited.
      expect(claims).toBeLessThanOrEqual(4);
      expect(ca.copies()).toBeLessThanOrEqual(1);
      // Once A's refresh has landed, B looks again within about a second (timeout 0: the call
      // that looks still answers with the stale value, the next one gets the new value).
      await sleep(1100);
      await b.namespace(NS).run(null, ['EUR'], slow(0));
      await b.drain();
      expect(await b.namespace(NS).run(null, ['EUR'], slow(0))).toBe('v2');
      expect(computed).toBe(2);
    },
    30_000,
  );
});
