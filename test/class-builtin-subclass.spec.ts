import { CacheEngine } from '../lib/engine/cache-engine.js';
import type { ClassRef } from '../lib/engine/values/class-record.js';
import { scanTable } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { engineSettings } from './support/engine-settings.js';

/** A subclass of a built-in whose state is internal (README: such values are kept in L1 only). */
class Link extends URL {
  get host2(): string {
    return this.host;
  }
}

describe('subclasses of built-ins with internal state', () => {
  const fx = useTestDynamo();
  const warnings: string[] = [];
  const logger = { warn: (m: string) => void warnings.push(m), error: () => undefined };
  /** One application instance's engine on `table`, with a client of its own. */
  function engine(table: string, types: ClassRef[] = [Link]): CacheEngine {
    const e = new CacheEngine(
      engineSettings(fx.dynamo.client(), table, {
        onError: 'throw',
        consistentRead: true,
        lease: false,
        logger,
        types,
      }),
    );
    fx.apps.push({ close: () => e.drain() });
    return e;
  }

  it('a URL subclass is kept in L1 only, like a URL (never read back as an empty shell)', async () => {
    const table = await fx.dynamo.table();
    const a = engine(table);
    const returned = { home: new Link('https://example.com/a') };
    expect(await a.namespace('links').run(null, [1], async () => returned)).toBe(returned);
    expect(returned.home.href).toBe('https://example.com/a');

    const b = engine(table);
    const got = (await b.namespace('links').run(null, [1], async () => ({
      home: new Link('https://example.com/a'),
    }))) as typeof returned;
    expect(got.home).toBeInstanceOf(Link);
    let href: unknown;
    try {
      href = got.home.href;
    } catch (err) {
      href = `threw: ${(err as Error).message}`;
    }
    // As a URL: served and kept in L1 only, with one warning; B then computes its own.
    expect({ href, items: (await scanTable(fx.admin, table)).length, warnings }).toEqual({
      href: 'https://example.com/a',
      items: 0,
      // One per process: each kept its own in L1 only.
      warnings: [
        expect.stringMatching(/kept in L1 only: .* is a Link, a subclass of URL/),
        expect.stringMatching(/kept in L1 only: .* is a Link, a subclass of URL/),
      ],
    });
  });

  it('subclasses of built-ins whose state the serializer keeps (Map, Error) still travel', async () => {
    class Registry extends Map<string, number> {
      total(): number {
        return [...this.values()].reduce((a, b) => a + b, 0);
      }
    }
    class Refused extends TypeError {}
    const table = await fx.dynamo.table();
    const a = engine(table, [Registry, Refused]);
    const b = engine(table, [Registry, Refused]);
    const value = { registry: new Registry([['x', 2]]), error: new Refused('no') };
    await a.namespace('registries').run(null, [1], async () => value);
    await a.settle();
    const got = (await b.namespace('registries').run(null, [1], async () => {
      throw new Error('expected from DynamoDB');
    })) as typeof value;
    expect(got.registry).toBeInstanceOf(Registry);
    expect(got.registry.total()).toBe(2);
    expect(got.error).toBeInstanceOf(Refused);
    expect(got.error.message).toBe('no');
  });

  // Float16Array is a global only from Node 24: there, a class built on it travels like any
  // typed array's (run by CI's Node 24 step; skipped where Node has no Float16Array).
  const F16 = (globalThis as { Float16Array?: new (values: number[]) => ArrayLike<number> })
    .Float16Array;
  (F16 === undefined ? it.skip : it)(
    'a subclass of Float16Array travels like a Float32Array subclass (Node 24)',
    async () => {
      class Half extends F16! {
        first(): number {
          return this[0]!;
        }
      }
      const table = await fx.dynamo.table();
      const a = engine(table, [Half]);
      const b = engine(table, [Half]);
      warnings.length = 0;
      await a.namespace('halves').run(null, [1], async () => ({ h: new Half([1.5]) }));
      await a.settle();
      const got = (await b.namespace('halves').run(null, [1], async () => {
        throw new Error('expected from DynamoDB');
      })) as { h: Half };
      expect(got.h).toBeInstanceOf(Half);
      expect(got.h.first()).toBe(1.5);
      expect(warnings).toEqual([]);
    },
  );
});
