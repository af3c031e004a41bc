import { LinkedList, type ListNode } from '../linked-list.js';
import { timerDelay } from '../timer-delay.js';

/** One call's place in a {@link CallDeadlines} queue. */
export interface CallDeadline {
  /** The call ended in time: its `expire` will not run. */
  end(): void;
}

class Waiting implements CallDeadline, ListNode<Waiting> {
  prev: Waiting | undefined = undefined;
  next: Waiting | undefined = undefined;

  constructor(
    readonly at: number,
    readonly expire: () => void,
    private readonly list: LinkedList<Waiting>,
  ) {}

  end(): void {
    this.list.remove(this);
  }
}

/**
 * The deadlines of calls that all have the same timeout, kept by one timer instead of one per
 * call. Calls start in order, so their deadlines come in order: a linked list in start order is
 * already sorted, starting and ending a call is O(1), and the timer is set again only when it
 * fires (once per `timeoutMs` while calls end in time; at each deadline while they expire). A
 * `setTimeout` and `clearTimeout` per DynamoDB call was a measurable share of a one-at-a-time L2
 * hit.
 *
 * The timer does not keep the process alive on its own (`unref`): a call in flight holds the
 * socket (or the SDK's own timer) that does. A deadline never fires early; it fires at most a
 * millisecond or so late.
 *
 * @example
 * const deadlines = new CallDeadlines(200);
 * const deadline = deadlines.start(() => abandon(new L2TimeoutError(200)));
 * send().finally(() => deadline.end());
 */
export class CallDeadlines {
  private readonly list = new LinkedList<Waiting>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Expiring calls: one that starts meanwhile (from an expiry's own code) waits for the re-arm. */
  private firing = false;

  constructor(readonly timeoutMs: number) {}

  /** Starts the clock of one call: `expire` runs once `timeoutMs` has passed, unless ended first. */
  start(expire: () => void): CallDeadline {
    const waiting = new Waiting(performance.now() + this.timeoutMs, expire, this.list);
    this.list.push(waiting);
    // No timer means no call was waiting (the timer stays set when the list empties): this one
    // is the first due.
    if (this.timer === undefined && !this.firing) this.arm(this.timeoutMs);
    return waiting;
  }

  private arm(ms: number): void {
    // Longer than Node's timers allow, it would fire at once, again and again: the list's own
    // check keeps a call that is not yet due waiting.
    this.timer = setTimeout(this.fire, timerDelay(ms));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.firing = true;
    const now = performance.now();
    // A timer can fire a little before its time by this clock (it counts from the event loop's
    // cached time): what is not yet due waits for the next one.
    const list = this.list;
    for (let first = list.head; first !== undefined && first.at <= now; first = list.head) {
      list.remove(first);
      try {
        first.expire();
      } catch {
        // One call's abandonment must not keep the others from theirs.
      }
    }
    this.firing = false;
    if (list.head !== undefined) this.arm(Math.max(1, Math.ceil(list.head.at - now)));
  };
}
