import { randomBytes } from 'node:crypto';

// Random per process (and per worker thread: each loads its own copy of this module), counted
// within it: no two writes of any processes share an id, while making one costs no entropy.
const PROCESS_PART = randomBytes(9).toString('base64url');
let written = 0;

/**
 * A token unique to one write of a value item (its `w`). Two writes of a key can share `t` (the
 * same millisecond in two processes): `w` tells an L1 copy of the one DynamoDB no longer holds
 * from the one it does, where `t` alone would pass both as current.
 *
 * @example
 * const item = encodeItem(cacheKey, bytes, Date.now() / 1000, life, undefined, undefined, newWriteId());
 */
export function newWriteId(): string {
  written = (written + 1) % Number.MAX_SAFE_INTEGER;
  return PROCESS_PART + written.toString(36);
}
