import { DynamoCacheService, encodeKey, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * Edges of keys, ttl and unless functions, and values: two application contexts (A and B) on one
 * table agree on every entry, a function of the application that throws never loses the
 * caller's result, and a value that DynamoDB could not give back whole is kept in L1 only.
 */
describe('keys, entry functions and values at their edges', () => {
  const fx = useTestDynamo();

  async function app(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    const ref = await bootCache({ table, client: fx.dynamo.client(), ttl: 600, ...options }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it('[undefined, 1] and [ , 1] (a hole) are two keys, in the process that saw one first as in another', async () => {
    expect(encodeKey([undefined, 1])).not.toBe(encodeKey([, 1])); // eslint-disable-line no-sparse-arrays
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    expect(await a.wrap('ns', [undefined, 1], async () => 'undefined')).toBe('undefined');
    // eslint-disable-next-line no-sparse-arrays
    const holeA = await a.wrap('ns', [, 1], async () => 'hole');
    // eslint-disable-next-line no-sparse-arrays
    const holeB = await b.wrap('ns', [, 1], async () => 'hole');
    expect({ holeA, holeB }).toEqual({ holeA: 'hole', holeB: 'hole' });
  });

  it.each(['bypass', 'throw'] as const)(
    '(onError %s) set with its own ttl, of a value the namespace ttl function cannot judge: B reads it back',
    async (onError) => {
      const table = await fx.dynamo.table();
      const a = await app(table, { onError });
      const b = await app(table, { onError });
      const ttl = (u: { premium: boolean }) => (u.premium ? 3600 : 60);
      for (const c of [a, b])
        await c.wrap('users', ['seed'], async () => ({ premium: true }), { ttl });
      await a.set('users', ['gone'], null, { ttl: 30 }); // "not found", for 30 s
      let outcome: unknown;
      try {
        outcome = await b.lookup('users', ['gone']);
      } catch (err) {
        outcome = { rejected: (err as Error).constructor.name, message: (err as Error).message };
      }
      expect(outcome).toEqual({ hit: true, value: null });
    },
  );

  it('an unless function that throws: the result is still returned (as with a throwing ttl function)', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const unless = (v: { items: unknown[] }) => v.items.length === 0;
    const ttlThrows = await a.wrap('t', ['x'], async () => null, {
      ttl: (v: { n: number }) => v.n,
    });
    expect(ttlThrows).toBeNull(); // a throwing ttl function: result returned, not cached
    let outcome: unknown;
    try {
      outcome = await a.wrap('u', ['x'], async () => null, { unless });
    } catch (err) {
      outcome = `${(err as Error).constructor.name}: ${(err as Error).message}`;
    }
    expect(outcome).toBeNull();
  });

  it('symbol-keyed and non-enumerable own properties: the value is served, kept in L1 only (another process would get it without them), and B computes its own', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const sym = Symbol.for('meta');
    for (const kind of ['symbol', 'hidden'] as const) {
      const made: Record<string | symbol, unknown> = { id: 1 };
      if (kind === 'symbol') made[sym] = 'm';
      else Object.defineProperty(made, 'hidden', { value: 'h', enumerable: false });
      const fromA = await a.wrap('v', [kind], async () => made);
      expect(fromA).toBe(made);
      await a.settle();
      // Still A's own value in its L1, and nothing for B in L2.
      expect(await a.wrap('v', [kind], async () => ({ recomputed: 'A' }))).toBe(made);
      expect(await b.wrap('v', [kind], async () => ({ recomputed: 'B' }))).toEqual({
        recomputed: 'B',
      });
    }
  });
});
