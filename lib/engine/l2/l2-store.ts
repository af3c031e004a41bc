import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type PutItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { DynamoCacheError, type DynamoCacheOperation } from '../../errors.js';
import {
  CircuitBreaker,
  CircuitOpenError,
  type CircuitBreakerSettings,
  type CircuitState,
  type Permit,
} from './circuit-breaker.js';
import {
  decodeClaim,
  decodeLease,
  encodeLease,
  encodeLeaseCopy,
  inspectLeaseCopy,
  leaseCopyKey,
  leaseExp,
  leaseKey,
  type LeaseAcquire,
  type LeaseClaim,
  type LeaseState,
} from './cache-lease.js';
import {
  encodeItem,
  encodeTombstone,
  inspectItem,
  itemSize,
  PARTITION_KEY,
  type DecodedItem,
  type EntryLife,
} from './item-codec.js';
import { CallDeadlines, type CallDeadline } from './call-deadlines.js';
import { L2AbortSignal, L2TimeoutError } from './l2-timeout.js';
import { BATCH_GET_KEYS, ReadBatcher, type RawItem } from './read-batcher.js';
import { withRetryDeadline, type CacheClient } from './retry-deadline.js';
import { WriteIds } from './write-id.js';
import { UnprocessedRequestsError } from './throttling.js';
import { ttlProblem } from '../namespace/entry-policy.js';
import type { DecodedValue, EncodedValue, ValueCodec } from '../values/value-codec.js';
import {
  compressValue,
  decompressValue,
  MAX_INFLATED_BYTES,
  MAX_ITEM_BYTES,
} from './value-compression.js';

/**
 * Outcome of an L2 read. `miss` includes a tombstone. `expired` items (and tombstones past their
 * lifetime) have been deleted unless someone rewrote them first (`deleted: false`) or the delete
 * failed (`error`: housekeeping only, the read itself stands). `unrestorable`: the item names a
 * class this process cannot restore.
 */
export type L2Read =
  | L2Found
  /** `tombstone`: the entry was deleted (not merely absent). */
  | { readonly status: 'miss'; readonly tombstone?: true }
  | { readonly status: 'expired'; readonly deleted: boolean; readonly error?: DynamoCacheError }
  /** `tRaw`: the item's `t` when it has a number there, so a repair replaces only this item. */
  | { readonly status: 'corrupt'; readonly reason: string; readonly tRaw?: string }
  | { readonly status: 'unrestorable'; readonly reason: string };

/**
 * An entry read from L2: `hit` while fresh for this reader, `stale` past that but within its
 * grace. `freshUntil` in Unix seconds (`Infinity`: no expiry).
 */
export interface L2Found {
  readonly status: 'hit' | 'stale';
  readonly value: unknown;
  readonly t: number;
  readonly tRaw: string;
  /** The item's write token (`w`): with `tRaw`, which write this is. */
  readonly writeId: string | undefined;
  readonly freshUntil: number;
  readonly tags?: readonly string[];
  /** The item as read (what a lease owner copies for its waiters). */
  readonly item?: RawItem;
}

/** How a reader judges an item's age: its own ttl (or a function of the value), and its grace. */
export interface ReadPolicy {
  readonly ttl: number | null | ((value: unknown) => number | null);
  /** Seconds past expiry an entry may still be served as stale. */
  readonly grace: number;
  /**
   * Seconds after an explicit write or expiry (a `set`, whose `exp` is at least this far past its
   * `t`; an `expire`) during which a reader leaves the item in place past its expiry: the item is
   * what refuses computations that started before it, and a computation may write for up to
   * `computeTimeout` (the namespace's tombstone lifetime), while the value's life may be shorter
   * (its own ttl, or what a ttl function gives it). Absent: deleted once past expiry and grace.
   */
  readonly guardSeconds?: number;
}

/**
 * When an entry stops being fresh for a reader with ttl `readerTtl` (Unix seconds): the earlier of
 * its own expiry `e` and `t + readerTtl`, so a ttl shortened in a deploy applies at once to what
 * older processes wrote; an explicit expiry (`own`, from `set` with a ttl) is kept as is.
 */
export function freshUntil(
  item: { readonly t: number; readonly e?: number; readonly own?: boolean },
  readerTtl: number | null,
): number {
  const own = item.e ?? Infinity;
  if (item.own === true || readerTtl === null) return own;
  return Math.min(own, item.t + readerTtl);
}

/**
 * Until when an entry is fresh by a reader's ttl function of its value. A function that throws or
 * returns no usable ttl for it leaves the entry the expiry its writer gave it (`e`), or, for an
 * item without one (written by 0.1.0), none: expired, and computed again.
 */
function untilByFunction(
  item: { readonly t: number; readonly e?: number },
  ttl: (value: unknown) => number | null,
  value: unknown,
): number {
  let seconds: unknown;
  try {
    seconds = ttl(value);
  } catch {
    seconds = undefined;
  }
  if (ttlProblem(seconds) !== undefined) return item.e ?? -Infinity;
  return freshUntil(item, seconds as number | null);
}

/** What a projected read of an item returns: no value, just what tells whether it changed. */
export interface ItemHead {
  readonly t: number;
  /** The item's write token (`w`), when it has one. */
  readonly writeId?: string;
  /** The entry was expired (`expire`) after it was written. */
  readonly expired?: true;
}

/**
 * Outcome of an L2 write: stored; refused (a conditional write found a newer item or tombstone,
 * which stays); or too large for DynamoDB even compressed (nothing written).
 */
export type L2Write =
  /** `item`: what was written (what a lease owner copies for its waiters). */
  | { readonly status: 'written'; readonly item?: RawItem }
  | { readonly status: 'refused' }
  | { readonly status: 'too-large'; readonly bytes: number };

/** How one table's DynamoDB calls are guarded, and where their trouble is reported. */
export interface L2StoreOptions {
  /** Milliseconds before a call is abandoned; `null` = no limit. */
  timeoutMs: number | null;
  /** `false` = no circuit breaker. */
  circuitBreaker: CircuitBreakerSettings | false;
  /** Under `'throw'` single failures reach the caller, so only circuit changes are logged. */
  onError: 'throw' | 'bypass';
  logger: { warn(message: string): void };
  /**
   * Told of every DynamoDB call made: its operation, duration (ms) and whether it failed. Read at
   * each call: while the set is empty, calls are neither timed nor described.
   */
  observers?: ReadonlySet<(call: L2Call) => void>;
  /**
   * Abort a request that outlives the timeout (an abort signal per call). `false` only for a
   * client whose HTTP handler ends slow requests itself and that went through `boundRetries`
   * (retry-deadline.ts) before its first call: no per-call options are passed then, so a client
   * built with `cacheMiddleware: true` keeps its middleware cache, and the SDK does not retry a
   * call past its timeout.
   */
  abortRequests?: boolean;
  /**
   * The write tokens of the engine this store writes for (see write-id.ts): its `set`s, deletes
   * and expiries are ordered by them. Default: tokens of the store's own.
   */
  writeIds?: WriteIds;
}

/**
 * One DynamoDB call, as {@link L2StoreOptions.observers} see it (a call the open circuit turned
 * away is not one): what `DynamoCacheMetrics` (`nestjs-dynamo-cache/otel`) records as latency.
 *
 * @example
 * const describe = (c: L2Call) => `${c.operation} on ${c.table}: ${c.durationMs} ms`;
 */
export interface L2Call {
  readonly operation: DynamoCacheOperation;
  readonly table: string;
  readonly namespace: string;
  readonly durationMs: number;
  readonly failed: boolean;
}

/** Creation times this far ahead of our clock are not clock skew but a bad item. */
export const FUTURE_TOLERANCE_S = 300;

/** DynamoDB's most requests in one `BatchWriteItem` call. */
const BATCH_WRITE_LIMIT = 25;
/**
 * Reads of one table on their way at once before further reads queue and leave batched, at the
 * end of the event loop's turn. One: a read that finds nothing on its way leaves at once (a lone
 * call waits for nothing); any other waits only for the rest of the turn, and every read made in
 * that turn leaves with it. A `GetItem` costs the client almost as much CPU as a `BatchGetItem`
 * of a dozen keys, and under load each answer starts as many reads as it settles: letting four
 * go alone kept a third of the reads at concurrency 16 in single calls (0.41 calls per read,
 * against 0.13 with one), at more than twice the CPU per read.
 */
const READS_ALONE = 1;
/** Requests of one table on their way at most: past them, queued reads wait for one to return. */
const READS_IN_FLIGHT = 32;
/** Retries of a batch's unprocessed items before giving up. */
const BATCH_RETRIES = 5;

/** The wait before retry `attempt` (1, 2, …) of what a batch call left unprocessed. */
const backOffMs = (attempt: number): number => 25 * 2 ** attempt;

/**
 * The most DynamoDB calls a batch write of `requests` may make, and the longest it may wait
 * between them: every batch retried for unprocessed items as often as it may be. What shutdown
 * allows a `deleteMany`.
 *
 * @example
 * batchWriteBound(400); // { calls: 96, waitMs: 24800 }
 */
export function batchWriteBound(requests: number): { calls: number; waitMs: number } {
  return batchBound(Math.ceil(requests / BATCH_WRITE_LIMIT));
}

/**
 * The same for {@link L2Store.readHeads} of `keys` keys (its batches one after another): what
 * shutdown allows a read of markers that must end before the copies of a lease are written.
 *
 * @example
 * batchReadBound(2); // { calls: 6, waitMs: 1550 }
 */
export function batchReadBound(keys: number): { calls: number; waitMs: number } {
  return batchBound(Math.ceil(keys / BATCH_GET_KEYS));
}

function batchBound(batches: number): { calls: number; waitMs: number } {
  let waitMs = 0;
  for (let attempt = 1; attempt <= BATCH_RETRIES; attempt++) waitMs += backOffMs(attempt);
  return { calls: batches * (1 + BATCH_RETRIES), waitMs: batches * waitMs };
}

const MISS: L2Read = { status: 'miss' };
const TOMBSTONE: L2Read = { status: 'miss', tombstone: true };
/** Past its expiry, but left in place: it still refuses older computations (see ReadPolicy). */
const KEPT: L2Read = { status: 'expired', deleted: false };
const REFUSED: L2Write = { status: 'refused' };

const DEFAULT_OPTIONS: L2StoreOptions = {
  timeoutMs: null,
  circuitBreaker: false,
  onError: 'throw',
  logger: { warn: () => undefined },
};

/**
 * The DynamoDB layer of one table: item codec, compression, and the three calls it needs, each
 * bounded by the timeout and guarded by the table's circuit breaker.
 */
export class L2Store {
  private readonly breaker: CircuitBreaker;
  private readonly options: L2StoreOptions;
  private readonly writeIds: WriteIds;
  /** The timeout of every call (none when `timeoutMs` is `null`). */
  private readonly deadlines: CallDeadlines | undefined;
  /** A failure has been logged and no success seen since. */
  private failing = false;
  /**
   * The operations failing in the current outage, and when each last failed: it is over when each
   * has answered again, or has not failed for a minute while others answer (one used seldom, as
   * `BatchWriteItem` by `deleteMany`, must not hide the next outage's first failure).
   */
  private readonly failingOps = new Map<DynamoCacheOperation, number>();
  /** Calls are numbered as they start; `lastFailed` is the number of the latest failed one. */
  private started = 0;
  private lastFailed = 0;

  /** Coalesces concurrent eventually consistent reads into `BatchGetItem` calls. */
  private readonly batcher: ReadBatcher;

  constructor(
    private readonly client: () => DynamoDBClient,
    readonly table: string,
    private readonly codec: ValueCodec,
    private readonly consistentRead: boolean,
    options: Partial<L2StoreOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.breaker = new CircuitBreaker(this.options.circuitBreaker);
    this.writeIds = this.options.writeIds ?? new WriteIds();
    const timeoutMs = this.options.timeoutMs;
    this.deadlines = timeoutMs === null ? undefined : new CallDeadlines(timeoutMs);
    this.batcher = new ReadBatcher(
      {
        single: (key, namespace) => this.getItem(key, namespace, false),
        batch: (keys, namespace) => this.batchGetItems(keys, namespace),
        keyOf: (item) => item[PARTITION_KEY]?.S,
        backOff: (attempt, left, namespace) =>
          this.backOff(attempt, 'BatchGetItem', left, namespace),
        waitTimeout: (namespace) => {
          const cause = new L2TimeoutError(timeoutMs ?? 0);
          return new DynamoCacheError(
            'BatchGetItem',
            `BatchGetItem on table "${this.table}" failed: ${cause.message}, waiting for its batch`,
            { namespace, cause },
          );
        },
      },
      READS_ALONE,
      this.deadlines,
      READS_IN_FLIGHT,
    );
  }

  /** The circuit breaker's state for this table. */
  get circuit(): CircuitState {
    return this.breaker.state;
  }

  /**
   * `GetItem`, then the expiry check against the reader's ttl. An expired item is deleted, on
   * condition that its `t` is still the one read, so a fresh item written meanwhile survives.
   * Throws {@link DynamoCacheError} when DynamoDB fails, times out or is skipped (circuit open).
   */
  async read(
    cacheKey: string,
    policy: ReadPolicy,
    namespace: string,
    consistent = this.consistentRead,
  ): Promise<L2Read> {
    // Strongly consistent reads stay single: BatchGetItem's consistency is per table and call.
    let item: RawItem | undefined;
    try {
      item = consistent
        ? await this.getItem(cacheKey, namespace, true)
        : await this.batcher.read(cacheKey, namespace);
    } catch (err) {
      // A batch fails for all its reads: each error names its own read's namespace.
      const e = err as DynamoCacheError;
      if (!(e instanceof DynamoCacheError) || e.namespace === namespace) throw e;
      throw new DynamoCacheError(e.operation, e.message, { namespace, cause: e.cause });
    }
    return item === undefined ? MISS : this.decodeRead(cacheKey, item, policy, namespace);
  }

  /**
   * Judges an item read at `cacheKey` (see {@link read}): at once for an uncompressed value
   * without classes (the usual hit waits for no Promise here), else as a Promise.
   */
  private decodeRead(
    cacheKey: string,
    item: RawItem,
    policy: ReadPolicy,
    namespace: string,
  ): L2Read | Promise<L2Read> {
    const decoded = inspectItem(item);
    if ('corrupt' in decoded) {
      const tRaw = item.t?.N;
      return typeof tRaw === 'string'
        ? { status: 'corrupt', reason: decoded.corrupt, tRaw }
        : { status: 'corrupt', reason: decoded.corrupt };
    }
    const nowS = Date.now() / 1000;
    if (decoded.t > nowS + FUTURE_TOLERANCE_S) {
      return {
        status: 'corrupt',
        reason: `t is in the future (${decoded.tRaw})`,
        tRaw: decoded.tRaw,
      };
    }
    // A tombstone is never removed by a reader: only the next value, or DynamoDB's TTL on `exp`
    // long after, replaces it, so it outlives any computation that could still write.
    if ('tombstone' in decoded) return TOMBSTONE;
    // A static ttl is judged before decoding: an expired value is never decoded.
    const until = typeof policy.ttl === 'function' ? Infinity : freshUntil(decoded, policy.ttl);
    if (nowS >= until + policy.grace)
      return this.expired(cacheKey, decoded, policy, nowS, namespace);
    if (decoded.compression === undefined) {
      const value = this.codec.decode(decoded.bytes, decoded.classes, namespace);
      // No closure on the usual path (a value without classes, judged at once).
      if (!(value instanceof Promise)) {
        return this.judge(cacheKey, item, decoded, value, until, policy, namespace, nowS);
      }
      return value.then((restored) =>
        this.judge(cacheKey, item, decoded, restored, until, policy, namespace, nowS),
      );
    }
    return decompressValue(decoded.bytes, decoded.compression).then(
      async (bytes) =>
        this.judge(
          cacheKey,
          item,
          decoded,
          await this.codec.decode(bytes, decoded.classes, namespace),
          until,
          policy,
          namespace,
          nowS,
        ),
      (cause: unknown): L2Read => ({
        status: 'corrupt',
        reason: `value cannot be decoded (${message(cause)})`,
        tRaw: decoded.tRaw,
      }),
    );
  }

  /** The outcome of a decoded value: hit, stale, expired (by a ttl function) or not a value. */
  private judge(
    cacheKey: string,
    item: RawItem,
    decoded: DecodedItem,
    value: DecodedValue,
    staticUntil: number,
    policy: ReadPolicy,
    namespace: string,
    nowS: number,
  ): L2Read | Promise<L2Read> {
    if (value.status !== 'value') {
      return value.status === 'corrupt' ? { ...value, tRaw: decoded.tRaw } : value;
    }
    let until = staticUntil;
    if (typeof policy.ttl === 'function') {
      // An entry `set` with a ttl of its own keeps it: the function is not asked.
      until =
        decoded.own === true
          ? freshUntil(decoded, null)
          : untilByFunction(decoded, policy.ttl, value.value);
      if (nowS >= until + policy.grace) {
        return this.expired(cacheKey, decoded, policy, nowS, namespace);
      }
    }
    const found: L2Found = {
      status: nowS < until ? 'hit' : 'stale',
      value: value.value,
      t: decoded.t,
      tRaw: decoded.tRaw,
      writeId: decoded.writeId,
      freshUntil: until,
      item,
    };
    return decoded.tags === undefined ? found : { ...found, tags: decoded.tags };
  }

  /** One `GetItem`: the item, or `undefined` when there is none. */
  private getItem(
    cacheKey: string,
    namespace: string,
    consistent: boolean,
  ): Promise<RawItem | undefined> {
    // Written out, not `[PARTITION_KEY]` (which adds the property to each new object): a literal
    // of one fixed shape. `satisfies` fails the build if PARTITION_KEY ever names another key.
    const key = { cache_key: { S: cacheKey } } satisfies Record<
      typeof PARTITION_KEY,
      AttributeValue
    >;
    return this.call(
      'GetItem',
      namespace,
      true,
      (client, abortSignal) =>
        client.send(
          new GetItemCommand(
            // Eventually consistent is DynamoDB's default: the field is sent only when it says more.
            consistent
              ? { TableName: this.table, Key: key, ConsistentRead: true }
              : { TableName: this.table, Key: key },
          ),
          sendOptions(abortSignal),
        ),
      itemOf,
    );
  }

  /** One `BatchGetItem` of whole items (for the read batcher). */
  private async batchGetItems(
    keys: readonly string[],
    namespace: string,
  ): Promise<{ items: RawItem[]; unprocessed: string[] }> {
    const out = await this.call('BatchGetItem', namespace, true, (client, abortSignal) =>
      client.send(
        new BatchGetItemCommand({
          RequestItems: {
            [this.table]: { Keys: keys.map((key) => ({ [PARTITION_KEY]: { S: key } })) },
          },
        }),
        sendOptions(abortSignal),
      ),
    );
    return {
      items: out.Responses?.[this.table] ?? [],
      unprocessed: (out.UnprocessedKeys?.[this.table]?.Keys ?? []).flatMap((k) =>
        k[PARTITION_KEY]?.S === undefined ? [] : [k[PARTITION_KEY].S],
      ),
    };
  }

  /**
   * Deletes an item past its expiry and grace, unless someone rewrote it meanwhile, or unless it
   * still guards against older computations (see {@link ReadPolicy.guardSeconds}): deleted, it
   * would let a computation that started before an `expire` or a `set` write its older result.
   */
  private async expired(
    cacheKey: string,
    decoded: DecodedItem,
    policy: ReadPolicy,
    nowS: number,
    namespace: string,
  ): Promise<L2Read> {
    if (
      policy.guardSeconds !== undefined &&
      (decoded.x !== undefined ||
        decoded.own === true ||
        // A `set` asks DynamoDB's TTL to keep it (see EntryLife.keepSeconds): so do readers.
        // (An item of 0.1.0, without `e`, had its `exp` from its ttl alone.)
        (decoded.e !== undefined &&
          decoded.exp !== undefined &&
          decoded.exp >= decoded.t + policy.guardSeconds)) &&
      nowS < Math.max(decoded.t, decoded.x ?? 0) + policy.guardSeconds
    ) {
      return KEPT;
    }
    try {
      const deleted = await this.deleteIfUnchanged(cacheKey, decoded.tRaw, namespace);
      return { status: 'expired', deleted };
    } catch (error) {
      return { status: 'expired', deleted: false, error: error as DynamoCacheError };
    }
  }

  /**
   * The `t` of each of `keys` that exists (tombstones and markers included), read without the
   * value (`ProjectionExpression`), 100 keys to a `BatchGetItem` call, unprocessed keys retried
   * with back-off. What tells a revalidation whether an entry changed, and what a marker says.
   */
  async readHeads(
    keys: readonly string[],
    namespace: string,
    consistent = this.consistentRead,
  ): Promise<Map<string, ItemHead>> {
    const heads = new Map<string, ItemHead>();
    for (let i = 0; i < keys.length; i += BATCH_GET_KEYS) {
      let pending: Record<string, AttributeValue>[] = [
        ...new Set(keys.slice(i, i + BATCH_GET_KEYS)),
      ].map((key) => ({ [PARTITION_KEY]: { S: key } }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await this.backOff(attempt, 'BatchGetItem', pending.length, namespace);
        const Keys = pending;
        const out = await this.call('BatchGetItem', namespace, true, (client, abortSignal) =>
          client.send(
            new BatchGetItemCommand({
              RequestItems: {
                [this.table]: {
                  Keys,
                  ProjectionExpression: '#k, #t, #x, #w',
                  ExpressionAttributeNames: {
                    '#k': PARTITION_KEY,
                    '#t': 't',
                    '#x': 'x',
                    '#w': 'w',
                  },
                  ConsistentRead: consistent,
                },
              },
            }),
            sendOptions(abortSignal),
          ),
        );
        for (const item of out.Responses?.[this.table] ?? []) {
          const key = item[PARTITION_KEY]?.S;
          const tRaw = item.t?.N;
          const t = Number(tRaw);
          if (key !== undefined && tRaw !== undefined && Number.isFinite(t)) {
            const writeId = item.w?.S;
            heads.set(
              key,
              item.x?.N === undefined ? { t, writeId } : { t, writeId, expired: true },
            );
          }
        }
        pending = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as typeof pending;
      }
    }
    return heads;
  }

  /**
   * Marks the entry stale as of `tSeconds` (`UpdateItem` of `e` and of `x`, the expiry time; kept
   * `graceSeconds`, and at least `keepSeconds`, more for DynamoDB's TTL), so readers serve it only
   * as a stale fallback and no computation started before now may replace it with an older value.
   * `false` when there is no value to expire (none, or one past its expiry and grace already).
   */
  async expire(
    cacheKey: string,
    tSeconds: number,
    graceSeconds: number,
    namespace: string,
    keepSeconds = 0,
    writeId: string = this.writeIds.next(),
  ): Promise<boolean> {
    const prefix = this.writeIds.prefix;
    return this.call('UpdateItem', namespace, false, (client, abortSignal) =>
      conditional(
        client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: { [PARTITION_KEY]: { S: cacheKey } },
            // `t` stays: invalidation markers compare with it, and an expiry must not make an
            // entry a clear or deleteByTag removed look newer than them. `w` is the expiry's:
            // a `set` given up before it that reaches DynamoDB after it is refused.
            UpdateExpression: 'SET #x = :t, #e = :t, #exp = :exp, #w = :w REMOVE #o',
            // A value past its expiry and grace is no value: an expiry must not serve it again.
            // Nor does one given up and come late replace a later write of this engine's.
            ConditionExpression: `attribute_exists(#v) AND (attribute_not_exists(#e) OR #e > :dead) AND (${NOT_BEHIND_OWN})`,
            ExpressionAttributeNames: {
              '#x': 'x',
              '#e': 'e',
              '#exp': 'exp',
              '#o': 'o',
              '#v': 'v',
              '#w': 'w',
            },
            ExpressionAttributeValues: {
              ':t': { N: String(tSeconds) },
              ':dead': { N: String(tSeconds - graceSeconds) },
              ':exp': {
                N: String(Math.ceil(tSeconds + Math.max(graceSeconds, keepSeconds, 1))),
              },
              ':own': { S: prefix },
              ':w': { S: writeId },
            },
          }),
          sendOptions(abortSignal),
        ),
        true,
        false,
      ),
    );
  }

  /**
   * Writes an invalidation marker (`clear`, `deleteByTag`): an item holding only `t`, which a
   * later marker may replace but an earlier one may not, nor one dated past the clock skew
   * items are allowed (which readers ignore: this one replaces it).
   */
  async writeMarker(key: string, tSeconds: number, namespace: string): Promise<void> {
    await this.call('PutItem', namespace, false, (client, abortSignal) =>
      conditional(
        client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: { [PARTITION_KEY]: { S: key }, t: { N: String(tSeconds) } },
            ConditionExpression: 'attribute_not_exists(#k) OR #t < :t OR #t > :future',
            ExpressionAttributeNames: { '#k': PARTITION_KEY, '#t': 't' },
            ExpressionAttributeValues: {
              ':t': { N: String(tSeconds) },
              ':future': { N: String(tSeconds + FUTURE_TOLERANCE_S) },
            },
          }),
          sendOptions(abortSignal),
        ),
        undefined,
        undefined,
      ),
    );
  }

  private async backOff(
    attempt: number,
    operation: DynamoCacheOperation,
    left: number,
    namespace: string,
  ): Promise<void> {
    if (attempt > BATCH_RETRIES) {
      const error = new DynamoCacheError(
        operation,
        `${operation} on table "${this.table}": ${left} requests still unprocessed after ${BATCH_RETRIES} retries`,
        // Throttled, as a GetItem of the same keys would have been: a lease waiter waits on.
        { namespace, cause: new UnprocessedRequestsError(left) },
      );
      // Throttling that outlasted the retries is a failure like any other: the breaker counts
      // it, and it is logged.
      this.lastFailed = ++this.started;
      this.failed(error, 'call');
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, backOffMs(attempt)));
  }

  /**
   * `PutItem` of an encoded value, compressed when large. A value too large for DynamoDB even
   * compressed is not written (`too-large`). Throws {@link DynamoCacheError} when DynamoDB fails.
   *
   * With `startedS` (a cache fill after a miss: the Unix time, in seconds, at which the
   * computation started), the write is conditional: it only replaces an item written before
   * then (or, with `seenT`, the unreadable item that was read, whatever its `t`), so a `delete`
   * (its tombstone), a `set` or another fill made meanwhile by any process wins, and the write
   * is `refused`. Without it (an explicit `set`), it overwrites.
   *
   * `writeId` (see write-id.ts) is stored as `w`: what tells this write from another of the same
   * `t`. An explicit overwrite with one is refused where a later write of this engine's is there
   * (see {@link notBehindOwn}): it was given up, and reached DynamoDB after the next one.
   *
   * `gated: false` attempts the write even while the circuit is open: an explicit overwrite
   * (`set`) that was skipped would leave the older value for other processes to read, whereas a
   * skipped cache fill after a miss loses nothing.
   */
  async write(
    cacheKey: string,
    value: EncodedValue,
    tSeconds: number,
    life: EntryLife,
    namespace: string,
    {
      gated = true,
      startedS,
      seenT,
      writeId,
    }: { gated?: boolean; startedS?: number; seenT?: string; writeId?: string } = {},
  ): Promise<L2Write> {
    const bytes = value.bytes;
    let item: Record<string, AttributeValue> | undefined;
    if (bytes.byteLength <= MAX_INFLATED_BYTES) {
      let packed;
      try {
        packed = await compressValue(bytes);
      } catch (cause) {
        throw new DynamoCacheError('serialize', `compressing a value failed: ${message(cause)}`, {
          namespace,
          cause,
        });
      }
      item = encodeItem(
        cacheKey,
        packed.bytes,
        tSeconds,
        life,
        packed.compression,
        value.classes,
        writeId,
      );
    }
    const size = item === undefined ? bytes.byteLength : itemSize(item);
    if (item === undefined || size > MAX_ITEM_BYTES) return { status: 'too-large', bytes: size };
    const Item = item;
    return this.call('PutItem', namespace, gated, (client, abortSignal) =>
      conditional(
        client.send(
          new PutItemCommand(
            startedS === undefined
              ? { TableName: this.table, Item, ...this.notBehindOwn(writeId) }
              : {
                  TableName: this.table,
                  Item,
                  ConditionExpression:
                    OLDER_THAN_STARTED + (seenT === undefined ? '' : ' OR #t = :seen'),
                  ExpressionAttributeNames: { '#k': PARTITION_KEY, '#t': 't', '#x': 'x' },
                  ExpressionAttributeValues:
                    seenT === undefined
                      ? { ':started': { N: String(startedS) } }
                      : { ':started': { N: String(startedS) }, ':seen': { N: seenT } },
                },
          ),
          sendOptions(abortSignal),
        ),
        { status: 'written', item: Item },
        REFUSED,
      ),
    );
  }

  /**
   * The condition of an explicit write (`set`, `delete`, `expire`) with token `writeId`: refused
   * where the item is a later write of this store's engine (its token's prefix, a greater count;
   * see write-id.ts). Such a write was given up by its timeout after DynamoDB had it, and reached
   * DynamoDB after the engine's next write of the key, which must stand. The very token passes (a
   * retry of a write that landed), and writes of other engines are overwritten as before.
   */
  private notBehindOwn(
    writeId: string | undefined,
  ): Pick<
    PutItemCommandInput,
    'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'
  > {
    const prefix = this.writeIds.prefix;
    if (writeId === undefined || !writeId.startsWith(prefix)) return {};
    return {
      ConditionExpression: NOT_BEHIND_OWN,
      ExpressionAttributeNames: { '#w': 'w' },
      ExpressionAttributeValues: { ':own': { S: prefix }, ':w': { S: writeId } },
    };
  }

  /**
   * Invalidates `cacheKey` in every process: an unconditional `PutItem` of a tombstone (no value;
   * `t` = now), which readers take as a miss and which no computation started before it may
   * replace. It lasts `lifeSeconds` (then DynamoDB's TTL on `exp`, a reader, or the next value
   * removes it), which must outlast any computation allowed to write. Attempted even while the
   * circuit is open: skipping it could leave a stale value for other processes.
   */
  async invalidate(
    cacheKey: string,
    namespace: string,
    lifeSeconds: number,
    writeId: string = this.writeIds.next(),
  ): Promise<boolean> {
    const Item = encodeTombstone(cacheKey, Date.now() / 1000, lifeSeconds, writeId);
    return this.call('PutItem', namespace, false, (client, abortSignal) =>
      conditional(
        client.send(
          new PutItemCommand({ TableName: this.table, Item, ...this.notBehindOwn(writeId) }),
          sendOptions(abortSignal),
        ),
        true,
        false,
      ),
    );
  }

  /**
   * A tombstone in place of a computation's result that could not be stored (started at
   * `startedS`): it replaces what the result would have (an item older than the computation),
   * never a newer one, so no process reads the older value the result superseded. `false` when a
   * newer item was there.
   */
  async invalidateOlder(
    cacheKey: string,
    startedS: number,
    namespace: string,
    lifeSeconds: number,
  ): Promise<boolean> {
    const Item = encodeTombstone(cacheKey, startedS, lifeSeconds, this.writeIds.next());
    return this.call('PutItem', namespace, true, (client, abortSignal) =>
      conditional(
        client.send(
          new PutItemCommand({
            TableName: this.table,
            Item,
            ConditionExpression: OLDER_THAN_STARTED,
            ExpressionAttributeNames: { '#k': PARTITION_KEY, '#t': 't', '#x': 'x' },
            ExpressionAttributeValues: { ':started': { N: String(startedS) } },
          }),
          sendOptions(abortSignal),
        ),
        true,
        false,
      ),
    );
  }

  /**
   * {@link invalidate} for many keys: tombstones written 25 to a `BatchWriteItem` call, and what
   * DynamoDB leaves unprocessed (throttling) retried with back-off; what is still unprocessed
   * after that throws {@link DynamoCacheError}.
   */
  async invalidateMany(
    cacheKeys: readonly string[],
    namespace: string,
    lifeSeconds: number,
    writeIds: readonly string[] = cacheKeys.map(() => this.writeIds.next()),
  ): Promise<void> {
    const t = Date.now() / 1000;
    await this.batchWrite(
      cacheKeys.map((key, i) => ({
        PutRequest: { Item: encodeTombstone(key, t, lifeSeconds, writeIds[i]) },
      })),
      namespace,
      false,
    );
  }

  /**
   * `requests` 25 to a `BatchWriteItem` call, what DynamoDB leaves unprocessed (throttling)
   * retried with back-off; what is still unprocessed after that throws {@link DynamoCacheError}.
   */
  private async batchWrite(
    all: readonly { PutRequest: { Item: RawItem } }[],
    namespace: string,
    gated = true,
  ): Promise<void> {
    for (let i = 0; i < all.length; i += BATCH_WRITE_LIMIT) {
      let requests = all.slice(i, i + BATCH_WRITE_LIMIT);
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt > 0) await this.backOff(attempt, 'BatchWriteItem', requests.length, namespace);
        const batch = requests;
        const out = await this.call('BatchWriteItem', namespace, gated, (client, abortSignal) =>
          client.send(
            new BatchWriteItemCommand({ RequestItems: { [this.table]: batch } }),
            sendOptions(abortSignal),
          ),
        );
        requests = (out.UnprocessedItems?.[this.table] ?? []) as typeof requests;
      }
    }
  }

  /**
   * Takes the lease of `cacheKey` for `ttlMs` with a conditional `PutItem`: succeeds when there is
   * no lease, it has lapsed, or it is this engine's (its owner id starts with `ownPrefix`).
   * `'held'` when someone else's lease is live (DynamoDB answering, not failing). Throws
   * {@link DynamoCacheError} when DynamoDB fails.
   */
  acquireLease(
    cacheKey: string,
    owner: string,
    ownPrefix: string,
    ttlMs: number,
    namespace: string,
  ): Promise<LeaseAcquire> {
    const now = Date.now();
    return this.call('PutItem', namespace, true, (client, abortSignal) =>
      conditional(
        client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: encodeLease(cacheKey, owner, now + ttlMs),
            // A lease of this engine's (`ownPrefix`) belongs to an earlier computation of the key,
            // whose release failed or which outlived computeTimeout: this one takes over.
            ConditionExpression:
              'attribute_not_exists(#k) OR #until < :now OR begins_with(#owner, :own)',
            ExpressionAttributeNames: { '#k': PARTITION_KEY, '#until': 'until', '#owner': 'owner' },
            ExpressionAttributeValues: { ':now': { N: String(now) }, ':own': { S: ownPrefix } },
          }),
          sendOptions(abortSignal),
        ),
        'acquired',
        'held',
      ),
    );
  }

  /**
   * Claims the lease of `cacheKey` for `ttlMs`: one `UpdateItem` that takes it when there is none
   * and in any case counts the claim, returning the item, so a process that finds it held also
   * learns its rank (which copy of the result to read) at no extra call. A lapsed lease, or one of
   * this engine's (owner id starting with `ownPrefix`), is then taken over with a conditional
   * `PutItem` ({@link acquireLease}); losing that race reads as a lease that lapses now.
   */
  async claimLease(
    cacheKey: string,
    owner: string,
    ownPrefix: string,
    ttlMs: number,
    namespace: string,
  ): Promise<LeaseClaim> {
    const now = Date.now();
    const until = now + ttlMs;
    const out = await this.call('UpdateItem', namespace, true, (client, abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { [PARTITION_KEY]: { S: leaseKey(cacheKey) } },
          UpdateExpression:
            'SET #owner = if_not_exists(#owner, :me), #until = if_not_exists(#until, :until), ' +
            '#exp = if_not_exists(#exp, :exp), #c = if_not_exists(#c, :me) ADD #n :one',
          ExpressionAttributeNames: {
            '#owner': 'owner',
            '#until': 'until',
            '#exp': 'exp',
            '#c': 'c',
            '#n': 'n',
          },
          ExpressionAttributeValues: {
            ':me': { S: owner },
            ':until': { N: String(until) },
            ':exp': { N: leaseExp(until) },
            ':one': { N: '1' },
          },
          ReturnValues: 'ALL_NEW',
        }),
        sendOptions(abortSignal),
      ),
    );
    const claim = decodeClaim(out.Attributes, owner);
    if (claim.status === 'acquired') return claim;
    if (claim.until >= Date.now() && !claim.owner.startsWith(ownPrefix)) return claim;
    if ((await this.acquireLease(cacheKey, owner, ownPrefix, ttlMs, namespace)) !== 'acquired') {
      return { ...claim, until: 0 };
    }
    return claim.copies
      ? { status: 'acquired', replaced: { owner: claim.owner, claims: claim.rank } }
      : { status: 'acquired' };
  }

  /** The lease of `cacheKey` (strongly consistent read), or `undefined` when there is none. */
  async readLease(cacheKey: string, namespace: string): Promise<LeaseState | undefined> {
    const out = await this.call('GetItem', namespace, true, (client, abortSignal) =>
      client.send(
        new GetItemCommand({
          TableName: this.table,
          Key: { [PARTITION_KEY]: { S: leaseKey(cacheKey) } },
          ConsistentRead: true,
        }),
        sendOptions(abortSignal),
      ),
    );
    return out.Item === undefined ? undefined : decodeLease(out.Item);
  }

  /**
   * Gives the lease back: `DeleteItem` on condition that `owner` still holds it (a lease that
   * lapsed and was taken over is not ours to delete). Resolves to the claims it had (`n`; 1 for a
   * lease without the count), or `undefined` when it was no longer ours. Throws
   * {@link DynamoCacheError} when DynamoDB fails.
   */
  async releaseLease(
    cacheKey: string,
    owner: string,
    namespace: string,
  ): Promise<number | undefined> {
    return this.call('DeleteItem', namespace, true, (client, abortSignal) =>
      client
        .send(
          new DeleteItemCommand({
            TableName: this.table,
            Key: { [PARTITION_KEY]: { S: leaseKey(cacheKey) } },
            ConditionExpression: '#owner = :me',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: { ':me': { S: owner } },
            ReturnValues: 'ALL_OLD',
          }),
          sendOptions(abortSignal),
        )
        .then((deleted) => Number(deleted.Attributes?.n?.N ?? 1), refusedAs(undefined)),
    );
  }

  /**
   * Writes `count` copies of a lease owner's result for its waiters (`valueItem`: the value item
   * it wrote; `undefined`: it wrote none), 25 to a `BatchWriteItem`, kept `lifeMs`.
   */
  async writeLeaseCopies(
    cacheKey: string,
    owner: string,
    valueItem: RawItem | undefined,
    count: number,
    lifeMs: number,
    namespace: string,
    sparing?: string,
  ): Promise<void> {
    const now = Date.now();
    const items = Array.from({ length: count }, (_, i) =>
      encodeLeaseCopy(cacheKey, i, owner, valueItem, now, lifeMs),
    );
    if (sparing === undefined) {
      await this.batchWrite(
        items.map((Item) => ({ PutRequest: { Item } })),
        namespace,
      );
      return;
    }
    // Copies of a lease taken over, written by the taker: late (throttled, retried), they must not
    // replace the copies the taker's own waiters read (the same keys), so each is conditional.
    await Promise.all(
      items.map((Item) =>
        this.call('PutItem', namespace, true, (client, abortSignal) =>
          conditional(
            client.send(
              new PutItemCommand({
                TableName: this.table,
                Item,
                ConditionExpression: 'attribute_not_exists(#lo) OR #lo <> :spared',
                ExpressionAttributeNames: { '#lo': 'lo' },
                ExpressionAttributeValues: { ':spared': { S: sparing } },
              }),
              sendOptions(abortSignal),
            ),
            undefined,
            undefined,
          ),
        ),
      ),
    );
  }

  /**
   * A waiter's look at copy `index` of `owner`'s result: `pending` until that owner has written
   * it; `failed` when it wrote no value; otherwise the copy judged like the value item itself.
   * An eventually consistent read (batched with others): a copy is written once, so a look that
   * misses it is only a look too early.
   */
  async readLeaseCopy(
    cacheKey: string,
    index: number,
    owner: string,
    policy: ReadPolicy,
    namespace: string,
  ): Promise<L2Read | 'pending' | 'failed'> {
    const key = leaseCopyKey(cacheKey, index);
    const copy = inspectLeaseCopy(await this.batcher.read(key, namespace), owner);
    return typeof copy === 'string' ? copy : this.decodeRead(key, copy.item, policy, namespace);
  }

  /** Returns `false` when someone rewrote the item after our read (theirs stays). */
  private deleteIfUnchanged(cacheKey: string, tRaw: string, namespace: string): Promise<boolean> {
    return this.deleteIf(cacheKey, 't', { N: tRaw }, namespace);
  }

  /**
   * `DeleteItem` on condition that `attribute` still holds `value`; `false` when it does not
   * (a failed condition is DynamoDB answering, not failing).
   */
  private deleteIf(
    key: string,
    attribute: string,
    value: AttributeValue,
    namespace: string,
  ): Promise<boolean> {
    return this.call('DeleteItem', namespace, true, (client, abortSignal) =>
      conditional(
        client.send(
          new DeleteItemCommand({
            TableName: this.table,
            Key: { [PARTITION_KEY]: { S: key } },
            ConditionExpression: '#a = :v',
            ExpressionAttributeNames: { '#a': attribute },
            ExpressionAttributeValues: { ':v': value },
          }),
          sendOptions(abortSignal),
        ),
        true,
        false,
      ),
    );
  }

  /**
   * One DynamoDB call: refused while the circuit is open (when `gated`), abandoned after the
   * timeout, its outcome recorded by the breaker, its failure wrapped in {@link DynamoCacheError}.
   * `pick` maps the result before it resolves. One Promise from `send` to the caller, with no
   * `async` layers: at one call at a time each layer is a measurable share of an L2 hit.
   */
  private call<T, U = T>(
    operation: DynamoCacheOperation,
    namespace: string,
    gated: boolean,
    send: (client: CacheClient, abortSignal: L2AbortSignal | undefined) => Promise<T>,
    pick?: (result: T) => U,
  ): Promise<U> {
    const permit: Permit = gated ? this.breaker.acquire() : 'call';
    if (permit === 'denied') {
      const cause = new CircuitOpenError(this.table, this.breaker.retryInMs);
      return Promise.reject(
        new DynamoCacheError(
          operation,
          `${operation} on table "${this.table}" skipped: ${cause.message}`,
          { namespace, cause },
        ),
      );
    }
    const number = ++this.started;
    const observers = this.options.observers;
    const startedAt = observers === undefined || observers.size === 0 ? -1 : performance.now();
    return new Promise<U>((resolve, reject) => {
      let over = false;
      let deadline: CallDeadline | undefined;
      // Neither settles the call twice, and neither may throw: a throw here would be an
      // unhandled rejection, and the call would never settle.
      const fail = (cause: unknown): void => {
        if (over) return;
        over = true;
        deadline?.end();
        if (startedAt >= 0) this.observed(operation, namespace, startedAt, true);
        const error = new DynamoCacheError(
          operation,
          `${operation} on table "${this.table}" failed: ${message(cause)}`,
          { namespace, cause },
        );
        if (number > this.lastFailed) this.lastFailed = number;
        try {
          this.failed(error, permit);
        } catch {
          // A logger's fault: the call's own error stands.
        }
        reject(error);
      };
      let sent: Promise<T>;
      try {
        const client = this.client();
        const deadlines = this.deadlines;
        if (deadlines === undefined) sent = send(client, undefined);
        else {
          const abortable = this.options.abortRequests !== false;
          const signal = abortable ? new L2AbortSignal() : undefined;
          // The deadline is the guarantee: the SDK honours the signal during connection, request
          // and retry back-off, but the call is given up at this moment whatever it does.
          deadline = deadlines.start(() => {
            const cause = new L2TimeoutError(deadlines.timeoutMs);
            try {
              signal?.abort(cause);
            } catch {
              // The handler's fault: the call is given up all the same.
            }
            fail(cause);
          });
          // Without an abort signal, the SDK's retries of an abandoned call are cut off instead.
          sent = send(abortable ? client : withRetryDeadline(client, deadlines.timeoutMs), signal);
        }
      } catch (cause) {
        fail(cause);
        return;
      }
      sent.then((result) => {
        if (over) return;
        let value: U;
        try {
          value = pick === undefined ? (result as unknown as U) : pick(result);
        } catch (cause) {
          // An answer that is not one (a stub client resolving nothing): a failed call.
          fail(cause);
          return;
        }
        over = true;
        deadline?.end();
        if (startedAt >= 0) this.observed(operation, namespace, startedAt, false);
        // A call that was already on its way when a later one failed says nothing about recovery;
        // nor does another operation's success while one keeps failing (a denied or throttled
        // operation beside working ones is one outage, not one per call).
        if (number >= this.lastFailed) {
          const closed = this.breaker.success();
          if (closed) this.failingOps.clear();
          else if (this.failingOps.size > 0) {
            this.failingOps.delete(operation);
            const quietSince = Date.now() - OUTAGE_QUIET_MS;
            for (const [op, at] of this.failingOps) if (at < quietSince) this.failingOps.delete(op);
          }
          if (this.failing && this.failingOps.size === 0) {
            this.failing = false;
            try {
              this.options.logger.warn(
                `DynamoDB table "${this.table}" answers again; L2 is back in use`,
              );
            } catch {
              // A logger's fault does not lose the answer.
            }
          }
        }
        resolve(value);
      }, fail);
    });
  }

  private observed(
    operation: DynamoCacheOperation,
    namespace: string,
    startedAt: number,
    failed: boolean,
  ): void {
    const call: L2Call = {
      operation,
      table: this.table,
      namespace,
      durationMs: performance.now() - startedAt,
      failed,
    };
    for (const observer of this.options.observers ?? []) {
      try {
        observer(call);
      } catch {
        // An observer's fault must not reach the call it observes.
      }
    }
  }

  /**
   * Logs a failure of this table that reached no caller (under `onError: 'throw'`, a route's
   * write made after its response went out) as the first failure of an outage is logged under
   * `'bypass'`: once per outage, with "answers again" when it is over. `error` was recorded by
   * the call that failed (see {@link failed}).
   */
  reportUnseen(error: DynamoCacheError): void {
    if (this.failing) return;
    this.failing = true;
    this.options.logger.warn(
      `${error.namespace}: ${error.message}; results are not stored in DynamoDB until it answers again`,
    );
  }

  private failed(error: DynamoCacheError, permit: Permit): void {
    const opened = this.breaker.failure(permit);
    // One line per outage: the first failure when nothing was failing.
    const newOutage = this.failingOps.size === 0;
    this.failingOps.set(error.operation, Date.now());
    if (newOutage && !this.failing && this.options.onError === 'bypass') {
      this.failing = true;
      this.options.logger.warn(
        `${error.namespace}: ${error.message}; serving without L2 until it answers again`,
      );
    }
    // One line per outage: the circuit opening is news only when nothing was logged yet (under
    // 'throw', where single failures reach the caller instead); re-openings after failed probes
    // are the same outage.
    if (opened && !this.failing) {
      this.failing = true;
      const settings = this.options.circuitBreaker as CircuitBreakerSettings;
      this.options.logger.warn(
        `DynamoDB table "${this.table}": circuit breaker open after ${settings.failures} consecutive failures; ` +
          `L2 is skipped for ${settings.cooldownMs} ms, then probed with one call`,
      );
    }
  }
}

/** See {@link L2Store.notBehindOwn}. */
const NOT_BEHIND_OWN = 'attribute_not_exists(#w) OR NOT begins_with(#w, :own) OR #w <= :w';

/**
 * What a computation started at `:started` may replace (its fill, or the tombstone of a result it
 * cannot store): no item, or one older than the computation and not expired since it started.
 */
const OLDER_THAN_STARTED =
  'attribute_not_exists(#k) OR (#t < :started AND (attribute_not_exists(#x) OR #x < :started))';

/** An operation that has not failed for this long, while others answer, no longer counts as failing. */
const OUTAGE_QUIET_MS = 60_000;

/**
 * The options of a `send`: none without an abort signal, so a client built with
 * `cacheMiddleware: true` keeps reusing its resolved middleware (per-call options turn that off).
 */
function sendOptions(
  abortSignal: L2AbortSignal | undefined,
): { abortSignal: L2AbortSignal } | undefined {
  return abortSignal === undefined ? undefined : { abortSignal };
}

/** The item of a `GetItem`'s answer. */
function itemOf(out: { Item?: RawItem }): RawItem | undefined {
  return out.Item;
}

function message(err: unknown): string {
  if (err instanceof Error)
    return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  try {
    return String(err);
  } catch {
    // An object without a way to a string (no prototype, say).
    return Object.prototype.toString.call(err);
  }
}

/**
 * The outcome of a conditional write: `ok` when it was made, `refused` when its condition failed
 * (DynamoDB answering "no", not failing); other errors are thrown.
 */
function conditional<T>(sent: Promise<unknown>, ok: T, refused: T): Promise<T> {
  return sent.then(() => ok, refusedAs(refused));
}

/** A rejection handler: `refused` for a failed condition, any other error rethrown. */
function refusedAs<T>(refused: T): (cause: unknown) => T {
  return (cause) => {
    if (isConditionFailed(cause)) return refused;
    throw cause;
  };
}

/** A failed `ConditionExpression`: DynamoDB answering "no", not failing. */
function isConditionFailed(cause: unknown): boolean {
  return (cause as Error | undefined)?.name === 'ConditionalCheckFailedException';
}
