import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { assertFreshBuild } from './support/fresh-build.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const workerPath = fileURLToPath(new URL('./fixtures/lease-shutdown-worker.mjs', import.meta.url));
type Msg = { type: string; id?: number; value?: string; ms?: number; calls?: number };

async function worker(endpoint: string, table: string, options: object, workMs = 20) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ENDPOINT: endpoint,
    TABLE: table,
    OPTIONS: JSON.stringify(options),
    WORK_MS: String(workMs),
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

describe('graceful shutdown of a lease holder (real processes)', () => {
  let dynamo: TestDynamo;
  const kids: ReturnType<typeof fork>[] = [];
  beforeAll(async () => {
    assertFreshBuild();
    dynamo = await startDynamo();
  });
  afterEach(() => kids.splice(0).forEach((c) => c.exitCode === null && c.kill('SIGKILL')));
  afterAll(() => dynamo.close());

  // DynamoDB answers the holder in ~300 ms a call (150 ms each way), within l2Timeout 500 ms.
  const lease = { ttlMs: 20_000, waitMs: 8_000, pollMs: 50 };
  async function run(sigterm: boolean): Promise<Msg> {
    const table = await dynamo.table('leaseterm');
    const proxy = await startTcpProxy(Number(new URL(dynamo.endpoint).port), 150);
    try {
      const holder = await worker(proxy.endpoint, table, { lease, l2Timeout: 500 }, 1500);
      const waiter = await worker(dynamo.endpoint, table, { lease, l2Timeout: 500 });
      kids.push(holder.child, waiter.child);
      void holder.call('k');
      await holder.computing(); // the holder has the lease and computes for 1.5 s
      const waited = waiter.call('k');
      await new Promise((r) => setTimeout(r, 300)); // the waiter has claimed (rank 2)
      if (sigterm) holder.child.kill('SIGTERM'); // enableShutdownHooks → app.close()
      return await waited;
    } finally {
      await proxy.close();
    }
  }

  it('SIGTERM while computing: the waiter in another process gets the copy, no second computation', async () => {
    const got = await run(true);
    expect(got.value).toBe('v1:k');
    expect(got.calls).toBe(0);
    expect(got.ms).toBeLessThan(lease.waitMs);
  }, 30_000);

  it('control: no SIGTERM, same latency: the waiter gets the copy', async () => {
    const got = await run(false);
    expect(got.value).toBe('v1:k');
    expect(got.calls).toBe(0);
  }, 30_000);
});
