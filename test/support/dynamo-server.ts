import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { AddressInfo } from 'node:net';
import { createCacheTable } from '../../lib/index.js';

export { countCalls, type CallCounter } from './call-counter.js';

/**
 * A DynamoDB-compatible server for a test file: dynalite in-process, or whatever
 * DYNAMO_CACHE_TEST_ENDPOINT points at (DynamoDB Local in CI).
 */
export interface TestDynamo {
  endpoint: string;
  /** Client options with dummy credentials, so no test reads the machine's AWS setup. */
  clientConfig: DynamoDBClientConfig;
  /** A new client (count its calls with `countCalls`). */
  client(): DynamoDBClient;
  /** Creates a fresh table with a unique name. */
  table(prefix?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Which server the suite targets: the in-process dynalite, AWS's DynamoDB Local (the endpoint
 * `npm run test:dynamodb-local` provides, with DYNAMO_CACHE_TEST_SERVER=dynamodb-local), or some
 * other endpoint, taken to be DynamoDB itself.
 */
export type TestServerKind = 'dynalite' | 'dynamodb-local' | 'external';

/** The server this test run targets (see {@link TestServerKind}). */
export function testServerKind(): TestServerKind {
  if (!process.env.DYNAMO_CACHE_TEST_ENDPOINT) return 'dynalite';
  return process.env.DYNAMO_CACHE_TEST_SERVER === 'dynamodb-local' ? 'dynamodb-local' : 'external';
}

let tableSeq = 0;

export async function startDynamo(): Promise<TestDynamo> {
  const endpoint = process.env.DYNAMO_CACHE_TEST_ENDPOINT;
  if (endpoint) return testDynamoAt(endpoint, async () => {});
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  // Idle connections stay open: closed by the server after its keep-alive timeout, one a client
  // reused at that very moment failed (ECONNRESET; an admin client idle ~6 s, under load).
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return testDynamoAt(
    `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    () => new Promise<void>((resolve) => server.close(() => resolve())),
  );
}

/**
 * The clients and tables of a test on the server at `endpoint`; `shutdown` runs last on close.
 */
export function testDynamoAt(
  endpoint: string,
  shutdown: () => Promise<void>,
  tablePrefix = 'cache',
): TestDynamo {
  const clientConfig = dummyClientConfig(endpoint);
  const clients: DynamoDBClient[] = [];
  const admin = new DynamoDBClient(clientConfig);
  return {
    endpoint,
    clientConfig,
    client() {
      const c = new DynamoDBClient(clientConfig);
      clients.push(c);
      return c;
    },
    async table(prefix = tablePrefix) {
      const name = `${prefix}-${process.pid}-${Date.now().toString(36)}-${++tableSeq}`;
      await createCacheTable(admin, name);
      return name;
    },
    async close() {
      for (const c of clients) c.destroy();
      admin.destroy();
      await shutdown();
    },
  };
}

export function dummyClientConfig(endpoint: string): DynamoDBClientConfig {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  };
}

/** The per-file DynamoDB of a spec, and the applications to close after each test. */
export interface DynamoFixture {
  /** The server (valid from `beforeAll` on). */
  readonly dynamo: TestDynamo;
  /** A client for reading and writing items directly. */
  readonly admin: DynamoDBClient;
  /** Applications pushed here are closed after each test. */
  readonly apps: { close(): Promise<unknown> }[];
}

/** Registers the usual hooks: a server for the file, its apps closed after each test. */
export function useTestDynamo(): DynamoFixture {
  let dynamo: TestDynamo | undefined;
  let admin: DynamoDBClient | undefined;
  const apps: { close(): Promise<unknown> }[] = [];
  beforeAll(async () => {
    dynamo = await startDynamo();
    admin = dynamo.client();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await dynamo?.close();
  });
  return {
    get dynamo() {
      if (!dynamo) throw new Error('useTestDynamo: the server starts in beforeAll');
      return dynamo;
    },
    get admin() {
      if (!admin) throw new Error('useTestDynamo: the server starts in beforeAll');
      return admin;
    },
    apps,
  };
}
