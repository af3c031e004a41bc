import { CacheEngine, type CacheEngineSettings } from '../lib/engine/cache-engine.js';
import { v8Serializer, type CacheSerializer } from '../lib/index.js';
import { countCalls, useTestDynamo } from './support/dynamo-server.js';

/*
 * Value fidelity, a second reading: each case between two engines on one table (two processes'
 * worth of registries and L1s). B reads back what A's method returned, or B computes its own
 * after A kept the value in L1 only; B never fails because of what A stored.
 */

class User {
  constructor(readonly id: number) {}
}

class Link {
  constructor(
    readonly n: number,
    readonly next: Link | null,
  ) {}
}

/** An error class naming itself as many libraries do: a non-enumerable own `name`. */
class NamedError extends Error {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', {
      value: 'NamedError',
      configurable: true,
      writable: true,
    });
  }
}

/** Classes named like what every object inherits. */
const { toString: ToStringNamed, constructor: ConstructorNamed } = {
  toString: class {
    constructor(readonly id: number) {}
  },
  constructor: class {
    constructor(readonly id: number) {}
  },
};

/** A plain object nested `levels` deep (the value itself is the first level). */
function nested(levels: number): object {
  const root: { next?: object } = {};
  let at = root;
  for (let i = 1; i < levels; i++) at = at.next = {};
  return root;
}

/** A serializer built on the default one whose values are read-only (deep-frozen). */
const freezing: CacheSerializer = {
  serialize: (value) => v8Serializer.serialize(value),
  deserialize: (bytes) => deepFreeze(v8Serializer.deserialize(bytes)),
};

function deepFreeze(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

describe('value fidelity, second reading (two engines on one table)', () => {
  const fx = useTestDynamo();
  const warnings: string[] = [];
  const logger = { warn: (m: string) => void warnings.push(m), error: () => undefined };

  function engine(table: string, extra: Partial<CacheEngineSettings> = {}) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const e = new CacheEngine({
      client: () => client,
      table,
      ttl: 600,
      maxsize: 100,
      keyPrefix: '',
      onError: 'throw',
      serializer: v8Serializer,
      consistentRead: true,
      logger,
      types: [User],
      ...extra,
    });
    fx.apps.push({ close: () => e.drain() });
    return { e, calls };
  }

  beforeEach(() => {
    warnings.length = 0;
  });

  it('a serializer whose objects are frozen: a value with instances read by B is an unreadable item (logged, recomputed), not an error thrown at the caller', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table, { serializer: freezing });
    const b = engine(table, { serializer: freezing });
    await a.e.namespace('frozen').run(null, [1], async () => ({ owner: new User(1) }));
    await a.e.settle();
    expect(a.calls.counts.PutItem).toBe(1);
    let outcome: unknown;
    try {
      outcome = await b.e.namespace('frozen').run(null, [1], async () => 'computed by B');
    } catch (err) {
      outcome = `threw ${String(err)}`;
    }
    expect(outcome).toBe('computed by B');
    expect(warnings).toEqual([
      expect.stringMatching(/frozen: unreadable L2 item .*not extensible/),
    ]);
    expect(b.e.stats().namespaces.frozen).toMatchObject({ l2Errors: 0 });
  });

  it('a value nested deeper than a reader can deserialize is kept in L1 only (one warning), not stored for every reader to find unreadable; one nested 1,000 levels still travels', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const b = engine(table);
    // Node's serializer writes this; its deserializer runs out of stack reading it back.
    const deep = nested(2500);
    expect(await a.e.namespace('deep').run(null, [1], async () => deep)).toBe(deep);
    await a.e.settle();
    expect(await b.e.namespace('deep').run(null, [1], async () => 'computed by B')).toBe(
      'computed by B',
    );
    expect(warnings).toEqual([
      expect.stringMatching(/deep: a result cannot be stored .*more than 1000 levels deep/),
    ]);
    expect(a.calls.counts.PutItem).toBeUndefined();
    const fine = nested(1000);
    await a.e.namespace('deep').run(null, [2], async () => fine);
    await a.e.settle();
    expect(
      JSON.stringify(await b.e.namespace('deep').run(null, [2], async () => 'computed by B')),
    ).toBe(JSON.stringify(fine));
  });

  it('a linked list of 20,000 instances is refused at once (its class record would grow with the square of its length: gigabytes, a process out of memory)', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table, { types: [Link] });
    let list: Link | null = null;
    for (let i = 0; i < 20_000; i++) list = new Link(i, list);
    const started = Date.now();
    expect(await a.e.namespace('chain').run(null, [1], async () => list)).toBe(list);
    expect(Date.now() - started).toBeLessThan(5000);
    // Stopped by whichever bound it meets first: its depth, or its record's size.
    expect(warnings).toEqual([expect.stringMatching(/kept in L1 only: it(s class record| nests)/)]);
  });

  it('50,000 instances 900 levels down are refused after a bounded check (their paths would make a record of gigabytes, built for seconds before the item was found too large); 50 of them still travel', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const b = engine(table);
    const under = (levels: number, value: unknown): unknown => {
      for (let i = 0; i < levels; i++) value = { v: value };
      return value;
    };
    const many = under(
      900,
      Array.from({ length: 50_000 }, (_, i) => new User(i)),
    );
    const started = Date.now();
    expect(await a.e.namespace('wide').run(null, [1], async () => many)).toBe(many);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(warnings).toEqual([
      expect.stringMatching(/wide: a result cannot be stored .*class record .* larger than/),
    ]);
    const few = under(
      900,
      Array.from({ length: 50 }, (_, i) => new User(i)),
    );
    await a.e.namespace('wide').run(null, [2], async () => few);
    await a.e.settle();
    let read: unknown = await b.e.namespace('wide').run(null, [2], async () => 'computed by B');
    for (let i = 0; i < 900; i++) read = (read as { v: unknown }).v;
    expect(read).toHaveLength(50);
    expect((read as unknown[]).every((u) => u instanceof User)).toBe(true);
  });

  it('classes named toString or constructor travel like any other (they were refused: the record looked their names up on Object.prototype)', async () => {
    const table = await fx.dynamo.table();
    const types = [ToStringNamed, ConstructorNamed];
    const a = engine(table, { types });
    const b = engine(table, { types });
    expect([ToStringNamed.name, ConstructorNamed.name]).toEqual(['toString', 'constructor']);
    await a.e
      .namespace('names')
      .run(null, [1], async () => ({ t: new ToStringNamed(1), c: new ConstructorNamed(2) }));
    await a.e.settle();
    expect(warnings).toEqual([]);
    const read = (await b.e.namespace('names').run(null, [1], async () => 'computed by B')) as {
      t?: unknown;
      c?: unknown;
    };
    expect(read.t).toBeInstanceOf(ToStringNamed);
    expect(read.c).toBeInstanceOf(ConstructorNamed);
  });

  it('a built-in whose own properties the serializer drops, non-enumerable or symbol-keyed too (an error naming itself, a Map with a symbol-keyed tag), is kept in L1 only: B never reads it without them', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table, { types: [NamedError] });
    const b = engine(table, { types: [NamedError] });
    const failure = { error: new NamedError('no stock') };
    expect(failure.error.name).toBe('NamedError');
    await a.e.namespace('errors').run(null, [1], async () => failure);
    const tagged = new Map([['a', 1]]);
    Object.defineProperty(tagged, Symbol.for('tag'), { value: 'v2', enumerable: true });
    await a.e.namespace('maps').run(null, [1], async () => ({ tagged }));
    await a.e.settle();
    const readError = (await b.e
      .namespace('errors')
      .run(null, [1], async () => 'computed by B')) as { error?: Error };
    const readMap = (await b.e.namespace('maps').run(null, [1], async () => 'computed by B')) as {
      tagged?: object;
    };
    // Stored, B read an error named `Error` and a Map without its tag.
    expect({
      name: readError.error?.name ?? readError,
      map:
        typeof readMap === 'string'
          ? readMap
          : `a Map tagged ${String((readMap.tagged as Record<symbol, unknown>)[Symbol.for('tag')])}`,
    }).toEqual({
      name: 'computed by B',
      map: 'computed by B',
    });
    expect(warnings).toEqual([
      expect.stringMatching(/errors: .* kept in L1 only: value\.error is a built-in .*\(name\)/),
      expect.stringMatching(/maps: .* kept in L1 only: value\.tagged is a Map .*Symbol\(tag\)/),
    ]);
  });

  it('an Error with a cause, a String object, a used RegExp with lastIndex 0 and an Error subclass without own fields still travel', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const b = engine(table);
    const re = /x/g;
    re.test('x');
    re.test('x');
    expect(re.lastIndex).toBe(0);
    const value = {
      error: new TypeError('bad', { cause: new User(1) }),
      word: Object('') as object,
      re,
    };
    await a.e.namespace('kept').run(null, [1], async () => value);
    await a.e.settle();
    expect(warnings).toEqual([]);
    const read = (await b.e
      .namespace('kept')
      .run<unknown>(null, [1], async () => 'computed by B')) as {
      error: Error;
      word: object;
      re: RegExp;
    };
    expect(read.error.cause).toBeInstanceOf(User);
    expect(read.error.name).toBe('TypeError');
    expect(String(read.word)).toBe('');
    expect(String(read.re)).toBe('/x/g');
  });
});
