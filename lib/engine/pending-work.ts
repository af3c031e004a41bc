/** One piece of work in a {@link PendingWork} list. */
export interface PendingEntry {
  readonly work: Promise<unknown>;
  /** Until when shutdown waits for it (ms, wall clock). */
  readonly deadline: number;
  prev: PendingEntry | undefined;
  next: PendingEntry | undefined;
}

/**
 * The work shutdown waits for (computations and writes in flight), each with a deadline past
 * which it is no longer waited for. A linked list, not a `Map`: work is added and removed on every
 * cache call, and a `Map` that grows from empty and shrinks back to it allocates a new table each
 * time (a measurable share of a one-at-a-time L2 hit).
 *
 * @example
 * const pending = new PendingWork();
 * const entry = pending.add(write, Date.now() + 1100);
 * write.finally(() => pending.remove(entry));
 */
export class PendingWork {
  private head: PendingEntry | undefined;

  /** Adds `work` until `deadline`; {@link remove} takes the returned entry out again. */
  add(work: Promise<unknown>, deadline: number): PendingEntry {
    const entry: PendingEntry = { work, deadline, prev: undefined, next: this.head };
    if (this.head !== undefined) this.head.prev = entry;
    this.head = entry;
    return entry;
  }

  /** Removes `entry` (a second call does nothing). */
  remove(entry: PendingEntry): void {
    const { prev, next } = entry;
    if (prev === undefined && this.head !== entry) return;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    entry.prev = entry.next = undefined;
  }

  /** The work whose deadline is after `now`, and the latest of those deadlines. */
  live(now: number): { works: Promise<unknown>[]; until: number } {
    const works: Promise<unknown>[] = [];
    let until = now;
    for (let e = this.head; e !== undefined; e = e.next) {
      if (e.deadline <= now) continue;
      works.push(e.work);
      if (e.deadline > until) until = e.deadline;
    }
    return { works, until };
  }

  /** Forgets the work past its deadline (a promise that never settles must not be held). */
  dropExpired(now: number): void {
    for (let e = this.head; e !== undefined;) {
      const next = e.next;
      if (e.deadline <= now) this.remove(e);
      e = next;
    }
  }
}
