#!/usr/bin/env node
// The Redis bus test (test/cache-bus.spec.ts) runs a real redis-server, which is not an npm
// package. This makes sure one is on the PATH before jest starts: present → nothing to do; absent
// on a Debian machine where we are root → installed from Debian's packages (redis-server);
// otherwise the run stops here with what to install.
import { execFileSync, spawnSync } from 'node:child_process';

const has = (cmd, args = ['--version']) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

if (has('redis-server')) process.exit(0);

const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (root && has('apt-get', ['--version'])) {
  console.error('[ensure-redis] redis-server not found: installing it from Debian packages');
  const install = () =>
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  try {
    install();
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'inherit' });
    install();
  }
  if (has('redis-server')) process.exit(0);
}
console.error(
  '[ensure-redis] the tests need redis-server on the PATH (the Redis bus is tested against a real one): ' +
    'install it, e.g. `apt-get install redis-server` or `brew install redis`',
);
process.exit(1);
