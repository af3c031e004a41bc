#!/usr/bin/env node
// Runs the whole jest suite against AWS's DynamoDB Local instead of the in-process dynalite.
//
//   npm run test:dynamodb-local [-- <jest arguments>]
//
// DynamoDB Local comes from the npm registry: the package amplify-dynamodb-simulator ships it in
// its `emulator/` folder. Installing that package pulls ~350 MB of dependencies we do not need, so
// we `npm pack` it and extract only `package/emulator/` into .dynamodb-local/ (reused next time).
// It runs on the machine's Java (17+), in memory, on a free loopback port; the tests reach it
// through DYNAMO_CACHE_TEST_ENDPOINT, the switch test/support/dynamo-server.ts honours.
// The exit code is jest's. DynamoDB Local is stopped however the run ends.
//
// Environment:
//   DYNAMODB_LOCAL_DIR  use an existing folder holding DynamoDBLocal.jar instead of the download
//   JAVA                the java executable (default: `java` on the PATH)
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

// Pinned: amplify-dynamodb-simulator 2.9.30 carries DynamoDB Local 1.25.1.
const SIMULATOR = 'amplify-dynamodb-simulator@2.9.30';
const READY_TIMEOUT_MS = 60_000;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(root, '.dynamodb-local');
const java = process.env.JAVA || 'java';

const log = (msg) => console.error(`[dynamodb-local] ${msg}`);

/** The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/, downloaded once. */
function emulatorDir() {
  if (process.env.DYNAMODB_LOCAL_DIR) {
    const dir = resolve(process.env.DYNAMODB_LOCAL_DIR);
    if (!existsSync(join(dir, 'DynamoDBLocal.jar'))) {
      throw new Error(`DYNAMODB_LOCAL_DIR=${dir} holds no DynamoDBLocal.jar`);
    }
    return dir;
  }
  const dir = join(cacheDir, SIMULATOR.replace('@', '-'));
  if (existsSync(join(dir, 'DynamoDBLocal.jar'))) return dir;
  mkdirSync(cacheDir, { recursive: true });
  // Download and extract into a scratch folder, then rename: an interrupted run never leaves a
  // half-extracted emulator that a later run would take for a complete one.
  const scratch = mkdtempSync(join(cacheDir, 'tmp-'));
  try {
    log(`downloading ${SIMULATOR} (about 57 MB) from the npm registry`);
    const out = execFileSync(
      'npm',
      ['pack', SIMULATOR, '--pack-destination', scratch, '--json', '--silent'],
      { cwd: scratch, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [{ filename }] = JSON.parse(out);
    execFileSync('tar', ['-xzf', join(scratch, filename), '-C', scratch, 'package/emulator'], {
      stdio: 'inherit',
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(scratch, 'package', 'emulator'), dir);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  log(`DynamoDB Local extracted to ${dir}`);
  return dir;
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

/** Starts DynamoDB Local and resolves once it answers ListTables. */
async function startDynamoDbLocal(dir) {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const child = spawn(
    java,
    [
      '-Djava.library.path=DynamoDBLocal_lib',
      '-jar',
      'DynamoDBLocal.jar',
      '-inMemory',
      '-port',
      String(port),
      '-disableTelemetry',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  child.on('error', (err) => (exited = { error: err }));

  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  try {
    for (;;) {
      if (exited) {
        const why = exited.error ? exited.error.message : `exit ${exited.code ?? exited.signal}`;
        throw new Error(`DynamoDB Local did not start (${why}):\n${output}`);
      }
      if (Date.now() - started > READY_TIMEOUT_MS) {
        throw new Error(`DynamoDB Local not ready after ${READY_TIMEOUT_MS} ms:\n${output}`);
      }
      try {
        await client.send(new ListTablesCommand({}));
        break;
      } catch {
        await sleep(200);
      }
    }
  } catch (err) {
    await stop(child);
    throw err;
  } finally {
    client.destroy();
  }
  const version = /Version:\s*(\S+)/.exec(output)?.[1] ?? '?';
  log(`DynamoDB Local ${version} ready on ${endpoint} in ${Date.now() - started} ms`);
  return { child, endpoint };
}

/** SIGTERM, then SIGKILL if it lingers. */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}

function runJest(endpoint, args) {
  const jestBin = createRequire(import.meta.url).resolve('jest/bin/jest');
  const nodeOptions = [process.env.NODE_OPTIONS, '--experimental-vm-modules']
    .filter(Boolean)
    .join(' ');
  const child = spawn(process.execPath, [jestBin, ...args], {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      NODE_OPTIONS: nodeOptions,
      DYNAMO_CACHE_TEST_ENDPOINT: endpoint,
      DYNAMO_CACHE_TEST_SERVER: 'dynamodb-local',
    },
  });
  return child;
}

async function main() {
  let server;
  let jest;
  const onSignal = async (signal) => {
    log(`${signal}: stopping`);
    jest?.kill(signal);
    if (server) await stop(server.child);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);

  try {
    execFileSync(java, ['-version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`no Java found (tried "${java}"); DynamoDB Local needs Java 17+ (or set JAVA)`);
  }
  server = await startDynamoDbLocal(emulatorDir());
  try {
    jest = runJest(server.endpoint, process.argv.slice(2));
    const code = await new Promise((done) => {
      jest.on('exit', (c, signal) => done(c ?? (signal ? 1 : 0)));
      jest.on('error', (err) => {
        log(`jest failed to start: ${err.message}`);
        done(1);
      });
    });
    return code;
  } finally {
    await stop(server.child);
    log('DynamoDB Local stopped');
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
