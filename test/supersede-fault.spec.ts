import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { assertFreshBuild } from './support/fresh-build.js';

/*
 * A route's 404 ends the stale response it replaces (a tombstone written behind the answer). With
 * onError 'throw' and DynamoDB down in the middle of the handler, that write fails: in a real
 * child process (an unhandled rejection there ends it), two instances on one table, on the built
 * package (`npm run build` first, as `npm test` does).
 */
describe('a failed write behind an answer given as an error does not end the process', () => {
  beforeAll(() => assertFreshBuild());

  it("onError 'throw', grace, a 404 while DynamoDB goes down: the 404 is answered and the process lives on", () => {
    const script = fileURLToPath(new URL('./fixtures/supersede-fault-worker.mjs', import.meta.url));
    const run = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const answers = run.stdout.split('\n').filter((line) => line.startsWith('answered'));
    expect(answers).toEqual([
      'answered 200 {"v":1}',
      'answered 200 {"v":1}',
      expect.stringMatching(/^answered 404 /),
    ]);
    expect(run.stdout).toContain('still alive');
    expect(run.status).toBe(0);
  });
});
