import { LinkedList, type ListNode } from './linked-list.js';

/** One piece of work in a {@link PendingWork} list. */
export interface PendingEntry extends ListNode<PendingEntry> {
  readonly work: Promise<unknown>;
  /** Until when shutdown waits for it (ms, wall clock). */
  readonly deadline: number;
}

/**
 * The work shutdown waits for (computations and writes in flight), each with a deadline past
 * which it is no longer waited for. A linked list, not a `Map`: work is added and removed on every
 * cache call.
 *
 * @example
 * const pending = new PendingWork();
 * const entry = pending.add(write, Date.now() + 1100);
 * write.finally(() => pending.remove(entry));
 */
export class PendingWork {
  private readonly list = new LinkedList<PendingEntry>();

  /** Adds `work` until `deadline`; {@link remove} takes the returned entry out again. */
  add(work: Promise<unknown>, deadline: number): PendingEntry {
    const entry: PendingEntry = { work, deadline, prev: undefined, next: undefined };
    this.list.push(entry);
    return entry;
  }

  /** Removes `entry` (a second call does nothing). */
  remove(entry: PendingEntry): void {
    this.list.remove(entry);
  }

  /** The work whose deadline is after `now`, and the latest of those deadlines. */
  live(now: number): { works: Promise<unknown>[]; until: number } {
    const works: Promise<unknown>[] = [];
    let until = now;
    for (let e = this.list.head; e !== undefined; e = e.next) {
      if (e.deadline <= now) continue;
      works.push(e.work);
      if (e.deadline > until) until = e.deadline;
    }
    return { works, until };
  }

  /** Forgets the work past its deadline (a promise that never settles must not be held). */
  dropExpired(now: number): void {
    for (let e = this.list.head; e !== undefined;) {
      const next = e.next;
      if (e.deadline <= now) this.remove(e);
      e = next;
    }
  }
}
