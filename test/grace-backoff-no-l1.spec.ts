import { DynamoCacheService } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * graceBackoff without L1 (`maxsize: 0`): the stale value comes from DynamoDB on every call, and
 * the backoff after a failed computation is remembered apart from L1, so a failing upstream gets
 * one attempt per backoff, not one per call.
 */
describe(`graceBackoff with maxsize 0 (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(table: string) {
    const ref = await bootCache({ table, client: fx.dynamo.client() }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  it('while the method fails, calls within the backoff get the stale value without calling it', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const opts = { ttl: 1, grace: 60, graceBackoff: 30, maxsize: 0 };
    let calls = 0;
    let fail = false;
    const fn = async () => {
      calls++;
      if (fail) throw new Error('upstream down');
      return `v${calls}`;
    };
    expect(await a.wrap('q', ['k'], fn, opts)).toBe('v1');
    await a.settle();
    await sleep(1200);
    fail = true;
    expect(await a.wrap('q', ['k'], fn, opts)).toBe('v1'); // recomputing failed: stale
    expect(calls).toBe(2);
    for (let i = 0; i < 5; i++) expect(await a.wrap('q', ['k'], fn, opts)).toBe('v1');
    expect(calls).toBe(2);
  });

  it('a new value written elsewhere ends the backoff: it is served, not the stale one', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table);
    const b = await app(table);
    const opts = { ttl: 1, grace: 60, graceBackoff: 30, maxsize: 0 };
    let fail = false;
    const fn = async () => {
      if (fail) throw new Error('upstream down');
      return 'first';
    };
    expect(await a.wrap('q', ['k'], fn, opts)).toBe('first');
    await a.settle();
    await sleep(1200);
    fail = true;
    expect(await a.wrap('q', ['k'], fn, opts)).toBe('first');
    await b.set('q', ['k'], 'set by B', { ttl: 600 });
    expect(await a.wrap('q', ['k'], fn, opts)).toBe('set by B');
  });
});
