import { DynamoCacheService, type DynamoCacheModuleOptions } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { MemoryBus } from './support/memory-bus.js';

/*
 * `expire` marks a live entry stale. An entry already past its expiry and grace (dead, but not yet
 * removed by DynamoDB's TTL, a reader or the L1 sweep) is no value: expiring it must not make it a
 * stale value again, in DynamoDB or in any process's L1.
 */
describe(`expire of an entry past its grace (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    const ref = await bootCache({ table, client: fx.dynamo.client(), ...options }, []);
    fx.apps.push(ref);
    return ref.get(DynamoCacheService);
  }

  const failing = async (): Promise<string> => {
    throw new Error('upstream down');
  };
  const outcome = (p: Promise<unknown>): Promise<string> =>
    p.then(
      (v) => `value: ${String(v)}`,
      (e: Error) => `error: ${e.message}`,
    );

  it('in DynamoDB: another instance whose method fails gets the error, not the dead value', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { grace: 2 });
    await a.set('sessions', ['s1'], 'old session', { ttl: 1 });
    await sleep(3500); // past its expiry (1 s) and grace (2 s)
    await a.expire('sessions', ['s1']);
    const c = await app(table, { grace: 2 });
    expect(await outcome(c.wrap('sessions', ['s1'], failing))).toBe('error: upstream down');
  });

  it('a live entry is still expired as before: within grace, the stale value answers a failing method', async () => {
    const table = await fx.dynamo.table();
    const a = await app(table, { grace: 30 });
    await a.set('sessions', ['s1'], 'live session', { ttl: 60 });
    await a.expire('sessions', ['s1']);
    const c = await app(table, { grace: 30 });
    expect(await outcome(c.wrap('sessions', ['s1'], failing))).toBe('value: live session');
  });

  it('in L1, through the bus and in the instance that expires: a dead copy is not served again (timeout 0)', async () => {
    const table = await fx.dynamo.table();
    const hub = new Set<MemoryBus>();
    const opts = { grace: 1, timeout: 0, l1MaxAge: null };
    const a = await app(table, { ...opts, bus: new MemoryBus(hub) });
    const b = await app(table, { ...opts, bus: new MemoryBus(hub) });
    let n = 0;
    const compute = async (): Promise<string> => {
      await sleep(100);
      return `v${++n}`;
    };
    // ttl as a function: the L2 item stays dead after the expire (t + ttl bounds it).
    const call = (svc: DynamoCacheService) =>
      svc.wrap('prices', ['p1'], compute, { ttl: () => 1, ...opts });
    expect(await call(a)).toBe('v1');
    expect(await call(b)).toBe('v1'); // from L2: both hold it in L1
    await sleep(2500); // past ttl (1 s) and grace (1 s), before the L1 sweep
    await b.expire('prices', ['p1']); // reaches A's L1 through the bus
    expect(await call(a)).toBe('v2');
    expect(await call(b)).toBe('v2'); // A's result, read from DynamoDB
  });
});
