import { Injectable } from '@nestjs/common';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheService,
  encodeKey,
  v8Serializer,
} from '../lib/index.js';
import { execFileSync } from 'node:child_process';
import { bootCache, scanTable } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { assertFreshBuild } from './support/fresh-build.js';

/*
 * Golden tests of the stored format added for per-entry expiry, grace, tags and group
 * invalidation: the attributes `e`, `o`, `g`, `exp` with grace, the marker items of `clear` and
 * `deleteByTag`, and what `expire` leaves. Items outlive deploys: a change here is a format change.
 */

@Injectable()
class PricesService {
  @DynamoCached({ ttl: (price: number) => (price > 100 ? 60 : 600), grace: 30, tags: ['prices'] })
  async price(sku: string): Promise<number> {
    return sku === 'gold' ? 1000 : 5;
  }
}

const NS = 'PricesService.price';

/** `w`: 12 base64url characters for the process, then its count of writes in 11 base-36 digits. */
const WRITE_ID = /^[A-Za-z0-9_-]{12}[0-9a-z]{11}$/;

/** Write tokens made by another process's engine (the built package's). */
function childWriteIds(n: number): string[] {
  assertFreshBuild();
  const module = new URL('../dist/engine/l2/write-id.js', import.meta.url).href;
  const out = execFileSync(process.execPath, [
    '--input-type=module',
    '-e',
    `import { WriteIds } from ${JSON.stringify(module)};
     const ids = new WriteIds();
     console.log(JSON.stringify(Array.from({ length: ${n} }, () => ids.next())));`,
  ]);
  return JSON.parse(out.toString()) as string[];
}

describe(`stored format: expiry, grace, tags, markers (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(table: string, keyPrefix = '') {
    const moduleRef = await bootCache({ table, client: fx.dynamo.client(), keyPrefix }, [
      PricesService,
    ]);
    fx.apps.push(moduleRef);
    return { prices: moduleRef.get(PricesService), cache: moduleRef.get(DynamoCacheService) };
  }

  async function item(table: string, cacheKey: string) {
    const items = await scanTable(fx.admin, table);
    const found = items.find((i) => i.cache_key?.S === cacheKey);
    if (found === undefined) throw new Error(`no item ${cacheKey}`);
    return found;
  }

  it('a computed entry: e = t + its own ttl (a function of the value), exp = ceil(e + grace), g = its tags, no o', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const before = Date.now() / 1000;
    await a.prices.price('gold');
    await a.prices.price('tin');
    const gold = await item(table, buildCacheKey('', NS, encodeKey(['gold'])));
    expect(Object.keys(gold).sort()).toEqual(['cache_key', 'e', 'exp', 'g', 't', 'v', 'w']);
    const t = Number(gold.t?.N);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(gold.e).toEqual({ N: String(t + 60) });
    expect(gold.exp).toEqual({ N: String(Math.ceil(t + 60 + 30)) });
    expect(gold.g).toEqual({ SS: ['prices'] });
    expect(v8Serializer.deserialize(gold.v?.B as Uint8Array)).toBe(1000);
    const tin = await item(table, buildCacheKey('', NS, encodeKey(['tin'])));
    expect(Number(tin.e?.N) - Number(tin.t?.N)).toBeCloseTo(600, 6);
    // w: the write's own token, 12 characters of this process then its count of writes.
    expect(gold.w?.S).toMatch(WRITE_ID);
    expect(tin.w?.S).toMatch(WRITE_ID);
    expect(tin.w?.S).not.toBe(gold.w?.S);
    expect(tin.w?.S?.slice(0, 12)).toBe(gold.w?.S?.slice(0, 12));
  });

  it('w differs between two writes of one engine, and between engines (two apps in one process, two processes)', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const key = buildCacheKey('', 'sessions', encodeKey(['s1']));
    await a.cache.set('sessions', ['s1'], 1);
    const first = await item(table, key);
    await a.cache.set('sessions', ['s1'], 1);
    const second = await item(table, key);
    expect(second.w?.S).not.toBe(first.w?.S);
    expect(second.w?.S?.slice(0, 12)).toBe(first.w?.S?.slice(0, 12));
    // Each engine has a part of its own: another app in this process, a child process.
    const b = await app(table);
    await b.cache.set('sessions', ['s1'], 2);
    const third = await item(table, key);
    expect(third.w?.S?.slice(0, 12)).not.toBe(first.w?.S?.slice(0, 12));
    const other = await childWriteIds(2);
    expect(other[0]).toMatch(WRITE_ID);
    expect(other[0]?.slice(0, 12)).not.toBe(first.w?.S?.slice(0, 12));
    expect(other[1]).not.toBe(other[0]);
  });

  it("w orders one process's writes: its ids sort as they were made (past each digit's carry), and tombstones carry one", async () => {
    const ids = await childWriteIds(1300);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[1295]?.slice(12)).toBe('00000000100'); // 36^2: a third digit
    const table = await fx.dynamo.table();
    const a = await app(table);
    const key = buildCacheKey('', 'sessions', encodeKey(['s2']));
    await a.cache.set('sessions', ['s2'], 1);
    const value = await item(table, key);
    await a.cache.delete('sessions', ['s2']);
    const tombstone = await item(table, key);
    expect(Object.keys(tombstone).sort()).toEqual(['cache_key', 'exp', 't', 'w']);
    expect(tombstone.w?.S).toMatch(WRITE_ID);
    expect((tombstone.w?.S ?? '') > (value.w?.S ?? '')).toBe(true);
  });

  it("set with a ttl: the entry's own expiry, marked o = true (also with ttl null), exp at least t + the tombstone lifetime; without ttl: the namespace's, no o", async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    await a.cache.set('sessions', ['s1'], { user: 'ann' }, { ttl: 900 });
    await a.cache.set('sessions', ['s2'], { user: 'bob' });
    const own = await item(table, buildCacheKey('', 'sessions', encodeKey(['s1'])));
    expect(Object.keys(own).sort()).toEqual(['cache_key', 'e', 'exp', 'o', 't', 'v', 'w']);
    expect(own.o).toEqual({ BOOL: true });
    expect(own.e).toEqual({ N: String(Number(own.t?.N) + 900) });
    // Kept for DynamoDB's TTL at least the tombstone lifetime (an hour) from t: it refuses
    // computations that started before the set.
    expect(own.exp).toEqual({ N: String(Math.ceil(Number(own.t?.N) + Math.max(900, 3600))) });
    // The module's ttl is null here: no expiry at all.
    const plain = await item(table, buildCacheKey('', 'sessions', encodeKey(['s2'])));
    expect(Object.keys(plain).sort()).toEqual(['cache_key', 't', 'v', 'w']);
    // An explicit "never expires": o, and no e, so a reader's own ttl does not cut it.
    await a.cache.set('sessions', ['s3'], { user: 'cy' }, { ttl: null });
    const forever = await item(table, buildCacheKey('', 'sessions', encodeKey(['s3'])));
    expect(Object.keys(forever).sort()).toEqual(['cache_key', 'o', 't', 'v', 'w']);
  });

  it('clear and deleteByTag: one marker item each, {keyPrefix}#ns:{namespace}# and {keyPrefix}#tag:{tag}#, holding only t', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, 'stage:');
    const before = Date.now() / 1000;
    await a.cache.clear(NS);
    await a.cache.deleteByTag(['prices', 'eu']);
    const items = await scanTable(fx.admin, table);
    expect(items.map((i) => i.cache_key?.S).sort()).toEqual([
      `stage:#ns:${NS}#`,
      'stage:#tag:eu#',
      'stage:#tag:prices#',
    ]);
    for (const marker of items) {
      expect(Object.keys(marker).sort()).toEqual(['cache_key', 't']);
      expect(Number(marker.t?.N)).toBeGreaterThanOrEqual(before);
    }
  });

  it("expire: the same item, t unchanged, x = e = the time of the expiry, exp = ceil(x + max(grace, tombstone lifetime)), o removed, w the expiry's", async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    await a.cache.set(NS, ['gold'], 999, { ttl: 3600 });
    const written = await item(table, buildCacheKey('', NS, encodeKey(['gold'])));
    const before = Date.now() / 1000;
    await a.cache.expire(NS, ['gold']);
    const expired = await item(table, buildCacheKey('', NS, encodeKey(['gold'])));
    expect(Object.keys(expired).sort()).toEqual(['cache_key', 'e', 'exp', 'g', 't', 'v', 'w', 'x']);
    expect(expired.t).toEqual(written.t);
    // w: the expiry's own token, after the write's (a set given up before it is refused after it).
    expect(expired.w?.S?.slice(0, 12)).toBe(written.w?.S?.slice(0, 12));
    expect((expired.w?.S ?? '') > (written.w?.S ?? '')).toBe(true);
    const x = Number(expired.x?.N);
    expect(x).toBeGreaterThanOrEqual(before);
    expect(expired.e).toEqual(expired.x);
    expect(expired.exp).toEqual({ N: String(Math.ceil(x + Math.max(30, 3600))) });
    expect(v8Serializer.deserialize(expired.v?.B as Uint8Array)).toBe(999);
  });
});
