import { describe, expect, it } from '@jest/globals';
import { medianInterval, statOf, target } from '../bench/harness.js';

/** P(X <= k) for X ~ Binomial(n, 1/2), by summing exact terms. */
function binomialTail(n: number, k: number): number {
  let term = 2 ** -n;
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    sum += term;
    term = (term * (n - i)) / (i + 1);
  }
  return sum;
}

describe('bench harness: the interval of a median', () => {
  it('bounds the median with at least 95% confidence, and is the narrowest such pair of ranks', () => {
    for (let n = 6; n <= 40; n++) {
      const ranks = medianInterval(n)!;
      // The median is outside [x(low), x(high)] when at most `low` values fall below it, or at
      // most `low` above it: twice the binomial tail.
      const miss = 2 * binomialTail(n, ranks.low);
      expect(1 - miss).toBeGreaterThanOrEqual(0.95);
      expect(ranks.high).toBe(n - 1 - ranks.low);
      // One rank further in would no longer reach 95%.
      expect(1 - 2 * binomialTail(n, ranks.low + 1)).toBeLessThan(0.95);
    }
  });

  it('is the 5th and 14th of 18 values (the textbook ranks), and none below 6 values', () => {
    expect(medianInterval(18)).toEqual({ low: 4, high: 13 });
    expect(medianInterval(7)).toEqual({ low: 0, high: 6 });
    expect(medianInterval(5)).toBeUndefined();
  });

  it('marks a verdict clear only when the whole interval is on its side of the threshold', () => {
    const spread = (center: number): number[] =>
      Array.from({ length: 18 }, (_, i) => center + (i - 8.5) * 0.004);
    const wide = statOf(spread(1.052));
    expect(wide.interval).toBeDefined();
    const within = target('c=1', wide, '<=', 1.05);
    expect(within).toMatchObject({ pass: false, clear: false });
    const far = target('c=1', statOf(spread(1.2)), '<=', 1.05);
    expect(far).toMatchObject({ pass: false, clear: true });
    const pass = target('c=16', statOf(spread(3)), '>=', 2);
    expect(pass).toMatchObject({ pass: true, clear: true });
    // Too few rounds for an interval: never "clear".
    expect(target('x', statOf([3, 3, 3]), '>=', 2)).toMatchObject({ pass: true, clear: false });
  });
});
