import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CallDeadlines } from '../lib/engine/l2/call-deadlines.js';
import { sleep } from './support/apps.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Starts a deadline and records when (ms after `t0`) it expired. */
function track(
  deadlines: CallDeadlines,
  t0: number,
  fired: Map<string, number>,
  name: string,
): ReturnType<CallDeadlines['start']> {
  return deadlines.start(() => fired.set(name, performance.now() - t0));
}

describe('CallDeadlines (one timer for the timeouts of a store’s calls)', () => {
  it('expires each call at its own deadline, never before it, and not a call that ended', async () => {
    const deadlines = new CallDeadlines(300);
    const fired = new Map<string, number>();
    const t0 = performance.now();
    track(deadlines, t0, fired, 'a');
    const ended = track(deadlines, t0, fired, 'ended');
    await sleep(150);
    const tB = performance.now() - t0;
    track(deadlines, t0, fired, 'b');
    ended.end();
    ended.end(); // a second end does nothing
    await sleep(225);
    // a: due at 300; b (started at ~150) is not due before ~450.
    expect([...fired.keys()]).toEqual(['a']);
    expect(fired.get('a')).toBeGreaterThanOrEqual(300);
    await sleep(225);
    expect([...fired.keys()]).toEqual(['a', 'b']);
    expect(fired.get('b')).toBeGreaterThanOrEqual(tB + 300);
  });

  it('ending the first call leaves the later ones their deadlines', async () => {
    const deadlines = new CallDeadlines(300);
    const fired = new Map<string, number>();
    const t0 = performance.now();
    const first = track(deadlines, t0, fired, 'first');
    await sleep(150);
    const tSecond = performance.now() - t0;
    track(deadlines, t0, fired, 'second');
    first.end();
    await sleep(225);
    expect(fired.size).toBe(0); // the timer set for `first` fired at ~300 and found nothing due
    await sleep(225);
    expect([...fired.keys()]).toEqual(['second']);
    expect(fired.get('second')).toBeGreaterThanOrEqual(tSecond + 300);
  });

  it('expires every due call when one of them throws', async () => {
    const deadlines = new CallDeadlines(20);
    const expired: string[] = [];
    deadlines.start(() => expired.push('a'));
    deadlines.start(() => {
      throw new Error('a faulty abandonment');
    });
    deadlines.start(() => expired.push('c'));
    await sleep(60);
    expect(expired).toEqual(['a', 'c']);
  });

  it('does not keep the process alive on its own', async () => {
    // A child process with a call of a 30 s timeout pending and nothing else to do exits at once.
    const script = `
      import { CallDeadlines } from ${JSON.stringify(join(ROOT, 'dist/engine/l2/call-deadlines.js'))};
      new CallDeadlines(30000).start(() => process.exit(3));
    `;
    const started = performance.now();
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
