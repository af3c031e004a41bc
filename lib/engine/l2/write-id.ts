import { randomBytes } from 'node:crypto';

// Random per process (and per worker thread: each loads its own copy of this module), counted
// within it: no two writes of any processes share an id, while making one costs no entropy.
const PROCESS_PART = randomBytes(9).toString('base64url');
/** Base-36 digits of the count: `Number.MAX_SAFE_INTEGER` has 11. */
const COUNT_DIGITS = 11;
let written = 0;

/**
 * What every write id of this process begins with: DynamoDB tells this process's items by it
 * (`begins_with`), and orders them by the rest.
 */
export const WRITE_ID_PROCESS = PROCESS_PART;

/**
 * A token unique to one write of an item (its `w`). Two writes of a key can share `t` (the same
 * millisecond in two processes): `w` tells an L1 copy of the one DynamoDB no longer holds from the
 * one it does, where `t` alone would pass both as current. The count has a fixed width, so the ids
 * of one process sort as they were made: a write this process gave up (its timeout) that reaches
 * DynamoDB after a later one of its own can be refused by comparing them.
 *
 * @example
 * const item = encodeItem(cacheKey, bytes, Date.now() / 1000, life, undefined, undefined, newWriteId());
 */
export function newWriteId(): string {
  written = (written + 1) % Number.MAX_SAFE_INTEGER;
  return PROCESS_PART + written.toString(36).padStart(COUNT_DIGITS, '0');
}
