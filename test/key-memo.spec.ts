import fc from 'fast-check';
import { encodeKey } from '../lib/index.js';
import { compactKey } from '../lib/engine/keys/cache-key.js';
import { KeyMemo } from '../lib/engine/keys/key-memo.js';

describe('KeyMemo (the L1 hit path key cache)', () => {
  const primitive = fc.oneof(
    fc.string(),
    fc.double(),
    fc.integer(),
    fc.constantFrom(0, -0, NaN, Infinity, true, false, null, undefined),
  );
  const anyArg = fc.oneof(primitive, fc.anything({ maxDepth: 2 }));

  it('always answers what encodeKey answers (compacted when long), however often it is asked', () => {
    const memo = new KeyMemo(50, 'ns');
    // Long strings too: an encoding past 512 characters is kept as its md5.
    const arg = fc.oneof(anyArg, fc.string({ minLength: 500, maxLength: 700 }));
    fc.assert(
      fc.property(fc.array(arg, { maxLength: 6 }), (args) => {
        const expected = compactKey(encodeKey(args));
        return memo.key(args) === expected && memo.key([...args]) === expected;
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps -0 and 0, 1 and "1", null and undefined apart', () => {
    const memo = new KeyMemo(100, 'ns');
    const pairs: [unknown[], unknown[]][] = [
      [[0], [-0]],
      [[1], ['1']],
      [[null], [undefined]],
      [
        ['a', 0],
        ['a', -0],
      ],
      [['a'], ['a', undefined]],
      [[true], ['true']],
    ];
    for (const [a, b] of pairs) {
      const ka = memo.key(a);
      const kb = memo.key(b);
      expect(ka).not.toBe(kb);
      expect(memo.key(a)).toBe(ka);
      expect(memo.key(b)).toBe(kb);
    }
  });

  it('stays bounded: it is dropped whole past its limit and refills', () => {
    const memo = new KeyMemo(10, 'ns');
    for (let i = 0; i < 1000; i++) expect(memo.key(['k', i])).toBe(encodeKey(['k', i]));
    expect((memo as unknown as { size: number }).size).toBeLessThanOrEqual(10);
  });

  it('with a limit of 0 (an L1 of size 0) holds nothing and still answers what encodeKey answers', () => {
    const memo = new KeyMemo(0, 'ns');
    for (let i = 0; i < 100; i++) expect(memo.key(['k', i])).toBe(encodeKey(['k', i]));
    const held = memo as unknown as { size: number; roots: unknown[] };
    expect(held.size).toBe(0);
    expect(held.roots.filter((root) => root !== undefined)).toHaveLength(0);
  });
});
