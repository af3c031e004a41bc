import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { PARTITION_KEY } from './item-codec.js';

/*
 * The lease item, beside the value item in the same table:
 *   cache_key (S)  {the value item's cache_key}#lease   (never an md5 hex, so never a value's key)
 *   until (N)      ms epoch at which the lease lapses, whoever holds it
 *   owner (S)      random id of the engine (process) that holds it
 *   exp (N)        ceil(until / 1000) + 1, whole seconds, for DynamoDB's own TTL clean-up
 */

/**
 * Cross-process single-flight: when several processes miss the same key at once, one takes a
 * lease (a conditional `PutItem`) and computes; the others poll DynamoDB for its result.
 * Every field is optional; the defaults are {@link DEFAULT_LEASE}.
 *
 * @example
 * DynamoCacheModule.forRoot({ table: 'app-cache', lease: { ttlMs: 30_000, waitMs: 10_000 } })
 */
export interface LeaseOptions {
  /** How long a lease protects a computation, in ms: a crashed holder blocks no one longer. */
  ttlMs?: number;
  /** How long a process that lost the race waits for the winner's value, in ms, before computing itself. */
  waitMs?: number;
  /** Milliseconds between two looks at DynamoDB while waiting. */
  pollMs?: number;
}

/** {@link LeaseOptions} with every default filled in. */
export type LeaseSettings = Required<LeaseOptions>;

/** The lease defaults: a 10 s lease, a 5 s wait, a look every 50 ms. */
export const DEFAULT_LEASE: Readonly<LeaseSettings> = Object.freeze({
  ttlMs: 10_000,
  waitMs: 5_000,
  pollMs: 50,
});

/** A lease as read from DynamoDB. */
export interface LeaseState {
  readonly owner: string;
  /** ms epoch at which it lapses. */
  readonly until: number;
}

/** Result of an attempt to take a lease: ours now, or held by someone else. */
export type LeaseAcquire = 'acquired' | 'held';

/** The lease item's `cache_key` for a value item's `cache_key`. */
export function leaseKey(cacheKey: string): string {
  return `${cacheKey}#lease`;
}

/** Builds the lease item for `PutItem`. */
export function encodeLease(
  cacheKey: string,
  owner: string,
  until: number,
): Record<string, AttributeValue> {
  return {
    [PARTITION_KEY]: { S: leaseKey(cacheKey) },
    until: { N: String(until) },
    owner: { S: owner },
    exp: { N: String(Math.ceil(until / 1000) + 1) },
  };
}

/** Reads a lease item back; `undefined` when it is not one (then it protects nothing). */
export function decodeLease(item: Record<string, AttributeValue>): LeaseState | undefined {
  const until = Number(item.until?.N);
  const owner = item.owner?.S;
  if (!Number.isFinite(until) || typeof owner !== 'string') return undefined;
  return { owner, until };
}

/**
 * Checks a `lease` option and fills in its defaults: `false`/`undefined` = off, `true` = the
 * defaults, or {@link LeaseOptions}. `fail(problem)` builds the error to throw.
 */
export function resolveLease(
  value: unknown,
  fail: (problem: string) => Error,
): LeaseSettings | false {
  if (value === undefined || value === false) return false;
  if (value === true) return { ...DEFAULT_LEASE };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw fail(`must be false, true or { ttlMs?, waitMs?, pollMs? }, got ${String(value)}`);
  }
  const out: LeaseSettings = { ...DEFAULT_LEASE };
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (name !== 'ttlMs' && name !== 'waitMs' && name !== 'pollMs') {
      throw fail(`has an unknown field "${name}" (expected ttlMs, waitMs, pollMs)`);
    }
    if (v === undefined) continue;
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) {
      throw fail(`field "${name}" must be a positive number of milliseconds, got ${String(v)}`);
    }
    out[name] = v;
  }
  return out;
}
