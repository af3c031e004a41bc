import { CallDeadlines } from '../lib/engine/l2/call-deadlines.js';
import { ReadBatcher, type BatchedReads, type RawItem } from '../lib/engine/l2/read-batcher.js';

/*
 * The batcher's queue alone, against a stand-in for DynamoDB that never answers (a branch no real
 * server gives on demand; tests/batched-reads.spec.ts shows the batcher against a real one):
 * queued reads past their deadline leave the queue, each rejected, however many there are.
 */
describe('ReadBatcher queue', () => {
  it('10,000 queued reads past their deadline each reject with the wait timeout, and the queue is left empty', async () => {
    const never = new Promise<never>(() => undefined);
    let singles = 0;
    const reads: BatchedReads = {
      single: (): Promise<RawItem | undefined> => {
        singles++;
        return never;
      },
      batch: () => never,
      keyOf: () => undefined,
      backOff: async () => undefined,
      waitTimeout: (namespace) => new Error(`waited too long (${namespace})`),
    };
    const batcher = new ReadBatcher(reads, 4, new CallDeadlines(50));
    const all = Array.from({ length: 10_004 }, (_, i) =>
      batcher.read(`k${i}`, 'ns').then(
        () => 'resolved',
        (e: Error) => e.message,
      ),
    );
    // The first four went out alone (and never come back); the rest queued.
    expect(singles).toBe(4);
    const queued = await Promise.all(all.slice(4));
    expect(queued).toEqual(Array(10_000).fill('waited too long (ns)'));
    // Nothing of them is left: a later read queues alone (in-flight slots still taken) and
    // times out by itself.
    await expect(batcher.read('later', 'ns')).rejects.toThrow('waited too long (ns)');
    expect(singles).toBe(4);
  });

  it("a queued read leaves at the end of the turn, batched with the turn's other reads, without waiting for a request on its way to come back", async () => {
    const never = new Promise<never>(() => undefined);
    const batches: string[][] = [];
    const reads: BatchedReads = {
      single: () => never,
      batch: async (keys) => {
        batches.push([...keys]);
        return { items: keys.map((k) => ({ cache_key: { S: k } })), unprocessed: [] };
      },
      keyOf: (item) => item.cache_key?.S,
      backOff: async () => undefined,
      waitTimeout: (namespace) => new Error(`waited too long (${namespace})`),
    };
    const batcher = new ReadBatcher(reads, 4, new CallDeadlines(60_000));
    // Four requests on their way that never come back, then three reads in the same turn.
    for (let i = 0; i < 4; i++) void batcher.read(`stuck${i}`, 'ns');
    const queued = ['a', 'b', 'c'].map((k) => batcher.read(k, 'ns'));
    expect(batches).toEqual([]); // not before the turn ends
    const items = await Promise.all(queued);
    expect(items.map((i) => i?.cache_key?.S)).toEqual(['a', 'b', 'c']);
    expect(batches).toEqual([['a', 'b', 'c']]);
  });

  it('at most maxRequests requests on their way: the rest of the queue waits for one to come back', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batches: string[][] = [];
    const reads: BatchedReads = {
      single: async () => {
        await gate;
        return undefined;
      },
      batch: async (keys) => {
        batches.push([...keys]);
        await gate;
        return { items: [], unprocessed: [] };
      },
      keyOf: (item) => item.cache_key?.S,
      backOff: async () => undefined,
      waitTimeout: (namespace) => new Error(`waited too long (${namespace})`),
    };
    const batcher = new ReadBatcher(reads, 1, new CallDeadlines(60_000), 3);
    const all = Array.from({ length: 301 }, (_, i) => batcher.read(`k${i}`, 'ns'));
    await new Promise((resolve) => setImmediate(resolve));
    // One alone, then two batches of 100 (three requests): the last 100 keys wait.
    expect(batches.map((b) => b.length)).toEqual([100, 100]);
    release();
    expect(await Promise.all(all)).toEqual(Array(301).fill(undefined));
    expect(batches.map((b) => b.length)).toEqual([100, 100, 100]);
  });

  it('keys an answer left out while returning others are asked for again at once; an answer that settles none is backed off', async () => {
    const never = new Promise<never>(() => undefined);
    const calls: string[][] = [];
    const backOffs: number[] = [];
    let throttledOnce = false;
    const reads: BatchedReads = {
      single: () => never,
      batch: async (keys) => {
        calls.push([...keys]);
        // The first call answers two keys (a size limit), the next none (throttled), then all.
        if (calls.length === 2 && !throttledOnce) {
          throttledOnce = true;
          return { items: [], unprocessed: [...keys] };
        }
        const answered = calls.length === 1 ? keys.slice(0, 2) : keys;
        return {
          items: answered.map((k) => ({ cache_key: { S: k } })),
          unprocessed: keys.slice(answered.length),
        };
      },
      keyOf: (item) => item.cache_key?.S,
      backOff: async (attempt) => {
        backOffs.push(attempt);
      },
      waitTimeout: (namespace) => new Error(`waited too long (${namespace})`),
    };
    const batcher = new ReadBatcher(reads, 4, new CallDeadlines(60_000));
    for (let i = 0; i < 4; i++) void batcher.read(`stuck${i}`, 'ns');
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const items = await Promise.all(keys.map((k) => batcher.read(k, 'ns')));
    expect(items.map((i) => i?.cache_key?.S)).toEqual(keys);
    expect(calls).toEqual([keys, ['c', 'd', 'e'], ['c', 'd', 'e']]);
    // No wait after the answer that made progress; one after the one that made none.
    expect(backOffs).toEqual([1]);
  });
});
