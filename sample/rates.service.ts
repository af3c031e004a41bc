import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DynamoCached } from '../lib/index.js';

/** A deliberately slow computation: the thing worth caching. */
@Injectable()
export class RatesService {
  constructor(private readonly config: ConfigService) {}

  @DynamoCached() // the module's ttl (DYNAMO_CACHE_TTL, default one hour)
  async rate(
    from: string,
    to: string,
  ): Promise<{ from: string; to: string; rate: number; computedAt: string }> {
    const delay = Number(this.config.get<string>('SAMPLE_SLOW_MS') ?? 1500);
    await new Promise((resolve) => setTimeout(resolve, delay));
    // Deterministic, so every process computes the same value for the same pair.
    const seed = [...`${from}:${to}`].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 100_000, 7);
    return { from, to, rate: 0.5 + seed / 100_000, computedAt: new Date().toISOString() };
  }
}
