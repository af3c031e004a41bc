import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { PARTITION_KEY } from './item-codec.js';

/*
 * The lease item, beside the value item in the same table:
 *   cache_key (S)  {the value item's cache_key}#lease   (never an md5 hex, so never a value's key)
 *   until (N)      ms epoch at which the lease lapses, whoever holds it
 *   owner (S)      random id of the engine (process) that holds it
 *   exp (N)        ceil(until / 1000) + 1, whole seconds, for DynamoDB's own TTL clean-up
 *   n (N)          how many claims it has had: each claim adds one and learns its rank
 *   c (S)          the owner id again when the owner writes copies (a lease taken by an older
 *                  version has none, or a waiter's: its waiters then watch the lease instead)
 *
 * The copies, written by the owner once it has given the lease back, one per 25 waiters:
 *   cache_key (S)  {the value item's cache_key}#lease#{j}, j = 0, 1, …
 *   lo (S)         the owner id whose computation it reports
 *   f (BOOL)       true: that computation left no value (it failed, or its result is not stored)
 *   (otherwise every attribute of the value item as written: v, t, e, o, g, z, c)
 *   exp (N)        whole seconds, shortly after the waits it serves have ended
 */

/**
 * Cross-process single-flight: when several processes miss the same key at once, one takes a
 * lease (a counted `UpdateItem` claim) and computes; the others read the copy of its result it
 * writes for them.
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
  /** Milliseconds before a waiting process first looks for the result; later looks double that, up to 1 s. */
  pollMs?: number;
}

/** {@link LeaseOptions} with every default filled in. */
export type LeaseSettings = Required<LeaseOptions>;

/** The lease defaults: a 10 s lease, a 5 s wait, a first look after about 50 ms. */
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

/**
 * What a claim of a lease learned: ours now; or held by `owner` until `until` (ms epoch), this
 * claim being its `rank`-th, and whether that owner writes copies of its result for its waiters.
 */
export type LeaseClaim =
  /**
   * `replaced`: a lease of another computation that writes copies was taken over (lapsed, or an
   * earlier one of this engine's); its waiters need to be told it left no value.
   */
  | { readonly status: 'acquired'; readonly replaced?: { owner: string; claims: number } }
  | {
      readonly status: 'held';
      readonly owner: string;
      readonly until: number;
      readonly rank: number;
      readonly copies: boolean;
    };

/**
 * Waiters per copy of a lease owner's result. Each waiter looks at its own copy (a few times in
 * its first second, then once a second), so a copy's key sees at most ~125 reads a second
 * however many processes wait, and the value and lease items see none from waiters.
 */
export const LEASE_COPY_WAITERS = 25;

/** The key of copy `index` of the result of the computation holding `cacheKey`'s lease. */
export function leaseCopyKey(cacheKey: string, index: number): string {
  return `${leaseKey(cacheKey)}#${index}`;
}

/** Which copy the waiter with claim rank `rank` (2, 3, …; the first claim took the lease) reads. */
export function leaseCopyIndex(rank: number): number {
  return Math.max(0, Math.floor((rank - 2) / LEASE_COPY_WAITERS));
}

/** How many copies serve the waiters of a lease that had `claims` claims (the owner's included). */
export function leaseCopyCount(claims: number): number {
  return claims < 2 ? 0 : leaseCopyIndex(claims) + 1;
}

/**
 * Builds copy `index` of a lease owner's result: the value item as written (under the copy's
 * key), or, when it wrote none, a note that it failed. It is kept `lifeMs` from `now`.
 */
export function encodeLeaseCopy(
  cacheKey: string,
  index: number,
  owner: string,
  valueItem: Record<string, AttributeValue> | undefined,
  now: number,
  lifeMs: number,
): Record<string, AttributeValue> {
  return {
    ...(valueItem ?? { f: { BOOL: true } }),
    [PARTITION_KEY]: { S: leaseCopyKey(cacheKey, index) },
    lo: { S: owner },
    exp: { N: leaseExp(now + lifeMs) },
  };
}

/**
 * Reads a copy for a waiter of `owner`: `pending` when there is none from that owner yet (or one
 * of an earlier computation's), `failed` when it wrote no value, otherwise the value item.
 */
export function inspectLeaseCopy(
  item: Record<string, AttributeValue> | undefined,
  owner: string,
): 'pending' | 'failed' | { readonly item: Record<string, AttributeValue> } {
  if (item === undefined || item.lo?.S !== owner) return 'pending';
  return item.f?.BOOL === true ? 'failed' : { item };
}

/**
 * Reads what a claim (`UpdateItem` returning the item) left: `acquired` when `me` owns it now,
 * else who holds it. Items a claim did not create may lack `n` or `c` (older versions).
 */
export function decodeClaim(
  item: Record<string, AttributeValue> | undefined,
  me: string,
): LeaseClaim {
  const owner = item?.owner?.S;
  if (owner === me) return { status: 'acquired' };
  const until = Number(item?.until?.N);
  const rank = Number(item?.n?.N);
  return {
    status: 'held',
    owner: owner ?? '',
    until: Number.isFinite(until) ? until : 0,
    rank: Number.isFinite(rank) ? rank : 2,
    copies: owner !== undefined && item?.c?.S === owner,
  };
}

/** The lease item's `cache_key` for a value item's `cache_key`. */
export function leaseKey(cacheKey: string): string {
  return `${cacheKey}#lease`;
}

/** Builds the lease item for `PutItem` (a lease taken over: its claims count restarts). */
export function encodeLease(
  cacheKey: string,
  owner: string,
  until: number,
): Record<string, AttributeValue> {
  return {
    [PARTITION_KEY]: { S: leaseKey(cacheKey) },
    until: { N: String(until) },
    owner: { S: owner },
    exp: { N: leaseExp(until) },
    n: { N: '1' },
    c: { S: owner },
  };
}

/** The lease item's `exp` for a lease lapsing at `until` (ms epoch). */
export function leaseExp(until: number): string {
  return String(Math.ceil(until / 1000) + 1);
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
