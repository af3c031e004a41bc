import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { assertFreshBuild } from './support/fresh-build.js';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { buildCacheKey, encodeKey } from '../lib/index.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const workerPath = fileURLToPath(new URL('./fixtures/lease-shutdown-worker.mjs', import.meta.url));
type Msg = { type: string; id?: number; value?: string; ms?: number; calls?: number };

async function worker(
  endpoint: string,
  table: string,
  options: object,
  workMs: number,
  version: string,
) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ENDPOINT: endpoint,
    TABLE: table,
    OPTIONS: JSON.stringify(options),
    WORK_MS: String(workMs),
    VERSION: version,
  };
  delete env.NODE_OPTIONS;
  const child = fork(workerPath, [], {
    env,
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const seen: Msg[] = [];
  const waits: [(m: Msg) => boolean, (m: Msg) => void][] = [];
  child.on('message', (m: Msg) => {
    seen.push(m);
    for (const [match, resolve] of waits.splice(0)) {
      if (match(m)) resolve(m);
      else waits.push([match, resolve]);
    }
  });
  const next = (match: (m: Msg) => boolean) =>
    new Promise<Msg>((resolve) => {
      const found = seen.find(match);
      if (found) resolve(found);
      else waits.push([match, resolve]);
    });
  let id = 0;
  const call = (key: string) => {
    const mine = ++id;
    child.send({ type: 'call', id: mine, key });
    return next((m) => m.id === mine);
  };
  await next((m) => m.type === 'ready');
  return { child, call, computing: () => next((m) => m.type === 'computing') };
}

describe('a lease holder killed in the middle of its computation (real processes)', () => {
  let dynamo: TestDynamo;
  const kids: ReturnType<typeof fork>[] = [];
  beforeAll(async () => {
    assertFreshBuild();
    dynamo = await startDynamo();
  });
  afterEach(() => kids.splice(0).forEach((c) => c.exitCode === null && c.kill('SIGKILL')));
  afterAll(() => dynamo.close());

  it('SIGKILL: one waiter takes the lapsed lease over and computes, the others get its value', async () => {
    const table = await dynamo.table('leasekill');
    const lease = { ttlMs: 1500, waitMs: 10_000, pollMs: 50 };
    const holder = await worker(dynamo.endpoint, table, { lease }, 5000, 'A');
    const w1 = await worker(dynamo.endpoint, table, { lease }, 500, 'B');
    const w2 = await worker(dynamo.endpoint, table, { lease }, 500, 'C');
    kids.push(holder.child, w1.child, w2.child);
    void holder.call('k');
    await holder.computing();
    const answers = Promise.all([w1.call('k'), w2.call('k')]);
    await new Promise((r) => setTimeout(r, 300)); // both have claimed
    holder.child.kill('SIGKILL');
    const [b, c] = await answers;
    expect(b.value).toBe(c.value);
    expect(b.calls! + c.calls!).toBe(1);
    expect(Math.max(b.ms!, c.ms!)).toBeLessThan(lease.waitMs);
    // A process started after the crash gets the value without computing.
    const late = await worker(dynamo.endpoint, table, { lease }, 500, 'D');
    kids.push(late.child);
    const d = await late.call('k');
    expect(d.value).toBe(b.value);
    expect(d.calls).toBe(0);
  }, 60_000);

  it('SIGKILL after its value is written, before its lease is given back: the waiters get that value after waitMs, no computation', async () => {
    const table = await dynamo.table('leasekill');
    const lease = { ttlMs: 30_000, waitMs: 3000, pollMs: 50 };
    const proxy = await startTcpProxy(Number(new URL(dynamo.endpoint).port), 0);
    try {
      const holder = await worker(proxy.endpoint, table, { lease }, 500, 'A');
      const w1 = await worker(dynamo.endpoint, table, { lease }, 200, 'B');
      const w2 = await worker(dynamo.endpoint, table, { lease }, 200, 'C');
      kids.push(holder.child, w1.child, w2.child);
      void holder.call('k');
      await holder.computing();
      // The holder's calls now take 1.5 s each way: its value reaches DynamoDB, and the process
      // is killed before it hears so (and so before it gives its lease back).
      proxy.latencyMs = 1500;
      const answers = Promise.all([w1.call('k'), w2.call('k')]);
      const admin = dynamo.client();
      const key = buildCacheKey('', 'lease.shutdown', encodeKey(['k']));
      for (;;) {
        const out = await admin.send(
          new GetItemCommand({
            TableName: table,
            Key: { cache_key: { S: key } },
            ConsistentRead: true,
          }),
        );
        if (out.Item?.v !== undefined) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      holder.child.kill('SIGKILL');
      const [b, c] = await answers;
      expect([b.value, c.value]).toEqual(['A:k', 'A:k']);
      expect(b.calls! + c.calls!).toBe(0);
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
