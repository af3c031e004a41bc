import { randomBytes } from 'node:crypto';

/** Base-36 digits of a write count: `Number.MAX_SAFE_INTEGER` has 11. */
const COUNT_DIGITS = 11;

/**
 * The write tokens (`w`) of one cache engine: a random part of its own, then its count of writes
 * in a fixed width, so no two writes of any engines share a token, and one engine's tokens sort as
 * its writes were made. Two writes of a key can share `t` (the same millisecond in two processes):
 * `w` tells an L1 copy of the one DynamoDB no longer holds from the one it does, where `t` alone
 * would pass both as current. And a write this engine gave up (its timeout) that reaches DynamoDB
 * after a later one of its own is refused by comparing them (see `L2Store`). One per engine, not
 * per process: the order of an engine's writes of a key is what its own invalidations keep (two
 * applications in one process are two writers, as two processes are).
 *
 * @example
 * const ids = new WriteIds();
 * const item = encodeItem(cacheKey, bytes, Date.now() / 1000, life, undefined, undefined, ids.next());
 */
export class WriteIds {
  /** What every token of this engine begins with (12 base64url characters). */
  readonly prefix = randomBytes(9).toString('base64url');
  private count = 0;

  /** A new token, greater than every earlier one of this engine. */
  next(): string {
    this.count = (this.count + 1) % Number.MAX_SAFE_INTEGER;
    return this.prefix + this.count.toString(36).padStart(COUNT_DIGITS, '0');
  }
}
