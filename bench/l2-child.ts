/**
 * One contender of the L2 group at concurrency 1, in a process of its own (see l2-process.ts):
 * built as in the benchmark's process, every value compared whole once, then it runs turns when
 * asked and reports its ops, time and CPU, measured here.
 */
import { deepStrictEqual } from 'node:assert';
import { checked, eachKey, item, l2Contenders, type ContenderLabel } from './l2-contenders.js';
import type { ChildReply, ChildRequest, ChildSpec } from './l2-process.js';

const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec;
const label = spec.label as ContenderLabel;
const built = await l2Contenders(spec.endpoint, spec.keys, [label]);
const op = built.ops.get(label)!;
const counter = built.counters.get(label)!;
// One at a time, as measured: the warm-up runs the path the turns run.
await eachKey(spec.keys, 1, async (k) =>
  deepStrictEqual(await op(k), item(k), `${label}, key ${k}`),
);
const run = checked(label, op, spec.keys);
let next = 0;

const reply = (message: ChildReply): void => {
  process.send!(message);
};

process.on('message', (message: ChildRequest) => {
  void (async () => {
    switch (message.type) {
      case 'turn': {
        const cpu0 = process.cpuUsage();
        const start = performance.now();
        let ops = 0;
        // A few calls between two looks at the clock, as in the one-process alternation.
        while (performance.now() - start < message.ms) {
          for (let j = 0; j < 10; j++) await run(next++);
          ops += 10;
        }
        const ms = performance.now() - start;
        const cpu = process.cpuUsage(cpu0);
        reply({ type: 'turn', ops, ms, cpuUs: cpu.user + cpu.system });
        break;
      }
      case 'round':
        (globalThis as { gc?: () => void }).gc?.();
        counter.reset();
        built.resetComputations();
        reply({ type: 'round' });
        break;
      case 'stats':
        reply({
          type: 'stats',
          counts: { ...counter.counts },
          calls: counter.total(),
          readKeys: counter.readKeys(),
          ...built.computations(),
        });
        break;
      case 'stop':
        await built.close();
        process.disconnect();
        break;
    }
  })().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
});
built.resetComputations();
reply({ type: 'ready' });
