/**
 * Which keys of a namespace were invalidated (`delete`, `set`) while reads or computations were in
 * flight in this process, so that those may not write what they found or computed over the
 * invalidation: an operation notes the sequence number when it starts ({@link begin}) and asks
 * {@link mayWrite} before filling L1 or L2.
 *
 * An invalidation that takes time (a `delete` waiting for DynamoDB) is held open: no operation may
 * write the key until it is released, and none that began before the release may write it after.
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
  /** Keys with an invalidation under way (its DynamoDB write not yet answered), and how many. */
  private readonly held = new Map<string, number>();

  constructor(private readonly limit = 10_000) {}

  /** Marks the start of a read or computation; returns its sequence number. */
  begin(): number {
    this.active++;
    return this.seq;
  }

  /** Marks the end of an operation that {@link begin} started. */
  end(): void {
    if (--this.active === 0) {
      // Clearing a Map allocates a new table: at one call at a time this runs on every call.
      if (this.marks.size > 0) this.marks.clear();
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

  /**
   * Opens an invalidation of `key` that takes time (its DynamoDB write): operations in flight may
   * no longer write it, and neither may any operation until {@link release}, since what they read
   * meanwhile may predate it.
   */
  hold(key: string): void {
    this.invalidate(key);
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
  }

  /** Closes what {@link hold} opened; operations that began before now still may not write. */
  release(key: string): void {
    const n = (this.held.get(key) ?? 1) - 1;
    if (n > 0) this.held.set(key, n);
    else this.held.delete(key);
    this.invalidate(key);
  }

  /** Whether an operation that began at `started` may still write `key`. */
  mayWrite(key: string, started: number): boolean {
    if (started < this.floor || this.held.has(key)) return false;
    const mark = this.marks.get(key);
    return mark === undefined || mark <= started;
  }
}
