/**
 * Counters of one namespace, or of all of them.
 *
 * @example
 * const { total, namespaces } = cacheService.stats();
 * console.log(total.l1Hits, namespaces['RatesService.rate']?.misses);
 */
export interface CacheStats {
  /** Calls answered from the in-process LRU. */
  l1Hits: number;
  /** Calls answered from DynamoDB. */
  l2Hits: number;
  /**
   * Calls answered with a value past its expiry, within grace: recomputing it failed, or took
   * longer than `timeout`, or another process is refreshing it.
   */
  staleHits: number;
  /** Calls that ran the method (or found nothing, for `get`). */
  misses: number;
  /** DynamoDB calls that failed. */
  l2Errors: number;
  /** Items written to DynamoDB. */
  l2Writes: number;
  /**
   * Items deleted from DynamoDB (expired on read), or invalidated there (`delete`: a tombstone;
   * `clear`: a marker; `deleteByTag`: a marker per tag, in the total only).
   */
  l2Deletes: number;
  /**
   * Writes DynamoDB refused because the key was invalidated or rewritten, by any process, after
   * the computation began: the newer item stays (not an error).
   */
  l2Refused: number;
  /** Items naming a class this process could not restore: served as misses and recomputed. */
  unrestorable: number;
  /** Entries held in L1 when the snapshot was taken (a gauge, not a counter). */
  l1Size: number;
}

/**
 * What `DynamoCacheService.stats()` returns: a copy of every namespace's counters (since the
 * application started) and their sum, taken at the call, e.g. for a metrics endpoint.
 *
 * @example
 * const { total } = cacheService.stats();
 * const hits = total.l1Hits + total.l2Hits;
 * logger.log(`cache hit ratio ${(hits / Math.max(1, hits + total.misses)).toFixed(2)}`);
 */
export interface CacheStatsSnapshot {
  /**
   * The sum of every namespace's counters, and of what concerns none (`deleteByTag`'s markers
   * and failures, whose events carry namespace `''`).
   */
  total: CacheStats;
  /** Counters by namespace: `Class.method`, `Controller.handler`, or the name given. */
  namespaces: Record<string, CacheStats>;
}

/** Returns a zeroed counter set. */
export function emptyStats(): CacheStats {
  return {
    l1Hits: 0,
    l2Hits: 0,
    staleHits: 0,
    misses: 0,
    l2Errors: 0,
    l2Writes: 0,
    l2Deletes: 0,
    l2Refused: 0,
    unrestorable: 0,
    l1Size: 0,
  };
}
