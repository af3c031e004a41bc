import { PendingWork } from '../lib/engine/pending-work.js';

describe('PendingWork (what shutdown waits for)', () => {
  const work = (): Promise<void> => new Promise<void>(() => undefined);

  it('lists the work still within its deadline, with the latest deadline, and forgets what is removed', () => {
    const pending = new PendingWork();
    const [a, b, c] = [work(), work(), work()];
    const ea = pending.add(a, 1_000);
    pending.add(b, 3_000);
    const ec = pending.add(c, 2_000);
    expect(pending.live(500)).toEqual({ works: expect.arrayContaining([a, b, c]), until: 3_000 });
    expect(pending.live(500).works).toHaveLength(3);
    pending.remove(ec);
    pending.remove(ec); // a second remove does nothing
    expect(pending.live(1_500)).toEqual({ works: [b], until: 3_000 });
    pending.remove(ea);
    expect(pending.live(0).works).toEqual([b]);
    expect(pending.live(3_000)).toEqual({ works: [], until: 3_000 });
  });

  it('drops the work past its deadline, wherever it sits in the list, and keeps the rest', () => {
    const pending = new PendingWork();
    const works = Array.from({ length: 6 }, work);
    // Deadlines 100, 200, …, 600 added in a shuffled order.
    for (const i of [3, 0, 5, 1, 4, 2]) pending.add(works[i]!, (i + 1) * 100);
    pending.dropExpired(350);
    expect(new Set(pending.live(0).works)).toEqual(new Set(works.slice(3)));
    pending.dropExpired(1_000);
    expect(pending.live(0).works).toEqual([]);
  });
});
