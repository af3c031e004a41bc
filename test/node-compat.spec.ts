import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { execFile } from 'node:child_process';
import { isDeepStrictEqual, promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { buildCacheKey, encodeKey } from '../lib/index.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { assertFreshBuild } from './support/fresh-build.js';

/*
 * A rolling upgrade across Node versions: processes on Node 20, 22 and 24 share one table, so
 * every item one of them writes must be read by every other one as an L2 hit, equal to what was
 * written and with its classes. Each writer Node fills its own keyPrefix with a fixed set of
 * values (test/fixtures/node-compat-worker.mjs, on the built package); then each Node reads each
 * writer's items back in a fresh process.
 */

const NODES = [20, 22, 24] as const;
type NodeMajor = (typeof NODES)[number];

const workerPath = fileURLToPath(new URL('./fixtures/node-compat-worker.mjs', import.meta.url));
const withNodePath = fileURLToPath(new URL('../scripts/with-node.mjs', import.meta.url));
const run = promisify(execFile);

/** Every value of the worker's fixture, in its order. */
const NAMES = [
  'text',
  'unicode',
  'emptyString',
  'smallText',
  'bigText',
  'integer',
  'negativeZero',
  'float',
  'specialNumbers',
  'bigint',
  'bigints',
  'booleans',
  'undefinedValue',
  'nullValue',
  'holes',
  'date',
  'dates',
  'map',
  'set',
  'typedArrays',
  'arrayBuffer',
  'buffer',
  'buffers',
  'regexp',
  'errors',
  'boxed',
  'nested',
  'cyclic',
  'money',
  'address',
  'customer',
  'vip',
  'ordersById',
  'moneySet',
  'mixed',
  'nullPrototype',
  'catalog',
];

/** Values large enough to be stored compressed (`z`); all others are stored as they are. */
const COMPRESSED = new Set(['bigText', 'catalog']);

/** Instances of the worker's classes in each value holding some (shared ones counted once). */
const CLASSES: Record<string, Record<string, number>> = {
  money: { Money: 1 },
  address: { Address: 1 },
  customer: { Customer: 1, Address: 1, Order: 2, Money: 2 },
  vip: { VipCustomer: 1, Address: 1, Order: 2, Money: 2 },
  ordersById: { Order: 2, Money: 2 },
  moneySet: { Money: 2 },
  mixed: { Money: 1, Address: 1 },
  nullPrototype: { Money: 1 },
  catalog: { Order: 600, Money: 600 },
};

/** The class names each value's item records in `c` (`#null`: a null-prototype object). */
function recordedClasses(name: string): string[] | undefined {
  const classes = CLASSES[name];
  if (classes === undefined) return undefined;
  return [...Object.keys(classes), ...(name === 'nullPrototype' ? ['#null'] : [])].sort();
}

/** The namespaces of the worker: its cached method, and its DynamoCacheService set/lookup. */
const NAMESPACES = { method: 'CompatService.value', direct: 'compat.direct' } as const;
type Way = keyof typeof NAMESPACES;

interface Comparison {
  equal: boolean;
  sameShape: boolean;
  classes: Record<string, number>;
  hit?: boolean;
  firstDifference?: { expected: unknown; actual: unknown };
}

interface NamespaceStats {
  l1Hits: number;
  l2Hits: number;
  misses: number;
  l2Writes: number;
  l2Errors: number;
  unrestorable: number;
}

interface WorkerReport {
  node: string;
  mode: 'write' | 'read';
  keyPrefix: string;
  calls: number;
  stats: Record<Way, NamespaceStats>;
  warnings: string[];
  values: Record<string, Record<Way, Comparison>>;
}

const keyPrefix = (writer: NodeMajor): string => `node${writer}/`;

/** Values that did not come back equal, with their classes, shared references and cycles. */
function faults(report: WorkerReport): string[] {
  const out: string[] = [];
  for (const [name, ways] of Object.entries(report.values)) {
    for (const way of Object.keys(NAMESPACES) as Way[]) {
      const got = ways[way];
      if (got.hit === false) out.push(`${name} (${way}): not found`);
      else if (!got.equal || !got.sameShape) out.push(`${name} (${way}): ${JSON.stringify(got)}`);
      else if (!isDeepStrictEqual(got.classes, CLASSES[name] ?? {})) {
        out.push(`${name} (${way}): classes ${JSON.stringify(got.classes)}`);
      }
    }
  }
  return out;
}

describe(`items written under one Node version, read under another (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const binaries = new Map<NodeMajor, string>();
  let table: string;
  const writes = new Map<NodeMajor, WorkerReport>();
  /** Readers, started together once every writer is done: `${writer}->${reader}`. */
  const reads = new Map<string, Promise<WorkerReport>>();

  async function runWorker(
    node: NodeMajor,
    mode: 'write' | 'read',
    prefix: string,
    { onTable = table, values = 'fixture' }: { onTable?: string; values?: string } = {},
  ): Promise<WorkerReport> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ENDPOINT: fx.dynamo.endpoint,
      TABLE: onTable,
      KEY_PREFIX: prefix,
      MODE: mode,
      VALUES: values,
    };
    delete env.NODE_OPTIONS; // no --experimental-vm-modules: a plain Node process, as in production
    try {
      const { stdout } = await run(binaries.get(node)!, [workerPath], {
        env,
        encoding: 'utf8',
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return JSON.parse(stdout.trim().split('\n').at(-1)!) as WorkerReport;
    } catch (err) {
      const { stderr } = err as { stderr?: string };
      throw new Error(`the ${mode} worker under Node ${node} (${prefix}) failed: ${String(err)}`, {
        cause: stderr,
      });
    }
  }

  beforeAll(async () => {
    assertFreshBuild();
    // The binaries: fetched from the npm registry on a machine's first run, then cached.
    const paths = await Promise.all(
      NODES.map((node) =>
        run(process.execPath, [withNodePath, String(node)], {
          encoding: 'utf8',
          timeout: 180_000,
        }),
      ),
    );
    NODES.forEach((node, i) => binaries.set(node, paths[i]!.stdout.trim()));
    table = await fx.dynamo.table('compat');
    const reports = await Promise.all(
      NODES.map((writer) => runWorker(writer, 'write', keyPrefix(writer))),
    );
    NODES.forEach((writer, i) => writes.set(writer, reports[i]!));
    for (const writer of NODES) {
      for (const reader of NODES) {
        const read = runWorker(reader, 'read', keyPrefix(writer));
        read.catch(() => {}); // awaited by its test; a failure must not be unhandled meanwhile
        reads.set(`${writer}->${reader}`, read);
      }
    }
  }, 240_000);

  afterAll(async () => {
    // Let readers a failed test left running finish before the server goes.
    await Promise.allSettled(reads.values());
  });

  it.each(NODES)('under Node %i, every value is computed once and written to L2', (writer) => {
    const report = writes.get(writer)!;
    expect(report.node).toMatch(new RegExp(`^v${writer}\\.`));
    expect(report.mode).toBe('write');
    expect(Object.keys(report.values)).toEqual(NAMES);
    expect(report.warnings).toEqual([]);
    expect(report.calls).toBe(NAMES.length);
    expect(report.stats.method).toMatchObject({
      misses: NAMES.length,
      l2Writes: NAMES.length,
      l2Errors: 0,
    });
    expect(report.stats.direct).toMatchObject({ l2Writes: NAMES.length, l2Errors: 0 });
    expect(faults(report)).toEqual([]);
  });

  it('the items: large values are compressed (z), values holding instances carry their class record (c)', async () => {
    const items = new Map<string, Record<string, AttributeValue>>();
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await fx.admin.send(
        new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: startKey }),
      );
      for (const item of page.Items ?? []) items.set(item.cache_key!.S!, item);
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    // One item per value, namespace and writer: nothing else (no lease, no marker).
    expect(items.size).toBe(NODES.length * Object.keys(NAMESPACES).length * NAMES.length);
    const wrong: string[] = [];
    for (const writer of NODES) {
      for (const namespace of Object.values(NAMESPACES)) {
        for (const name of NAMES) {
          const key = buildCacheKey(keyPrefix(writer), namespace, encodeKey([name]));
          const item = items.get(key);
          const where = `${key} (${name})`;
          if (item?.v?.B === undefined) {
            wrong.push(`${where}: no value`);
            continue;
          }
          const z = item.z?.S;
          if (z !== (COMPRESSED.has(name) ? 'br' : undefined)) wrong.push(`${where}: z=${z}`);
          const c = item.c?.S;
          const recorded = c === undefined ? undefined : Object.keys(JSON.parse(c)).sort();
          if (!isDeepStrictEqual(recorded, recordedClasses(name))) {
            wrong.push(`${where}: c records ${JSON.stringify(recorded)}`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    // The compressed ones would not have been, under the threshold: they are large.
    const big = buildCacheKey(keyPrefix(NODES[0]), NAMESPACES.method, encodeKey(['bigText']));
    expect(items.get(big)!.v!.B!.byteLength).toBeLessThan(20 * 1024);
  });

  describe.each(NODES)('items written under Node %i', (writer) => {
    it.each(NODES)(
      'are L2 hits under Node %i: every value equal, with its classes',
      async (reader) => {
        const report = await reads.get(`${writer}->${reader}`)!;
        expect(report.node).toMatch(new RegExp(`^v${reader}\\.`));
        expect(report.mode).toBe('read');
        expect(Object.keys(report.values)).toEqual(NAMES);
        expect(report.warnings).toEqual([]);
        expect(report.calls).toBe(0);
        for (const way of Object.keys(NAMESPACES) as Way[]) {
          expect({ way, ...report.stats[way] }).toMatchObject({
            way,
            l1Hits: 0,
            l2Hits: NAMES.length,
            misses: 0,
            l2Writes: 0,
            l2Errors: 0,
            unrestorable: 0,
          });
        }
        expect(faults(report)).toEqual([]);
      },
    );
  });

  // A limitation of V8, not of the cache: Node 20's V8 writes an Error's fields as message, cause,
  // stack; Node 22's and 24's write message, stack, cause and refuse the older order. Such an item
  // is not misread: it is logged as unreadable and recomputed (the method) or a miss (`lookup`),
  // and the recomputed value, written in the reader's order, is readable under every Node.
  it('known limitation: an Error with a cause written under Node 20 is unreadable under 22 and 24, a miss there (never a wrong value)', async () => {
    const causeTable = await fx.dynamo.table('compat-cause');
    const pairs = NODES.flatMap((writer) => NODES.map((reader) => [writer, reader] as const));
    const prefix = (writer: NodeMajor, reader: NodeMajor): string => `cause${writer}-${reader}/`;
    const options = { onTable: causeTable, values: 'errorCause' };
    // One item per pair: a reader that recomputes overwrites it, so no two readers share one.
    await Promise.all(pairs.map(([w, r]) => runWorker(w, 'write', prefix(w, r), options)));
    const reports = await Promise.all(
      pairs.map(([w, r]) => runWorker(r, 'read', prefix(w, r), options)),
    );
    const outcomes = pairs.map(([writer, reader], i) => {
      const report = reports[i]!;
      const { method, direct } = report.values.errorCause!;
      return {
        pair: `${writer} -> ${reader}`,
        l2Hits: report.stats.method.l2Hits + report.stats.direct.l2Hits,
        methodCalls: report.calls,
        methodValueEqual: method.equal && method.sameShape,
        lookupHit: direct.hit,
        unreadable: report.warnings.filter((w) =>
          /unreadable L2 item .*Unable to deserialize cloned data/.test(w),
        ).length,
        otherWarnings: report.warnings.filter((w) => !/unreadable L2 item/.test(w)),
      };
    });
    expect(outcomes).toEqual(
      pairs.map(([writer, reader]) => {
        const readable = writer !== 20 || reader === 20;
        return {
          pair: `${writer} -> ${reader}`,
          l2Hits: readable ? 2 : 0,
          methodCalls: readable ? 0 : 1,
          methodValueEqual: true,
          lookupHit: readable,
          unreadable: readable ? 0 : 2,
          otherWarnings: [],
        };
      }),
    );
  });
});
