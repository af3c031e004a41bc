import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DynamoCached } from '../lib/index.js';

/**
 * A class, not a plain object: read back from DynamoDB in another process (or after a restart),
 * it is a `Rate` again, getter included.
 */
export class Rate {
  constructor(
    readonly from: string,
    readonly to: string,
    readonly rate: number,
    readonly computedAt: string,
  ) {}

  /** The rate the other way round. */
  get inverse(): number {
    return Math.round((1 / this.rate) * 1e6) / 1e6;
  }
}

/** A deliberately slow computation: the thing worth caching. */
@Injectable()
export class RatesService {
  constructor(private readonly config: ConfigService) {}

  // The module's ttl (DYNAMO_CACHE_TTL, default one hour). `types` lets a process that has not
  // computed a Rate yet (a restart, another instance) restore one from DynamoDB.
  @DynamoCached({ types: [Rate] })
  async rate(from: string, to: string): Promise<Rate> {
    const delay = Number(this.config.get<string>('SAMPLE_SLOW_MS') ?? 1500);
    await new Promise((resolve) => setTimeout(resolve, delay));
    // Deterministic, so every process computes the same value for the same pair.
    const seed = [...`${from}:${to}`].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 100_000, 7);
    return new Rate(from, to, 0.5 + seed / 100_000, new Date().toISOString());
  }
}
