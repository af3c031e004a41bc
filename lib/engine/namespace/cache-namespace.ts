import { DynamoCacheError } from '../../errors.js';
import type { DynamoCacheBusMessage } from '../invalidation/cache-bus.js';
import { InvalidationLog } from '../invalidation/invalidation-log.js';
import type { InvalidationMarkers } from '../invalidation/invalidation-markers.js';
import { buildCacheKey, compactKey, encodeKey } from '../keys/cache-key.js';
import { KeyMemo } from '../keys/key-memo.js';
import { createL1Cache, sweepExpired, type L1Cache, type L1Entry } from '../l1/l1-cache.js';
import {
  leaseCopyCount,
  leaseCopyIndex,
  type LeaseClaim,
  type LeaseSettings,
} from '../l2/cache-lease.js';
import { CircuitOpenError } from '../l2/circuit-breaker.js';
import { isThrottled } from '../l2/throttling.js';
import { timerDelay } from '../timer-delay.js';
import { namespaceMarkerKey, tagMarkerKey } from '../l2/item-codec.js';
import type { EntryLife } from '../l2/item-codec.js';
import {
  batchReadBound,
  batchWriteBound,
  type ItemHead,
  type L2Found,
  type L2Read,
  type L2Store,
  type ReadPolicy,
} from '../l2/l2-store.js';
import type { RawItem } from '../l2/read-batcher.js';
import type { WriteIds } from '../l2/write-id.js';
import type { ClassRef } from '../values/class-record.js';
import { UnstorableValueError, type EncodedValue, type ValueCodec } from '../values/value-codec.js';
import type { CacheEvents, CacheEventType } from './cache-events.js';
import { emptyStats, type CacheStats } from './cache-stats.js';
import { entryLife, type TagsOption, type TtlOption } from './entry-policy.js';
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
  /** Seconds, `null` (never expires), or a function of the result. */
  ttl: TtlOption;
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
  /** Whether an error of the method may be answered with a stale value (default: all but misuse). */
  staleOnError?: (error: unknown) => boolean;
  /**
   * Whether an error of the method that `staleOnError` refuses is an answer for every caller (a
   * route's 404), which ends the value it replaces (see `supersede`). Default: none is.
   */
  supersededBy?: (error: unknown) => boolean;
  /** Seconds an entry is kept past its expiry, served when recomputing it fails. Default 0. */
  grace?: number;
  /** Seconds between two attempts of a failing computation while its stale value is served. */
  graceBackoff?: number;
  /**
   * Milliseconds a call with a stale value in grace waits for its recomputation before answering
   * with the stale value (the computation goes on in the background); `0` = stale-while-revalidate.
   */
  timeout?: number;
  /** The entries' tags, for `deleteByTag`. */
  tags?: TagsOption;
  /**
   * Seconds an L1 entry is served before it is checked against DynamoDB (a read of `t` only);
   * `null` = never (trust the ttl). Default {@link DEFAULT_L1_MAX_AGE}.
   */
  l1MaxAge?: number | null;
}

/**
 * Default `l1MaxAge`: five seconds. An invalidation made by another process (without a bus) is
 * seen within it; it costs at most one small read per hot key and process every five seconds.
 */
export const DEFAULT_L1_MAX_AGE = 5;

/** Default `graceBackoff`: ten seconds between two attempts of a failing computation. */
export const DEFAULT_GRACE_BACKOFF = 10;

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
  /** What this process knows of `clear` and `deleteByTag` markers. */
  readonly markers: InvalidationMarkers;
  /** Tells the other processes (when a bus is configured). */
  publish(message: DynamoCacheBusMessage): void;
  /** This engine's id, the source of its bus messages. */
  readonly engineId: string;
  /** This engine's write tokens (`w`), which order its writes of a key (see write-id.ts). */
  readonly writeIds: WriteIds;
  /** This engine's lease owner id (random, one per engine), for `lease`. */
  readonly leaseOwner?: string;
  /**
   * Registers a computation or a write so shutdown can wait for it: for `holdMs` (a computation's
   * `computeTimeout`; 0 for a write) plus the time a DynamoDB call may take, no longer. `settled`
   * runs once it has settled (one reaction for both).
   */
  track<T>(work: Promise<T>, holdMs?: number, settled?: () => void): Promise<T>;
  /** The longest one DynamoDB call may keep shutdown waiting (what `track` adds to `holdMs`). */
  readonly callBoundMs: number;
}

/** A `set`, `delete`, `expire` or `deleteMany` on its way to DynamoDB (see `inOrder`). */
interface OrderedWrite {
  readonly done: Promise<void>;
  /** Until when shutdown waits for it (ms): its own calls' bound after the writes it waits for. */
  readonly until: number;
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
/** What `readL2` returns when DynamoDB throttled the read (and the policy said go on). */
const L2_THROTTLED: L2Read = { status: 'miss' };
/** What `readL2` returns for an item a `clear` or `deleteByTag` invalidated: a miss. */
const INVALIDATED: L2Read = { status: 'miss' };

/** How a wait for another process's lease ended (`held`: another is refreshing a stale value). */
type LeaseOutcome = { readonly status: 'acquired' | 'compute' | 'held' } | L2Found;

const ACQUIRED: LeaseOutcome = { status: 'acquired' };
const COMPUTE: LeaseOutcome = { status: 'compute' };
const HELD: LeaseOutcome = { status: 'held' };

/** What became of a value sent to L2. */
type WriteOutcome = 'written' | 'refused' | 'not-stored' | 'failed';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Upper bound of a namespace's key memo, in nodes (see KeyMemo). */
const MEMO_LIMIT = 10_000;
/** Keys backed off on (graceBackoff) remembered per namespace without L1, at most. */
const MAX_BACKOFFS = 1_000;

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

/** The longest pause between two looks at a lease held by another process. */
const LEASE_POLL_MAX_MS = 1000;

/** The least pause between two looks at a value whose lease claim was throttled. */
const THROTTLED_LOOK_MS = 1000;

/**
 * The share of `l1MaxAge` by which an entry's next check is brought forward, at most: the
 * processes that filled a hot key in one moment check it over half of `l1MaxAge`, not all at once
 * (1,000 of them with the default 5 s: about 400 reads a second on the key, not 1,000).
 */
const L1_CHECK_JITTER = 0.5;

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
   * When the method was called (after the reads and any wait for a lease): its result reflects
   * what was true then, so it is what the conditional write and the item's `t` are stamped with.
   * An invalidation made while the call waited (a `delete` during another process's leased
   * computation) then does not refuse every waiter's result in turn.
   */
  computedFromMs: number | undefined;
  /**
   * An unreadable item is replaced whatever its `t` (it may be bogus, e.g. in the future), but
   * only if it is still the one read: `seenT` its `t`, or `any` when it had no usable `t`.
   */
  repair: { readonly seenT: string } | 'any' | undefined;
  /** This computation's number in the namespace (its lease owner id is made from it when needed). */
  readonly flight: number;
  ended: boolean;
  /** Recompute without looking at L2, and overwrite what it holds. */
  readonly forceFresh: boolean;
  /** An L1 entry past `l1MaxAge` to check against DynamoDB before anything else. */
  readonly revalidate: L1Entry | undefined;
  /** The last value, past its expiry but within grace: served if recomputing it fails. */
  stale: StaleValue | undefined;
  /** Callers waiting for a stale value to arm their soft timeout. */
  onStale: (() => void)[] | undefined;
  /** The flight resolved with the stale value (recomputing failed, or another refreshes it). */
  resolvedStale: boolean;
  /** With the lease: the value item it wrote or found, which its waiters get copies of. */
  shared: RawItem | undefined;
}

/** A value past its expiry, within grace: from L1 (`entry`) or found in L2 (`found`). */
interface StaleValue {
  readonly value: unknown;
  /** ms */
  readonly staleUntil: number;
  readonly entry?: L1Entry;
  readonly found?: L2Found;
  /**
   * An L1 copy not checked against DynamoDB within `l1MaxAge`: served only once L2 has shown it
   * not deleted, cleared or expired elsewhere, or when L2 cannot be read and recomputing fails.
   */
  readonly unchecked?: true;
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
 * newer item or tombstone (see L2Store.write), and an item written by a computation carries the
 * time it started, so a `clear` or `deleteByTag` made meanwhile also covers it.
 *
 * Freshness: an entry is served as is until its expiry; past `l1MaxAge` an L1 entry is first
 * checked against DynamoDB (its `t` only); past its expiry but within `grace` it is kept, and
 * served when recomputing fails or (with `timeout`) takes too long.
 */
export class CacheNamespace {
  /** This namespace's counters; read them through the engine's `stats()`. */
  readonly stats: CacheStats = emptyStats();
  readonly name: string;
  readonly computeTimeoutMs: number;
  /** The key of this namespace's `clear` marker. */
  readonly markerKey: string;
  /** The markers of an entry without tags: the namespace's. */
  private readonly ownMarkerKeys: readonly string[];
  private readonly ttl: TtlOption;
  private readonly policy: ReadPolicy;
  private readonly graceMs: number;
  private readonly graceBackoffMs: number;
  private readonly timeoutMs: number | undefined;
  private readonly l1MaxAgeMs: number;
  private readonly tags: TagsOption | undefined;
  private readonly keyFn: ((...args: unknown[]) => unknown) | undefined;
  private readonly requirePromise: boolean;
  private readonly lease: LeaseSettings | false;
  private readonly unless: ((value: unknown, ...args: unknown[]) => boolean) | undefined;
  private readonly staleOnError: ((error: unknown) => boolean) | undefined;
  private readonly supersededBy: ((error: unknown) => boolean) | undefined;
  private readonly l1: L1Cache;
  /** `maxsize: 0`: L1 keeps nothing, so no entry is made for it. */
  private readonly keepsL1: boolean;
  /**
   * Without L1 (`maxsize: 0`), the keys whose computation failed lately, and the stale item it
   * was served from: no new attempt before `retryAt` while DynamoDB still holds that item.
   * Oldest first, at most {@link MAX_BACKOFFS}.
   */
  private readonly backoffs = new Map<
    string,
    { retryAt: number; tRaw: string; writeId: string | undefined }
  >();
  private readonly keys: KeyMemo;
  private readonly inflight = new Map<string, Flight>();
  private readonly invalidations = new InvalidationLog();
  private readonly warned = new Set<string>();
  /** The latest `set` or `delete` of each key still on its way to DynamoDB, to keep them in order. */
  private readonly invalidating = new Map<string, OrderedWrite>();
  private flights = 0;
  private nextSweepAt = 0;

  constructor(
    settings: NamespaceSettings,
    private readonly ctx: NamespaceContext,
  ) {
    this.name = settings.namespace;
    this.ttl = settings.ttl;
    const grace = settings.grace ?? 0;
    this.computeTimeoutMs = settings.computeTimeout ?? DEFAULT_COMPUTE_TIMEOUT_MS;
    this.policy = {
      ttl: settings.ttl as number | null | ((value: unknown) => number | null),
      grace,
      guardSeconds: this.tombstoneLifeSeconds,
    };
    this.graceMs = grace * 1000;
    this.graceBackoffMs = (settings.graceBackoff ?? DEFAULT_GRACE_BACKOFF) * 1000;
    this.timeoutMs = settings.timeout;
    const l1MaxAge = settings.l1MaxAge === undefined ? DEFAULT_L1_MAX_AGE : settings.l1MaxAge;
    this.l1MaxAgeMs = l1MaxAge === null ? Infinity : l1MaxAge * 1000;
    this.tags = settings.tags;
    this.markerKey = namespaceMarkerKey(ctx.keyPrefix, this.name);
    this.ownMarkerKeys = [this.markerKey];
    this.keyFn = settings.key as ((...args: unknown[]) => unknown) | undefined;
    this.requirePromise = settings.requirePromise ?? false;
    this.lease = settings.lease ?? false;
    this.unless = settings.unless as ((value: unknown, ...args: unknown[]) => boolean) | undefined;
    this.staleOnError = settings.staleOnError;
    this.supersededBy = settings.supersededBy;
    this.l1 = createL1Cache(settings.maxsize);
    this.keepsL1 = settings.maxsize !== 0;
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
    const now = Date.now();
    let revalidate: L1Entry | undefined;
    let stale: StaleValue | undefined;
    if (forceFresh) {
      // A fresh computation replaces whatever is stored or computing: those started before it
      // may no longer write, and later calls join it instead.
      this.invalidations.invalidate(encoded);
      this.inflight.delete(encoded);
    } else {
      const entry = this.l1.get(encoded);
      if (entry !== undefined) {
        if (entry.validUntil > now) return Promise.resolve(this.l1Hit(encoded, entry) as T);
        if (entry.expiresAt > now) revalidate = entry;
        else if (entry.staleUntil > now) {
          const checked = entry.checkedUntil > now;
          // A failing computation is not retried before its backoff is over.
          if (checked && entry.retryAt > now) {
            return Promise.resolve(this.staleHit(encoded, entry.value) as T);
          }
          stale = checked
            ? { value: entry.value, staleUntil: entry.staleUntil, entry }
            : { value: entry.value, staleUntil: entry.staleUntil, entry, unchecked: true };
        } else this.l1.delete(encoded);
      }
    }
    const pending = this.inflight.get(encoded);
    if (pending !== undefined && now - pending.miss.startedMs < this.computeTimeoutMs) {
      if (stale !== undefined && pending.miss.stale === undefined)
        this.foundStale(pending.miss, stale);
      return this.answer(pending);
    }
    const miss: Miss = {
      encoded,
      started: this.invalidations.begin(),
      startedMs: now,
      repair: undefined,
      flight: ++this.flights,
      ended: false,
      forceFresh,
      revalidate,
      stale,
      onStale: undefined,
      resolvedStale: false,
      shared: undefined,
      computedFromMs: undefined,
    };
    const promise = this.ctx.track(
      this.load(miss, thisArg, args, fn as (...args: unknown[]) => T | Promise<T>),
      // Past its computeTimeout a computation writes nothing: no reason to wait for it longer.
      this.computeTimeoutMs,
      () => {
        if (this.inflight.get(encoded) === flight) this.inflight.delete(encoded);
      },
    );
    const flight: Flight = { promise, miss };
    this.inflight.set(encoded, flight);
    return this.answer(flight);
  }

  /**
   * A fresh L1 entry for `args`, synchronously (counted as an L1 hit), or `undefined`. Lets
   * callers that can answer without a Promise (the route interceptor) skip one on a hit.
   * `takes`: whether the caller can answer with the value; when it says no, `undefined`, and
   * nothing is counted (the request goes on to a path that counts it: the fast path declining
   * a hit hands it to the pipeline, which must not make one request two hits).
   */
  peek(
    args: readonly unknown[],
    takes?: (value: unknown) => boolean,
  ): CacheLookup<unknown> | undefined {
    const encoded = this.encode(args);
    const entry = this.l1.get(encoded);
    if (entry === undefined || entry.validUntil <= Date.now()) return undefined;
    if (takes !== undefined && !takes(entry.value)) return undefined;
    return { hit: true, value: this.l1Hit(encoded, entry) };
  }

  /** L1 then L2, without computing; fresh entries only. */
  async get<T>(args: readonly unknown[]): Promise<CacheLookup<T>> {
    const encoded = this.encode(args);
    const cacheKey = buildCacheKey(this.ctx.keyPrefix, this.name, encoded);
    const entry = this.l1.get(encoded);
    if (entry !== undefined) {
      const now = Date.now();
      if (entry.validUntil > now) return { hit: true, value: this.l1Hit(encoded, entry) as T };
      if (entry.expiresAt > now && (await this.revalidate(encoded, cacheKey, entry))) {
        return { hit: true, value: entry.value as T };
      }
    }
    const started = this.invalidations.begin();
    const readAt = Date.now();
    try {
      const read = await this.readL2(cacheKey);
      if (read.status === 'hit') {
        const fill = this.invalidations.mayWrite(encoded, started);
        return { hit: true, value: this.fromL2(encoded, read, fill, readAt) as T };
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
   * in flight will write nothing. `ttl` gives this entry its own expiry, which readers keep to
   * whatever their namespace's ttl; `tags` are this entry's (default: the namespace's). A value
   * that cannot be stored in L2 (not serializable, too large, an unrestorable class) stays in L1
   * and leaves a tombstone in L2, so no process reads an older value. One that its ttl or tags
   * function gives no life to (a ttl of 0, a function that throws) is not cached at all, and the
   * entry it replaces is deleted (one warning).
   */
  async set(
    args: readonly unknown[],
    value: unknown,
    options: { ttl?: number | null; tags?: TagsOption } = {},
  ): Promise<void> {
    const encoded = this.encode(args);
    // Checks the ttl and tags too (given, or the namespace's functions' results).
    const life = entryLife(
      options.ttl === undefined ? this.ttl : options.ttl,
      options.tags === undefined ? this.tags : options.tags,
      value,
      args,
    );
    if ('problem' in life) {
      // A value its ttl or tags function gives no life to (a ttl of 0 for a deleted account) is
      // left uncached, as a computed one is; the value it replaces ends all the same.
      this.warnOnce(
        'life',
        `${life.problem}; set: the value was not cached, the older one deleted`,
      );
      await this.delete(args);
      return;
    }
    const nowMs = Date.now();
    const tS = nowMs / 1000;
    const writeId = this.ctx.writeIds.next();
    this.invalidateLocally(encoded);
    const entry = this.newEntry(
      value,
      tS,
      String(tS),
      writeId,
      life.ttl === null ? Infinity : tS + life.ttl,
      life.tags,
      nowMs,
    );
    this.l1.set(encoded, entry);
    const cacheKey = buildCacheKey(this.ctx.keyPrefix, this.name, encoded);
    await this.inOrder(
      [encoded],
      async () => {
        // An explicit overwrite: attempted even while the circuit is open (see L2Store.write).
        const outcome = await this.writeL2(
          cacheKey,
          value,
          tS,
          {
            ttl: life.ttl,
            grace: this.policy.grace,
            own: options.ttl !== undefined,
            tags: life.tags,
            // Its life (its own ttl, or what a ttl function gives this value) may be shorter than
            // that of a result computed before it, which must not replace it meanwhile.
            keepSeconds: this.tombstoneLifeSeconds,
          },
          { gated: false, writeId },
        );
        if (outcome !== 'written') {
          entry.tRaw = undefined;
          entry.writeId = undefined;
        }
        if (outcome === 'not-stored') await this.writeTombstone(cacheKey, writeId);
        this.ctx.publish({
          source: this.ctx.engineId,
          kind: 'keys',
          namespace: this.name,
          keys: [encoded],
        });
      },
      // The value, and a tombstone where it cannot be stored.
      2,
    );
  }

  /**
   * Removes the entry from this process's L1 and leaves a tombstone in L2, so that no computation
   * in flight, here or in another process, writes an older value over the deletion.
   */
  async delete(args: readonly unknown[]): Promise<void> {
    const encoded = this.encode(args);
    // Made now: the writes of a key are ordered by their ids as by their calls.
    const writeId = this.ctx.writeIds.next();
    this.invalidateLocally(encoded);
    this.l1.delete(encoded);
    await this.inOrder([encoded], async () => {
      await this.writeTombstone(buildCacheKey(this.ctx.keyPrefix, this.name, encoded), writeId);
      this.ctx.publish({
        source: this.ctx.engineId,
        kind: 'keys',
        namespace: this.name,
        keys: [encoded],
      });
    });
  }

  /**
   * Removes the entries of every argument list in `argsList` like {@link delete}, with their
   * tombstones written 25 to a `BatchWriteItem` call.
   */
  async deleteMany(argsList: readonly (readonly unknown[])[]): Promise<void> {
    const encoded = [...new Set(argsList.map((args) => this.encode(args)))];
    const writeIds = encoded.map(() => this.ctx.writeIds.next());
    for (const key of encoded) {
      this.invalidateLocally(key);
      this.l1.delete(key);
    }
    // One BatchWriteItem per 25 keys, each retried for what DynamoDB leaves unprocessed.
    const { calls, waitMs } = batchWriteBound(encoded.length);
    await this.inOrder(
      encoded,
      async () => {
        const cacheKeys = encoded.map((key) => buildCacheKey(this.ctx.keyPrefix, this.name, key));
        try {
          await this.ctx.track(
            this.ctx.l2.invalidateMany(cacheKeys, this.name, this.tombstoneLifeSeconds, writeIds),
          );
          this.stats.l2Deletes += cacheKeys.length;
          if (this.ctx.events.active) {
            for (const key of cacheKeys) this.ctx.events.emit('delete', this.name, () => key);
          }
        } catch (err) {
          this.l2Failed(err as DynamoCacheError);
        }
        this.ctx.publish({
          source: this.ctx.engineId,
          kind: 'keys',
          namespace: this.name,
          keys: encoded,
        });
      },
      calls,
      waitMs,
    );
  }

  /**
   * Marks the entry stale now instead of removing it: it is kept for `grace` (in both layers), to
   * be served if recomputing it fails, and the next call recomputes. A computation in flight,
   * here or elsewhere, writes nothing.
   */
  async expire(args: readonly unknown[]): Promise<void> {
    const encoded = this.encode(args);
    const nowMs = Date.now();
    const writeId = this.ctx.writeIds.next();
    this.invalidateLocally(encoded);
    this.expireLocally(encoded, nowMs);
    await this.inOrder(
      [encoded],
      async () => {
        const cacheKey = buildCacheKey(this.ctx.keyPrefix, this.name, encoded);
        try {
          const expired = await this.ctx.track(
            this.ctx.l2.expire(
              cacheKey,
              nowMs / 1000,
              this.policy.grace,
              this.name,
              this.tombstoneLifeSeconds,
              writeId,
            ),
          );
          // No value to keep for grace (none yet, or only in some process's L1): a tombstone then
          // keeps computations in flight anywhere from writing theirs as fresh, as a delete does.
          if (!expired) await this.writeTombstone(cacheKey, writeId);
        } catch (err) {
          this.l2Failed(err as DynamoCacheError);
        }
        this.ctx.publish({
          source: this.ctx.engineId,
          kind: 'expire',
          namespace: this.name,
          keys: [encoded],
        });
      },
      // The expiry, and a tombstone where there was no value.
      2,
    );
  }

  /**
   * Invalidates every entry of the namespace, in every process: a marker item with the time of
   * the clear, which readers compare with each entry's `t` (no Scan).
   */
  async clear(): Promise<void> {
    const tS = Date.now() / 1000;
    this.ctx.markers.note(this.markerKey, tS);
    try {
      await this.ctx.track(this.ctx.markers.store.writeMarker(this.markerKey, tS, this.name));
      this.stats.l2Deletes++;
      if (this.ctx.events.active) this.ctx.events.emit('delete', this.name, () => this.markerKey);
    } catch (err) {
      this.l2Failed(err as DynamoCacheError);
    }
    this.ctx.publish({
      source: this.ctx.engineId,
      kind: 'markers',
      markers: [{ key: this.markerKey, t: tS }],
    });
  }

  /**
   * Drops from L1 what a marker at or after its `t` invalidates (one made in the same instant as
   * an entry is taken to cover it) (this namespace's `clear` marker,
   * or a tag's). Computations in flight that it covers write nothing (see fill).
   */
  dropInvalidated(markerKey: string, tS: number): void {
    if (markerKey === this.markerKey) {
      // Computations started before the clear: new calls do not join them, and they write
      // nothing (see fill); those started after it are not concerned.
      for (const [key, flight] of [...this.inflight]) {
        if (flight.miss.startedMs / 1000 <= tS) this.inflight.delete(key);
      }
      for (const [key, entry] of [...this.l1.entries()]) if (entry.t <= tS) this.l1.delete(key);
      return;
    }
    // A computation started before a deleteByTag may carry the tag: new calls do not join it.
    if (this.tags !== undefined) {
      for (const [key, flight] of [...this.inflight]) {
        if (flight.miss.startedMs / 1000 <= tS) this.inflight.delete(key);
      }
    }
    for (const [key, entry] of [...this.l1.entries()]) {
      if (entry.t > tS || entry.tags === undefined) continue;
      if (entry.tags.some((tag) => tagMarkerKey(this.ctx.keyPrefix, tag) === markerKey)) {
        this.l1.delete(key);
      }
    }
  }

  /** Applies another process's invalidation of `keys` (from the bus) to this process's L1. */
  dropLocally(keys: readonly string[], expire: boolean): void {
    const nowMs = Date.now();
    for (const key of keys) {
      this.invalidations.invalidate(key);
      this.inflight.delete(key);
      if (expire) this.expireLocally(key, nowMs);
      else this.l1.delete(key);
    }
  }

  /** Keeps an L1 entry only as a stale value, for grace from now. */
  private expireLocally(encoded: string, nowMs: number): void {
    const entry = this.l1.get(encoded);
    if (entry === undefined) return;
    // Past its grace already (not yet swept): an expiry must not make it a stale value again.
    if (this.graceMs === 0 || entry.staleUntil <= nowMs) {
      this.l1.delete(encoded);
      return;
    }
    entry.validUntil = entry.expiresAt = Math.min(entry.expiresAt, nowMs);
    entry.staleUntil = Math.min(entry.staleUntil, nowMs + this.graceMs);
    entry.retryAt = 0;
  }

  /**
   * Runs an invalidation's DynamoDB writes after the previous `set` or `delete` of the same keys
   * in this process have been answered: both are unconditional writes, and a retried earlier one
   * must not land after a later one. Ends the invalidations opened by `invalidateLocally`.
   *
   * Shutdown waits for the whole of it, the wait for the earlier writes included (a write queued
   * behind another has not started when shutdown looks): until the earlier ones' bound, then
   * `calls` DynamoDB calls (and `waitMs` of back-off between them) more.
   */
  private async inOrder(
    keys: readonly string[],
    write: () => Promise<void>,
    calls = 1,
    waitMs = 0,
  ): Promise<void> {
    const now = Date.now();
    const previous: Promise<void>[] = [];
    let startBy = now;
    for (const key of keys) {
      const earlier = this.invalidating.get(key);
      if (earlier === undefined) continue;
      previous.push(earlier.done);
      if (earlier.until > startBy) startBy = earlier.until;
    }
    const bound = this.ctx.callBoundMs;
    const until = startBy + calls * bound + waitMs;
    const after = previous.length === 0 ? write() : Promise.allSettled(previous).then(write);
    const done = after.finally(() => {
      for (const key of keys) {
        if (this.invalidating.get(key) === mine) this.invalidating.delete(key);
        this.endInvalidation(key);
      }
    });
    const mine: OrderedWrite = { done, until };
    for (const key of keys) this.invalidating.set(key, mine);
    await this.ctx.track(done, until - now - bound);
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
    if (now < this.nextSweepAt) return;
    const pace = typeof this.ttl === 'number' ? this.ttl * 1000 + this.graceMs : SWEEP_MAX_MS;
    this.nextSweepAt = now + Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, pace));
    sweepExpired(this.l1, now);
  }

  /**
   * Reports a failure of this namespace's DynamoDB calls that its caller was not told of (a
   * route's write after the response went out): logged once per outage of the table, as under
   * `onError: 'bypass'`, not once per call.
   *
   * @example
   * stored.catch((err) => ns.reportUnseen(err));
   */
  reportUnseen(err: DynamoCacheError): void {
    this.ctx.l2.reportUnseen(err);
  }

  /** Whether a `clear` or `deleteByTag` known here (made here, or heard of) is at or after `tS`. */
  private knownCleared(tags: readonly string[] | undefined, tS: number): boolean {
    return this.ctx.markers.latestKnown(this.markerKeys(tags)) >= tS;
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

  /** Counts an L1 hit and returns its value. */
  private l1Hit(encoded: string, entry: L1Entry): unknown {
    this.stats.l1Hits++;
    if (this.ctx.events.active) this.emit('hit', encoded, 'l1');
    return entry.value;
  }

  /** Counts a stale value served in place of a fresh one and returns it. */
  private staleHit(encoded: string, value: unknown): unknown {
    this.stats.staleHits++;
    if (this.ctx.events.active) this.emit('stale', encoded);
    return value;
  }

  /**
   * The callers' side of a flight: its result, or, with a soft `timeout` and a stale value known
   * (now or once L2 has been read), the stale value when the flight takes longer than `timeout`.
   * The flight goes on in the background and fills both layers.
   */
  private answer<T>(flight: Flight): Promise<T> {
    const timeoutMs = this.timeoutMs;
    const { miss } = flight;
    if (timeoutMs === undefined) {
      if (this.graceMs === 0) return flight.promise as Promise<T>;
      // Each caller the flight answers with its stale value is one stale hit.
      return flight.promise.then((value) =>
        miss.resolvedStale ? (this.staleHit(miss.encoded, value) as T) : (value as T),
      );
    }
    if (
      timeoutMs === 0 &&
      miss.stale !== undefined &&
      miss.stale.unchecked === undefined &&
      miss.stale.staleUntil > Date.now()
    ) {
      return Promise.resolve(this.staleHit(miss.encoded, miss.stale.value) as T);
    }
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        return true;
      };
      flight.promise.then(
        (value) =>
          settle() &&
          resolve((miss.resolvedStale ? this.staleHit(miss.encoded, value) : value) as T),
        (err: unknown) => settle() && reject(err),
      );
      const arm = (): void => {
        if (done) return;
        timer = setTimeout(() => {
          // The stale value as known when the timer fires: L2 may have shown the one it was
          // armed with deleted, cleared or superseded. Past its grace, none: wait on.
          const stale = miss.stale;
          if (stale === undefined || stale.unchecked === true) {
            (miss.onStale ??= []).push(arm);
            return;
          }
          if (stale.staleUntil > Date.now() && settle()) {
            resolve(this.staleHit(miss.encoded, stale.value) as T);
          }
        }, timerDelay(timeoutMs));
      };
      if (miss.stale !== undefined && miss.stale.unchecked === undefined) arm();
      else (miss.onStale ??= []).push(arm);
    });
  }

  /** Records the stale value of a miss and tells the callers waiting for one. */
  private foundStale(miss: Miss, stale: StaleValue): void {
    if (miss.stale !== undefined) return;
    miss.stale = stale;
    const waiting = miss.onStale;
    miss.onStale = undefined;
    if (waiting !== undefined) for (const arm of waiting) arm();
  }

  /**
   * After serving a stale value because recomputing failed: no new attempt for `graceBackoff`
   * (`forMs`: another pause, e.g. while another process refreshes the value). The stale value is
   * kept in L1 (a value found in L2 is copied there) to be served meanwhile.
   */
  private backOff(miss: Miss, stale: StaleValue, forMs = this.graceBackoffMs): void {
    const retryAt = Date.now() + forMs;
    if (stale.entry !== undefined) {
      if (this.l1.get(miss.encoded) === stale.entry) stale.entry.retryAt = retryAt;
      return;
    }
    const found = stale.found;
    if (found === undefined || !this.mayFill(miss)) return;
    // A clear or deleteByTag made here, or announced on the bus, since it was read removed it:
    // kept for the backoff, it would be served to calls made after the invalidation.
    if (this.knownCleared(found.tags, found.t)) return;
    if (!this.keepsL1) {
      const backoffs = this.backoffs;
      backoffs.delete(miss.encoded);
      if (backoffs.size >= MAX_BACKOFFS) backoffs.delete(backoffs.keys().next().value as string);
      backoffs.set(miss.encoded, { retryAt, tRaw: found.tRaw, writeId: found.writeId });
      return;
    }
    // Checked when it was read (at the earliest, when the call began), not when the method failed:
    // a delete made elsewhere meanwhile is seen within l1MaxAge of it.
    const entry = this.newEntry(
      found.value,
      found.t,
      found.tRaw,
      found.writeId,
      found.freshUntil,
      found.tags,
      miss.startedMs,
    );
    entry.retryAt = retryAt;
    this.l1.set(miss.encoded, entry);
  }

  /** Without L1: whether `read` is the stale item a failed computation of `encoded` backs off on. */
  private backingOff(encoded: string, read: L2Found): boolean {
    const backoff = this.backoffs.get(encoded);
    if (backoff === undefined) return false;
    if (backoff.retryAt <= Date.now()) {
      this.backoffs.delete(encoded);
      return false;
    }
    return sameWrite(backoff, read);
  }

  /** An L1 entry for a value whose item has `t` (seconds) and is fresh until `freshUntilS`. */
  private newEntry(
    value: unknown,
    tS: number,
    tRaw: string | undefined,
    writeId: string | undefined,
    freshUntilS: number,
    tags: readonly string[] | undefined,
    nowMs: number,
  ): L1Entry {
    const expiresAt = freshUntilS * 1000;
    const checkedUntil = nowMs + this.nextCheckMs();
    return {
      value,
      validUntil: Math.min(expiresAt, checkedUntil),
      checkedUntil,
      expiresAt,
      staleUntil: expiresAt + this.graceMs,
      tRaw,
      writeId,
      t: tS,
      tags,
      retryAt: 0,
    };
  }

  /**
   * Counts an L2 hit and copies it into L1 (when `fill`: the key was not invalidated since the
   * read began), to live as long as the L2 item would, checked again `l1MaxAge` after `readAtMs`
   * (when the read began: what DynamoDB said holds as of then, however long the answer took).
   */
  private fromL2(encoded: string, hit: L2Found, fill: boolean, readAtMs: number): unknown {
    this.stats.l2Hits++;
    if (this.ctx.events.active) this.emit('hit', encoded, 'l2');
    // Not kept if a clear or deleteByTag noted since the read covers it.
    const markerKeys = this.markerKeys(hit.tags);
    if (fill && this.keepsL1 && hit.t > this.ctx.markers.latestKnown(markerKeys)) {
      const entry = this.newEntry(
        hit.value,
        hit.t,
        hit.tRaw,
        hit.writeId,
        hit.freshUntil,
        hit.tags,
        readAtMs,
      );
      // Checked against markers read up to l1MaxAge ago: served without a look only until they
      // are that old, so a clear or deleteByTag elsewhere is seen within l1MaxAge.
      if (this.l1MaxAgeMs !== Infinity) {
        entry.checkedUntil = Math.min(
          entry.checkedUntil,
          this.ctx.markers.trustedUntil(markerKeys, this.l1MaxAgeMs),
        );
        entry.validUntil = Math.min(entry.validUntil, entry.checkedUntil);
      }
      this.l1.set(encoded, entry);
    }
    return hit.value;
  }

  /**
   * When an L1 entry is next checked against DynamoDB: `l1MaxAge` from now, less up to half at
   * random, so the processes that filled a hot key at one moment do not all check it at the same
   * moment afterwards (the bound `l1MaxAge` still holds).
   */
  private nextCheckMs(): number {
    return this.l1MaxAgeMs === Infinity
      ? Infinity
      : this.l1MaxAgeMs * (1 - L1_CHECK_JITTER * Math.random());
  }

  /** The marker keys that can invalidate an entry with `tags`: the namespace's, then the tags'. */
  private markerKeys(tags: readonly string[] | undefined): readonly string[] {
    if (tags === undefined) return this.ownMarkerKeys;
    return [this.markerKey, ...tags.map((tag) => tagMarkerKey(this.ctx.keyPrefix, tag))];
  }

  /**
   * Checks an L1 entry past `l1MaxAge` against DynamoDB: its item's `t` (no value) and its
   * markers, in one `BatchGetItem` when they share a table. `true` when unchanged (the entry is
   * served, as an L1 hit, for another `l1MaxAge`); otherwise the entry is dropped. When DynamoDB
   * cannot answer, the entry (still within its ttl) is served and the failure counted.
   */
  private async revalidate(encoded: string, cacheKey: string, entry: L1Entry): Promise<boolean> {
    const markerKeys = this.markerKeys(entry.tags);
    let head: ItemHead | undefined;
    // What DynamoDB answers holds as of when it was asked, however long the answer takes.
    const readAt = Date.now();
    try {
      if (this.ctx.l2 === this.ctx.markers.store) {
        const heads = await this.ctx.track(
          this.ctx.l2.readHeads([cacheKey, ...markerKeys], this.name),
        );
        this.ctx.markers.learn(markerKeys, heads, readAt);
        head = heads.get(cacheKey);
      } else {
        const [heads] = await Promise.all([
          this.ctx.track(this.ctx.l2.readHeads([cacheKey], this.name)),
          this.ctx.markers.latest(markerKeys, this.name, this.l1MaxAgeMs),
        ]);
        head = heads.get(cacheKey);
      }
    } catch (err) {
      this.countFailure(err as DynamoCacheError);
      entry.validUntil = Math.min(entry.expiresAt, Date.now() + this.nextCheckMs());
      this.l1Hit(encoded, entry);
      return true;
    }
    const current = this.l1.get(encoded) === entry;
    // Unchanged: the same item (compared as numbers: DynamoDB may normalize how `t` is written),
    // or still none for a value kept in L1 only; and no newer marker.
    const same =
      entry.tRaw === undefined
        ? head === undefined
        : head?.t === entry.t && head.writeId === entry.writeId && head.expired === undefined;
    if (current && same && entry.t > this.ctx.markers.latestKnown(markerKeys)) {
      entry.checkedUntil = readAt + this.nextCheckMs();
      entry.validUntil = Math.min(entry.expiresAt, entry.checkedUntil);
      this.l1Hit(encoded, entry);
      return true;
    }
    if (current) this.l1.delete(encoded);
    return false;
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

  /** The entry's key in this process's memory (L1, flights, bus): see compactKey. */
  private encode(args: readonly unknown[]): string {
    return this.keyFn === undefined
      ? this.keys.key(args)
      : compactKey(encodeKey(this.keyFn(...args), this.name, 'key'));
  }

  /**
   * A miss of L1: L2, then (see {@link loadFurther}) the lease and the function, with the stale
   * value as the fallback. The usual L2 hit is answered here, in a small async function: each
   * call allocates its function's whole frame, and the rest of the miss path is most of it.
   */
  private async load<T>(
    miss: Miss,
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: unknown[]) => T | Promise<T>,
  ): Promise<T> {
    const cacheKey = buildCacheKey(this.ctx.keyPrefix, this.name, miss.encoded);
    try {
      if (miss.revalidate !== undefined || miss.forceFresh) {
        return await this.loadFurther(miss, cacheKey, undefined, thisArg, args, fn);
      }
      const read = await this.readL2(cacheKey);
      if (read.status === 'hit')
        return this.fromL2(miss.encoded, read, this.mayFill(miss), miss.startedMs) as T;
      return await this.loadFurther(miss, cacheKey, read, thisArg, args, fn);
    } catch (err) {
      const stale = miss.stale;
      if (this.staleOnError?.(err) === false) {
        // An answer for every caller given as an error (a route's 404): what it replaces is no
        // longer the answer. Ended behind the error, the caller's answer: a failure of that
        // write (counted; rethrown by supersede under onError 'throw') must not go unhandled,
        // which would end the process.
        if (this.supersededBy?.(err) === true) {
          this.supersede(miss, cacheKey).catch(() => undefined);
        }
        throw err;
      }
      if (stale === undefined || stale.staleUntil <= Date.now() || !servedStaleOn(err)) {
        throw err;
      }
      this.backOff(miss, stale);
      // Counted per caller it answers (see answer): callers answered by the soft timeout
      // already have the stale value.
      miss.resolvedStale = true;
      return stale.value as T;
    } finally {
      this.finish(miss);
    }
  }

  /**
   * The rest of {@link load}, from what L2 answered (`first`), or from the start for an entry to
   * revalidate or a fresh computation (`first` undefined).
   */
  private async loadFurther<T>(
    miss: Miss,
    cacheKey: string,
    first: L2Read | undefined,
    thisArg: unknown,
    args: readonly unknown[],
    fn: (...args: unknown[]) => T | Promise<T>,
  ): Promise<T> {
    let read = first;
    if (read === undefined) {
      if (
        miss.revalidate !== undefined &&
        (await this.revalidate(miss.encoded, cacheKey, miss.revalidate))
      ) {
        return miss.revalidate.value as T;
      }
      if (miss.forceFresh) return await this.compute(miss, cacheKey, thisArg, args, fn);
      read = await this.readL2(cacheKey);
      if (read.status === 'hit')
        return this.fromL2(miss.encoded, read, this.mayFill(miss), miss.startedMs) as T;
    }
    // A stale copy whose computation failed lately (graceBackoff), checked here because its last
    // check is older than l1MaxAge: still what DynamoDB holds, it is served without a new attempt.
    const backingOff =
      miss.stale?.entry !== undefined && miss.stale.entry.retryAt > Date.now()
        ? miss.stale.entry
        : undefined;
    if (read.status === 'stale') {
      if (backingOff !== undefined && sameWrite(read, backingOff)) {
        backingOff.checkedUntil = miss.startedMs + this.nextCheckMs();
        miss.resolvedStale = true;
        return backingOff.value as T;
      }
      if (!this.keepsL1 && this.backingOff(miss.encoded, read)) {
        miss.resolvedStale = true;
        return read.value as T;
      }
      // What L2 holds now (it may be newer than a stale L1 copy).
      if (miss.stale?.entry !== undefined) miss.stale = undefined;
      this.foundStale(miss, {
        value: read.value,
        staleUntil: (read.freshUntil + this.policy.grace) * 1000,
        found: read,
      });
    } else if (read !== L2_FAILED && read !== L2_THROTTLED && miss.stale?.entry !== undefined) {
      const entry = miss.stale.entry;
      if (lost(read, entry)) {
        // Deleted, cleared or expired past grace elsewhere: no longer a value to fall back on.
        miss.stale = undefined;
        if (this.l1.get(miss.encoded) === entry) this.l1.delete(miss.encoded);
      } else if (miss.stale.unchecked === true) {
        // Shown still current: served as stale for another l1MaxAge from the read.
        entry.checkedUntil = miss.startedMs + this.nextCheckMs();
        if (backingOff === entry) {
          miss.resolvedStale = true;
          return entry.value as T;
        }
        miss.stale = undefined;
        this.foundStale(miss, { value: entry.value, staleUntil: entry.staleUntil, entry });
      }
    } else if (
      (read === L2_FAILED || read === L2_THROTTLED) &&
      miss.stale?.unchecked === true &&
      miss.stale.entry !== undefined
    ) {
      // DynamoDB could not answer the check: the L1 copy is what this process knows, the value to
      // fall back on (a soft timeout, graceBackoff) as when the method fails; checked again on
      // the next call.
      const entry = miss.stale.entry;
      if (backingOff === entry) {
        miss.resolvedStale = true;
        return entry.value as T;
      }
      miss.stale = undefined;
      this.foundStale(miss, { value: entry.value, staleUntil: entry.staleUntil, entry });
    }
    // An unreadable item may carry a bogus (future) t that a conditional write would respect.
    if (read.status === 'corrupt') {
      miss.repair = read.tRaw === undefined ? 'any' : { seenT: read.tRaw };
    }
    // A throttled read is a busy key, not a failing table: the lease still applies.
    if (this.lease === false || read === L2_FAILED) {
      return await this.compute(miss, cacheKey, thisArg, args, fn);
    }
    const outcome = await this.awaitLease(cacheKey, this.lease, miss);
    if (outcome.status === 'hit') {
      // Read by the wait's last look, just now (the wait itself may have lasted seconds: counted
      // from the call's start, the checks of every waiter of one key would come at once).
      return this.fromL2(miss.encoded, outcome, this.mayFill(miss), Date.now()) as T;
    }
    // Another process is refreshing it: the stale value until then. Not claimed again on every
    // call meanwhile (each claim is a write on the lease item, and its holder writes a copy of its
    // value for every 25 claims): the stale value is served without a look for about a second,
    // as long as a waiter's pause between two looks at its copy.
    if (outcome.status === 'held' && miss.stale !== undefined) {
      this.backOff(miss, miss.stale, LEASE_POLL_MAX_MS * (0.5 + Math.random() / 2));
      miss.resolvedStale = true;
      return miss.stale.value as T;
    }
    if (outcome.status !== 'acquired') return await this.compute(miss, cacheKey, thisArg, args, fn);
    try {
      return await this.compute(miss, cacheKey, thisArg, args, fn);
    } finally {
      this.releaseLease(cacheKey, miss, this.lease);
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
    miss.computedFromMs = Date.now();
    const result = fn.apply(thisArg, args as unknown[]);
    if (this.requirePromise && !isThenable(result)) {
      throw new DynamoCacheError(
        'config',
        `${this.name} returned a ${typeof result}, not a Promise: only async methods can be @DynamoCached`,
        { namespace: this.name },
      );
    }
    const value = await result;
    if (this.unless !== undefined && this.skips(value, args)) {
      await this.supersede(miss, cacheKey, { value });
      return value;
    }
    const life = entryLife(this.ttl, this.tags, value, args);
    if ('problem' in life) {
      this.warnOnce('life', `${life.problem}; the result was returned but not cached`);
      await this.supersede(miss, cacheKey, { value });
      return value;
    }
    await this.fill(miss, cacheKey, value, life);
    return value;
  }

  /**
   * Whether `unless` keeps this result out of the cache. One that throws does too (the result is
   * still returned), as a ttl or tags function that throws does.
   */
  private skips(value: unknown, args: readonly unknown[]): boolean {
    try {
      return this.unless?.(value, ...args) === true;
    } catch (err) {
      this.warnOnce(
        'unless',
        `the unless function threw: ${(err as Error)?.message ?? String(err)}; the result was returned but not cached`,
      );
      return true;
    }
  }

  /**
   * Writes a computed value to L2 (conditionally: see L2Store.write), then to L1, unless the key
   * was invalidated meanwhile, here or elsewhere, or the computation outlived `computeTimeout`.
   * The item's `t` is the time the computation started.
   */
  private async fill(
    miss: Miss,
    cacheKey: string,
    value: unknown,
    life: { ttl: number | null; tags: readonly string[] | undefined },
  ): Promise<void> {
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
    const tS = (miss.computedFromMs ?? miss.startedMs) / 1000;
    // A clear or deleteByTag made here since the computation began covers its result too.
    if (!this.mayFill(miss) || this.knownCleared(life.tags, tS)) return;
    const freshUntil = life.ttl === null ? Infinity : tS + life.ttl;
    const writeId = this.ctx.writeIds.next();
    const toL1 = (written: boolean): void => {
      // Asked again once the write is answered: a clear or deleteByTag made here, or announced
      // on the bus, while it was on its way covers this result too.
      if (!this.mayFill(miss) || this.knownCleared(life.tags, tS)) return;
      const entry = this.newEntry(
        value,
        tS,
        written ? String(tS) : undefined,
        written ? writeId : undefined,
        freshUntil,
        life.tags,
        Date.now(),
      );
      // A clear or deleteByTag elsewhere since the computation began is not known here: the
      // entry is checked within l1MaxAge of that beginning (and of the markers' last read), so
      // such an invalidation is seen within l1MaxAge however long the computation took.
      if (this.l1MaxAgeMs !== Infinity) {
        entry.checkedUntil = Math.min(
          entry.checkedUntil,
          miss.startedMs + this.l1MaxAgeMs,
          this.ctx.markers.trustedUntil(this.markerKeys(life.tags), this.l1MaxAgeMs),
        );
        entry.validUntil = Math.min(entry.validUntil, entry.checkedUntil);
      }
      this.l1.set(encoded, entry);
    };
    let outcome: WriteOutcome;
    try {
      outcome = await this.writeL2(
        cacheKey,
        value,
        tS,
        { ttl: life.ttl, grace: this.policy.grace, tags: life.tags },
        miss.repair === 'any' ? { writeId } : { startedS: tS, seenT: miss.repair?.seenT, writeId },
        (item) => (miss.shared = item),
      );
    } catch (err) {
      toL1(false);
      throw err;
    }
    // Refused: a newer value or a tombstone is in L2, and ours must not shadow it here either.
    if (outcome !== 'refused') toL1(outcome === 'written');
    if (outcome === 'not-stored') await this.supersede(miss, cacheKey, { value });
  }

  /**
   * A result that replaces a value (forced, refreshed, recomputed past its ttl) but is not stored
   * (too large or unserializable, kept out by `unless` or a failing ttl or tags function, or an
   * answer given as an error that grace may not hide, such as a route's 404): the value it
   * superseded must not be served on, here or elsewhere. Its L1 copy goes (a stale copy would
   * otherwise answer every call until its grace ends, with `timeout: 0` at once), and a tombstone
   * replaces the item if the item is older than this computation. `computed`: the result, when
   * there is one; under `onError: 'throw'` a failure of the tombstone rejects with it attached,
   * as a failed write of a stored result does (without it, grace would answer the caller with the
   * very value this result ended).
   */
  private async supersede(
    miss: Miss,
    cacheKey: string,
    computed?: { readonly value: unknown },
  ): Promise<void> {
    if (!(miss.forceFresh || miss.revalidate !== undefined || miss.stale !== undefined)) return;
    const startedS = (miss.computedFromMs ?? miss.startedMs) / 1000;
    // A copy older than this computation (not a `set` made meanwhile, nor this result's own).
    const entry = this.l1.get(miss.encoded);
    if (entry !== undefined && entry.t < startedS) this.l1.delete(miss.encoded);
    try {
      if (
        await this.ctx.track(
          this.ctx.l2.invalidateOlder(cacheKey, startedS, this.name, this.tombstoneLifeSeconds),
        )
      ) {
        this.stats.l2Deletes++;
        if (this.ctx.events.active) this.ctx.events.emit('delete', this.name, () => cacheKey);
      }
    } catch (err) {
      const e = err as DynamoCacheError;
      this.l2Failed(
        computed === undefined
          ? e
          : new DynamoCacheError(e.operation, e.message, {
              namespace: this.name,
              cause: e.cause,
              result: computed.value,
            }),
      );
    }
  }

  /**
   * Writes `value` to L2: `not-stored` when it cannot be (logged once per reason), `refused` when
   * a conditional write found a newer item, `failed` under `onError: 'bypass'`; rethrows a failure
   * under `'throw'`, with the value attached as `result`.
   */
  private async writeL2(
    cacheKey: string,
    value: unknown,
    tS: number,
    life: EntryLife,
    options: { gated?: boolean; startedS?: number; seenT?: string; writeId?: string },
    written?: (item: RawItem) => void,
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
        this.ctx.l2.write(cacheKey, encoded, tS, life, this.name, options),
      );
      if (write.status === 'written') {
        if (write.item !== undefined) written?.(write.item);
        this.stats.l2Writes++;
        if (this.ctx.events.active) this.ctx.events.emit('write', this.name, () => cacheKey);
        return 'written';
      }
      if (write.status === 'refused') {
        this.stats.l2Refused++;
        if (this.ctx.events.active) this.ctx.events.emit('refused', this.name, () => cacheKey);
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
  /**
   * Invalidates the key in L2 for every process (see L2Store.invalidate); `writeId` made when the
   * invalidation was asked for, which orders it among this engine's writes of the key.
   */
  private async writeTombstone(cacheKey: string, writeId: string): Promise<void> {
    try {
      const written = await this.ctx.track(
        this.ctx.l2.invalidate(cacheKey, this.name, this.tombstoneLifeSeconds, writeId),
      );
      // Refused: a later write of this engine's stands (this one was given up, and came late).
      if (!written) return;
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
   * After an L2 miss, with `lease` on: claim the key's lease (this process computes), or wait for
   * the process holding it. Each claim is counted on the lease item and learns its rank; the
   * holder, once done, writes a copy of its result for every 25 waiters, and a waiter looks at its
   * own copy (not at the lease or the value item), looking less often as it waits (from `pollMs`
   * doubling to 1 s, jittered). So however many processes wait on one key, each item's key sees
   * about one request per process: its first read, its claim. A copy saying the computation failed,
   * or a lease lapsing without one (its holder crashed), means claiming again. A holder running a
   * version without copies is watched at the lease, then the value (strongly consistent).
   * After `waitMs`, or on any DynamoDB failure, compute without a lease: a cache fault costs a
   * duplicate computation, never the caller's result, so it is counted as an L2 error but never
   * rejects, whatever `onError` says.
   */
  private async awaitLease(
    cacheKey: string,
    lease: LeaseSettings,
    miss: Miss,
  ): Promise<LeaseOutcome> {
    const l2 = this.ctx.l2;
    const owner = this.leaseOwnerOf(miss);
    const deadline = Date.now() + lease.waitMs;
    try {
      let claim = await this.claim(cacheKey, owner, lease);
      if (claim.status === 'acquired') return await this.leaseAcquired(cacheKey, miss, lease);
      // With a stale value to serve, waiting for the holder's refresh is pointless.
      if (miss.stale !== undefined) return HELD;
      let interval = lease.pollMs;
      for (;;) {
        const pause = interval * (0.5 + Math.random() / 2);
        interval = Math.min(interval * 2, Math.max(lease.pollMs, LEASE_POLL_MAX_MS));
        await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
        if (Date.now() >= deadline) return await this.lastLook(cacheKey);
        if (claim.copies) {
          if (Date.now() < claim.until) {
            const copy = await l2.readLeaseCopy(
              cacheKey,
              leaseCopyIndex(claim.rank),
              claim.owner,
              this.policy,
              this.name,
            );
            if (copy === 'pending') continue;
            // The owner read the markers after every waiter had asked (stillCurrent): a copy is
            // of a result no clear made before this call began covers. Only what is known here
            // is checked again; reading the markers in every waiting process would put a request
            // per process on one key.
            if (
              copy !== 'failed' &&
              copy.status === 'hit' &&
              !this.knownCleared(copy.tags, copy.t)
            ) {
              return copy;
            }
          }
        } else {
          const held = await l2.readLease(cacheKey, this.name);
          if (held !== undefined && held.until > Date.now()) continue;
          // Consistent: the holder wrote the value before it gave the lease back.
          const found = await this.valueIn(cacheKey, true);
          if (found !== undefined) return found;
        }
        claim = await this.claim(cacheKey, owner, lease);
        if (claim.status === 'acquired') return await this.leaseAcquired(cacheKey, miss, lease);
      }
    } catch (err) {
      this.leaseFailed(err as DynamoCacheError);
      if (!isThrottled(err)) return COMPUTE;
      // Throttled: so many processes want the key that one of them surely computes it.
      return miss.stale !== undefined ? HELD : await this.awaitValue(cacheKey, deadline);
    }
  }

  /**
   * A waiter's look at the value item once `waitMs` has passed, before it computes: no copy came,
   * but the holder may have written its value and then died (or failed to give its lease back or
   * write the copies), and recomputing that value in every waiter would be the stampede the lease
   * is there to prevent. One eventually consistent read per waiter, only when a wait runs out.
   */
  private async lastLook(cacheKey: string): Promise<LeaseOutcome> {
    return (await this.valueIn(cacheKey, false)) ?? COMPUTE;
  }

  /** The value item's value for a lease waiter, unless it is gone or a marker covers it. */
  private async valueIn(cacheKey: string, consistent: boolean): Promise<L2Found | undefined> {
    const read = await this.ctx.l2.read(cacheKey, this.policy, this.name, consistent);
    if (read.status === 'hit' && !(await this.invalidated(read))) return read;
    if (read.status === 'expired' && read.deleted) this.stats.l2Deletes++;
    return undefined;
  }

  /**
   * Waits for the value without a lease (its claim was throttled): a look at the value item
   * every 1 to 3 s at random, so thousands of processes waiting this way spread their reads;
   * a throttled look is just a look that found nothing. Computes after `waitMs`.
   */
  private async awaitValue(cacheKey: string, deadline: number): Promise<LeaseOutcome> {
    for (;;) {
      const pause = THROTTLED_LOOK_MS * (1 + 2 * Math.random());
      await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
      if (Date.now() >= deadline) return COMPUTE;
      try {
        const read = await this.ctx.l2.read(cacheKey, this.policy, this.name);
        if (read.status === 'hit' && !(await this.invalidated(read))) return read;
      } catch (err) {
        this.leaseFailed(err as DynamoCacheError);
        if (!isThrottled(err)) return COMPUTE;
      }
    }
  }

  /**
   * Claims the lease; a lease of this engine's (an earlier computation's, stale) is ours to take.
   * The waiters of a lease taken over are told, in the background, that it left no value: they
   * claim again at once instead of waiting for copies that will not come.
   */
  private async claim(cacheKey: string, owner: string, lease: LeaseSettings): Promise<LeaseClaim> {
    const claim = await this.ctx.l2.claimLease(
      cacheKey,
      owner,
      `${this.ctx.leaseOwner ?? ''}#`,
      lease.ttlMs,
      this.name,
    );
    const replaced = claim.status === 'acquired' ? claim.replaced : undefined;
    if (replaced !== undefined) {
      this.ctx
        .track(this.writeCopies(cacheKey, replaced.owner, undefined, replaced.claims, lease, owner))
        .catch((err: unknown) => this.leaseFailed(err as DynamoCacheError));
    }
    return claim;
  }

  /**
   * Writes the copies the waiters of `owner`'s lease (`claims` claims, its own included) read: of
   * `valueItem`, or, when `undefined`, saying there is no value. None when no one waited.
   * `sparing`: the owner that took this lease over, whose own copies these never replace.
   */
  private async writeCopies(
    cacheKey: string,
    owner: string,
    valueItem: RawItem | undefined,
    claims: number,
    lease: LeaseSettings,
    sparing?: string,
  ): Promise<void> {
    const copies = leaseCopyCount(claims);
    if (copies === 0) return;
    // Copies serve waits of at most waitMs (theirs may be longer: the lease's ttl).
    const lifeMs = Math.max(lease.waitMs, lease.ttlMs);
    await this.ctx.l2.writeLeaseCopies(
      cacheKey,
      owner,
      valueItem,
      copies,
      lifeMs,
      this.name,
      sparing,
    );
  }

  /**
   * Looks at the value once more (strongly consistent) with the lease in hand: another process may
   * have computed it, written it and given its lease back between our miss and our lease. Without
   * this look that race costs a second computation.
   */
  private async leaseAcquired(
    cacheKey: string,
    miss: Miss,
    lease: LeaseSettings,
  ): Promise<LeaseOutcome> {
    let read: L2Read;
    try {
      read = await this.ctx.l2.read(cacheKey, this.policy, this.name, true);
      // An item a clear or deleteByTag covers is no value, as in readL2.
      if (read.status !== 'hit' || (await this.invalidated(read))) return ACQUIRED;
    } catch (err) {
      this.leaseFailed(err as DynamoCacheError);
      return ACQUIRED;
    }
    miss.shared = read.item;
    this.releaseLease(cacheKey, miss, lease);
    return read;
  }

  /**
   * Whether a clear of its namespace or a deleteByTag of one of its tags covers `found`: a
   * boolean at once when the markers are known and recent enough (the usual case under load, so
   * a hit waits for no Promise), else a Promise of one, once they have been read.
   */
  private invalidated(found: L2Found): boolean | Promise<boolean> {
    const keys = this.markerKeys(found.tags);
    const known = this.ctx.markers.recentLatest(keys, this.l1MaxAgeMs);
    if (known !== undefined) return found.t <= known;
    return this.ctx.markers
      .latest(keys, this.name, this.l1MaxAgeMs)
      .then((invalidatedAt) => found.t <= invalidatedAt);
  }

  /**
   * Gives the lease back in the background, then, when others claimed it meanwhile, writes the
   * copies they wait for: of the value item written or found, or saying there is none (they then
   * claim again, and one computes). A failure costs the waiters their wait (up to `waitMs`), so it
   * is counted and otherwise ignored; shutdown waits for it like for a write.
   */
  private releaseLease(cacheKey: string, miss: Miss, lease: LeaseSettings): void {
    const owner = this.leaseOwnerOf(miss);
    const ctx = this.ctx;
    // Each step is tracked as it starts, with its own bound: shutdown waits for the whole chain
    // (give the lease back, look at the value, write the waiters' copies), as long as each call
    // keeps within its own. Tracked as one piece, it was given one call's time, and a shutdown
    // dropped the copies its waiters in other processes were polling for.
    ctx
      .track(ctx.l2.releaseLease(cacheKey, owner, this.name))
      .then(async (released) => {
        const claims = released ?? 0;
        const copies = leaseCopyCount(claims);
        if (copies === 0) return;
        // The look at the value is one call, the markers' read may be retried (keys left
        // unprocessed, as a throttled marker key's are): shutdown waits for all of it.
        const read = batchReadBound(this.markerKeys(miss.shared?.g?.SS).length);
        const item = await ctx.track(
          this.stillCurrent(cacheKey, miss.shared, Date.now()),
          (read.calls - 1) * ctx.callBoundMs + read.waitMs,
        );
        const { calls, waitMs } = batchWriteBound(copies);
        await ctx.track(
          this.writeCopies(cacheKey, owner, item, claims, lease),
          (calls - 1) * ctx.callBoundMs + waitMs,
        );
      })
      .catch((err: unknown) => this.leaseFailed(err as DynamoCacheError));
  }

  /**
   * `item` (the value this lease's computation wrote or found), when it is still the key's value
   * item and no `clear` or `deleteByTag` covers it: a `delete`, `expire`, newer value or
   * invalidation made since, before a waiter asked, must not reach that waiter through a copy.
   * Both are read once the lease is given back (`releasedAt`): every waiter counted then asked
   * before these looks. `undefined` (copies saying "no value": the waiters claim again) when it
   * changed, or when the markers cannot be read and it began more than `l1MaxAge` ago.
   */
  private async stillCurrent(
    cacheKey: string,
    item: RawItem | undefined,
    releasedAt: number,
  ): Promise<RawItem | undefined> {
    const written = item?.t?.N;
    if (written === undefined) return undefined;
    // One read of the markers by the owner, so that its waiters (any number of processes) need
    // none; made beside the look at the value, with the tags it wrote. Strongly consistent, as
    // that look is: a marker written just before a waiter asked may not have reached every
    // replica yet, and no waiter looks again.
    const invalidated = this.ctx.markers
      .latest(this.markerKeys(item?.g?.SS), this.name, Date.now() - releasedAt, true)
      .then(
        (invalidatedAt) => Number(written) <= invalidatedAt,
        (err: unknown) => {
          this.leaseFailed(err as DynamoCacheError);
          // Markers unread: a result begun more than l1MaxAge ago is withheld (a clear older than
          // that may cover it). One begun since can be covered only by an invalidation made since,
          // which other processes may see up to l1MaxAge late (the rule the waiters applied
          // before the owner read for them). Withheld, each waiter would claim again and, the
          // markers failing there too, compute in turn, lease after lease.
          const tS = Number(written);
          return Date.now() - tS * 1000 >= this.l1MaxAgeMs || this.knownCleared(item?.g?.SS, tS);
        },
      );
    const now = await this.ctx.l2.read(cacheKey, this.policy, this.name, true);
    if (now.status !== 'hit' || now.tRaw !== written || now.writeId !== item?.w?.S) {
      return undefined;
    }
    return (await invalidated) ? undefined : item;
  }

  /** One lease owner id per computation: an older one's release must not drop a newer one's lease. */
  private leaseOwnerOf(miss: Miss): string {
    return `${this.ctx.leaseOwner ?? ''}#${this.name}#${miss.flight}`;
  }

  private leaseFailed(err: DynamoCacheError): void {
    this.countFailure(err);
  }

  private async readL2(cacheKey: string): Promise<L2Read> {
    let read: L2Read;
    try {
      read = await this.ctx.l2.read(cacheKey, this.policy, this.name);
      // An entry older than a clear of its namespace or a deleteByTag of one of its tags is gone.
      // The markers are read only when something was found, at most every l1MaxAge.
      if (read.status === 'hit' || read.status === 'stale') {
        const invalidated = this.invalidated(read);
        if (invalidated === true || (invalidated !== false && (await invalidated))) {
          return INVALIDATED;
        }
      }
    } catch (err) {
      this.l2Failed(err as DynamoCacheError);
      return isThrottled(err) ? L2_THROTTLED : L2_FAILED;
    }
    if (read.status === 'expired') {
      if (read.deleted) this.stats.l2Deletes++;
      // A failed clean-up does not fail the call: the miss stands, and the new value's PutItem
      // (or DynamoDB's own TTL) replaces the item anyway.
      else if (read.error !== undefined) this.countFailure(read.error);
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
    this.countFailure(err);
    if (this.ctx.onError === 'throw') throw err;
  }

  /** Counts and reports a DynamoDB failure (not a call the open circuit turned away). */
  private countFailure(err: DynamoCacheError): void {
    if (err.cause instanceof CircuitOpenError) return;
    this.stats.l2Errors++;
    if (this.ctx.events.active) {
      this.ctx.events.emit('error', this.name, () => undefined, { error: err });
    }
  }
}

/**
 * Whether a failure may be answered with a stale value: the method's own errors and DynamoDB's,
 * not a misuse (`config`, `key`) nor a failed write that carries the fresh result (an `undefined`
 * one too: attached, it is there).
 */
function servedStaleOn(err: unknown): boolean {
  if (!(err instanceof DynamoCacheError)) return true;
  return err.operation !== 'config' && err.operation !== 'key' && !('result' in err);
}

/** Whether two reads of a key's item saw the same write (its `t` as stored, and its `w`). */
function sameWrite(
  a: { readonly tRaw: string | undefined; readonly writeId: string | undefined },
  b: { readonly tRaw: string | undefined; readonly writeId: string | undefined },
): boolean {
  return a.tRaw === b.tRaw && a.writeId === b.writeId;
}

/**
 * Whether an L2 read shows that a stale L1 copy is gone: a tombstone, an invalidation, an item
 * past its grace, or no item at all where one was stored.
 */
function lost(read: L2Read, entry: L1Entry): boolean {
  if (read === INVALIDATED || read.status === 'expired') return true;
  if (read.status !== 'miss') return false;
  return read.tombstone === true || entry.tRaw !== undefined;
}
