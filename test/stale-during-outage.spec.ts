import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { DynamoCached, DynamoCacheService } from '../lib/index.js';
import { bootCache, sleep } from './support/apps.js';
import { startRestartableDynamo, type RestartableDynamo } from './support/restartable-dynamo.js';

/*
 * A stale value in L1 (past its ttl, within grace) whose last check is older than l1MaxAge must be
 * checked in DynamoDB first. While DynamoDB is down that check cannot be answered, and the L1
 * copy is the value to fall back on, as when the method fails: a soft `timeout` (0 included)
 * answers with it while the slow recomputation goes on, and after a failed recomputation
 * `graceBackoff` serves it without calling the method again. Each case has its control with
 * DynamoDB up.
 */
@Injectable()
class Quotes {
  delayMs = 0;
  failing = false;
  calls = 0;

  private async quote(symbol: string): Promise<string> {
    this.calls++;
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (this.failing) throw new Error('upstream down');
    return `${symbol}#${this.calls}`;
  }

  @DynamoCached({ ttl: 1, grace: 60, timeout: 0, l1MaxAge: 1 })
  swr(symbol: string): Promise<string> {
    return this.quote(symbol);
  }

  @DynamoCached({ ttl: 1, grace: 60, timeout: 100, l1MaxAge: 1 })
  soft(symbol: string): Promise<string> {
    return this.quote(symbol);
  }

  @DynamoCached({ ttl: 1, grace: 60, graceBackoff: 30, l1MaxAge: 1 })
  backingOff(symbol: string): Promise<string> {
    return this.quote(symbol);
  }
}

describe('a stale L1 value whose check DynamoDB cannot answer is the fallback', () => {
  let dynamo: RestartableDynamo;
  const apps: TestingModule[] = [];
  beforeAll(async () => {
    dynamo = await startRestartableDynamo();
  });
  afterEach(async () => {
    await dynamo.start();
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await dynamo.close();
  });

  /** A value cached, then past its ttl and l1MaxAge (stale, unchecked), DynamoDB stopped or not. */
  async function staleUnchecked(down: boolean, method: 'swr' | 'soft' | 'backingOff') {
    const table = await dynamo.table();
    const app = await bootCache(
      { table, client: dynamo.client(), onError: 'bypass', l2Timeout: 500 },
      [Quotes],
    );
    apps.push(app);
    const q = app.get(Quotes);
    expect(await q[method]('EUR')).toBe('EUR#1');
    await app.get(DynamoCacheService).settle();
    await sleep(1600);
    if (down) await dynamo.stop();
    return q;
  }

  for (const method of ['swr', 'soft'] as const) {
    for (const down of [true, false]) {
      it(`${method === 'swr' ? 'timeout 0' : 'timeout 100 ms'}: the stale value answers at once, the 3 s recomputation behind it (DynamoDB ${down ? 'down' : 'up, the control'})`, async () => {
        const q = await staleUnchecked(down, method);
        q.delayMs = 3000;
        const t0 = Date.now();
        const value = await q[method]('EUR');
        expect({ value, slow: Date.now() - t0 >= 1000 }).toEqual({ value: 'EUR#1', slow: false });
      }, 15000);
    }
  }

  for (const down of [true, false]) {
    it(`graceBackoff 30 s: one failed attempt, then the stale value without calling the method (DynamoDB ${down ? 'down' : 'up, the control'})`, async () => {
      const q = await staleUnchecked(down, 'backingOff');
      q.failing = true;
      const values: string[] = [];
      for (let i = 0; i < 5; i++) {
        values.push(await q.backingOff('EUR'));
        await sleep(50);
      }
      expect({ values, calls: q.calls - 1 }).toEqual({ values: Array(5).fill('EUR#1'), calls: 1 });
    }, 20000);
  }
});
