import { types } from 'node:util';
import { runInNewContext } from 'node:vm';
import { CacheEngine } from '../lib/engine/cache-engine.js';
import { recordClasses, UnrecordableValueError } from '../lib/engine/values/class-record.js';
import { v8Serializer } from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { countCalls, testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * Edge cases of the class record, each between two engines on one table (two processes' worth of
 * registries and L1s): what the serializer keeps and what the record says must agree, and what
 * cannot be restored faithfully is kept in L1 only, never stored to come back different.
 */

class Item {
  constructor(readonly id: number) {}
  label(): string {
    return `item ${this.id}`;
  }
}

/** A Map subclass whose iterator runs in another order than the entries were inserted. */
class SortedMap<V> extends Map<string, V> {
  override *[Symbol.iterator](): MapIterator<[string, V]> {
    yield* [...super.entries()].sort(([a], [b]) => a.localeCompare(b));
  }
  override entries(): MapIterator<[string, V]> {
    return this[Symbol.iterator]();
  }
}

class Dog {
  constructor(readonly name: string) {}
}
class Cat {
  constructor(readonly name: string) {}
}

class Node {
  constructor(
    readonly n: number,
    readonly next: Node | null,
  ) {}
}

class HttpProblem extends Error {
  constructor(readonly status: number) {
    super('problem');
  }
}

describe(`class record edge cases (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const warnings: string[] = [];
  const logger = { warn: (m: string) => void warnings.push(m), error: () => undefined };

  function engine(table: string, types?: (abstract new (...args: never[]) => unknown)[]) {
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
      types,
    });
    fx.apps.push({ close: () => e.drain() });
    return { e, calls };
  }

  beforeEach(() => {
    warnings.length = 0;
  });

  it('two classes with one name in two namespaces: each namespace restores its own', async () => {
    const table = await fx.dynamo.table();
    // Two modules, each with its own undecorated class called Item.
    const CartItem = class Item {
      constructor(readonly id: number) {}
      total(): string {
        return `cart ${this.id}`;
      }
    };
    const a = engine(table);
    await a.e.namespace('OrdersService.items').run(null, [1], async () => new Item(1));
    const b = engine(table);
    // B computes the cart's Item first, then reads the orders' item A wrote.
    await b.e.namespace('CartService.items').run(null, [1], async () => new CartItem(2));
    let computed = 0;
    const read = await b.e.namespace('OrdersService.items').run(null, [1], async () => {
      computed++;
      return new Item(1);
    });
    // Never the cart's class: B did not know the orders' Item yet, so it recomputed.
    expect(read).toBeInstanceOf(Item);
    expect((read as Item).label()).toBe('item 1');
    expect(computed).toBe(1);
    expect(b.e.stats().namespaces['OrdersService.items']?.unrestorable).toBe(1);
  });

  it('a URL inside a value is not stored (it would come back as an empty shell): L1 only', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const value = { home: new URL('https://example.com/a') };
    expect(await a.e.namespace('links').run(null, [1], async () => value)).toBe(value);
    expect(a.calls.counts).toEqual({ GetItem: 1 });
    expect(warnings).toEqual([expect.stringMatching(/value\.home is a URL, whose state/)]);
    expect(await scanTable(fx.admin, table)).toEqual([]);
  });

  it('a Map subclass with its own iteration order: every entry gets its own class back', async () => {
    const table = await fx.dynamo.table();
    const pets = new SortedMap<Dog | Cat>();
    pets.set('b', new Cat('tom'));
    pets.set('a', new Dog('rex'));
    const a = engine(table, [SortedMap, Dog, Cat]);
    await a.e.namespace('pets').run(null, [1], async () => ({ first: new Dog('max'), pets }));
    const b = engine(table, [SortedMap, Dog, Cat]);
    const read = (await b.e.namespace('pets').run(null, [1], async () => {
      throw new Error('must come from L2');
    })) as { pets: SortedMap<Dog | Cat> };
    expect(read.pets).toBeInstanceOf(SortedMap);
    expect(read.pets.get('b')).toBeInstanceOf(Cat);
    expect(read.pets.get('a')).toBeInstanceOf(Dog);
    expect(read.pets.get('b')?.name).toBe('tom');
  });

  it('an instance held by an array property (not an element) is restored too', async () => {
    const table = await fx.dynamo.table();
    const list = Object.assign([new Item(1)], { owner: new Item(2) });
    const a = engine(table);
    await a.e.namespace('lists').run(null, [1], async () => list);
    const b = engine(table, [Item]);
    const read = (await b.e.namespace('lists').run(null, [1], async () => {
      throw new Error('must come from L2');
    })) as Item[] & { owner: Item };
    expect(read[0]).toBeInstanceOf(Item);
    expect(read.owner).toBeInstanceOf(Item);
    expect(read.owner.label()).toBe('item 2');
  });

  it('an Error subclass with its own fields is not stored (the serializer drops them): L1 only', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const value = { error: new HttpProblem(404) };
    expect(await a.e.namespace('problems').run(null, [1], async () => value)).toBe(value);
    expect(warnings).toEqual([expect.stringMatching(/value\.error is a built-in object .*status/)]);
    expect(await scanTable(fx.admin, table)).toEqual([]);
  });

  it('a 500-long linked list of instances is recorded; a 5,000-long one is refused, not a stack exhausted', () => {
    let list: Node | null = null;
    for (let i = 0; i < 500; i++) list = new Node(i, list);
    const seen: string[] = [];
    const record = recordClasses(list, (_cls, name) => seen.push(name));
    expect(record?.Node).toHaveLength(500);
    expect(record?.Node?.[499]).toHaveLength(499);
    for (let i = 500; i < 5000; i++) list = new Node(i, list);
    expect(() => recordClasses(list, () => undefined)).toThrow(UnrecordableValueError);
  });

  it('a getter that throws keeps the value in L1; the call still resolves', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const value = Object.defineProperty({ ok: 1 }, 'broken', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    expect(await a.e.namespace('getters').run(null, [1], async () => value)).toBe(value);
    expect(warnings).toEqual([expect.stringMatching(/could not be recorded \(boom\)/)]);
  });

  it('built-ins from another realm are not taken for classes', () => {
    const foreign = runInNewContext(
      '({ re: /a/g, bytes: new Uint8Array([1]), err: new TypeError("x"), when: new Date(0) })',
    ) as object;
    expect(recordClasses(foreign, () => undefined)).toBeUndefined();
  });

  it('a non-empty boxed string (its characters are index properties) is stored and read back by a second engine; one with an extra property is not', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const value = { word: Object('héllo') as object };
    await a.e.namespace('boxed').run(null, [1], async () => value);
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    expect(warnings).toEqual([]);
    const b = engine(table);
    const read = (await b.e.namespace('boxed').run(null, [1], async () => {
      throw new Error('not from L2');
    })) as { word: object };
    // A String object (of the serializer's realm, not jest's: no instanceof).
    expect(types.isStringObject(read.word)).toBe(true);
    expect(String(read.word)).toBe('héllo');
    const extra = Object.assign(Object('ab') as object, { note: 'x' });
    await a.e.namespace('boxed').run(null, [2], async () => ({ word: extra }));
    expect(warnings).toEqual([expect.stringMatching(/with own properties \(note\)/)]);
  });
});
