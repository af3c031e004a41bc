import { Injectable, ServiceUnavailableException } from '@nestjs/common';
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
  /** Simulates an outage of the upstream the rates come from (`POST /rates/upstream/down`). */
  upstreamDown = false;

  constructor(private readonly config: ConfigService) {}

  // The module's ttl (DYNAMO_CACHE_TTL, default one hour). `types` lets a process that has not
  // computed a Rate yet (a restart, another instance) restore one from DynamoDB. `grace`: for a
  // day past its ttl, a rate is kept and served if the upstream fails, retried every 10 s.
  @DynamoCached({ types: [Rate], grace: 24 * 3600, graceBackoff: 10 })
  async rate(from: string, to: string): Promise<Rate> {
    const delay = Number(this.config.get<string>('SAMPLE_SLOW_MS') ?? 1500);
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.upstreamDown) throw new ServiceUnavailableException('the rates upstream is down');
    // Deterministic, so every process computes the same value for the same pair.
    const seed = [...`${from}:${to}`].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 100_000, 7);
    return new Rate(from, to, 0.5 + seed / 100_000, new Date().toISOString());
  }
}
