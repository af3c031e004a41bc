import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine, type CacheEngineSettings } from '../lib/engine/cache-engine.js';
import { sleep } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { engineSettings } from './support/engine-settings.js';
import { MemoryBus } from './support/memory-bus.js';
import { seededRandom } from './support/seeded-random.js';

/*
 * Invalidations against computations in flight, seeded: two engines on one table and a bus that
 * delivers at once, six workers calling, reading and invalidating two keys, every DynamoDB call
 * slowed at random. The source is a version counter a computation reads when it begins; each
 * invalidation (one at a time) bumps it first. A call made after an invalidation returned, in
 * either engine, must never get a value older than that invalidation (a value kept as stale by
 * `expire`, or served by grace, may be the one before it, never an older one).
 */

/** Slows each call of `client` at random; with `late`, one in ten answers past `l2Timeout`. */
function slowDown(client: DynamoDBClient, random: () => number, late: boolean): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      await sleep(random() * 15);
      const out = await next(args);
      await sleep(late && random() < 0.1 ? 150 + random() * 150 : random() * 15);
      return out;
    },
    { step: 'initialize', name: 'fuzzSlowDown' },
  );
}

interface Config {
  /** Engine settings over the test's. */
  settings: Partial<CacheEngineSettings>;
  /** The namespace's ttl (seconds). */
  ttl: number;
  /** Share of computations that reject. */
  failures: number;
  /** Answers late past l2Timeout (the call is given up, the request did land). */
  late?: boolean;
  /** The fixture's lease (default: none). */
  lease?: boolean;
}

const CONFIGS: Record<string, Config> = {
  plain: { settings: {}, ttl: 600, failures: 0 },
  'l1MaxAge 0.05 s, short ttl, grace, failing computations': {
    settings: { l1MaxAge: 0.05, grace: 60 },
    ttl: 0.3,
    failures: 0.3,
  },
  lease: { settings: {}, ttl: 600, failures: 0, lease: true },
  "answers past l2Timeout, onError 'throw'": {
    settings: { l2Timeout: 100, onError: 'throw' },
    ttl: 600,
    failures: 0,
    late: true,
  },
};

const KEYS = ['k0', 'k1'];

describe('invalidations against computations in flight, seeded (two engines, a bus)', () => {
  const fx = useTestDynamo();

  it.each(Object.keys(CONFIGS).flatMap((name) => [1, 2].map((seed) => [name, seed] as const)))(
    '%s, seed %s',
    async (name, seed) => {
      const config = CONFIGS[name] as Config;
      const random = seededRandom(seed);
      const table = await fx.dynamo.table();
      const hub = new Set<MemoryBus>();
      const engines: CacheEngine[] = [];
      for (let i = 0; i < 2; i++) {
        const client = fx.dynamo.client();
        slowDown(client, random, config.late === true);
        const engine = new CacheEngine(
          engineSettings(client, table, {
            bus: new MemoryBus(hub),
            // The fixture's lease, or none.
            ...(config.lease === true ? {} : { lease: false }),
            ...config.settings,
          }),
        );
        await engine.connectBus();
        fx.apps.push({ close: () => engine.drain() });
        engines.push(engine);
      }
      const ns = (engine: CacheEngine) => engine.namespace('ns', { tags: ['t'], ttl: config.ttl });

      const source = new Map<string, number>();
      /** The least a fresh answer may be, once the invalidations so far have returned. */
      const floor = new Map<string, number>();
      /** The least any answer may be (`expire` keeps the value before it as a stale one). */
      const staleFloor = new Map<string, number>();
      let version = 0;
      let oneAtATime: Promise<void> = Promise.resolve();
      const violations: string[] = [];
      // With grace, a stale value answers a failed computation; with a lease, a call that finds
      // another engine refreshing it (see the README's Grace).
      const fresh = config.settings.grace === undefined && config.lease !== true;

      const worker = async (w: number): Promise<void> => {
        for (let i = 0; i < 40; i++) {
          const engine = engines[Math.floor(random() * 2)] as CacheEngine;
          const key = KEYS[Math.floor(random() * 2)] as string;
          const r = random();
          const least = floor.get(key) ?? 0;
          const leastStale = staleFloor.get(key) ?? 0;
          const check = (got: number, how: string): void => {
            if (got < leastStale || (fresh && got < least)) {
              violations.push(`${how} w${w} ${key}: ${got}, after ${least} (stale ${leastStale})`);
            }
          };
          if (r < 0.15) {
            const found = await ns(engine)
              .get<number>([key])
              .catch(() => ({ hit: false as const }));
            if (found.hit) check(found.value, 'get');
          } else if (r < 0.6) {
            const got = (await ns(engine)
              .run(undefined, [key], async () => {
                const v = source.get(key) ?? 0;
                const fails = random() < config.failures;
                await sleep(random() * 30);
                if (fails) throw new Error('upstream down');
                return v;
              })
              .catch(() => Infinity)) as number;
            check(got, 'run');
          } else {
            const previous = oneAtATime;
            let done!: () => void;
            oneAtATime = new Promise<void>((resolve) => (done = resolve));
            await previous;
            const v = ++version;
            const kind = Math.floor(random() * 5);
            const keys = kind >= 3 ? KEYS : [key];
            for (const k of keys) source.set(k, v);
            let failed = false;
            const invalidation =
              kind === 0
                ? ns(engine).delete([key])
                : kind === 1
                  ? ns(engine).set([key], v)
                  : kind === 2
                    ? ns(engine).expire([key])
                    : kind === 3
                      ? ns(engine).clear()
                      : engine.deleteByTag(['t']);
            await invalidation.catch(() => (failed = true));
            if (!failed) {
              for (const k of keys) {
                floor.set(k, v);
                if (kind !== 2) staleFloor.set(k, v);
              }
            }
            done();
          }
        }
      };
      await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
      expect(violations).toEqual([]);
    },
  );
});
