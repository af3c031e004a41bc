import { LRUCache } from 'lru-cache';

/**
 * One L1 entry: the value, and wall-clock times (ms): until when it is served as is, until when
 * it is fresh, until when it is kept as a stale fallback (grace).
 */
export interface L1Entry {
  value: unknown;
  /**
   * Served without a look at DynamoDB until then: the earlier of `expiresAt` and the last check
   * plus `l1MaxAge`. The only field the hit path reads.
   */
  validUntil: number;
  /**
   * What DynamoDB holds of it is known until then (its last check, or its fill, plus `l1MaxAge`):
   * past its expiry, it is served as a stale value without a look only before then.
   */
  checkedUntil: number;
  /** Fresh until then; `Infinity` when no ttl applies. */
  expiresAt: number;
  /** Kept, to be served if recomputing fails (grace), until then; `expiresAt` without grace. */
  staleUntil: number;
  /** The L2 item's `t` as stored, to tell whether it changed; `undefined`: the value is in L1 only. */
  tRaw: string | undefined;
  /** The item's write token (`w`): with `tRaw`, which write of the key this copy is. */
  writeId: string | undefined;
  /** The item's `t` (Unix seconds), compared with invalidation markers. */
  t: number;
  tags: readonly string[] | undefined;
  /** No new attempt of a failing computation before then (`graceBackoff`); 0 = none. */
  retryAt: number;
}

/**
 * The in-process layer: an LRU bounded by entry count, or unbounded, or absent. `LRUCache` and
 * `Map` both fit this shape as they are, so neither is wrapped: the L1 hit path is one call.
 */
export interface L1Cache {
  get(key: string): L1Entry | undefined;
  set(key: string, entry: L1Entry): unknown;
  delete(key: string): unknown;
  clear(): void;
  entries(): IterableIterator<[string, L1Entry]>;
  readonly size: number;
}

// Expiry is checked by the caller against the wall clock (`expiresAt`), not by lru-cache's own
// ttl: an entry filled from L2 must expire when the L2 item does, which is a point in wall time.

const NO_L1: L1Cache = {
  get: () => undefined,
  set: () => undefined,
  delete: () => undefined,
  clear: () => undefined,
  entries: () => new Map<string, L1Entry>().entries(),
  size: 0,
};

/**
 * Builds the L1 layer for one namespace: `null` = unbounded, `0` = no L1, `n` = LRU of n entries.
 */
export function createL1Cache(maxsize: number | null): L1Cache {
  if (maxsize === null) return new Map<string, L1Entry>();
  if (maxsize === 0) return NO_L1;
  return new LRUCache<string, L1Entry>({ max: maxsize });
}

/**
 * Drops every entry that expired by `now`; returns how many. Expiry is otherwise only noticed when
 * an entry is read, so entries nobody reads again would hold their memory until LRU eviction
 * (never, in an unbounded L1).
 */
export function sweepExpired(l1: L1Cache, now: number): number {
  const expired: string[] = [];
  for (const [key, entry] of l1.entries()) if (entry.staleUntil <= now) expired.push(key);
  for (const key of expired) l1.delete(key);
  return expired.length;
}
