import { LEASE_COPY_WAITERS, leaseCopyCount } from '../lib/engine/l2/cache-lease.js';
import { buildCacheKey, encodeKey } from '../lib/index.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { SimulatedFleet, type KeyRate } from './support/scale-simulation.js';

// The README's "Scale" section in CI: 200 application instances (engines, each its own L1 and
// lease owner) on one table. DynamoDB serves about 1,000 requests a second on one partition key;
// scaled to 200 instances that is 200: each instance may cost a key one request a second.

const ENGINES = 200;
/** A lease waiter's looks at its copy in its first second: pauses from 50 ms doubling, jittered. */
const LOOKS_IN_FIRST_SECOND = 5;

describe(`scale: ${ENGINES} instances on one key (dynalite or DynamoDB Local)`, () => {
  const fx = useTestDynamo();
  let fleet: SimulatedFleet | undefined;

  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
  });

  const valueKey = (id: string): string => buildCacheKey('', 'Reports.build', encodeKey([id]));
  const rate = (rates: KeyRate[], key: string): KeyRate =>
    rates.find((r) => r.key === key) ?? { key, peakPerSecond: 0, total: 0 };

  it('a cold key asked by every instance at once: one computation, and about one request per instance on any key', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    fleet = new SimulatedFleet(client, table, ENGINES, 1000, 5);

    const run = await fleet.storm('cold');
    console.log(
      `scale (${testServerKind()}), cold key, ${ENGINES} instances: ${run.computations} computation, ` +
        `last answer after ${Math.round(run.lastAnswerMs)} ms; per key (peak/s, total): ` +
        run.rates
          .map(
            (r) =>
              `${r.key.split('#').slice(1).join('#') || 'value'} ${r.peakPerSecond}/${r.total}`,
          )
          .join(', '),
    );

    expect(run.computations).toBe(1);
    expect(run.allAnswersEqual).toBe(true);
    const value = rate(run.rates, valueKey('cold'));
    const lease = rate(run.rates, `${valueKey('cold')}#lease`);
    // Each instance's first read; the owner's second look (with the lease), its write, and its
    // look before writing the copies (its value is still the key's).
    expect(value.total).toBeLessThanOrEqual(ENGINES + 3);
    expect(value.total).toBeGreaterThanOrEqual(ENGINES);
    // Each instance's claim; the owner's release. No waiter looks at the lease again.
    expect(lease.total).toBe(ENGINES + 1);
    // The waiters looked at their copies, 25 to a copy, never more than a few times a second.
    const copies = run.rates.filter((r) => r.key.startsWith(`${valueKey('cold')}#lease#`));
    expect(copies.map((c) => c.key).sort()).toEqual(
      Array.from(
        { length: leaseCopyCount(ENGINES) },
        (_, i) => `${valueKey('cold')}#lease#${i}`,
      ).sort(),
    );
    for (const copy of copies) {
      expect(copy.peakPerSecond).toBeLessThanOrEqual(
        LEASE_COPY_WAITERS * LOOKS_IN_FIRST_SECOND + 1,
      );
    }
    // The scaled bound on every key, the owner's own three requests aside.
    expect(run.rates[0]!.peakPerSecond).toBeLessThanOrEqual(ENGINES + 3);
    // The namespace's clear marker: read once, by the owner before its copies, however long the
    // waiters took to read them (none of them reads it).
    expect(rate(run.rates, '#ns:Reports.build#').total).toBe(1);
    // Nothing else was touched.
    expect(run.rates.map((r) => r.key).sort()).toEqual(
      [
        valueKey('cold'),
        `${valueKey('cold')}#lease`,
        '#ns:Reports.build#',
        ...copies.map((c) => c.key),
      ].sort(),
    );
  });

  it('a hot key kept by every instance: its l1MaxAge checks stay under one per instance and second', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const l1MaxAge = 4;
    fleet = new SimulatedFleet(client, table, ENGINES, 50, l1MaxAge);
    expect((await fleet.storm('hot')).computations).toBe(1);

    const durationMs = 9000;
    const run = await fleet.hot('hot', durationMs, 100);
    console.log(
      `scale (${testServerKind()}), hot key, ${ENGINES} instances, l1MaxAge ${l1MaxAge} s, ${durationMs / 1000} s: ` +
        run.rates
          .map(
            (r) =>
              `${r.key.includes('#ns:') ? 'marker' : 'value'} ${r.peakPerSecond}/s peak, ${r.total} in all`,
          )
          .join('; '),
    );

    expect(run.computations).toBe(0);
    expect(run.allAnswersEqual).toBe(true);
    const value = rate(run.rates, valueKey('hot'));
    const marker = rate(run.rates, '#ns:Reports.build#');
    // Checks come at most every half l1MaxAge, at least every l1MaxAge, per instance.
    const most = ENGINES * Math.ceil(durationMs / ((l1MaxAge * 1000) / 2));
    const least = ENGINES * (Math.floor(durationMs / (l1MaxAge * 1000)) - 1);
    expect(value.total).toBeLessThanOrEqual(most);
    expect(value.total).toBeGreaterThanOrEqual(least);
    expect(marker.total).toBeLessThanOrEqual(value.total);
    expect(marker.peakPerSecond).toBeLessThanOrEqual(ENGINES);
    // The checks of instances that filled the key together are spread over half of l1MaxAge
    // (2 s here), not made in one moment: well under one per instance in any second.
    expect(value.peakPerSecond).toBeLessThanOrEqual(0.75 * ENGINES);
  });
});
