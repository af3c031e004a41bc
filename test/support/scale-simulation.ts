import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CacheEngine } from '../../lib/engine/cache-engine.js';
import { DEFAULT_LEASE, v8Serializer } from '../../lib/index.js';

// Many application instances on one table, simulated as many engines in one process (each its
// own L1, batcher and lease owner id) sharing one client, whose middleware records every
// partition key each request touches. Used by test/scale.spec.ts (CI, 200 engines) and
// bench/scale.ts (1,000 engines, the README's figures).

/** One request's touch of one partition key. */
export interface KeyTouch {
  /** ms since the recorder started. */
  readonly at: number;
  readonly key: string;
  readonly operation: string;
}

/** Records the partition keys of every request sent through `client` (a batch: each of its keys). */
export function recordKeys(client: DynamoDBClient): {
  touches: KeyTouch[];
  reset(): void;
  stop(): void;
} {
  const touches: KeyTouch[] = [];
  const name = `scaleKeyRecorder${++recorders}`;
  let start = performance.now();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName).replace(/Command$/, '');
      const at = performance.now() - start;
      for (const key of keysOf(args.input)) touches.push({ at, key, operation });
      return next(args);
    },
    { step: 'initialize', name },
  );
  return {
    touches,
    reset() {
      touches.length = 0;
      start = performance.now();
    },
    stop: () => void client.middlewareStack.remove(name),
  };
}

let recorders = 0;

type KeyAttr = { cache_key?: { S?: string } };

function keysOf(input: unknown): string[] {
  const i = input as {
    Key?: KeyAttr;
    Item?: KeyAttr;
    RequestItems?: Record<
      string,
      | { Keys?: KeyAttr[] }
      | { PutRequest?: { Item?: KeyAttr }; DeleteRequest?: { Key?: KeyAttr } }[]
    >;
  };
  const one = i.Key?.cache_key?.S ?? i.Item?.cache_key?.S;
  if (one !== undefined) return [one];
  const out: string[] = [];
  for (const table of Object.values(i.RequestItems ?? {})) {
    if (Array.isArray(table)) {
      for (const r of table) {
        const k = r.PutRequest?.Item?.cache_key?.S ?? r.DeleteRequest?.Key?.cache_key?.S;
        if (k !== undefined) out.push(k);
      }
    } else {
      for (const k of table.Keys ?? []) if (k.cache_key?.S !== undefined) out.push(k.cache_key.S);
    }
  }
  return out;
}

/** Per key: the most requests in any one-second window, and the total. */
export interface KeyRate {
  readonly key: string;
  readonly peakPerSecond: number;
  readonly total: number;
}

/** {@link KeyRate} of every key touched, highest peak first. */
export function keyRates(touches: readonly KeyTouch[]): KeyRate[] {
  const byKey = new Map<string, number[]>();
  for (const t of touches) {
    let list = byKey.get(t.key);
    if (list === undefined) byKey.set(t.key, (list = []));
    list.push(t.at);
  }
  const rates: KeyRate[] = [];
  for (const [key, times] of byKey) {
    times.sort((a, b) => a - b);
    let peak = 0;
    for (let lo = 0, hi = 0; hi < times.length; hi++) {
      while (times[hi]! - times[lo]! >= 1000) lo++;
      peak = Math.max(peak, hi - lo + 1);
    }
    rates.push({ key, peakPerSecond: peak, total: times.length });
  }
  return rates.sort((a, b) => b.peakPerSecond - a.peakPerSecond);
}

/** What a simulation measures. */
export interface ScaleRun {
  /** How many times the method ran, across all engines. */
  readonly computations: number;
  /** Every engine's answer equals the one computation's result. */
  readonly allAnswersEqual: boolean;
  /** ms from the first call to the last answer. */
  readonly lastAnswerMs: number;
  /** Requests per partition key, highest peak first. */
  readonly rates: KeyRate[];
  /** Keys touched by all requests together (a batch counts each key). */
  readonly requests: number;
}

/** The simulated applications: `count` engines on `table`, one shared `client`. */
export class SimulatedFleet {
  readonly engines: CacheEngine[];
  readonly recorder: ReturnType<typeof recordKeys>;
  computations = 0;

  constructor(
    client: DynamoDBClient,
    table: string,
    count: number,
    private readonly computeMs: number,
    l1MaxAge: number,
  ) {
    this.recorder = recordKeys(client);
    this.engines = Array.from(
      { length: count },
      () =>
        new CacheEngine({
          client: () => client,
          table,
          ttl: 3600,
          maxsize: 1000,
          keyPrefix: '',
          onError: 'bypass',
          serializer: v8Serializer,
          consistentRead: false,
          logger: { warn: () => undefined, error: () => undefined },
          // The simulation's server is one process serving every instance: slower than DynamoDB.
          l2Timeout: 30_000,
          circuitBreaker: false,
          lease: { ...DEFAULT_LEASE, waitMs: 30_000, ttlMs: 30_000 },
          l1MaxAge,
        }),
    );
  }

  /** The report every instance serves: a 2 KB value computed in `computeMs`. */
  private readonly report = async (id: string): Promise<{ id: string; rows: string[] }> => {
    this.computations++;
    await new Promise((resolve) => setTimeout(resolve, this.computeMs));
    return { id, rows: Array.from({ length: 64 }, (_, i) => `row ${i} of ${id}`.padEnd(32, '.')) };
  };

  /** Every engine asks for report `id` at once. */
  async storm(id: string): Promise<ScaleRun> {
    this.recorder.reset();
    this.computations = 0;
    const started = performance.now();
    let last = 0;
    const answers = await Promise.all(
      this.engines.map((e) =>
        e
          .namespace('Reports.build')
          .run(null, [id], this.report)
          .then((value) => {
            last = Math.max(last, performance.now() - started);
            return value;
          }),
      ),
    );
    await Promise.all(this.engines.map((e) => e.drain()));
    const first = JSON.stringify(answers[0]);
    return {
      computations: this.computations,
      allAnswersEqual: answers.every((a) => JSON.stringify(a) === first),
      lastAnswerMs: last,
      rates: keyRates(this.recorder.touches),
      requests: this.recorder.touches.length,
    };
  }

  /**
   * Every engine keeps serving report `id` (in its L1) for `durationMs`, a call every `everyMs`:
   * what its `l1MaxAge` checks cost DynamoDB.
   */
  async hot(id: string, durationMs: number, everyMs: number): Promise<ScaleRun> {
    this.recorder.reset();
    this.computations = 0;
    const started = performance.now();
    let allEqual = true;
    let first: string | undefined;
    while (performance.now() - started < durationMs) {
      const answers = await Promise.all(
        this.engines.map((e) => e.namespace('Reports.build').run(null, [id], this.report)),
      );
      for (const a of answers) {
        const text = JSON.stringify(a);
        first ??= text;
        if (text !== first) allEqual = false;
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
    await Promise.all(this.engines.map((e) => e.drain()));
    return {
      computations: this.computations,
      allAnswersEqual: allEqual,
      lastAnswerMs: performance.now() - started,
      rates: keyRates(this.recorder.touches),
      requests: this.recorder.touches.length,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.drain().then(() => e.close())));
    this.recorder.stop();
  }
}
