import {
  DynamoCacheService,
  type DynamoCacheBus,
  type DynamoCacheBusMessage,
} from '../lib/index.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { bootCache, sleep } from './support/apps.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = (): number => (gc(), gc(), process.memoryUsage().heapUsed);
const MB = 1024 * 1024;
const big = (n: number, i: number): string => String.fromCharCode(97 + (i % 26)).repeat(n) + i;

/** A bus whose incoming messages the test sends itself (what a Redis peer could publish). */
class CapturingBus implements DynamoCacheBus {
  handler: ((m: DynamoCacheBusMessage) => void) | undefined;
  publish(): void {}
  subscribe(h: (m: DynamoCacheBusMessage) => void): void {
    this.handler = h;
  }
  deliver(m: unknown): void {
    this.handler!(m as DynamoCacheBusMessage);
  }
}

describe('forged or malformed marker messages from a bus peer', () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  async function twoInstances() {
    const table = await dynamo.table();
    const bus = new CapturingBus();
    const a = await bootCache({ table, clientConfig: dynamo.clientConfig, l1MaxAge: 0.5, bus }, []);
    const b = await bootCache({ table, clientConfig: dynamo.clientConfig, l1MaxAge: 0.5 }, []);
    return {
      bus,
      A: a.get(DynamoCacheService),
      B: b.get(DynamoCacheService),
      close: () => Promise.all([a.close(), b.close()]),
    };
  }

  it.each([
    ['control: no forged message', undefined],
    ['a marker whose t is a string', 'x'],
  ])('%s: B.clear() is seen by A within l1MaxAge', async (_name, forgedT) => {
    const { bus, A, B, close } = await twoInstances();
    try {
      expect(await A.wrap('ns', ['k'], () => 'old')).toBe('old');
      if (forgedT !== undefined) {
        bus.deliver({ source: 'peer', kind: 'markers', markers: [{ key: '#ns:ns#', t: forgedT }] });
      }
      await B.clear('ns');
      await sleep(1200);
      expect(await A.wrap('ns', ['k'], () => 'new')).toBe('new');
    } finally {
      await close();
    }
  });

  it('a marker dated far in the future leaves the namespace uncacheable in A (a call per hit, a PutItem per call)', async () => {
    const { bus, A, close } = await twoInstances();
    try {
      bus.deliver({
        source: 'peer',
        kind: 'markers',
        markers: [{ key: '#ns:ns#', t: Date.now() / 1000 + 10 * 365 * 86400 }],
      });
      let calls = 0;
      for (let i = 0; i < 5; i++) await A.wrap('ns', ['k'], () => ++calls);
      await A.settle();
      expect(calls).toBe(1);
    } finally {
      await close();
    }
  });

  it('forged messages with keys longer than any real one are ignored: 2,000 of 64 KB (markers, entry keys with a computation in flight) hold no memory', async () => {
    const { bus, A, B, close } = await twoInstances();
    let finish: (() => void) | undefined;
    try {
      const slow = A.wrap(
        'ns',
        ['slow'],
        () => new Promise<string>((r) => (finish = () => r('v'))),
      );
      while (finish === undefined) await sleep(5);
      const before = heap();
      const t = Date.now() / 1000 - 3600;
      for (let i = 0; i < 2000; i++) {
        bus.deliver({
          source: 'peer',
          kind: 'markers',
          markers: [{ key: `#tag:${big(65536, i)}#`, t }],
        });
        bus.deliver({
          source: 'peer',
          kind: 'keys',
          namespace: 'ns',
          keys: [`[s65536:${big(65536, i)}]`],
        });
      }
      // Kept, they were about 250 MB.
      expect(heap() - before).toBeLessThan(10 * MB);
      finish!();
      expect(await slow).toBe('v');
      // Real messages still work: B's clear reaches A within l1MaxAge.
      await B.clear('ns');
      await sleep(1200);
      expect(await A.wrap('ns', ['slow'], () => 'new')).toBe('new');
    } finally {
      finish?.();
      await close();
    }
  });

  it('a markers message whose markers is null: the handler does not throw into the bus', async () => {
    const { bus, close } = await twoInstances();
    try {
      expect(() => bus.deliver({ source: 'peer', kind: 'markers', markers: null })).not.toThrow();
      expect(() =>
        bus.deliver({ source: 'peer', kind: 'keys', namespace: 'ns', keys: null }),
      ).not.toThrow();
    } finally {
      await close();
    }
  });
});
