/**
 * `npm run bench:scale`: many application instances on one hot key, simulated as 1,000 engines in
 * one process (each its own L1, read batcher and lease owner id) against DynamoDB Local in a
 * process of its own (dynalite when Java is missing), every request's partition keys recorded
 * through the shared client's middleware. Writes bench/results/scale.md (the README's "Scale").
 *
 *   npm run bench:scale                  1,000 instances
 *   npm run bench:scale -- --engines 200
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createCacheTable } from '../lib/index.js';
import { SimulatedFleet, type ScaleRun } from '../test/support/scale-simulation.js';
import { javaAvailable, ROOT, startBackend } from './dynamo-backend.js';

const argv = process.argv.slice(2);
const at = argv.indexOf('--engines');
const ENGINES = at >= 0 ? Number(argv[at + 1]) : 1000;
const L1_MAX_AGE_S = 5;
const HOT_MS = 20_000;
const START = '<!-- scale:start -->';
const END = '<!-- scale:end -->';

function keyName(key: string): string {
  if (key.includes('#ns:')) return 'namespace marker';
  const rest = key.split('#').slice(1);
  if (rest.length === 0) return 'value item';
  if (rest.length === 1) return 'lease item';
  return `lease copy ${rest[1]}`;
}

function table(run: ScaleRun, title: string, answered = true): string {
  const copies = run.rates.filter((r) => keyName(r.key).startsWith('lease copy'));
  const rows = run.rates.filter((r) => !keyName(r.key).startsWith('lease copy'));
  const lines = [
    `**${title}**: ${run.computations} computation${run.computations === 1 ? '' : 's'}, ` +
      `all ${ENGINES} answers equal: ${run.allAnswersEqual ? 'yes' : 'NO'}, ` +
      (answered ? `last answer after ${(run.lastAnswerMs / 1000).toFixed(2)} s, ` : '') +
      `${run.requests} key reads and writes in all.`,
    '',
    '| partition key | peak requests in any 1 s | requests in all |',
    '|---|---:|---:|',
    ...rows.map((r) => `| ${keyName(r.key)} | ${r.peakPerSecond} | ${r.total} |`),
  ];
  if (copies.length > 0) {
    const peak = Math.max(...copies.map((c) => c.peakPerSecond));
    const total = copies.reduce((s, c) => s + c.total, 0);
    lines.push(`| ${copies.length} lease copies (each) | ≤ ${peak} | ${total} (all copies) |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const backend = await startBackend(javaAvailable() ? 'dynamodb-local' : 'dynalite');
  const client = new DynamoDBClient({
    endpoint: backend.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    maxAttempts: 1,
    // One client for every simulated instance: enough sockets that none waits for another's.
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 512 }) },
  });
  const sections: string[] = [];
  try {
    for (const computeMs of [1000, 50]) {
      const name = `cache-scale-${Date.now().toString(36)}`;
      await createCacheTable(client, name);
      const fleet = new SimulatedFleet(client, name, ENGINES, computeMs, L1_MAX_AGE_S);
      const cold = await fleet.storm('cold');
      console.error(
        `[scale] cold, ${computeMs} ms computation:`,
        JSON.stringify(cold.rates.slice(0, 3)),
      );
      sections.push(
        table(cold, `Cold key, a ${computeMs} ms computation, ${ENGINES} instances asking at once`),
      );
      if (computeMs === 1000) {
        const hot = await fleet.hot('cold', HOT_MS, 200);
        console.error('[scale] hot:', JSON.stringify(hot.rates));
        sections.push(
          table(
            hot,
            `Hot key kept by ${ENGINES} instances for ${HOT_MS / 1000} s, l1MaxAge ${L1_MAX_AGE_S} s, a call every 200 ms in each`,
            false,
          ),
        );
      }
      await fleet.close();
    }
  } finally {
    client.destroy();
    await backend.stop();
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const md = [
    `${ENGINES} simulated instances in one Node ${process.version} process against ${backend.label}, ` +
      `${cpus().length} × ${cpu}; ${new Date().toISOString().slice(0, 10)}.`,
    '',
    ...sections.flatMap((s) => [s, '']),
  ].join('\n');
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'scale.md'), md);
  // The README's Scale section shows the latest run.
  const readme = join(ROOT, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from >= 0 && to > from) {
    writeFileSync(readme, `${text.slice(0, from + START.length)}\n${md}\n${text.slice(to)}`);
  }
  console.log(md);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
