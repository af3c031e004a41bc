import { LRUCache } from 'lru-cache';

/** One L1 entry: the value and the wall-clock time (ms) it stops being served. */
export interface L1Entry {
  value: unknown;
  /** `Infinity` when no ttl applies. */
  expiresAt: number;
}

/** The in-process layer: an LRU bounded by entry count, or unbounded, or absent. */
export interface L1Cache {
  get(key: string): L1Entry | undefined;
  set(key: string, entry: L1Entry): void;
  delete(key: string): void;
  clear(): void;
  readonly size: number;
}

// Expiry is checked by the caller against the wall clock (`expiresAt`), not by lru-cache's own
// ttl: an entry filled from L2 must expire when the L2 item does, which is a point in wall time.

class LruL1 implements L1Cache {
  private readonly lru: LRUCache<string, L1Entry>;
  constructor(max: number) {
    this.lru = new LRUCache<string, L1Entry>({ max });
  }
  get(key: string): L1Entry | undefined {
    return this.lru.get(key);
  }
  set(key: string, entry: L1Entry): void {
    this.lru.set(key, entry);
  }
  delete(key: string): void {
    this.lru.delete(key);
  }
  clear(): void {
    this.lru.clear();
  }
  get size(): number {
    return this.lru.size;
  }
}

class UnboundedL1 implements L1Cache {
  private readonly map = new Map<string, L1Entry>();
  get(key: string): L1Entry | undefined {
    return this.map.get(key);
  }
  set(key: string, entry: L1Entry): void {
    this.map.set(key, entry);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
  get size(): number {
    return this.map.size;
  }
}

class NoL1 implements L1Cache {
  get(): undefined {
    return undefined;
  }
  set(): void {}
  delete(): void {}
  clear(): void {}
  get size(): number {
    return 0;
  }
}

/**
 * Builds the L1 layer for one namespace: `null` = unbounded, `0` = no L1, `n` = LRU of n entries.
 */
export function createL1Cache(maxsize: number | null): L1Cache {
  if (maxsize === null) return new UnboundedL1();
  if (maxsize === 0) return new NoL1();
  return new LruL1(maxsize);
}
