import { DynamoCacheError } from '../../errors.js';
import { InvalidationLog } from '../invalidation/invalidation-log.js';
import { buildCacheKey, encodeKey } from '../keys/cache-key.js';
import { KeyMemo } from '../keys/key-memo.js';
import { createL1Cache, sweepExpired, type L1Cache, type L1Entry } from '../l1/l1-cache.js';
import type { LeaseAcquire, LeaseSettings } from '../l2/cache-lease.js';
import { CircuitOpenError } from '../l2/circuit-breaker.js';
import type { L2Read, L2Store } from '../l2/l2-store.js';
import type { ClassRef } from '../values/class-record.js';
import { UnstorableValueError, type EncodedValue, type ValueCodec } from '../values/value-codec.js';
import type { CacheEvents, CacheEventType } from './cache-events.js';
import { emptyStats, type CacheStats } from './cache-stats.js';
import { isThenable } from './is-thenable.js';

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
  /**
   * Milliseconds a computation holds its key: later calls start their own, and its result is no
   * longer cached. Default {@link DEFAULT_COMPUTE_TIMEOUT_MS}.
   */
  computeTimeout?: number;
  /** Classes to restore from L2 by name (registered engine-wide). */
  types?: readonly ClassRef[];
  /** A result for which this returns `true` is returned but stored in neither layer. */
  unless?: (value: never, ...args: never[]) => boolean;
}

/**
 * Default `computeTimeout`: a minute, longer than any computation worth caching on a request's
 * path, short enough that a hung one does not block its key for long.
 */
export const DEFAULT_COMPUTE_TIMEOUT_MS = 60_000;

/** What a namespace shares with the rest of the engine. */
export interface NamespaceContext {
  readonly keyPrefix: string;
  readonly onError: OnErrorPolicy;
  /** Serializer, class record and registry: what a value becomes in an item, and back. */
  readonly codec: ValueCodec;
  /** Where outcomes are reported to listeners (`DynamoCacheService.on`). */
  readonly events: CacheEvents;
  readonly logger: CacheLogger;
  readonly l2: L2Store;
  /** This engine's lease owner id (random, one per engine), for `lease`. */
  readonly leaseOwner?: string;
  /**
   * Registers a computation or a write so shutdown can wait for it: for `holdMs` (a computation's
   * `computeTimeout`; 0 for a write) plus the time a DynamoDB call may take, no longer.
   */
  track<T>(work: Promise<T>, holdMs?: number): Promise<T>;
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

/** What became of a value sent to L2. */
type WriteOutcome = 'written' | 'refused' | 'not-stored' | 'failed';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Upper bound of a namespace's key memo, in nodes (see KeyMemo). */
const MEMO_LIMIT = 10_000;

/**
 * Seconds a tombstone outlives the longest computation allowed to write (`computeTimeout`): room
 * for the clock skew between processes and for the write itself.
 */
const TOMBSTONE_MARGIN_S = 60;

/**
 * The least a tombstone lasts, in seconds: another process may run the namespace with a longer
 * `computeTimeout` than the deleting one. (Readers never remove tombstones; DynamoDB's TTL does,
 * after `exp`.)
 */
const TOMBSTONE_MIN_LIFE_S = 3600;

/** The least time between two sweeps of expired L1 entries, and the most (long ttls). */
const SWEEP_MIN_MS = 1000;
const SWEEP_MAX_MS = 60_000;

/**
 * A miss being served: its key, when it began (invalidation log and clock), how its write may
 * replace what it read, the lease owner id it uses, and whether it has been let go (settled, or
 * past `computeTimeout`).
 */
interface Miss {
  readonly encoded: string;
  readonly started: number;
  readonly startedMs: number;
  /**
   * An unreadable item is replaced whatever its `t` (it may be bogus, e.g. in the future), but
   * only if it is still the one read: `seenT` its `t`, or `any` when it had no usable `t`.
   */
  repair: { readonly seenT: string } | 'any' | undefined;
  readonly leaseOwner: string;
  ended: boolean;
  /** Recompute without looking at L2, and overwrite what it holds. */
  readonly forceFresh: boolean;
}

/** A computation in flight: what its callers wait for, and the miss it serves. */
interface Flight {
  readonly promise: Promise<unknown>;
  readonly miss: Miss;
}

/**
 * The two-tier cache of one namespace (one decorated method, one route, or one name used through
 * the service): its own L1 LRU, the shared L2 table, and one in-flight computation per key.
 *
 * Invalidation sticks: a `delete` or `set` made while a read or computation of the key is in
 * flight keeps that one from writing either layer (its own callers still get its result), and new
 * callers never join it; across processes, the L2 write of a computation is conditional on no
 * newer item or tombstone (see L2Store.write).
 */
export class CacheNamespace {
  /** This namespace's counters; read them through the engine's `stats()`. */
  readonly stats: CacheStats = emptyStats();
  readonly name: string;
  readonly ttl: number | null;
  private readonly ttlMs: number;
  readonly computeTimeoutMs: number;
  private readonly keyFn: ((...args: unknown[]) => unknown) | undefined;
  private readonly requirePromise: boolean;
  private readonly lease: LeaseSettings | false;
  private readonly unless: ((value: unknown, ...args: unknown[]) => boolean) | undefined;
  private readonly l1: L1Cache;
  private readonly keys: KeyMemo;
  private readonly inflight = new Map<string, Flight>();
  private readonly invalidations = new InvalidationLog();
  private readonly warned = new Set<string>();
  /** The latest `set` or `delete` of each key still on its way to DynamoDB, to keep them in order. */
  private readonly invalidating = new Map<string, Promise<unknown>>();
  private flights = 0;
  private nextSweepAt = 0;

  constructor(
    settings: NamespaceSettings,
    private readonly ctx: NamespaceContext,
  ) {
    this.name = settings.namespace;
    this.ttl = settings.ttl;
    this.ttlMs = settings.ttl === null ? Infinity : settings.ttl * 1000;
    this.computeTimeoutMs = settings.computeTimeout ?? DEFAULT_COMPUTE_TIMEOUT_MS;
    this.keyFn = settings.key as ((...args: unknown[]) => unknown) | undefined;
    this.requirePromise = settings.requirePromise ?? false;
    this.lease = settings.lease ?? false;
    this.unless = settings.unless as ((value: unknown, ...args: unknown[]) => boolean) | undefined;
    this.l1 = createL1Cache(settings.maxsize);
    // As many remembered keys as L1 can hold, within reason: beyond that they would mostly miss.
    this.keys = new KeyMemo(Math.min(settings.maxsize ?? MEMO_LIMIT, MEMO_LIMIT), this.name);
  }

  /** Entries currently held in L1. */
  get l1Size(): number {
    return this.l1.size;
  }

  /** How long this namespace's tombstones matter, in seconds. */
  get tombstoneLifeSeconds(): number {
    return Math.max(
      TOMBSTONE_MIN_LIFE_S,
      Math.ceil(this.computeTimeoutMs / 1000) + TOMBSTONE_MARGIN_S,
    );
  }

  /**
   * Serves `fn.apply(thisArg, args)` through L1, then L2, then the function itself, writing a new
   * result to both layers before resolving. Concurrent calls with one key share one computation,
   * unless it has run longer than `computeTimeout`: a later call then starts its own.
   */
  run<T>(
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: never[]) => T | Promise<T>,
    { forceFresh = false }: { forceFresh?: boolean } = {},
  ): Promise<T> {
    let encoded: string;
    try {
      encoded = this.encode(args);
    } catch (err) {
      return Promise.reject(err);
    }
    if (forceFresh) {
      // A fresh computation replaces whatever is stored or computing: those started before it
      // may no longer write, and later calls join it instead.
      this.invalidations.invalidate(encoded);
      this.inflight.delete(encoded);
    } else {
      const entry = this.fresh(encoded);
      if (entry !== undefined) return Promise.resolve(entry.value as T);
    }
    const now = Date.now();
    const pending = this.inflight.get(encoded);
    if (pending !== undefined && now - pending.miss.startedMs < this.computeTimeoutMs) {
      return pending.promise as Promise<T>;
    }
    const miss: Miss = {
      encoded,
      started: this.invalidations.begin(),
      startedMs: now,
      repair: undefined,
      // One id per computation: an older one's release must not drop a newer one's lease.
      leaseOwner: `${this.ctx.leaseOwner ?? ''}#${this.name}#${++this.flights}`,
      ended: false,
      forceFresh,
    };
    const promise = this.ctx.track(
      this.load(miss, thisArg, args, fn as (...args: unknown[]) => T | Promise<T>),
      // Past its computeTimeout a computation writes nothing: no reason to wait for it longer.
      this.computeTimeoutMs,
    );
    const flight: Flight = { promise, miss };
    this.inflight.set(encoded, flight);
    const settled = (): void => {
      if (this.inflight.get(encoded) === flight) this.inflight.delete(encoded);
    };
    promise.then(settled, settled);
    return promise;
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
    const started = this.invalidations.begin();
    try {
      const read = await this.readL2(buildCacheKey(this.ctx.keyPrefix, this.name, encoded));
      if (read.status === 'hit') {
        const fill = this.invalidations.mayWrite(encoded, started);
        return { hit: true, value: this.fromL2(encoded, read, fill) as T };
      }
    } finally {
      this.invalidations.end();
    }
    this.stats.misses++;
    if (this.ctx.events.active) this.emit('miss', encoded);
    return NO_HIT;
  }

  /**
   * Stores `value` in both layers, as if the function had returned it; a computation of the key
   * in flight will write nothing. A value that cannot be stored in L2 (not serializable, too large,
   * an unrestorable class) stays in L1 and leaves a tombstone in L2, so no process reads an older
   * value.
   */
  async set(args: readonly unknown[], value: unknown): Promise<void> {
    const encoded = this.encode(args);
    this.invalidateLocally(encoded);
    this.l1.set(encoded, { value, expiresAt: Date.now() + this.ttlMs });
    const cacheKey = buildCacheKey(this.ctx.keyPrefix, this.name, encoded);
    await this.inOrder([encoded], async () => {
      // An explicit overwrite: attempted even while the circuit is open (see L2Store.write).
      const outcome = await this.writeL2(cacheKey, value, Date.now(), { gated: false });
      if (outcome === 'not-stored') await this.writeTombstone(cacheKey);
    });
  }

  /**
   * Removes the entry from this process's L1 and leaves a tombstone in L2, so that no computation
   * in flight, here or in another process, writes an older value over the deletion.
   */
  async delete(args: readonly unknown[]): Promise<void> {
    const encoded = this.encode(args);
    this.invalidateLocally(encoded);
    this.l1.delete(encoded);
    await this.inOrder([encoded], () =>
      this.writeTombstone(buildCacheKey(this.ctx.keyPrefix, this.name, encoded)),
    );
  }

  /**
   * Removes the entries of every argument list in `argsList` like {@link delete}, with their
   * tombstones written 25 to a `BatchWriteItem` call.
   */
  async deleteMany(argsList: readonly (readonly unknown[])[]): Promise<void> {
    const encoded = [...new Set(argsList.map((args) => this.encode(args)))];
    for (const key of encoded) {
      this.invalidateLocally(key);
      this.l1.delete(key);
    }
    await this.inOrder(encoded, async () => {
      const cacheKeys = encoded.map((key) => buildCacheKey(this.ctx.keyPrefix, this.name, key));
      try {
        await this.ctx.track(
          this.ctx.l2.invalidateMany(cacheKeys, this.name, this.tombstoneLifeSeconds),
        );
        this.stats.l2Deletes += cacheKeys.length;
        if (this.ctx.events.active) {
          for (const key of cacheKeys) this.ctx.events.emit('delete', this.name, () => key);
        }
      } catch (err) {
        this.l2Failed(err as DynamoCacheError);
      }
    });
  }

  /**
   * Runs an invalidation's DynamoDB writes after the previous `set` or `delete` of the same keys
   * in this process have been answered: both are unconditional writes, and a retried earlier one
   * must not land after a later one. Ends the invalidations opened by `invalidateLocally`.
   */
  private async inOrder(keys: readonly string[], write: () => Promise<void>): Promise<void> {
    const previous = keys.flatMap((key) => this.invalidating.get(key) ?? []);
    const after = previous.length === 0 ? write() : Promise.allSettled(previous).then(write);
    const mine = after.finally(() => {
      for (const key of keys) {
        if (this.invalidating.get(key) === mine) this.invalidating.delete(key);
        this.endInvalidation(key);
      }
    });
    for (const key of keys) this.invalidating.set(key, mine);
    await mine;
  }

  /** Empties this process's L1 (L2 is untouched). */
  clearL1(): void {
    this.l1.clear();
  }

  /**
   * Frees expired L1 entries, at most every so often (called by the engine's timer), so memory
   * held by entries nobody reads again is returned without waiting for LRU eviction.
   */
  sweep(now: number): void {
    // Computations past computeTimeout write nothing and hold nothing: let them go, even if they
    // never settle (their callers still wait for them).
    for (const [encoded, flight] of this.inflight) {
      if (now - flight.miss.startedMs < this.computeTimeoutMs) continue;
      this.inflight.delete(encoded);
      this.finish(flight.miss);
    }
    if (this.ttlMs === Infinity || now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, this.ttlMs));
    sweepExpired(this.l1, now);
  }

  /** Ends a miss's part in the invalidation log, once. */
  private finish(miss: Miss): void {
    if (miss.ended) return;
    miss.ended = true;
    this.invalidations.end();
  }

  /** Whether a miss may still fill the layers with what it read or computed. */
  private mayFill(miss: Miss): boolean {
    return !miss.ended && this.invalidations.mayWrite(miss.encoded, miss.started);
  }

  /** A fresh L1 entry (counted as an L1 hit); an expired one is dropped. */
  private fresh(encoded: string): L1Entry | undefined {
    const entry = this.l1.get(encoded);
    if (entry === undefined) return undefined;
    // The real clock, not a cached one: expiry is exact even in a loop that never yields.
    if (entry.expiresAt === Infinity || entry.expiresAt > Date.now()) {
      this.stats.l1Hits++;
      if (this.ctx.events.active) this.emit('hit', encoded, 'l1');
      return entry;
    }
    this.l1.delete(encoded);
    return undefined;
  }

  /**
   * Counts an L2 hit and copies it into L1 (when `fill`: the key was not invalidated since the
   * read began), to live as long as the L2 item would.
   */
  private fromL2(encoded: string, hit: { value: unknown; t: number }, fill: boolean): unknown {
    this.stats.l2Hits++;
    if (this.ctx.events.active) this.emit('hit', encoded, 'l2');
    if (fill) {
      this.l1.set(encoded, { value: hit.value, expiresAt: hit.t * 1000 + this.ttlMs });
    }
    return hit.value;
  }

  /**
   * Starts an invalidation of `encoded`: computations and reads in flight, and those that begin
   * before {@link endInvalidation}, write neither layer (what they read may predate it), and new
   * calls do not join them.
   */
  private invalidateLocally(encoded: string): void {
    this.invalidations.hold(encoded);
    this.inflight.delete(encoded);
  }

  private endInvalidation(encoded: string): void {
    this.invalidations.release(encoded);
    this.inflight.delete(encoded);
  }

  private encode(args: readonly unknown[]): string {
    return this.keyFn === undefined
      ? this.keys.key(args)
      : encodeKey(this.keyFn(...args), this.name, 'key');
  }

  private async load<T>(
    miss: Miss,
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: unknown[]) => T | Promise<T>,
  ): Promise<T> {
    try {
      const cacheKey = buildCacheKey(this.ctx.keyPrefix, this.name, miss.encoded);
      if (miss.forceFresh) return await this.compute(miss, cacheKey, thisArg, args, fn);
      const read = await this.readL2(cacheKey);
      if (read.status === 'hit') return this.fromL2(miss.encoded, read, this.mayFill(miss)) as T;
      // An unreadable item may carry a bogus (future) t that a conditional write would respect.
      if (read.status === 'corrupt') {
        miss.repair = read.tRaw === undefined ? 'any' : { seenT: read.tRaw };
      }
      if (this.lease === false || read === L2_FAILED) {
        return await this.compute(miss, cacheKey, thisArg, args, fn);
      }
      const outcome = await this.awaitLease(cacheKey, this.lease, miss.leaseOwner);
      if (outcome.status === 'hit') {
        return this.fromL2(miss.encoded, outcome, this.mayFill(miss)) as T;
      }
      if (outcome.status === 'compute')
        return await this.compute(miss, cacheKey, thisArg, args, fn);
      try {
        return await this.compute(miss, cacheKey, thisArg, args, fn);
      } finally {
        this.releaseLease(cacheKey, miss.leaseOwner);
      }
    } finally {
      this.finish(miss);
    }
  }

  /** The miss path: runs the function and writes its result to both layers. */
  private async compute<T>(
    miss: Miss,
    cacheKey: string,
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: unknown[]) => T | Promise<T>,
  ): Promise<T> {
    this.stats.misses++;
    if (this.ctx.events.active) this.emit('miss', miss.encoded);
    const result = fn.apply(thisArg, args as unknown[]);
    if (this.requirePromise && !isThenable(result)) {
      throw new DynamoCacheError(
        'config',
        `${this.name} returned a ${typeof result}, not a Promise: only async methods can be @DynamoCached`,
        { namespace: this.name },
      );
    }
    const value = await result;
    if (this.unless?.(value, ...(args as unknown[])) === true) return value;
    await this.fill(miss, cacheKey, value);
    return value;
  }

  /**
   * Writes a computed value to L2 (conditionally: see L2Store.write), then to L1, unless the key
   * was invalidated meanwhile, here or elsewhere, or the computation outlived `computeTimeout`.
   */
  private async fill(miss: Miss, cacheKey: string, value: unknown): Promise<void> {
    const nowMs = Date.now();
    const { encoded } = miss;
    if (nowMs - miss.startedMs > this.computeTimeoutMs) {
      // Its key was handed to newer callers, and tombstones only guard computations this young.
      this.warnOnce(
        'slow',
        `a computation took ${nowMs - miss.startedMs} ms, longer than computeTimeout (${this.computeTimeoutMs} ms): ` +
          'its result was returned but not cached; raise computeTimeout if such computations are expected',
      );
      return;
    }
    if (!this.mayFill(miss)) return;
    const toL1 = (): void => {
      if (this.mayFill(miss)) {
        this.l1.set(encoded, { value, expiresAt: nowMs + this.ttlMs });
      }
    };
    let outcome: WriteOutcome;
    try {
      outcome = await this.writeL2(
        cacheKey,
        value,
        nowMs,
        miss.repair === 'any' ? {} : { startedS: miss.startedMs / 1000, seenT: miss.repair?.seenT },
      );
    } catch (err) {
      toL1();
      throw err;
    }
    // Refused: a newer value or a tombstone is in L2, and ours must not shadow it here either.
    if (outcome !== 'refused') toL1();
  }

  /**
   * Writes `value` to L2: `not-stored` when it cannot be (logged once per reason), `refused` when
   * a conditional write found a newer item, `failed` under `onError: 'bypass'`; rethrows a failure
   * under `'throw'`, with the value attached as `result`.
   */
  private async writeL2(
    cacheKey: string,
    value: unknown,
    nowMs: number,
    options: { gated?: boolean; startedS?: number; seenT?: string },
  ): Promise<WriteOutcome> {
    let encoded: EncodedValue;
    try {
      encoded = await this.ctx.codec.encode(value, this.name);
    } catch (cause) {
      if (!(cause instanceof UnstorableValueError)) throw cause;
      // The value is still served from L1; only sharing it through DynamoDB is impossible.
      this.warnOnce(
        'unstorable',
        `a result cannot be stored in DynamoDB, so it is kept in L1 only: ${cause.message}`,
      );
      return 'not-stored';
    }
    try {
      const write = await this.ctx.track(
        this.ctx.l2.write(cacheKey, encoded, nowMs / 1000, this.ttl, this.name, options),
      );
      if (write.status === 'written') {
        this.stats.l2Writes++;
        if (this.ctx.events.active) this.ctx.events.emit('write', this.name, () => cacheKey);
        return 'written';
      }
      if (write.status === 'refused') {
        this.stats.l2Refused++;
        return 'refused';
      }
      this.warnOnce(
        'too-large',
        `a result is too large for DynamoDB (${write.bytes} bytes after compression, limit 400 KB), so it is kept in L1 only`,
      );
      return 'not-stored';
    } catch (err) {
      const e = err as DynamoCacheError;
      this.l2Failed(
        new DynamoCacheError(e.operation, e.message, {
          namespace: this.name,
          cause: e.cause,
          result: value,
        }),
      );
      return 'failed';
    }
  }

  /** Invalidates the key in L2 for every process (see L2Store.invalidate). */
  private async writeTombstone(cacheKey: string): Promise<void> {
    try {
      await this.ctx.track(this.ctx.l2.invalidate(cacheKey, this.name, this.tombstoneLifeSeconds));
      this.stats.l2Deletes++;
      if (this.ctx.events.active) this.ctx.events.emit('delete', this.name, () => cacheKey);
    } catch (err) {
      this.l2Failed(err as DynamoCacheError);
    }
  }

  /** Reports an outcome of the entry `encoded` (its `cache_key` computed only for listeners). */
  private emit(type: CacheEventType, encoded: string, layer?: 'l1' | 'l2'): void {
    this.ctx.events.emit(
      type,
      this.name,
      () => buildCacheKey(this.ctx.keyPrefix, this.name, encoded),
      layer === undefined ? undefined : { layer },
    );
  }

  private warnOnce(kind: string, message: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.ctx.logger.warn(`${this.name}: ${message}`);
  }

  /**
   * After an L2 miss, with `lease` on: take the key's lease (this process computes), or wait for
   * the process holding it to write the value, looking every `pollMs`: while its lease is live,
   * at the lease; once it is gone or lapsed, at the value, then try to take the lease over (its
   * holder failed or crashed). After `waitMs`, or on any DynamoDB failure, compute without a
   * lease: a cache fault costs a duplicate computation, never the caller's result, so it is
   * counted as an L2 error but never rejects, whatever `onError` says.
   */
  private async awaitLease(
    cacheKey: string,
    lease: LeaseSettings,
    owner: string,
  ): Promise<LeaseOutcome> {
    const l2 = this.ctx.l2;
    const deadline = Date.now() + lease.waitMs;
    try {
      if ((await this.acquire(cacheKey, owner, lease)) === 'acquired') {
        return await this.leaseAcquired(cacheKey, owner);
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
        if ((await this.acquire(cacheKey, owner, lease)) === 'acquired') {
          return await this.leaseAcquired(cacheKey, owner);
        }
      }
    } catch (err) {
      this.leaseFailed(err as DynamoCacheError);
      return COMPUTE;
    }
  }

  /** Takes the lease; a lease of this engine's (an earlier computation's, stale) is ours to take. */
  private acquire(cacheKey: string, owner: string, lease: LeaseSettings): Promise<LeaseAcquire> {
    return this.ctx.l2.acquireLease(
      cacheKey,
      owner,
      `${this.ctx.leaseOwner ?? ''}#`,
      lease.ttlMs,
      this.name,
    );
  }

  /**
   * Looks at the value once more (strongly consistent) with the lease in hand: another process may
   * have computed it, written it and given its lease back between our miss and our lease. Without
   * this look that race costs a second computation.
   */
  private async leaseAcquired(cacheKey: string, owner: string): Promise<LeaseOutcome> {
    let read: L2Read;
    try {
      read = await this.ctx.l2.read(cacheKey, this.ttl, this.name, true);
    } catch (err) {
      this.leaseFailed(err as DynamoCacheError);
      return ACQUIRED;
    }
    if (read.status !== 'hit') return ACQUIRED;
    this.releaseLease(cacheKey, owner);
    return read;
  }

  /**
   * Gives the lease back in the background (waiting processes then read the value, or take over
   * if the computation failed). A failure costs nothing but the lease's lapse, so it is counted
   * and otherwise ignored; shutdown waits for it like for a write.
   */
  private releaseLease(cacheKey: string, owner: string): void {
    this.ctx
      .track(this.ctx.l2.releaseLease(cacheKey, owner, this.name))
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
    } else if (read.status === 'unrestorable') {
      // Never a plain object where the method returned an instance: recompute instead, which
      // also registers the class for the next read.
      this.stats.unrestorable++;
      this.warnOnce(
        'unrestorable',
        `L2 item ${cacheKey} cannot be restored (${read.reason}); recomputing`,
      );
    }
    return read;
  }

  /**
   * Applies the `onError` policy: rethrow, or go on as if L2 were empty. The L2 store logs (once
   * per run of failures, per table), so a failing table does not log once per call. A call the
   * open circuit turned away never reached DynamoDB, so it is not counted as an L2 error.
   */
  private l2Failed(err: DynamoCacheError): void {
    if (!(err.cause instanceof CircuitOpenError)) {
      this.stats.l2Errors++;
      if (this.ctx.events.active) {
        this.ctx.events.emit('error', this.name, () => undefined, { error: err });
      }
    }
    if (this.ctx.onError === 'throw') throw err;
  }
}
