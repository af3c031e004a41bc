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
});
