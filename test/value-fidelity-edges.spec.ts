import { randomBytes } from 'node:crypto';
import { DynamoCacheService, encodeKey, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

class User {
  constructor(
    public id: string,
    public password: string,
  ) {}
  get label(): string {
    return `user ${this.id}`;
  }
}

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8')),
};

/*
 * Values and keys at their edges, each with two applications (A and B) on one table: B never
 * reads a value other than the one A's method returned (or an older one after A replaced it);
 * what a serializer cannot give back whole stays in A's L1.
 */
describe('values and keys at their edges, across two instances', () => {
  const fx = useTestDynamo();

  async function app(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    const ref = await bootCache({ table, client: fx.dynamo.client(), ttl: 600, ...options }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it('JSON serializer: an instance referenced twice is kept in L1 only (the serializer would copy it apart), so B computes its own', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { serializer: json });
    const b = await app(table, { serializer: json });
    const u = new User('1', 'secret');
    const fromA = await a.wrap('users', ['1'], async () => ({ owner: u, author: u }), {
      types: [User],
    });
    await a.settle();
    expect(fromA.author).toBe(u);
    // Never half-restored (one place an instance, the other a plain object): not shared at all.
    expect(await b.wrap('users', ['1'], async () => 'MISS', { types: [User] })).toBe('MISS');
    // A value without shared objects still goes through L2 under that serializer.
    await a.wrap('users', ['2'], async () => ({ owner: u }), { types: [User] });
    await a.settle();
    const single = await b.wrap<unknown>('users', ['2'], async () => 'MISS', { types: [User] });
    expect((single as { owner?: unknown }).owner).toBeInstanceOf(User);
  });

  it('v8 serializer (control): the same value comes back with both instances', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const u = new User('1', 'secret');
    await a.wrap('users', ['1'], async () => ({ owner: u, author: u }), { types: [User] });
    await a.settle();
    const fromB = (await b.wrap('users', ['1'], async () => 'MISS', { types: [User] })) as any;
    expect(fromB.author).toBeInstanceOf(User);
    expect(fromB.author).toBe(fromB.owner);
  });

  it('set of a large value with many tags: B never reads the older value', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const tags = Array.from({ length: 64 }, (_, i) => `tag-${i}-`.padEnd(1000, 'x'));
    await a.set('blobs', ['k'], 'old', { tags });
    await a.settle();
    const big = randomBytes(370 * 1024);
    let setOutcome: unknown = 'resolved';
    try {
      await a.set('blobs', ['k'], big, { tags });
      await a.settle();
    } catch (err) {
      setOutcome = String(err);
    }
    // Too large for DynamoDB with its tags: kept in A's L1, and a tombstone where "old" was.
    expect(setOutcome).toBe('resolved');
    expect(await b.get('blobs', ['k'])).toBeUndefined();
  });

  it('onError throw: a computed large value with many tags is returned (kept in L1 only), not an error', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { onError: 'throw' });
    const tags = Array.from({ length: 64 }, (_, i) => `tag-${i}-`.padEnd(1000, 'x'));
    const big = randomBytes(370 * 1024);
    let outcome: unknown;
    try {
      outcome =
        (await a.wrap('blobs', ['k2'], async () => big, { tags })) === big ? 'value' : 'other';
    } catch (err) {
      outcome = String(err);
    }
    expect(outcome).toBe('value');
  });

  it('a global RegExp with a lastIndex is kept in L1 only (the serializer drops it), so B computes its own', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const re = /a/g;
    re.exec('xxa');
    expect(re.lastIndex).toBe(3);
    await a.wrap('re', ['1'], async () => ({ re }));
    await a.settle();
    expect(await b.wrap('re', ['1'], async () => 'MISS')).toBe('MISS');
  });

  it('an instance in an Error cause comes back as an instance in B', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const err = new Error('failed', { cause: new User('1', 'pw') });
    const fromA = (await a.wrap('errs', ['1'], async () => ({ err }), { types: [User] })) as any;
    await a.settle();
    const fromB = (await b.wrap('errs', ['1'], async () => 'MISS', { types: [User] })) as any;
    expect(fromA.err.cause).toBeInstanceOf(User);
    expect(fromB).not.toBe('MISS');
    expect({ cause: fromB.err.cause, isUser: fromB.err.cause instanceof User }).toEqual({
      cause: expect.anything(),
      isUser: true,
    });
  });

  it('keys: an empty object with a bare (null-chained) prototype, as fast-querystring makes, is key material as in 0.1.0', async () => {
    // What fast-querystring (Fastify's query parser) returns for an empty query string.
    const q = Object.create(Object.create(null) as object) as object;
    let encoded: unknown;
    try {
      encoded = encodeKey([q], 'Search.find');
    } catch (err) {
      encoded = String(err);
    }
    const table = await fx.dynamo.table();
    const a = await app(table);
    let result: unknown;
    try {
      result = await a.wrap('Search.find', [q], async () => 'results');
    } catch (err) {
      result = String(err);
    }
    // '[c0:{}]': what 0.1.0 encoded.
    expect({ encoded, result }).toEqual({ encoded: '[c0:{}]', result: 'results' });
  });
});
