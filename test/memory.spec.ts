import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { assertFreshBuild } from './support/fresh-build.js';

const probe = fileURLToPath(new URL('./fixtures/memory-probe.mjs', import.meta.url));
const routeProbe = fileURLToPath(new URL('./fixtures/route-memory-probe.mjs', import.meta.url));
const MB = 1024 * 1024;

interface Report {
  before: number;
  after: number;
  filled?: number;
  stats?: { misses: number };
  computed?: number;
  l1?: number[];
}

async function measure(kind: 'memo' | 'expiry' | 'long'): Promise<Report> {
  const env: NodeJS.ProcessEnv = { ...process.env, PROBE: kind };
  delete env.NODE_OPTIONS; // a plain Node process, as in production
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', probe], {
    env,
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Report;
}

describe('bounded memory (heap measured after gc() in a process of its own)', () => {
  beforeAll(() => assertFreshBuild());

  it('300k distinct two-argument calls with maxsize 100 hold a few MB at most', async () => {
    const r = await measure('memo');
    // Unbounded inner memo nodes held about 82 MB here; L1 (100 entries) and the memo (100
    // nodes) are all that may remain.
    expect(r.after - r.before).toBeLessThan(3 * MB);
  });

  it('250k entries with ttl 1 s are freed after expiry without being read', async () => {
    const r = await measure('expiry');
    expect(r.stats?.misses).toBe(250_000);
    const held = (r.filled as number) - r.before;
    // The entries did take memory (the measurement can see them)…
    expect(held).toBeGreaterThan(20 * MB);
    // …and it is returned once they expire, with no read.
    expect(r.after - r.before).toBeLessThan(3 * MB);
  });

  it('1,000 entries keyed by 90 KB arguments (an object, a string) hold their keys as md5s, not whole', async () => {
    const r = await measure('long');
    expect(r.l1).toEqual([1000, 1000]);
    expect(r.computed).toBe(0);
    // Held whole, the keys alone were 2 x 1,000 x 90 KB (about 180 MB).
    expect(r.after - r.before).toBeLessThan(5 * MB);
  });

  it.each(['express', 'fastify'])(
    '20,000 requests with unique query strings under the default options (%s): under 5 MB, L1 at its default bound',
    async (adapter) => {
      const env: NodeJS.ProcessEnv = { ...process.env, ADAPTER: adapter };
      delete env.NODE_OPTIONS;
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', routeProbe], {
        env,
        maxBuffer: 1024 * 1024,
      });
      const r = JSON.parse(stdout.trim().split('\n').pop() as string) as {
        before: number;
        after: number;
        statuses: Record<string, number>;
        l1Size: number;
        misses: number;
        lastIsHit: boolean;
      };
      expect(r.statuses).toEqual({ 200: 20_200 });
      // Every request went through the cache (each a miss: unique URLs) …
      expect(r.misses).toBe(20_200);
      expect(r.lastIsHit).toBe(true);
      // … and the process holds the default 1,000 entries, not 20,000.
      expect(r.l1Size).toBe(1000);
      expect(r.after - r.before).toBeLessThan(5 * MB);
    },
  );
});
