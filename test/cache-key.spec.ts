import { Injectable } from '@nestjs/common';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { buildCacheKey, DynamoCached, DynamoCacheError, encodeKey } from '../lib/index.js';
import { bootCache, scanTable } from './support/apps.js';
import { startDynamo } from './support/dynamo-server.js';

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
}

const key = (args: unknown[]): string => buildCacheKey('', 'Svc.m', encodeKey(args));

describe('canonical cache keys', () => {
  // Golden cases: these strings are the persisted format. If one changes, every stored item is
  // orphaned: bump a major version, never "fix" the expectation.
  it.each<[string, unknown[], string]>([
    ['strings', ['EUR', 'USD'], 'Svc.m/38c51a43d08f4bb8b84cf5dcffee2b2c'],
    ['no arguments', [], 'Svc.m/d751713988987e9331980363e24189ce'],
    ['the number 1', [1], 'Svc.m/6a29ba119749a371cd0c460fa5bf64fd'],
    ["the string '1'", ['1'], 'Svc.m/4a48be2c2fcd6ec7941144f81e8547e2'],
    ['null', [null], 'Svc.m/0cba081b7319994c394b2eb878d790de'],
    ['undefined', [undefined], 'Svc.m/2c4cf6962f885c2c75ab11ce45063565'],
    ['[1,[2]]', [1, [2]], 'Svc.m/07b4c1c331b6d3d6a65276308b93f14e'],
    ['[[1],2]', [[1], 2], 'Svc.m/c782472bd37af12f4c612b24f214216c'],
    ['an object', [{ b: 2, a: 1 }], 'Svc.m/0ffcc068449a1da259392371ea5ea97e'],
    [
      'a Map',
      [
        new Map<string, number>([
          ['b', 2],
          ['a', 1],
        ]),
      ],
      'Svc.m/706e7817be90f38b5bb9a0819be35069',
    ],
    ['a Set', [new Set([3, 1, 2])], 'Svc.m/96647aeb9c63c4772f58df75c350e3fd'],
    ['a Date', [new Date('2026-01-02T03:04:05.678Z')], 'Svc.m/ccb354dd35e13b5a5e8689a98f3cf85f'],
    ['a BigInt', [12345678901234567890n], 'Svc.m/d08ff308d43f21163f9f22614fc95e06'],
    ['a Buffer', [Buffer.from('hello')], 'Svc.m/c765bbc6a5f161ca37680c919d8fc8b7'],
    ['a Uint8Array', [new Uint8Array([1, 2, 3])], 'Svc.m/3e99ac01d27cf032999cb7497016fb91'],
    ['a class instance', [new Point(1, 2)], 'Svc.m/97617b60b65858cdd9a739e1cb072b00'],
    ['-0', [-0], 'Svc.m/2620ac0663447c120b5d4b11001e488f'],
    [
      'special floats',
      [0.1, NaN, Infinity, -Infinity, 1e21],
      'Svc.m/a85e3171bb812f9543eee0645d0abf43',
    ],
    ['unicode', ['héllo ☃ 😀'], 'Svc.m/1996250bb5db3e1bf9a761721109728b'],
    ['booleans', [true, false], 'Svc.m/d8c75959a68bf8f18504e2a6178b13b1'],
  ])('golden: %s', (_name, args, expected) => {
    expect(key(args)).toBe(expected);
  });

  it('keeps apart the values the contract names', () => {
    expect(key([1])).not.toBe(key(['1']));
    expect(key([null])).not.toBe(key([undefined]));
    expect(key([[1, [2]]])).not.toBe(key([[[1], 2]]));
    expect(key([new Point(1, 2)])).not.toBe(key([{ x: 1, y: 2 }]));
    expect(key([Buffer.from([1])])).not.toBe(key([new Uint8Array([1])]));
    expect(key([0])).not.toBe(key([-0]));
    expect(key([new Date(0)])).not.toBe(key([0]));
    expect(key([1n])).not.toBe(key([1]));
  });

  it.each<[string, unknown]>([
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a nested function', { cb: function named() {} }],
  ])('rejects %s with a DynamoCacheError', (_name, value) => {
    let error: unknown;
    try {
      encodeKey([value], 'Svc.m');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DynamoCacheError);
    expect((error as DynamoCacheError).operation).toBe('key');
    expect((error as DynamoCacheError).namespace).toBe('Svc.m');
    expect((error as Error).message).toMatch(/function|symbol/);
  });

  it('rejects cycles but accepts shared (acyclic) references', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => encodeKey([cyclic])).toThrow(/cyclic/);
    const shared = { n: 1 };
    expect(encodeKey([shared, shared])).toBe(encodeKey([{ n: 1 }, { n: 1 }]));
  });

  const anything = fc.anything({
    withMap: true,
    withSet: true,
    withBigInt: true,
    withDate: true,
    withTypedArray: true,
    maxDepth: 3,
  });

  it('property: two values share a key exactly when they are deeply equal', () => {
    // Half the pairs are two values built from one seed (equal, distinct objects), half two
    // independent values.
    const pairs = fc.oneof(fc.tuple(anything, anything), fc.clone(anything, 2));
    let equalPairs = 0;
    fc.assert(
      fc.property(pairs, ([a, b]) => {
        // isDeepStrictEqual calls two Invalid Dates unequal; as key material they are one value.
        fc.pre(!hasInvalidDate(a) && !hasInvalidDate(b));
        const deepEqual = isDeepStrictEqual(a, b);
        if (deepEqual) equalPairs++;
        return (encodeKey([a]) === encodeKey([b])) === deepEqual;
      }),
      { numRuns: 3000 },
    );
    expect(equalPairs).toBeGreaterThan(500);
  });

  it('property: a value and a mutated copy get different keys', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.integer()),
        fc.string(),
        fc.integer(),
        (obj, k, v) => {
          fc.pre(obj[k] !== v || !(k in obj));
          const changed = { ...obj, [k]: v };
          return encodeKey([obj]) !== encodeKey([changed]);
        },
      ),
    );
  });

  it('property: reordered object, Map and Set contents give the same key', () => {
    const entries = fc.uniqueArray(fc.tuple(fc.string(), anything), {
      selector: ([k]) => k,
      maxLength: 8,
    });
    fc.assert(
      fc.property(entries, fc.array(fc.nat()), (list, seeds) => {
        const shuffled = shuffle(list, seeds);
        const objA = Object.fromEntries(list);
        const objB = Object.fromEntries(shuffled);
        const mapA = new Map(list);
        const mapB = new Map(shuffled);
        const setA = new Set(list.map(([k]) => k));
        const setB = new Set(shuffled.map(([k]) => k));
        return (
          encodeKey([objA]) === encodeKey([objB]) &&
          encodeKey([mapA]) === encodeKey([mapB]) &&
          encodeKey([setA]) === encodeKey([setB])
        );
      }),
      { numRuns: 500 },
    );
  });

  it('is the cache_key of the stored item, end to end', async () => {
    @Injectable()
    class GoldenService {
      @DynamoCached()
      async m(a: string, b: string): Promise<string> {
        return a + b;
      }
    }
    const dynamo = await startDynamo();
    try {
      const table = await dynamo.table();
      const client = dynamo.client();
      const app = await bootCache({ table, client, keyPrefix: 'p:' }, [GoldenService]);
      await app.get(GoldenService).m('EUR', 'USD');
      const items = await scanTable(client, table);
      expect(items.map((i) => i.cache_key?.S)).toEqual([
        'p:GoldenService.m/38c51a43d08f4bb8b84cf5dcffee2b2c',
      ]);
      await app.close();
    } finally {
      await dynamo.close();
    }
  });
});

function hasInvalidDate(value: unknown, seen = new Set<unknown>()): boolean {
  if (value instanceof Date) return Number.isNaN(value.getTime());
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  seen.add(value);
  const children =
    value instanceof Map
      ? [...value.keys(), ...value.values()]
      : value instanceof Set || Array.isArray(value)
        ? [...value]
        : ArrayBuffer.isView(value)
          ? []
          : Object.values(value);
  return children.some((child) => hasInvalidDate(child, seen));
}

function shuffle<T>(list: T[], seeds: number[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (seeds[i % Math.max(seeds.length, 1)] ?? i) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('hashing', () => {
  it('keeps strings with different lone surrogates apart in cache_key', () => {
    const a = buildCacheKey('', 'n', encodeKey(['\ud800']));
    const b = buildCacheKey('', 'n', encodeKey(['\udc00']));
    expect(a).not.toBe(b);
    expect(a).toMatch(/^n\/[0-9a-f]{32}$/);
  });
});
