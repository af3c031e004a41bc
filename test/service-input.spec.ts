import { DynamoCacheError, DynamoCacheService } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

describe('service calls with bad input reject with DynamoCacheError (config or key)', () => {
  let dynamo: TestDynamo;
  let cache: DynamoCacheService;
  let close: () => Promise<void>;
  beforeAll(async () => {
    dynamo = await startDynamo();
    const table = await dynamo.table();
    const app = await bootCache({ table, clientConfig: dynamo.clientConfig, onError: 'throw' }, []);
    cache = app.get(DynamoCacheService);
    close = () => app.close();
  });
  afterAll(async () => {
    await close();
    await dynamo.close();
  });

  const bad = (s: unknown) => s as never;
  const cases: [string, () => Promise<unknown>][] = [
    ['wrap: namespace 42', () => cache.wrap(bad(42), ['a'], () => 1)],
    ['wrap: namespace ""', () => cache.wrap('', ['a'], () => 1)],
    ['wrap: namespace of 3000 chars', () => cache.wrap('n'.repeat(3000), ['a'], () => 1)],
    ['wrap: args not an array', () => cache.wrap('ns', bad('abc'), () => 1)],
    ['wrap: fn not a function', () => cache.wrap('ns', ['b'], bad(5))],
    ['get: args null', () => cache.get('ns', bad(null))],
    ['set: namespace undefined', () => cache.set(bad(undefined), ['a'], 1)],
    ['delete: namespace 42', () => cache.delete(bad(42), ['a'])],
    ['delete: args undefined', () => cache.delete('ns', bad(undefined))],
    ['expire: args a number', () => cache.expire('ns', bad(7))],
    ['clear: namespace {}', () => cache.clear(bad({}))],
    ['deleteMany: argsList not an array', () => cache.deleteMany('ns', bad('x'))],
    ['deleteByTag: tags 42', () => cache.deleteByTag(bad(42))],
    ['set: ttl "60"', () => cache.set('ns', ['a'], 1, { ttl: bad('60') })],
    ['wrap: table ""', () => cache.wrap('nsT', ['a'], () => 1, { table: '' })],
    ['wrap: table 5', () => cache.wrap('nsT2', ['a'], () => 1, { table: bad(5) })],
    ['deleteByTag: tags undefined', () => cache.deleteByTag(bad(undefined))],
    ['deleteByTag: tags null', () => cache.deleteByTag(bad(null))],
    ['deleteByTag: tags a function', () => cache.deleteByTag(bad(() => ['a']))],
    ['deleteByTag: tags [42]', () => cache.deleteByTag(bad([42]))],
    ['wrap: options null', () => cache.wrap('ns', ['a'], () => 1, bad(null))],
    ['wrap: options 60', () => cache.wrap('ns', ['a'], () => 1, bad(60))],
    ['set: options null', () => cache.set('ns', ['a'], 1, bad(null))],
    ['get: options null', () => cache.get('ns', ['a'], bad(null))],
    ['lookup: options "x"', () => cache.lookup('ns', ['a'], bad('x'))],
    [
      'wrap: computeTimeout 1e130 (tombstones: number overflow)',
      () => cache.wrap('nsC', ['a'], () => 1, { computeTimeout: 1e130 }),
    ],
    [
      'set: computeTimeout past 1e13 ms',
      () => cache.set('nsC2', ['a'], 1, { computeTimeout: 1e13 + 1 }),
    ],
  ];

  it.each(cases)('%s', async (_name, call) => {
    let outcome: unknown;
    try {
      outcome = await call().then(
        (v) => ({ resolved: v }),
        (e: unknown) => e,
      );
    } catch (syncErr) {
      outcome = { threwSynchronously: String(syncErr) };
    }
    expect(outcome).toBeInstanceOf(DynamoCacheError);
    expect(['config', 'key']).toContain((outcome as DynamoCacheError).operation);
  });

  it.each<[string, () => Promise<unknown>, RegExp]>([
    [
      'deleteByTag(undefined)',
      () => cache.deleteByTag(bad(undefined)),
      /^DynamoCacheService\.deleteByTag: tags must be a tag .* or an array of tags, got undefined$/,
    ],
    [
      'deleteByTag(a function)',
      () => cache.deleteByTag(bad(() => ['a'])),
      /^DynamoCacheService\.deleteByTag: tags must be .*, got function$/,
    ],
    [
      'wrap(…, null)',
      () => cache.wrap('ns', ['a'], () => 1, bad(null)),
      /^DynamoCacheService\.wrap on "ns": options must be an object .*, got null$/,
    ],
    [
      'set(…, null)',
      () => cache.set('ns', ['a'], 1, bad(null)),
      /^DynamoCacheService\.set on "ns": options must be an object .*, got null$/,
    ],
    [
      'get(…, null)',
      () => cache.get('ns', ['a'], bad(null)),
      /^DynamoCacheService\.get on "ns": options must be an object .*, got null$/,
    ],
    [
      'wrap(…, { computeTimeout: 1e130 })',
      () => cache.wrap('nsC', ['a'], () => 1, { computeTimeout: 1e130 }),
      /"computeTimeout" must be a positive number of milliseconds up to 10000000000000, got 1e\+130$/,
    ],
  ])('%s: the message names the method and the problem', async (_name, call, message) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DynamoCacheError);
    expect((err as DynamoCacheError).operation).toBe('config');
    expect((err as Error).message).toMatch(message);
  });

  it('computeTimeout at its bound (1e13 ms) works: the entry is stored, deleted and recomputed', async () => {
    let runs = 0;
    const opts = { ttl: 60, computeTimeout: 1e13 };
    const compute = () => ++runs;
    expect(await cache.wrap('nsEdge', ['k'], compute, opts)).toBe(1);
    await cache.delete('nsEdge', ['k']);
    await cache.expire('nsEdge', ['k']);
    await cache.set('nsEdge', ['k'], 7, { computeTimeout: 1e13 });
    expect(await cache.get('nsEdge', ['k'])).toBe(7);
    await cache.delete('nsEdge', ['k']);
    expect(await cache.wrap('nsEdge', ['k'], compute, opts)).toBe(2);
  });
});
