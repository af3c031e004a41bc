import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/*
 * Faults of the application's own pieces that surface in the background, after the cache call
 * has answered: in a real child process (an unhandled rejection there ends it), on the built
 * package (`npm run build` first, as `npm test` does).
 */
describe('background faults of the application’s own pieces do not end the process', () => {
  it.each([
    ['listener', 'an async event listener that rejects', 'value 42'],
    ['bus', 'a bus whose publish rejects, with a logger that throws', 'delete resolved'],
  ])('%s: %s', (fault, _what, answered) => {
    const script = fileURLToPath(new URL('./fixtures/background-fault.mjs', import.meta.url));
    const run = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NODE_OPTIONS: '', FAULT: fault },
    });
    expect(run.stdout).toContain(answered);
    expect(run.stdout).toContain('still alive');
    expect(run.status).toBe(0);
  });
});
