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
  /** Calls that ran the method (or found nothing, for `get`). */
  misses: number;
  /** DynamoDB calls that failed. */
  l2Errors: number;
  /** Items written to DynamoDB. */
  l2Writes: number;
  /** Items deleted from DynamoDB (expired on read, or explicitly). */
  l2Deletes: number;
}

/** A snapshot of every namespace's counters and their sum. */
export interface CacheStatsSnapshot {
  total: CacheStats;
  namespaces: Record<string, CacheStats>;
}

/** Returns a zeroed counter set. */
export function emptyStats(): CacheStats {
  return { l1Hits: 0, l2Hits: 0, misses: 0, l2Errors: 0, l2Writes: 0, l2Deletes: 0 };
}
