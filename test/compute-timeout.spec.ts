import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable, type Type } from '@nestjs/common';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheError,
  DynamoCacheService,
  encodeKey,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { countCalls, testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { RecordingLogger } from './support/recording-logger.js';
import { until, within } from './support/waits.js';

// Wide enough that a loaded machine (the whole suite on DynamoDB Local, two cores) does not stall past
// it between the calls meant to join the first computation.
const TIMEOUT_MS = 600;

/**
 * What a computation does: never settle, wait until the test calls `release()`, or take that many
 * milliseconds.
 */
type Step = 'hang' | 'held' | number;

/** Runs the next planned step; its result names the computation (`id#n`, n counting from 1). */
class Plan {
  calls = 0;
  steps: Step[] = [];
  release!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  async run(id: string): Promise<string> {
    const n = ++this.calls;
    const step = this.steps.shift() ?? 0;
    if (step === 'hang') return new Promise<string>(() => undefined);
    if (step === 'held') await this.released;
    else await sleep(step);
    return `${id}#${n}`;
  }
}

@Injectable()
class FeedService {
  readonly plain = new Plan();
  readonly short = new Plan();

  @DynamoCached(600)
  async feed(id: string): Promise<string> {
    return this.plain.run(id);
  }

  @DynamoCached({ ttl: 600, computeTimeout: TIMEOUT_MS })
  async feedShort(id: string): Promise<string> {
    return this.short.run(id);
  }
}

/** Apart from FeedService: its long computeTimeout would bound every other test's close(). */
@Injectable()
class ReportService {
  readonly long = new Plan();

  @DynamoCached({ ttl: 600, computeTimeout: 60_000 })
  async report(id: string): Promise<string> {
    return this.long.run(id);
  }
}

/** Whether `promise` has settled (looked at after the current microtasks). */
function tracker(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

describe(`computeTimeout (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function app(
    options: Partial<DynamoCacheModuleOptions> = {},
    logger?: RecordingLogger,
    providers: Type[] = [FeedService],
  ) {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    // A short l2Timeout keeps close() short: it waits for a hung computation that long at most.
    const moduleRef = await bootCache(
      { table, client, ttl: 600, l2Timeout: 300, ...options },
      providers,
      logger ?? false,
    );
    fx.apps.push(moduleRef);
    return {
      table,
      calls,
      moduleRef,
      feeds: moduleRef.get(FeedService),
      cache: moduleRef.get(DynamoCacheService),
    };
  }

  async function rawItem(table: string, namespace: string, id: string) {
    const out = await fx.admin.send(
      new GetItemCommand({
        TableName: table,
        Key: { cache_key: { S: buildCacheKey('', namespace, encodeKey([id])) } },
        ConsistentRead: true,
      }),
    );
    return out.Item;
  }

  /**
   * The first computation hangs: calls before computeTimeout join it, a call after it starts its
   * own and resolves (and that result is cached).
   */
  async function hangingComputation(call: () => Promise<string>, plan: Plan): Promise<void> {
    plan.steps = ['hang'];
    const early = [call()];
    await until(() => plan.calls === 1, 'the first computation to start');
    early.push(call());
    await sleep(20);
    early.push(call());
    await sleep(20);
    expect(plan.calls).toBe(1);
    const settled = tracker(Promise.race(early));

    await sleep(TIMEOUT_MS + 100);
    const late = await within(call(), 'a call made after computeTimeout');
    expect(late).toBe('k#2');
    expect(plan.calls).toBe(2);
    // That one was cached as usual.
    expect(await call()).toBe('k#2');
    expect(plan.calls).toBe(2);
    expect(settled()).toBe(false);
  }

  describe('a computation that never settles stops holding its key after computeTimeout', () => {
    it('module option', async () => {
      const { feeds } = await app({ computeTimeout: TIMEOUT_MS });
      await hangingComputation(() => feeds.feed('k'), feeds.plain);
    });

    // The module's computeTimeout (1 s) would still hold the key at the late call; it also bounds
    // close(), which waits for the hung computation that long.
    it('@DynamoCached({ computeTimeout })', async () => {
      const { feeds } = await app({ computeTimeout: 1000 });
      await hangingComputation(() => feeds.feedShort('k'), feeds.short);
    });

    it('DynamoCacheService.wrap(..., { computeTimeout })', async () => {
      const { cache } = await app({ computeTimeout: 1000 });
      const plan = new Plan();
      await hangingComputation(
        () =>
          cache.wrap('feeds.wrapped', ['k'], () => plan.run('k'), { computeTimeout: TIMEOUT_MS }),
        plan,
      );
    });

    it('@DynamoCached({ computeTimeout }) overrides the module option', async () => {
      const { moduleRef } = await app({ computeTimeout: TIMEOUT_MS }, undefined, [
        FeedService,
        ReportService,
      ]);
      const reports = moduleRef.get(ReportService);
      const plan = reports.long;
      fx.apps.push({ close: async () => plan.release() });
      plan.steps = ['held'];
      const first = reports.report('k');
      await until(() => plan.calls === 1, 'the first computation to start');
      await sleep(TIMEOUT_MS + 100);
      const second = reports.report('k');
      await sleep(50);
      // Still within the method's own 60 s: the second call joined the held computation.
      expect(plan.calls).toBe(1);
      expect(tracker(Promise.race([first, second]))()).toBe(false);
      plan.release();
      expect(await within(Promise.all([first, second]), 'the released calls')).toEqual([
        'k#1',
        'k#1',
      ]);
      expect(plan.calls).toBe(1);
    });
  });

  it('a computation slower than computeTimeout: its callers get its value, nothing is cached, one warning', async () => {
    const logger = new RecordingLogger();
    const { feeds, calls, cache, table } = await app({ computeTimeout: TIMEOUT_MS }, logger);
    feeds.plain.steps = [TIMEOUT_MS + 200];
    const first = feeds.feed('slow');
    await until(() => feeds.plain.calls === 1, 'the computation to start');
    const second = feeds.feed('slow'); // joins, well before computeTimeout
    expect(await Promise.all([first, second])).toEqual(['slow#1', 'slow#1']);
    expect(feeds.plain.calls).toBe(1);

    expect(calls.get('PutItem')).toBe(0);
    expect(await rawItem(table, 'FeedService.feed', 'slow')).toBeUndefined();
    expect(cache.stats().namespaces['FeedService.feed']).toMatchObject({ l2Writes: 0 });
    expect(logger.matching(/computeTimeout/)).toHaveLength(1);
    expect(logger.matching(/computeTimeout/)[0]).toContain('FeedService.feed');

    // Not in L1 either: the next call computes again (quickly this time, so it is cached).
    expect(await feeds.feed('slow')).toBe('slow#2');
    expect(await feeds.feed('slow')).toBe('slow#2');
    expect(feeds.plain.calls).toBe(2);
    expect(calls.get('PutItem')).toBe(1);

    // Another slow computation: not cached, and no second warning.
    feeds.plain.steps = [TIMEOUT_MS + 200];
    expect(await feeds.feed('slow-too')).toBe('slow-too#3');
    expect(await rawItem(table, 'FeedService.feed', 'slow-too')).toBeUndefined();
    expect(logger.matching(/computeTimeout/)).toHaveLength(1);
  });

  describe('validation', () => {
    const invalid: [string, number][] = [
      ['0', 0],
      ['negative', -5],
      ['NaN', NaN],
    ];

    it.each(invalid)('module option computeTimeout %s fails bootstrap', async (_, value) => {
      const table = await fx.dynamo.table();
      const boot = bootCache({ table, client: fx.dynamo.client(), computeTimeout: value }, []);
      await expect(boot).rejects.toThrow(DynamoCacheError);
      await expect(boot).rejects.toThrow(/computeTimeout/);
    });

    it.each(invalid)('@DynamoCached({ computeTimeout: %s }) throws', (_, value) => {
      class Target {
        async load(): Promise<number> {
          return 1;
        }
      }
      const descriptor = Object.getOwnPropertyDescriptor(Target.prototype, 'load')!;
      const decorate = (): void =>
        DynamoCached({ computeTimeout: value })(Target.prototype, 'load', descriptor);
      expect(decorate).toThrow(DynamoCacheError);
      expect(decorate).toThrow(/computeTimeout/);
    });
  });
});
