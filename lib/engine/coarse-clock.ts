/*
 * Date.now() costs about as much as the whole LRU lookup of an L1 hit. L1 expiry only needs
 * millisecond precision, so hits read a cached clock instead: refreshed when a 1 ms timer has
 * fired since the last read (the normal case: the event loop turns between requests), and at
 * least every 1024 reads (a loop that only awaits microtasks never lets that timer fire).
 */

let cached = 0;
let fresh = false;
let reads = 0;

function expire(): void {
  fresh = false;
}

/** Wall-clock milliseconds, at most about 1 ms (or 1024 reads) old. */
export function coarseNow(): number {
  if (fresh && (++reads & 1023) !== 0) return cached;
  cached = Date.now();
  if (!fresh) {
    fresh = true;
    setTimeout(expire, 1).unref();
  }
  return cached;
}
