import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Needs `npm run build` first (the script imports dist/).
describe('an async event listener that rejects', () => {
  it('does not crash the process (README: "one that throws is ignored")', () => {
    const script = fileURLToPath(new URL('./fixtures/async-listener-crash.mjs', import.meta.url));
    const run = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(run.stdout).toContain('still alive');
    expect(run.status).toBe(0);
  });
});
