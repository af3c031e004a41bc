/**
 * The three contenders of the L2 group, built alike in the benchmark's process (concurrency 16
 * and 64) and in the process of their own each gets at concurrency 1 (l2-child.ts):
 *
 * - bare SDK: `GetItem` + `v8.deserialize` of the stored value (the floor of any DynamoDB cache);
 * - nestjs-dynamo-cache: a `@DynamoCached({ maxsize: 0 })` method, so L1 never answers (the
 *   library coalesces concurrent reads into `BatchGetItem` calls);
 * - bentocache: `getOrSet` on a store with its DynamoDB driver as the only layer.
 *
 * All three clients are built with the options nestjs-dynamo-cache gives its own client
 * (`cacheMiddleware: true`, connection and socket timeouts), so the client's configuration is
 * not what is compared, and each counts its calls.
 */
import 'reflect-metadata';
import {
  DynamoDBClient,
  GetItemCommand,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BentoCache, bentostore } from 'bentocache';
import { dynamoDbDriver } from 'bentocache/drivers/dynamodb';
import { deserialize } from 'node:v8';
import {
  buildCacheKey,
  DYNAMO_CACHE_CLIENT,
  DynamoCached,
  DynamoCacheModule,
  encodeKey,
} from '../lib/index.js';
import { countCalls, type CallCounter } from '../test/support/call-counter.js';

export const TABLE = 'bench-l2';
export const BENTO_TABLE = 'bento-l2';
const NAMESPACE = 'Bench.l2';

export const BARE = 'bare SDK GetItem + v8 deserialize (baseline)';
export const OURS = 'nestjs-dynamo-cache, empty L1 (maxsize 0)';
export const BENTO = 'bentocache getOrSet, DynamoDB L2 layer only';
export const LABELS = [BARE, OURS, BENTO] as const;
export type ContenderLabel = (typeof LABELS)[number];

export interface Item {
  id: number;
  from: string;
  to: string;
  rate: number;
  at: string;
}

export const item = (id: number): Item => ({
  id,
  from: 'EUR',
  to: 'USD',
  rate: 1 + id / 10_000,
  at: '2026-11-25T00:00:00.000Z',
});

/** The client options of a benchmark client talking to `endpoint`. */
export function clientConfig(endpoint: string): DynamoDBClientConfig {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  };
}

/** Built contenders: one read of key `k` each, their call counters, and what must stay at 0. */
export interface L2Contenders {
  readonly ops: ReadonlyMap<ContenderLabel, (k: number) => Promise<unknown>>;
  readonly counters: ReadonlyMap<ContenderLabel, CallCounter>;
  /** Writes the `keys` items of each contender built (ours through the method: misses). */
  fill(concurrency?: number): Promise<void>;
  /** Calls of the cached method and of bentocache's factory (0 while hits are measured). */
  computations(): { method: number; factory: number };
  resetComputations(): void;
  close(): Promise<void>;
}

/**
 * Builds `only` of the three contenders (all by default) on the tables at `endpoint`, over
 * `keys` keys numbered 0 to `keys - 1`. The tables must exist.
 */
export async function l2Contenders(
  endpoint: string,
  keys: number,
  only: readonly ContenderLabel[] = LABELS,
): Promise<L2Contenders> {
  const config = clientConfig(endpoint);
  // What DynamoCacheModule builds from `clientConfig` (see lib/dynamo-cache.module.ts).
  const sameAsModule = {
    ...config,
    cacheMiddleware: true,
    requestHandler: { connectionTimeout: 1000, socketTimeout: 1000 },
  } as DynamoDBClientConfig;
  const ops = new Map<ContenderLabel, (k: number) => Promise<unknown>>();
  const fills = new Map<ContenderLabel, (k: number) => Promise<unknown>>();
  const counters = new Map<ContenderLabel, CallCounter>();
  const closers: (() => Promise<void> | void)[] = [];
  let method = 0;
  let factory = 0;

  if (only.includes(OURS) || only.includes(BARE)) {
    const ourKeys = Array.from({ length: keys }, (_, k) =>
      buildCacheKey('', NAMESPACE, encodeKey([k])),
    );
    if (only.includes(OURS)) {
      @Injectable()
      class L2Service {
        @DynamoCached({ maxsize: 0, namespace: NAMESPACE, ttl: 3600 })
        async get(id: number): Promise<Item> {
          method++;
          return item(id);
        }
      }
      @Module({
        imports: [DynamoCacheModule.forRoot({ table: TABLE, clientConfig: config, ttl: 3600 })],
        providers: [L2Service],
      })
      class L2Module {}
      const app = await NestFactory.createApplicationContext(L2Module, { logger: false });
      const svc = app.get(L2Service);
      // Counted before any call: a client that caches its middleware would not see a later one.
      counters.set(OURS, countCalls(app.get<DynamoDBClient>(DYNAMO_CACHE_CLIENT)));
      ops.set(OURS, (k) => svc.get(k));
      fills.set(OURS, (k) => svc.get(k));
      closers.push(() => app.close());
    }
    if (only.includes(BARE)) {
      const bareClient = new DynamoDBClient(sameAsModule);
      counters.set(BARE, countCalls(bareClient));
      ops.set(BARE, async (k) => {
        const out = await bareClient.send(
          new GetItemCommand({ TableName: TABLE, Key: { cache_key: { S: ourKeys[k]! } } }),
        );
        const bytes = out.Item?.v?.B;
        if (bytes === undefined) throw new Error(`bare GetItem: no item for key ${k}`);
        return deserialize(bytes);
      });
      closers.push(() => bareClient.destroy());
    }
  }
  if (only.includes(BENTO)) {
    const bentoClient = new DynamoDBClient(sameAsModule);
    counters.set(BENTO, countCalls(bentoClient));
    const bento = new BentoCache({
      default: 'l2',
      stores: {
        l2: bentostore().useL2Layer(
          dynamoDbDriver({ table: { name: BENTO_TABLE }, client: bentoClient } as never),
        ),
      },
    });
    const bentoKeys = Array.from({ length: keys }, (_, k) => `item:${k}`);
    ops.set(BENTO, (k) =>
      bento.getOrSet({
        key: bentoKeys[k]!,
        factory: () => {
          factory++;
          return item(k);
        },
        ttl: '1h',
      }),
    );
    fills.set(BENTO, (k) => bento.set({ key: bentoKeys[k]!, value: item(k), ttl: '1h' }));
    closers.push(async () => {
      await bento.disconnect();
      bentoClient.destroy();
    });
  }

  return {
    ops,
    counters,
    fill: async (concurrency = 16) => {
      for (const fill of fills.values()) await eachKey(keys, concurrency, fill);
      if (only.includes(OURS) && method !== keys) {
        throw new Error(`L2 fill: ${method} method calls for ${keys} keys`);
      }
    },
    computations: () => ({ method, factory }),
    resetComputations: () => {
      method = 0;
      factory = 0;
    },
    close: async () => {
      for (const close of closers) await close();
    },
  };
}

/** Runs `op` once for every key, `concurrency` at a time. */
export async function eachKey(
  keys: number,
  concurrency: number,
  op: (k: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys) await op(next++);
    }),
  );
}

/**
 * `op` with a cheap check of its value on every call (its id; all contenders alike; the whole
 * value is compared once before the rounds), over the keys in turn.
 */
export function checked(
  label: string,
  op: (k: number) => Promise<unknown>,
  keys: number,
): (i: number) => Promise<void> {
  return async (i) => {
    const k = i % keys;
    if ((((await op(k)) as Item | undefined)?.id ?? -1) !== k) {
      throw new Error(`${label}: wrong value for key ${k}`);
    }
  };
}
