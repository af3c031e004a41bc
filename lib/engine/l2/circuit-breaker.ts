/**
 * Settings of the circuit breaker in front of one DynamoDB table.
 *
 * @example
 * DynamoCacheModule.forRoot({ table: 'app-cache', circuitBreaker: { failures: 5, cooldownMs: 5000 } })
 */
export interface CircuitBreakerOptions {
  /** Consecutive failed DynamoDB calls that open the circuit. Default 5. */
  failures?: number;
  /** Milliseconds the circuit stays open before one probe call is let through. Default 5000. */
  cooldownMs?: number;
}

/** {@link CircuitBreakerOptions} with the defaults filled in. */
export interface CircuitBreakerSettings {
  failures: number;
  cooldownMs: number;
}

/** Defaults of {@link CircuitBreakerOptions}. */
export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerSettings = { failures: 5, cooldownMs: 5000 };

/**
 * `closed`: DynamoDB is used. `open`: it is skipped until the cool-down ends. `half-open`: the
 * cool-down has ended and the next call (one only) probes it. Only `closed` means L2 is in use.
 *
 * @example
 * const state: CircuitState = cacheService.circuitState();
 * if (state !== 'closed') logger.warn(`cache L2 is ${state}`);
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * The `cause` of the `DynamoCacheError` a call gets when the circuit is open and
 * `onError` is `'throw'`: DynamoDB was not called at all.
 *
 * @example
 * if (err instanceof DynamoCacheError && err.cause instanceof CircuitOpenError) serveStale();
 */
export class CircuitOpenError extends Error {
  constructor(
    /** The table whose circuit is open. */
    readonly table: string,
    /** Milliseconds until the next probe is allowed. */
    readonly retryInMs: number,
  ) {
    super(`the circuit breaker of table "${table}" is open; next probe in ${retryInMs} ms`);
    this.name = 'CircuitOpenError';
  }
}

/** What {@link CircuitBreaker.acquire} allows: nothing, a normal call, or the one probe. */
export type Permit = 'denied' | 'call' | 'probe';

/**
 * Counts consecutive failures of one table's DynamoDB calls and, past the threshold, turns them
 * away for a cool-down so that an outage costs each caller nothing instead of a timeout. After the
 * cool-down a single probe decides: success closes the circuit, failure opens it again.
 *
 * @example
 * const breaker = new CircuitBreaker({ failures: 5, cooldownMs: 5000 });
 * const permit = breaker.acquire();
 * if (permit === 'denied') return skip();
 * try { await call(); breaker.success(); } catch { breaker.failure(permit); }
 */
export class CircuitBreaker {
  private consecutive = 0;
  /** 0 while closed; otherwise when the current cool-down ends. */
  private openUntil = 0;
  private probeSince = -1;

  constructor(
    private readonly settings: CircuitBreakerSettings | false,
    private readonly now: () => number = Date.now,
  ) {}

  /** The state as of now. */
  get state(): CircuitState {
    if (this.openUntil === 0) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half-open';
  }

  /** Consecutive failures so far (reset by any success). */
  get failures(): number {
    return this.consecutive;
  }

  /** Milliseconds until a probe is allowed (0 when closed or half-open). */
  get retryInMs(): number {
    return this.openUntil === 0 ? 0 : Math.max(0, this.openUntil - this.now());
  }

  /** Asks to call DynamoDB now. */
  acquire(): Permit {
    if (this.openUntil === 0 || this.settings === false) return 'call';
    const now = this.now();
    if (now < this.openUntil) return 'denied';
    // One probe at a time; a probe that never settles (no l2Timeout) frees its slot after a cool-down.
    if (this.probeSince >= 0 && now - this.probeSince < this.settings.cooldownMs) {
      return 'denied';
    }
    this.probeSince = now;
    return 'probe';
  }

  /** Records an answer from DynamoDB. Returns `true` when it closed an open circuit. */
  success(): boolean {
    this.consecutive = 0;
    this.probeSince = -1;
    if (this.openUntil === 0) return false;
    this.openUntil = 0;
    return true;
  }

  /** Records a failed call. Returns `true` when this failure opened a closed circuit. */
  failure(permit: Permit): boolean {
    this.consecutive++;
    if (this.settings === false) return false;
    if (this.openUntil !== 0) {
      // A failed probe starts another cool-down; late failures of calls made before the circuit
      // opened change nothing.
      if (permit === 'probe') {
        this.probeSince = -1;
        this.openUntil = this.now() + this.settings.cooldownMs;
      }
      return false;
    }
    if (this.consecutive < this.settings.failures) return false;
    this.openUntil = this.now() + this.settings.cooldownMs;
    return true;
  }
}
