import { CircuitBreaker } from '../../lib/engine/l2/circuit-breaker.js';

// The state machine alone, on a hand-driven clock; its effect on real DynamoDB traffic is
// shown in outage.spec.ts and load.spec.ts.
describe('CircuitBreaker', () => {
  let now = 0;
  const clock = (): number => now;

  beforeEach(() => {
    now = 1_000;
  });

  it('opens after the configured run of consecutive failures; a success resets the run', () => {
    const breaker = new CircuitBreaker({ failures: 3, cooldownMs: 100 }, clock);
    expect(breaker.failure(breaker.acquire())).toBe(false);
    expect(breaker.failure(breaker.acquire())).toBe(false);
    breaker.success();
    expect(breaker.failure(breaker.acquire())).toBe(false);
    expect(breaker.failure(breaker.acquire())).toBe(false);
    expect(breaker.state).toBe('closed');
    expect(breaker.failure(breaker.acquire())).toBe(true);
    expect(breaker.state).toBe('open');
    expect(breaker.acquire()).toBe('denied');
    expect(breaker.retryInMs).toBe(100);
  });

  it('after the cool-down lets exactly one probe through; its success closes the circuit', () => {
    const breaker = new CircuitBreaker({ failures: 1, cooldownMs: 100 }, clock);
    breaker.failure(breaker.acquire());
    now += 99;
    expect(breaker.acquire()).toBe('denied');
    now += 1;
    expect(breaker.state).toBe('half-open');
    expect(breaker.acquire()).toBe('probe');
    expect(breaker.acquire()).toBe('denied');
    expect(breaker.success()).toBe(true);
    expect(breaker.state).toBe('closed');
    expect(breaker.acquire()).toBe('call');
  });

  it('a failed probe starts another cool-down; late failures of older calls do not', () => {
    const breaker = new CircuitBreaker({ failures: 1, cooldownMs: 100 }, clock);
    const early = breaker.acquire();
    breaker.failure(breaker.acquire());
    now += 100;
    const probe = breaker.acquire();
    expect(probe).toBe('probe');
    now += 10;
    breaker.failure(early);
    expect(breaker.acquire()).toBe('denied');
    breaker.failure(probe);
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs).toBe(100);
    now += 100;
    expect(breaker.acquire()).toBe('probe');
  });

  it('a probe that never settles frees its slot after a cool-down', () => {
    const breaker = new CircuitBreaker({ failures: 1, cooldownMs: 100 }, clock);
    breaker.failure(breaker.acquire());
    now += 100;
    expect(breaker.acquire()).toBe('probe');
    now += 99;
    expect(breaker.acquire()).toBe('denied');
    now += 1;
    expect(breaker.acquire()).toBe('probe');
  });

  it('disabled (false): never opens', () => {
    const breaker = new CircuitBreaker(false, clock);
    for (let i = 0; i < 100; i++) expect(breaker.failure(breaker.acquire())).toBe(false);
    expect(breaker.state).toBe('closed');
    expect(breaker.acquire()).toBe('call');
  });
});
