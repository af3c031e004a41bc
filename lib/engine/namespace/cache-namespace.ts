import { DynamoCacheError } from '../../errors.js';
import { CircuitOpenError } from '../l2/circuit-breaker.js';
import { buildCacheKey, encodeKey } from '../keys/cache-key.js';
import type { LeaseSettings } from '../l2/cache-lease.js';
import { coarseNow } from '../coarse-clock.js';
import { isThenable } from './is-thenable.js';
import { KeyMemo } from '../keys/key-memo.js';
import { emptyStats, type CacheStats } from './cache-stats.js';
import { createL1Cache, type L1Cache, type L1Entry } from '../l1/l1-cache.js';
import type { L2Read, L2Store } from '../l2/l2-store.js';
import type { CacheSerializer } from '../values/serializer.js';

/**
 * What a failing DynamoDB call does to the caller: reject, or be served as if L2 were empty.
 * `'throw'` makes an outage visible to the caller; `'bypass'` keeps the application answering
 * from L1 and the method itself, at the cost of recomputing.
 *
 * @example
 * const onError: OnErrorPolicy = process.env.NODE_ENV === 'production' ? 'bypass' : 'throw';
 * DynamoCacheModule.forRoot({ table: 'app-cache', onError });
 */
export type OnErrorPolicy = 'throw' | 'bypass';

/** Where the engine reports what it cannot throw. */
export interface CacheLogger {
  warn(message: string): void;
  error(message: string): void;
}

/** The resolved settings of one namespace. */
export interface NamespaceSettings {
  namespace: string;
  ttl: number | null;
  maxsize: number | null;
  /** Derives key material from the arguments; the argument list itself when absent. */
  key?: (...args: never[]) => unknown;
  /** Reject when the wrapped function does not return a Promise (decorated methods). */
  requirePromise?: boolean;
  /** Cross-process single-flight after an L2 miss; `false` or absent = off. */
  lease?: LeaseSettings | false;
}

/** What a namespace shares with the rest of the engine. */
export interface NamespaceContext {
  readonly keyPrefix: string;
  readonly onError: OnErrorPolicy;
  readonly serializer: CacheSerializer;
  readonly logger: CacheLogger;
  readonly l2: L2Store;
  /** This engine's lease owner id (random, one per engine), for `lease`. */
  readonly leaseOwner?: string;
  /** Registers a write so shutdown can wait for it. */
  track<T>(write: Promise<T>): Promise<T>;
}

/**
 * The outcome of a lookup that does not compute (`DynamoCacheService.lookup`): a hit carries the
 * value, so a cached `undefined` can be told apart from a miss.
 *
 * @example
 * const found: CacheLookup<User | undefined> = await cache.lookup('users.byId', [id]);
 * if (found.hit) return found.value; // may be a cached `undefined`: "no such user"
 */
export type CacheLookup<T> = { readonly hit: true; readonly value: T } | { readonly hit: false };

const NO_HIT: CacheLookup<never> = { hit: false };

/** What `readL2` returns when DynamoDB failed and the policy said go on: a miss, but no lease. */
const L2_FAILED: L2Read = { status: 'miss' };

/** How a wait for another process's lease ended. */
type LeaseOutcome =
  | { readonly status: 'acquired' | 'compute' }
  | { readonly status: 'hit'; readonly value: unknown; readonly t: number };

const ACQUIRED: LeaseOutcome = { status: 'acquired' };
const COMPUTE: LeaseOutcome = { status: 'compute' };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Upper bound of a namespace's key memo (see KeyMemo). */
const MEMO_LIMIT = 10_000;

/**
 * The two-tier cache of one namespace (one decorated method, one route, or one name used through
 * the service): its own L1 LRU, the shared L2 table, and one in-flight computation per key.
 */
export class CacheNamespace {
  /** This namespace's counters; read them through the engine's `stats()`. */
  readonly stats: CacheStats = emptyStats();
  readonly name: string;
  readonly ttl: number | null;
  private readonly ttlMs: number;
  private readonly keyFn: ((...args: unknown[]) => unknown) | undefined;
  private readonly requirePromise: boolean;
  private readonly lease: LeaseSettings | false;
  private readonly l1: L1Cache;
  private readonly keys: KeyMemo;
  private readonly inflight = new Map<string, Promise<unknown>>();
  private serializeWarned = false;
  private oversizeWarned = false;

  constructor(
    settings: NamespaceSettings,
    private readonly ctx: NamespaceContext,
  ) {
    this.name = settings.namespace;
    this.ttl = settings.ttl;
    this.ttlMs = settings.ttl === null ? Infinity : settings.ttl * 1000;
    this.keyFn = settings.key as ((...args: unknown[]) => unknown) | undefined;
    this.requirePromise = settings.requirePromise ?? false;
    this.lease = settings.lease ?? false;
    this.l1 = createL1Cache(settings.maxsize);
    // As many remembered keys as L1 can hold, within reason: beyond that they would mostly miss.
    this.keys = new KeyMemo(Math.min(settings.maxsize ?? MEMO_LIMIT, MEMO_LIMIT), this.name);
  }

  /** Entries currently held in L1. */
  get l1Size(): number {
    return this.l1.size;
  }

  /**
   * Serves `fn.apply(thisArg, args)` through L1, then L2, then the function itself, writing a new
   * result to both layers before resolving. Concurrent calls with one key share one computation.
   */
  run<T>(
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: never[]) => T | Promise<T>,
  ): Promise<T> {
    let encoded: string;
    try {
      encoded = this.encode(args);
    } catch (err) {
      return Promise.reject(err);
    }
    const entry = this.fresh(encoded);
    if (entry !== undefined) return Promise.resolve(entry.value as T);
    const pending = this.inflight.get(encoded);
    if (pending !== undefined) return pending as Promise<T>;
    const load = this.load(encoded, thisArg, args, fn as (...args: unknown[]) => T | Promise<T>);
    this.inflight.set(encoded, load);
    return load;
  }

  /**
   * A fresh L1 entry for `args`, synchronously (counted as an L1 hit), or `undefined`. Lets
   * callers that can answer without a Promise (the route interceptor) skip one on a hit.
   */
  peek(args: readonly unknown[]): CacheLookup<unknown> | undefined {
    const entry = this.fresh(this.encode(args));
    return entry === undefined ? undefined : { hit: true, value: entry.value };
  }

  /** L1 then L2, without computing. */
  async get<T>(args: readonly unknown[]): Promise<CacheLookup<T>> {
    const encoded = this.encode(args);
    const entry = this.fresh(encoded);
    if (entry !== undefined) return { hit: true, value: entry.value as T };
    const read = await this.readL2(buildCacheKey(this.ctx.keyPrefix, this.name, encoded));
    if (read.status === 'hit') return { hit: true, value: this.fromL2(encoded, read) as T };
    this.stats.misses++;
    return NO_HIT;
  }

  /** Stores `value` in both layers, as if the function had returned it. */
  async set(args: readonly unknown[], value: unknown): Promise<void> {
    const encoded = this.encode(args);
    const now = Date.now();
    this.l1.set(encoded, { value, expiresAt: now + this.ttlMs });
    // An explicit overwrite: attempted even while the circuit is open (see L2Store.write).
    await this.writeL2(buildCacheKey(this.ctx.keyPrefix, this.name, encoded), value, now, false);
  }

  /** Removes the entry from this process's L1 and from L2. */
  async delete(args: readonly unknown[]): Promise<void> {
    const encoded = this.encode(args);
    this.l1.delete(encoded);
    try {
      await this.ctx.l2.delete(buildCacheKey(this.ctx.keyPrefix, this.name, encoded), this.name);
      this.stats.l2Deletes++;
    } catch (err) {
      this.l2Failed(err as DynamoCacheError);
    }
  }

  /** Empties this process's L1 (L2 is untouched). */
  clearL1(): void {
    this.l1.clear();
  }

  /** A fresh L1 entry (counted as an L1 hit); an expired one is dropped. */
  private fresh(encoded: string): L1Entry | undefined {
    const entry = this.l1.get(encoded);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > coarseNow()) {
      this.stats.l1Hits++;
      return entry;
    }
    this.l1.delete(encoded);
    return undefined;
  }

  /** Counts an L2 hit and copies it into L1, to live as long as the L2 item would. */
  private fromL2(encoded: string, hit: { value: unknown; t: number }): unknown {
    this.stats.l2Hits++;
    this.l1.set(encoded, { value: hit.value, expiresAt: hit.t * 1000 + this.ttlMs });
    return hit.value;
  }

  private encode(args: readonly unknown[]): string {
    return this.keyFn === undefined
      ? this.keys.key(args)
      : encodeKey(this.keyFn(...args), this.name);
  }

  private async load<T>(
    encoded: string,
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: unknown[]) => T | Promise<T>,
  ): Promise<T> {
    try {
      const cacheKey = buildCacheKey(this.ctx.keyPrefix, this.name, encoded);
      const read = await this.readL2(cacheKey);
      if (read.status === 'hit') return this.fromL2(encoded, read) as T;
      if (this.lease === false || read === L2_FAILED) {
        return await this.compute(encoded, cacheKey, thisArg, args, fn);
      }
      const outcome = await this.awaitLease(cacheKey, this.lease);
      if (outcome.status === 'hit') return this.fromL2(encoded, outcome) as T;
      if (outcome.status === 'compute')
        return await this.compute(encoded, cacheKey, thisArg, args, fn);
      try {
        return await this.compute(encoded, cacheKey, thisArg, args, fn);
      } finally {
        this.releaseLease(cacheKey);
      }
    } finally {
      this.inflight.delete(encoded);
    }
  }

  /** The miss path: runs the function and writes its result to both layers. */
  private async compute<T>(
    encoded: string,
    cacheKey: string,
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: unknown[]) => T | Promise<T>,
  ): Promise<T> {
    this.stats.misses++;
    const result = fn.apply(thisArg, args as unknown[]);
    if (this.requirePromise && !isThenable(result)) {
      throw new DynamoCacheError(
        'config',
        `${this.name} returned a ${typeof result}, not a Promise: only async methods can be @DynamoCached`,
        { namespace: this.name },
      );
    }
    const value = await result;
    const now = Date.now();
    this.l1.set(encoded, { value, expiresAt: now + this.ttlMs });
    await this.writeL2(cacheKey, value, now);
    return value;
  }

  /**
   * After an L2 miss, with `lease` on: take the key's lease (this process computes), or wait for
   * the process holding it to write the value, looking every `pollMs`: while its lease is live,
   * at the lease; once it is gone or lapsed, at the value, then try to take the lease over (its
   * holder failed or crashed). After `waitMs`, or on any DynamoDB failure, compute without a
   * lease: a cache fault costs a duplicate computation, never the caller's result, so it is
   * counted as an L2 error but never rejects, whatever `onError` says.
   */
  private async awaitLease(cacheKey: string, lease: LeaseSettings): Promise<LeaseOutcome> {
    const l2 = this.ctx.l2;
    const owner = this.ctx.leaseOwner ?? '';
    const deadline = Date.now() + lease.waitMs;
    try {
      if ((await l2.acquireLease(cacheKey, owner, lease.ttlMs, this.name)) === 'acquired') {
        return await this.leaseAcquired(cacheKey);
      }
      for (;;) {
        await sleep(Math.min(lease.pollMs, Math.max(0, deadline - Date.now())));
        if (Date.now() >= deadline) return COMPUTE;
        const held = await l2.readLease(cacheKey, this.name);
        if (held !== undefined && held.until > Date.now()) continue;
        // Consistent: the holder wrote the value before it gave the lease back.
        const read = await l2.read(cacheKey, this.ttl, this.name, true);
        if (read.status === 'hit') return read;
        if (read.status === 'expired' && read.deleted) this.stats.l2Deletes++;
        if ((await l2.acquireLease(cacheKey, owner, lease.ttlMs, this.name)) === 'acquired') {
          return await this.leaseAcquired(cacheKey);
        }
      }
    } catch (err) {
      this.leaseFailed(err as DynamoCacheError);
      return COMPUTE;
    }
  }

  /**
   * Looks at the value once more (strongly consistent) with the lease in hand: another process may
   * have computed it, written it and given its lease back between our miss and our lease. Without
   * this look that race costs a second computation.
   */
  private async leaseAcquired(cacheKey: string): Promise<LeaseOutcome> {
    let read: L2Read;
    try {
      read = await this.ctx.l2.read(cacheKey, this.ttl, this.name, true);
    } catch (err) {
      this.leaseFailed(err as DynamoCacheError);
      return ACQUIRED;
    }
    if (read.status !== 'hit') return ACQUIRED;
    this.releaseLease(cacheKey);
    return read;
  }

  /**
   * Gives the lease back in the background (waiting processes then read the value, or take over
   * if the computation failed). A failure costs nothing but the lease's lapse, so it is counted
   * and otherwise ignored; shutdown waits for it like for a write.
   */
  private releaseLease(cacheKey: string): void {
    this.ctx
      .track(this.ctx.l2.releaseLease(cacheKey, this.ctx.leaseOwner ?? '', this.name))
      .catch((err: unknown) => this.leaseFailed(err as DynamoCacheError));
  }

  private leaseFailed(err: DynamoCacheError): void {
    if (!(err.cause instanceof CircuitOpenError)) this.stats.l2Errors++;
  }

  private async readL2(cacheKey: string): Promise<L2Read> {
    let read: L2Read;
    try {
      read = await this.ctx.l2.read(cacheKey, this.ttl, this.name);
    } catch (err) {
      this.l2Failed(err as DynamoCacheError);
      return L2_FAILED;
    }
    if (read.status === 'expired') {
      if (read.deleted) this.stats.l2Deletes++;
      // A failed clean-up does not fail the call: the miss stands, and the new value's PutItem
      // (or DynamoDB's own TTL) replaces the item anyway.
      else if (read.error !== undefined && !(read.error.cause instanceof CircuitOpenError)) {
        this.stats.l2Errors++;
      }
    } else if (read.status === 'corrupt') {
      this.ctx.logger.warn(
        `${this.name}: unreadable L2 item ${cacheKey} (${read.reason}); recomputing`,
      );
    }
    return read;
  }

  private async writeL2(
    cacheKey: string,
    value: unknown,
    nowMs: number,
    gated = true,
  ): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = this.ctx.serializer.serialize(value);
    } catch (cause) {
      // The value is still served from L1; only sharing it through DynamoDB is impossible.
      if (!this.serializeWarned) {
        this.serializeWarned = true;
        this.ctx.logger.warn(
          `${this.name}: a result cannot be serialized, so it is kept in L1 only (${(cause as Error).message})`,
        );
      }
      return;
    }
    try {
      const write = await this.ctx.track(
        this.ctx.l2.write(cacheKey, bytes, nowMs / 1000, this.ttl, this.name, gated),
      );
      if (write.status === 'written') this.stats.l2Writes++;
      else {
        // Any older item for the key was deleted; the new value lives in L1 only.
        this.stats.l2Deletes++;
        if (!this.oversizeWarned) {
          this.oversizeWarned = true;
          this.ctx.logger.warn(
            `${this.name}: a result is too large for DynamoDB (${write.bytes} bytes after compression, limit 400 KB), so it is kept in L1 only`,
          );
        }
      }
    } catch (err) {
      const e = err as DynamoCacheError;
      this.l2Failed(
        new DynamoCacheError(e.operation, e.message, {
          namespace: this.name,
          cause: e.cause,
          result: value,
        }),
      );
    }
  }

  /**
   * Applies the `onError` policy: rethrow, or go on as if L2 were empty. The L2 store logs (once
   * per run of failures, per table), so a failing table does not log once per call. A call the
   * open circuit turned away never reached DynamoDB, so it is not counted as an L2 error.
   */
  private l2Failed(err: DynamoCacheError): void {
    if (!(err.cause instanceof CircuitOpenError)) this.stats.l2Errors++;
    if (this.ctx.onError === 'throw') throw err;
  }
}
