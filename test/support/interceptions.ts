import { afterEach, beforeEach } from '@jest/globals';
import { DynamoCacheInterceptor } from '../../lib/index.js';

/**
 * Counts, within each test of the calling `describe`, the requests that reach Nest's pipeline:
 * `DynamoCacheInterceptor.intercept` runs for each, and `fastPath` answers before it.
 */
export function countInterceptions(): { readonly count: number } {
  const counter = { count: 0 };
  const original = DynamoCacheInterceptor.prototype.intercept;
  beforeEach(() => {
    counter.count = 0;
    DynamoCacheInterceptor.prototype.intercept = function (this: DynamoCacheInterceptor, ...args) {
      counter.count++;
      return original.apply(this, args);
    };
  });
  afterEach(() => {
    DynamoCacheInterceptor.prototype.intercept = original;
  });
  return counter;
}
