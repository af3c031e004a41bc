/**
 * Which keys of a namespace were invalidated (`delete`, `set`) while reads or computations were in
 * flight in this process, so that those may not write what they found or computed over the
 * invalidation: an operation notes the sequence number when it starts ({@link begin}) and asks
 * {@link mayWrite} before filling L1 or L2.
 *
 * Bounded: the marks are dropped whenever no operation is in flight, and when they grow past
 * `limit` while some are, they collapse into one floor (every operation in flight then counts as
 * invalidated: it serves its callers and writes nothing, which is safe, merely a lost fill).
 *
 * @example
 * const started = log.begin();
 * try {
 *   const value = await compute();
 *   if (log.mayWrite(key, started)) l1.set(key, value);
 * } finally {
 *   log.end();
 * }
 */
export class InvalidationLog {
  private seq = 0;
  /** Key → sequence number of its latest invalidation. */
  private readonly marks = new Map<string, number>();
  /** Operations that began before this number may not write any key. */
  private floor = 0;
  private active = 0;

  constructor(private readonly limit = 10_000) {}

  /** Marks the start of a read or computation; returns its sequence number. */
  begin(): number {
    this.active++;
    return this.seq;
  }

  /** Marks the end of an operation that {@link begin} started. */
  end(): void {
    if (--this.active === 0) {
      this.marks.clear();
      this.floor = 0;
    }
  }

  /** Records that `key` was invalidated now: operations in flight may no longer write it. */
  invalidate(key: string): void {
    if (this.active === 0) return;
    this.seq++;
    if (this.marks.size >= this.limit) {
      this.marks.clear();
      this.floor = this.seq;
      return;
    }
    this.marks.set(key, this.seq);
  }

  /** Whether an operation that began at `started` may still write `key`. */
  mayWrite(key: string, started: number): boolean {
    if (started < this.floor) return false;
    const mark = this.marks.get(key);
    return mark === undefined || mark <= started;
  }
}
