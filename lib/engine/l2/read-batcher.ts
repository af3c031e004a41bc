import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { LinkedList, type ListNode } from '../linked-list.js';
import type { CallDeadlines } from './call-deadlines.js';

/** An item as DynamoDB returns it. */
export type RawItem = Record<string, AttributeValue>;

/** How the batcher reaches DynamoDB: one key (`GetItem`), or many (`BatchGetItem`). */
export interface BatchedReads {
  /** Reads one key; `undefined` when there is no item. `namespace` is for error messages. */
  single(key: string, namespace: string): Promise<RawItem | undefined>;
  /**
   * Reads up to {@link BATCH_GET_KEYS} keys in one call: the items found, and the keys DynamoDB
   * left unprocessed (throttling), which the batcher asks again.
   */
  batch(
    keys: readonly string[],
    namespace: string,
  ): Promise<{ items: RawItem[]; unprocessed: string[] }>;
  /** The key of an item returned by {@link batch}. */
  keyOf(item: RawItem): string | undefined;
  /** Waits before asking for unprocessed keys again (attempt 1, 2, …); throws when it gives up. */
  backOff(attempt: number, left: number, namespace: string): Promise<void>;
  /** The error of a queued read that waited longer than the wait limit. */
  waitTimeout(namespace: string): Error;
}

/** DynamoDB's most keys in one `BatchGetItem` call. */
export const BATCH_GET_KEYS = 100;

/** A queued read: a node of the queue, so one that times out leaves it in O(1). */
interface Waiting extends ListNode<Waiting> {
  readonly key: string;
  readonly namespace: string;
  resolve(item: RawItem | undefined): void;
  reject(error: unknown): void;
}

/**
 * Coalesces the concurrent reads of one table. While fewer than `maxAlone` requests are on their
 * way, a read goes out at once as a `GetItem` (a lone call waits for nothing); beyond that it
 * queues, and the queue leaves as `BatchGetItem`s (up to 100 keys each) at the end of the event
 * loop's turn, or as soon as a request comes back if that is earlier, while fewer than
 * `maxRequests` requests are on their way. Under load that turns many SDK calls, which cost most
 * of an L2 hit's CPU, into a few; the results are the same items. A queued read waits at most
 * for the rest of the turn's reads to be made, never for DynamoDB to answer another request:
 * waiting for an answer would add a round trip to every queued read when DynamoDB is a network
 * away. Strongly consistent reads are not batched by the caller.
 *
 * @example
 * const deadlines = new CallDeadlines(200);
 * const batcher = new ReadBatcher(reads, 1, deadlines, 32);
 * const item = await batcher.read('app:RatesService.rate/9f86d081…', 'RatesService.rate');
 */
export class ReadBatcher {
  private readonly queue = new LinkedList<Waiting>();
  private inFlight = 0;
  private flushing = false;

  constructor(
    private readonly reads: BatchedReads,
    /** Requests on their way below which a read goes out alone, at once. */
    private readonly maxAlone: number,
    /** What bounds a queued read in all (none = no limit): the deadlines of the store's calls. */
    private readonly deadlines?: CallDeadlines,
    /** Requests on their way at most: past them, the queue waits for one to come back. */
    private readonly maxRequests = maxAlone * 8,
  ) {}

  /** The item of `key`, or `undefined` when there is none. Rejects when DynamoDB fails. */
  read(key: string, namespace: string): Promise<RawItem | undefined> {
    if (this.inFlight < this.maxAlone && this.queue.head === undefined) {
      this.inFlight++;
      const single = this.reads.single(key, namespace);
      single.then(this.done, this.done);
      return single;
    }
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(this.flush);
    }
    return new Promise((resolve, reject) => {
      const deadlines = this.deadlines;
      if (deadlines === undefined) {
        this.queue.push({ key, namespace, resolve, reject, prev: undefined, next: undefined });
        return;
      }
      // Queued behind other requests, a read is still bounded by its own limit, however long
      // its batch takes to leave or to come back.
      const deadline = deadlines.start(() => {
        this.queue.remove(entry);
        reject(this.reads.waitTimeout(namespace));
      });
      const entry: Waiting = {
        key,
        namespace,
        resolve: (item) => {
          deadline.end();
          resolve(item);
        },
        reject: (error) => {
          deadline.end();
          reject(error);
        },
        prev: undefined,
        next: undefined,
      };
      this.queue.push(entry);
    });
  }

  /** The end of the turn in which reads queued: they leave, as far as `maxRequests` allows. */
  private readonly flush = (): void => {
    this.flushing = false;
    this.drain();
  };

  private readonly done = (): void => {
    this.inFlight--;
    this.drain();
  };

  private drain(): void {
    const queue = this.queue;
    while (this.inFlight < this.maxRequests && queue.head !== undefined) {
      // Up to 100 distinct keys, from the head; waiters of one key share its item.
      const byKey = new Map<string, Waiting[]>();
      for (let waiting: Waiting | undefined = queue.head; waiting !== undefined;) {
        const same = byKey.get(waiting.key);
        if (same === undefined && byKey.size >= BATCH_GET_KEYS) break;
        const next: Waiting | undefined = waiting.next;
        queue.remove(waiting);
        if (same !== undefined) same.push(waiting);
        else byKey.set(waiting.key, [waiting]);
        waiting = next;
      }
      this.inFlight++;
      this.fetch(byKey).then(this.done, this.done);
    }
  }

  private async fetch(byKey: Map<string, Waiting[]>): Promise<void> {
    const settle = (key: string, item: RawItem | undefined): void => {
      for (const waiting of byKey.get(key) ?? []) waiting.resolve(item);
      byKey.delete(key);
    };
    const [first] = byKey.values() as IterableIterator<Waiting[]>;
    const namespace = (first as Waiting[])[0]?.namespace ?? '';
    try {
      if (byKey.size === 1) {
        const [key] = byKey.keys() as IterableIterator<string>;
        settle(key as string, await this.reads.single(key as string, namespace));
        return;
      }
      let keys = [...byKey.keys()];
      let attempt = 0;
      while (keys.length > 0) {
        if (attempt > 0) await this.reads.backOff(attempt, keys.length, namespace);
        const { items, unprocessed } = await this.reads.batch(keys, namespace);
        for (const item of items) {
          const key = this.reads.keyOf(item);
          if (key !== undefined) settle(key, item);
        }
        const retry = new Set(unprocessed);
        // Neither returned nor unprocessed: no such item.
        for (const key of keys) if (!retry.has(key)) settle(key, undefined);
        const asked = keys.length;
        keys = keys.filter((key) => retry.has(key));
        // An answer that settled some keys left the others out for its size (DynamoDB answers
        // at most 16 MB, an emulator less): they are asked for again at once. One that settled
        // none was throttled: backed off, and given up after the store's retries.
        attempt = keys.length < asked ? 0 : attempt + 1;
      }
    } catch (error) {
      for (const waiters of byKey.values()) for (const waiting of waiters) waiting.reject(error);
    }
  }
}
