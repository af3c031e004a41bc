/**
 * The HTTP load generator, always a process of its own on the client core: `wrk` (C, one thread,
 * far cheaper per request than the server it drives). wrk is not an npm package; like
 * scripts/ensure-redis.mjs does for redis-server, it is installed from Debian's packages when
 * missing and we are root on a Debian machine. Otherwise (or with BENCH_LOAD=autocannon) the
 * autocannon CLI, also in a separate process on the client core.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnOn } from './cores.js';

export interface LoadResult {
  /** Completed requests per second. */
  rps: number;
  requests: number;
  /** Response bytes (headers and bodies) per request. */
  bytesPerRequest: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Responses with a status >= 400. */
  badStatus: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadGenerator {
  name: string;
  run(url: string, seconds: number, connections: number): Promise<LoadResult>;
}

const has = (cmd: string, args: string[]): boolean =>
  spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;

/** wrk when it is (or can be made) available, else autocannon. */
export function loadGenerator(): LoadGenerator {
  if (process.env.BENCH_LOAD !== 'autocannon' && ensureWrk()) return wrk();
  return autocannon();
}

function ensureWrk(): boolean {
  if (has('wrk', ['-v'])) return true;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !has('apt-get', ['--version'])) return false;
  console.error('[bench] wrk not found: installing it from Debian packages');
  const install = (): void => {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'wrk'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  };
  try {
    try {
      install();
    } catch {
      execFileSync('apt-get', ['update'], { stdio: 'inherit' });
      install();
    }
  } catch (err) {
    console.error(`[bench] could not install wrk (${String(err)}); falling back to autocannon`);
    return false;
  }
  return has('wrk', ['-v']);
}

/** wrk's report, as one JSON line, from its `done` hook. */
const WRK_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"errors":%d,"status":%d,"p50Us":%d,"p99Us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
`;

function collect(
  command: string,
  args: string[],
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child = spawnOn('client', command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => done({ stdout, stderr, code }));
  });
}

function wrk(): LoadGenerator {
  const script = join(tmpdir(), `nestjs-dynamo-cache-bench-${process.pid}.lua`);
  writeFileSync(script, WRK_SCRIPT);
  process.once('exit', () => rmSync(script, { force: true }));
  const version = /wrk (\S+)/.exec(spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout)?.[1];
  return {
    name: `wrk ${version ?? '?'} (1 thread)`,
    async run(url, seconds, connections) {
      const args = [
        '-t1',
        `-c${connections}`,
        `-d${seconds}s`,
        '--timeout',
        '5s',
        '-s',
        script,
        url,
      ];
      const out = await collect('wrk', args);
      const line = /WRK_JSON (\{.*\})/.exec(out.stdout)?.[1];
      if (out.code !== 0 || !line)
        throw new Error(`wrk failed (${out.code}): ${out.stdout}${out.stderr}`);
      const r = JSON.parse(line) as {
        requests: number;
        durationUs: number;
        bytes: number;
        errors: number;
        status: number;
        p50Us: number;
        p99Us: number;
      };
      return {
        rps: r.requests / (r.durationUs / 1e6),
        requests: r.requests,
        bytesPerRequest: r.bytes / Math.max(1, r.requests),
        errors: r.errors,
        badStatus: r.status,
        p50Ms: r.p50Us / 1000,
        p99Ms: r.p99Us / 1000,
      };
    },
  };
}

function autocannon(): LoadGenerator {
  const require = createRequire(import.meta.url);
  const bin = require.resolve('autocannon/autocannon.js');
  const version = (require('autocannon/package.json') as { version: string }).version;
  return {
    name: `autocannon ${version} (separate process)`,
    async run(url, seconds, connections) {
      const out = await collect(process.execPath, [
        bin,
        '--json',
        '-c',
        String(connections),
        '-d',
        String(seconds),
        url,
      ]);
      if (out.code !== 0) throw new Error(`autocannon failed (${out.code}): ${out.stderr}`);
      const r = JSON.parse(out.stdout) as {
        requests: { total: number };
        throughput: { total: number };
        duration: number;
        errors: number;
        timeouts: number;
        non2xx: number;
        latency: { p50: number; p99: number };
      };
      return {
        rps: r.requests.total / r.duration,
        requests: r.requests.total,
        bytesPerRequest: r.throughput.total / Math.max(1, r.requests.total),
        errors: r.errors + r.timeouts,
        badStatus: r.non2xx,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
      };
    },
  };
}
