import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { DynamoCached, DynamoCacheEvict, DynamoCacheService } from '../lib/index.js';
import { RatesService } from './rates.service.js';

/** Where a value came from, read off the cache's counters around the call. */
export type Source = 'L1' | 'L2' | 'stale' | 'method';

const upper = (from: string, to: string): [string, string] => [
  from.toUpperCase(),
  to.toUpperCase(),
];

@Controller('rates')
export class RatesController {
  constructor(
    private readonly rates: RatesService,
    private readonly cache: DynamoCacheService,
  ) {}

  @Get(':from/:to')
  async rate(@Param('from') from: string, @Param('to') to: string) {
    const before = this.counters();
    const started = performance.now();
    const value = await this.rates.rate(from.toUpperCase(), to.toUpperCase());
    const ms = Math.round((performance.now() - started) * 100) / 100;
    const after = this.counters();
    const source: Source =
      after.staleHits > before.staleHits
        ? 'stale'
        : after.l1Hits > before.l1Hits
          ? 'L1'
          : after.l2Hits > before.l2Hits
            ? 'L2'
            : 'method';
    // `className` and `inverse` show that an L2 hit is a Rate again, not a plain object.
    return { ...value, inverse: value.inverse, className: value.constructor.name, source, ms };
  }

  /**
   * The whole response cached for 30 s (L1, then DynamoDB), keyed by method and URL with its
   * query string; the X-Cache header says HIT or MISS. `respondedAt` stays the same on every HIT.
   */
  @Get('quote/:from/:to')
  @DynamoCached(30)
  async quote(@Param('from') from: string, @Param('to') to: string, @Query('amount') amount = '1') {
    const { rate, computedAt } = await this.rates.rate(from.toUpperCase(), to.toUpperCase());
    return {
      from,
      to,
      amount: Number(amount),
      total: Number(amount) * rate,
      computedAt,
      respondedAt: new Date().toISOString(),
    };
  }

  /**
   * Forgets a pair, in every instance: its `RatesService.rate` entry, and every cached quote
   * (route entries are keyed by request, so the whole namespace goes). The next GET recomputes.
   */
  @Post(':from/:to/refresh')
  @HttpCode(200)
  @DynamoCacheEvict({ namespace: 'RatesService.rate', args: upper })
  @DynamoCacheEvict({ namespace: 'RatesController.quote', allEntries: true })
  refresh(@Param('from') from: string, @Param('to') to: string) {
    return { evicted: upper(from, to) };
  }

  /** `POST /rates/upstream/down` (or `up`): simulates an upstream outage, to see `grace` at work. */
  @Post('upstream/:state')
  @HttpCode(200)
  upstream(@Param('state') state: string) {
    this.rates.upstreamDown = state === 'down';
    return { upstreamDown: this.rates.upstreamDown };
  }

  private counters() {
    const s = this.cache.stats().namespaces['RatesService.rate'];
    return { l1Hits: s?.l1Hits ?? 0, l2Hits: s?.l2Hits ?? 0, staleHits: s?.staleHits ?? 0 };
  }
}
