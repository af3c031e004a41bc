import { Injectable } from '@nestjs/common';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheService,
  encodeKey,
  type CacheEvent,
} from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

@Injectable()
class RatesService {
  calls = 0;
  @DynamoCached(60)
  async rate(pair: string): Promise<number> {
    this.calls++;
    return pair.length;
  }
}

const NS = 'RatesService.rate';
const keyOf = (pair: string): string => buildCacheKey('', NS, encodeKey([pair]));

describe(`cache events (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(table: string) {
    const moduleRef = await bootCache({ table, client: fx.dynamo.client() }, [RatesService]);
    fx.apps.push(moduleRef);
    const cache = moduleRef.get(DynamoCacheService);
    const seen: CacheEvent[] = [];
    const offs = (['hit', 'miss', 'write', 'delete', 'error'] as const).map((type) =>
      cache.on(type, (e) => seen.push(e)),
    );
    return { rates: moduleRef.get(RatesService), cache, seen, off: () => offs.forEach((f) => f()) };
  }

  it('one event per outcome, with the layer that answered, in two applications', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    await a.rates.rate('EURUSD');
    await a.rates.rate('EURUSD');
    expect(a.seen).toEqual([
      { type: 'miss', namespace: NS, key: keyOf('EURUSD') },
      { type: 'write', namespace: NS, key: keyOf('EURUSD') },
      { type: 'hit', namespace: NS, key: keyOf('EURUSD'), layer: 'l1' },
    ]);

    const b = await app(table);
    await b.rates.rate('EURUSD');
    expect(b.seen).toEqual([{ type: 'hit', namespace: NS, key: keyOf('EURUSD'), layer: 'l2' }]);

    a.seen.length = 0;
    await a.cache.delete(NS, ['EURUSD']);
    expect(a.seen).toEqual([{ type: 'delete', namespace: NS, key: keyOf('EURUSD') }]);

    // Once off, nothing more is delivered.
    a.off();
    await a.rates.rate('GBPUSD');
    expect(a.seen).toHaveLength(1);
  });

  it('a failing DynamoDB is reported as error events; a throwing listener changes nothing', async () => {
    const table = `missing-${Date.now()}`;
    const moduleRef = await bootCache({ table, client: fx.dynamo.client() }, [RatesService]);
    fx.apps.push(moduleRef);
    const cache = moduleRef.get(DynamoCacheService);
    const errors: CacheEvent[] = [];
    cache.on('error', (e) => errors.push(e));
    cache.on('miss', () => {
      throw new Error('a faulty listener');
    });
    expect(await moduleRef.get(RatesService).rate('EURUSD')).toBe(6);
    // The GetItem and the PutItem both failed (no such table); the call was served.
    expect(errors.map((e) => e.error?.operation)).toEqual(['GetItem', 'PutItem']);
    expect(errors.every((e) => e.namespace === NS)).toBe(true);
  });
});
