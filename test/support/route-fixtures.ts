import { Injectable, type CanActivate } from '@nestjs/common';

/** Counts handler runs per name; one per application. */
@Injectable()
export class Hits {
  private readonly counts: Record<string, number> = {};
  /** Set by a test to make a handler fail once. */
  failNext = false;
  private open!: () => void;
  /** Handlers that must wait for the test await this; `release()` opens it. */
  gate: Promise<void> = new Promise((resolve) => (this.open = resolve));

  inc(name: string): number {
    this.counts[name] = (this.counts[name] ?? 0) + 1;
    return this.counts[name];
  }
  get(name: string): number {
    return this.counts[name] ?? 0;
  }
  release(): void {
    this.open();
  }
}

/** Counts requests that reached the route, before any interceptor. */
@Injectable()
export class Arrivals implements CanActivate {
  constructor(private readonly hits: Hits) {}
  canActivate(): boolean {
    this.hits.inc('arrivals');
    return true;
  }
}
