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
});
