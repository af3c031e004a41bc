/**
 * The DynamoDB servers the benchmark runs against, each in a process of its own on the server
 * core: dynalite (an npm package, always there) and AWS's DynamoDB Local (Java 17+; fetched and
 * started the way scripts/dynamodb-local.mjs does it for the test suite: the pinned
 * amplify-dynamodb-simulator package's `emulator/` folder, `npm pack`ed and extracted once into
 * .dynamodb-local/, run in memory on a free loopback port).
 */
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { spawnOn, stopProcess } from './cores.js';

export type BackendKind = 'dynalite' | 'dynamodb-local';

export interface Backend {
  readonly kind: BackendKind;
  /** For the results: the server and its version. */
  readonly label: string;
  readonly endpoint: string;
  /** The server's process id (its CPU is not this process's). */
  readonly pid: number;
  stop(): Promise<void>;
}

/** Same pin as scripts/dynamodb-local.mjs: amplify-dynamodb-simulator 2.9.30 carries DynamoDB Local 1.25.1. */
const SIMULATOR = 'amplify-dynamodb-simulator@2.9.30';
const READY_TIMEOUT_MS = 60_000;
/** The repository (this file runs from dist-bench/bench/). */
export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));

const log = (msg: string): void => console.error(`[bench] ${msg}`);

export async function startBackend(kind: BackendKind): Promise<Backend> {
  return kind === 'dynalite' ? startDynalite() : startDynamoDbLocal();
}

async function startDynalite(): Promise<Backend> {
  const script = fileURLToPath(new URL('./dynalite-server.js', import.meta.url));
  const child = spawnOn('server', process.execPath, [script], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((done, fail) => {
    child.once('message', (m) => done((m as { port: number }).port));
    child.once('exit', (code) => fail(new Error(`dynalite exited with ${code}`)));
  });
  const version = (
    JSON.parse(readFileSync(join(ROOT, 'node_modules/dynalite/package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  return {
    kind: 'dynalite',
    label: `dynalite ${version}`,
    endpoint: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    stop: () => stopProcess(child),
  };
}

/** Whether DynamoDB Local can run here (a Java on the PATH or in $JAVA). */
export function javaAvailable(): boolean {
  try {
    execFileSync(process.env.JAVA || 'java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/, downloaded once. */
function emulatorDir(): string {
  if (process.env.DYNAMODB_LOCAL_DIR) {
    const dir = resolve(process.env.DYNAMODB_LOCAL_DIR);
    if (!existsSync(join(dir, 'DynamoDBLocal.jar'))) {
      throw new Error(`DYNAMODB_LOCAL_DIR=${dir} holds no DynamoDBLocal.jar`);
    }
    return dir;
  }
  const cacheDir = join(ROOT, '.dynamodb-local');
  const dir = join(cacheDir, SIMULATOR.replace('@', '-'));
  if (existsSync(join(dir, 'DynamoDBLocal.jar'))) return dir;
  mkdirSync(cacheDir, { recursive: true });
  // Into a scratch folder, then renamed: an interrupted download never looks complete.
  const scratch = mkdtempSync(join(cacheDir, 'tmp-'));
  try {
    log(`downloading ${SIMULATOR} (about 57 MB) from the npm registry`);
    const out = execFileSync(
      'npm',
      ['pack', SIMULATOR, '--pack-destination', scratch, '--json', '--silent'],
      { cwd: scratch, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [{ filename }] = JSON.parse(out) as [{ filename: string }];
    execFileSync('tar', ['-xzf', join(scratch, filename), '-C', scratch, 'package/emulator'], {
      stdio: 'inherit',
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(scratch, 'package', 'emulator'), dir);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => done(port));
    });
  });
}

async function startDynamoDbLocal(): Promise<Backend> {
  const dir = emulatorDir();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const child: ChildProcess = spawnOn(
    'server',
    process.env.JAVA || 'java',
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
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exit ${code ?? signal}`));
  child.on('error', (err) => (exited = err.message));
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    maxAttempts: 1,
  });
  try {
    for (;;) {
      if (exited) throw new Error(`DynamoDB Local did not start (${exited}):\n${output}`);
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
    await stopProcess(child);
    throw err;
  } finally {
    client.destroy();
  }
  const version = /Version:\s*(\S+)/.exec(output)?.[1] ?? '?';
  log(`DynamoDB Local ${version} ready on ${endpoint} in ${Date.now() - started} ms`);
  return {
    kind: 'dynamodb-local',
    label: `DynamoDB Local ${version} (in memory)`,
    endpoint,
    pid: child.pid ?? -1,
    stop: () => stopProcess(child),
  };
}
