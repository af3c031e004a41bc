import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CallDeadlines } from '../lib/engine/l2/call-deadlines.js';
import { sleep } from './support/apps.js';
import { assertFreshBuild } from './support/fresh-build.js';

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
    const deadlines = new CallDeadlines(400);
    const fired = new Map<string, number>();
    const t0 = performance.now();
    track(deadlines, t0, fired, 'a');
    const ended = track(deadlines, t0, fired, 'ended');
    await sleep(200);
    const tB = performance.now() - t0;
    track(deadlines, t0, fired, 'b');
    ended.end();
    ended.end(); // a second end does nothing
    await sleep(300);
    // a: due at 400; b (started at ~200) is not due before ~600.
    expect([...fired.keys()]).toEqual(['a']);
    expect(fired.get('a')).toBeGreaterThanOrEqual(400);
    await sleep(300);
    expect([...fired.keys()]).toEqual(['a', 'b']);
    expect(fired.get('b')).toBeGreaterThanOrEqual(tB + 400);
  });

  it('ending the first call leaves the later ones their deadlines', async () => {
    const deadlines = new CallDeadlines(400);
    const fired = new Map<string, number>();
    const t0 = performance.now();
    const first = track(deadlines, t0, fired, 'first');
    await sleep(200);
    const tSecond = performance.now() - t0;
    track(deadlines, t0, fired, 'second');
    first.end();
    await sleep(300);
    expect(fired.size).toBe(0); // the timer set for `first` fired at ~400 and found nothing due
    await sleep(300);
    expect([...fired.keys()]).toEqual(['second']);
    expect(fired.get('second')).toBeGreaterThanOrEqual(tSecond + 400);
  });

  it('a call started by an expiring call’s own code leaves an earlier deadline its time', async () => {
    // `a` expires at 400 and starts `c` (due at ~800); `b` (due at ~600) must not wait for `c`.
    const deadlines = new CallDeadlines(400);
    const fired = new Map<string, number>();
    const t0 = performance.now();
    deadlines.start(() => {
      fired.set('a', performance.now() - t0);
      track(deadlines, t0, fired, 'c');
    });
    await sleep(200);
    const tB = performance.now() - t0;
    track(deadlines, t0, fired, 'b');
    await sleep(500);
    expect([...fired.keys()]).toEqual(['a', 'b']);
    expect(fired.get('b')).toBeGreaterThanOrEqual(tB + 400);
    expect(fired.get('b')).toBeLessThan(tB + 400 + 150);
    await sleep(250);
    expect([...fired.keys()]).toEqual(['a', 'b', 'c']);
  });

  it('takes a timeout longer than Node’s timers allow without firing early', async () => {
    const deadlines = new CallDeadlines(2 ** 32);
    let expired = false;
    const deadline = deadlines.start(() => {
      expired = true;
    });
    await sleep(50);
    expect(expired).toBe(false);
    deadline.end();
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
    assertFreshBuild();
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
