import { DynamoCacheError } from '../errors.js';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import type { LeaseSettings } from './l2/cache-lease.js';
import { emptyStats, type CacheStatsSnapshot } from './namespace/cache-stats.js';
import {
  DEFAULT_CIRCUIT_BREAKER,
  type CircuitBreakerSettings,
  type CircuitState,
} from './l2/circuit-breaker.js';
import {
  CacheNamespace,
  DEFAULT_COMPUTE_TIMEOUT_MS,
  DEFAULT_GRACE_BACKOFF,
  DEFAULT_L1_MAX_AGE,
  type CacheLogger,
  type NamespaceContext,
  type OnErrorPolicy,
} from './namespace/cache-namespace.js';
import { FUTURE_TOLERANCE_S, L2Store, type L2Call } from './l2/l2-store.js';
import { WriteIds } from './l2/write-id.js';
import {
  isBusMessage,
  type DynamoCacheBus,
  type DynamoCacheBusMessage,
} from './invalidation/cache-bus.js';
import { guardedLogger } from './guarded-logger.js';
import { timerDelay } from './timer-delay.js';
import { InvalidationMarkers } from './invalidation/invalidation-markers.js';
import { tagMarkerKey } from './l2/item-codec.js';
import { CacheEvents } from './namespace/cache-events.js';
import type { TagsOption, TtlOption } from './namespace/entry-policy.js';
import type { ClassRef } from './values/class-record.js';
import { ClassRegistry } from './values/class-registry.js';
import type { CacheSerializer } from './values/serializer.js';
import { ValueCodec } from './values/value-codec.js';
import { PendingWork } from './pending-work.js';

/** Engine-wide settings, already validated. */
export interface CacheEngineSettings {
  /** Returns the DynamoDB client; called on first L2 access, not before. */
  client: () => DynamoDBClient;
  table: string;
  ttl: TtlOption;
  maxsize: number | null;
  keyPrefix: string;
  onError: OnErrorPolicy;
  serializer: CacheSerializer;
  consistentRead: boolean;
  logger: CacheLogger;
  /**
   * Milliseconds a DynamoDB call may take before it is abandoned and treated as a failure;
   * `null` = no limit. Default {@link DEFAULT_L2_TIMEOUT_MS}.
   */
  l2Timeout?: number | null;
  /** Circuit breaker per table; `false` = none. Default {@link DEFAULT_CIRCUIT_BREAKER}. */
  circuitBreaker?: CircuitBreakerSettings | false;
  /**
   * Cross-process single-flight after an L2 miss (see {@link LeaseSettings}); `false` or absent =
   * off: no lease items, no extra DynamoDB calls.
   */
  lease?: LeaseSettings | false;
  /**
   * Milliseconds a computation holds its key (see {@link NamespaceSettings.computeTimeout});
   * default {@link DEFAULT_COMPUTE_TIMEOUT_MS}.
   */
  computeTimeout?: number;
  /** Classes to restore from L2 by name, for every namespace. */
  types?: readonly ClassRef[];
  /** A result for which this returns `true` is returned but not stored. */
  unless?: (value: never) => boolean;
  /** Seconds entries are kept past expiry, served when recomputing fails. Default 0 (none). */
  grace?: number;
  /** Seconds between two attempts of a failing computation, meanwhile. */
  graceBackoff?: number;
  /** Soft timeout (ms) of a recomputation when a stale value is at hand; `0` = stale-while-revalidate. */
  timeout?: number;
  /** Seconds an L1 entry is served before it is checked against DynamoDB; `null` = never. */
  l1MaxAge?: number | null;
  /** Push invalidation between processes. */
  bus?: DynamoCacheBus;
  /**
   * `false` when the client ends slow requests itself (the module's own client, built with a
   * socket timeout) and went through `boundRetries` before its first call: no abort signal is
   * then passed per call. Default `true`.
   */
  abortRequests?: boolean;
}

/** Default `l2Timeout`: far above DynamoDB's usual latency, far below a request's patience. */
export const DEFAULT_L2_TIMEOUT_MS = 1000;

/** Per-namespace overrides of the engine's defaults. */
export interface NamespaceOptions {
  ttl?: TtlOption;
  /** Overrides the engine's `grace`. */
  grace?: number;
  /** Overrides the engine's `graceBackoff`. */
  graceBackoff?: number;
  /** Overrides the engine's `timeout`; `null`: none, whatever the engine's. */
  timeout?: number | null;
  /** Overrides the engine's `l1MaxAge`. */
  l1MaxAge?: number | null;
  /** The entries' tags, for `deleteByTag`. */
  tags?: TagsOption;
  maxsize?: number | null;
  table?: string;
  key?: (...args: never[]) => unknown;
  requirePromise?: boolean;
  /** Overrides the engine's `lease` for this namespace. */
  lease?: LeaseSettings | false;
  /** Overrides the engine's `computeTimeout` for this namespace. */
  computeTimeout?: number;
  /** A result for which this returns `true` is not stored (overrides the engine's). */
  unless?: (value: never, ...args: never[]) => boolean;
  /**
   * Whether an error of the method may be answered with a stale value (within grace). Default:
   * every error but the cache's own misuse. An error for which it returns `false` is an answer
   * (a route's 404), never hidden and not retried later.
   */
  staleOnError?: (error: unknown) => boolean;
  /**
   * Of the errors `staleOnError` refuses, those that answer every caller (a route's 404): the
   * value such an answer replaces is dropped from L1 and tombstoned in DynamoDB (if older than
   * the computation). Default: none.
   */
  supersededBy?: (error: unknown) => boolean;
  /** Classes to restore from L2 by name (registered engine-wide; see {@link CacheEngine.declareTypes}). */
  types?: readonly ClassRef[];
  /**
   * What produces this namespace (a class, for `Class.method` names). A different owner asking
   * for the same name is a configuration error: two classes would serve each other's results.
   */
  owner?: NamespaceOwner;
}

/** What produces a namespace: a class, and how to name it in a message. */
export interface NamespaceOwner {
  readonly value: object;
  readonly description: string;
}

/** How often the engine looks for expired L1 entries to free (each namespace paces itself). */
const SWEEP_TICK_MS = 1000;

/**
 * The whole cache of one application: namespaces (each with its L1) sharing one DynamoDB client
 * and one L2 store per table. Free of NestJS; the module builds one from its options.
 *
 * @example
 * const engine = new CacheEngine({ client: () => ddb, table: 'app-cache', ttl: 60, maxsize: 1000,
 *   keyPrefix: '', onError: 'throw', serializer: v8Serializer, consistentRead: false, logger: console });
 * const rate = engine.namespace('rates.rate');
 * await rate.run(null, ['EUR', 'USD'], fetchRate);
 */
export class CacheEngine {
  private readonly namespaces = new Map<string, CacheNamespace>();
  /** Each namespace's settings as fixed at its creation, to tell a later use that asks otherwise. */
  private readonly fixed = new Map<string, FixedSettings>();
  private readonly warnedDifferent = new Set<string>();
  private readonly stores = new Map<string, L2Store>();
  /** Work shutdown waits for, and until when (ms epoch) it is worth waiting. */
  private readonly pending = new PendingWork();
  private readonly owners = new Map<
    string,
    { readonly value: object; readonly description: string }
  >();
  /** Names this engine on the leases it takes, and on its bus messages. */
  private readonly leaseOwner = randomUUID();
  /** The tokens of this engine's writes (`w`): one writer, whatever else runs in the process. */
  private readonly writeIds = new WriteIds();
  private markerCache: InvalidationMarkers | undefined;
  private subscribed: Promise<void> | undefined;
  private readonly codec: ValueCodec;
  /** Outcomes reported to listeners (see {@link CacheEvents}). */
  readonly events = new CacheEvents();
  /**
   * Counters of what concerns no namespace (`deleteByTag`): part of the total, as its events
   * (namespace `''`) are part of what listeners count.
   */
  private readonly ownStats = emptyStats();
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private readonly callObservers = new Set<(call: L2Call) => void>();
  private readonly closeListeners = new Set<() => void>();
  private draining: Promise<void> | undefined;

  /** The settings given, with the logger guarded (see {@link guardedLogger}). */
  readonly settings: CacheEngineSettings;

  constructor(settings: CacheEngineSettings) {
    this.settings = { ...settings, logger: guardedLogger(settings.logger) };
    this.codec = new ValueCodec(settings.serializer, new ClassRegistry());
    this.declareTypes(settings.types, 'the module option "types"');
  }

  /**
   * Declares classes to restore from L2 by name (`types`). Throws a `config` DynamoCacheError
   * naming both when two different classes share a name.
   *
   * @example
   * engine.declareTypes([User, Address], '@DynamoCached on UsersService.find');
   */
  declareTypes(types: readonly ClassRef[] | undefined, where: string): void {
    this.codec.registry.declare(types, where);
  }

  /**
   * The namespace called `name`, created on first use with `options` over the engine defaults.
   * Later calls return the same namespace (its settings are fixed at creation).
   */
  namespace(name: string, options: NamespaceOptions = {}): CacheNamespace {
    if (options.owner !== undefined) this.claim(name, options.owner);
    if (options.types !== undefined) this.declareTypes(options.types, `namespace "${name}"`);
    let ns = this.namespaces.get(name);
    if (ns === undefined) {
      const s = this.settings;
      const fixed: FixedSettings = {
        ttl: options.ttl === undefined ? s.ttl : options.ttl,
        maxsize: options.maxsize === undefined ? s.maxsize : options.maxsize,
        table: options.table ?? s.table,
        computeTimeout: options.computeTimeout ?? s.computeTimeout ?? DEFAULT_COMPUTE_TIMEOUT_MS,
        // Defaults filled in as the namespace would, so a later use that names them is no change.
        grace: options.grace ?? s.grace ?? 0,
        graceBackoff: options.graceBackoff ?? s.graceBackoff ?? DEFAULT_GRACE_BACKOFF,
        timeout: options.timeout === undefined ? (s.timeout ?? null) : options.timeout,
        l1MaxAge:
          options.l1MaxAge !== undefined
            ? options.l1MaxAge
            : s.l1MaxAge === undefined
              ? DEFAULT_L1_MAX_AGE
              : s.l1MaxAge,
        tags: options.tags,
        unless: options.unless ?? s.unless,
      };
      const context: NamespaceContext = {
        keyPrefix: s.keyPrefix,
        onError: s.onError,
        codec: this.codec,
        events: this.events,
        logger: s.logger,
        l2: this.store(fixed.table),
        markers: this.markers,
        publish: (message) => this.publish(message),
        engineId: this.leaseOwner,
        writeIds: this.writeIds,
        leaseOwner: this.leaseOwner,
        track: (work, holdMs, settled) => this.track(work, holdMs, settled),
        callBoundMs: this.l2BoundMs(),
      };
      ns = new CacheNamespace(
        {
          namespace: name,
          ttl: fixed.ttl,
          maxsize: fixed.maxsize,
          key: options.key,
          requirePromise: options.requirePromise,
          lease: options.lease === undefined ? (s.lease ?? false) : options.lease,
          computeTimeout: fixed.computeTimeout,
          unless: fixed.unless,
          staleOnError: options.staleOnError,
          supersededBy: options.supersededBy,
          grace: fixed.grace,
          graceBackoff: fixed.graceBackoff,
          timeout: fixed.timeout ?? undefined,
          l1MaxAge: fixed.l1MaxAge,
          tags: fixed.tags,
        },
        context,
      );
      this.namespaces.set(name, ns);
      this.fixed.set(name, fixed);
      if (this.namespaces.size === MANY_NAMESPACES) {
        this.settings.logger.warn(
          `${MANY_NAMESPACES.toLocaleString('en')} namespaces in this process (the last "${name}"): a namespace is never released (each keeps its own L1 of up to maxsize entries), so names must be a fixed set; put what varies (a tenant, an id) in the arguments`,
        );
      }
      // The sweep also lets go of computations past computeTimeout, whatever the ttl.
      this.startSweeper();
    } else if (!this.warnedDifferent.has(name)) {
      this.warnIfDifferent(name, options);
    }
    return ns;
  }

  /**
   * What this engine knows of `clear` and `deleteByTag` markers (kept in the module's table, read
   * at most every `l1MaxAge`).
   */
  get markers(): InvalidationMarkers {
    if (this.markerCache === undefined) {
      const maxAge =
        this.settings.l1MaxAge === undefined ? DEFAULT_L1_MAX_AGE : this.settings.l1MaxAge;
      this.markerCache = new InvalidationMarkers(
        this.store(this.settings.table),
        // Without l1MaxAge, markers are still read again after the default.
        (maxAge ?? DEFAULT_L1_MAX_AGE) * 1000,
        (work) => this.track(work),
      );
      this.markerCache.onNewer = (key, t) => {
        for (const ns of this.namespaces.values()) ns.dropInvalidated(key, t);
      };
    }
    return this.markerCache;
  }

  /**
   * Invalidates every entry carrying one of `tags`, in every namespace and process: one marker
   * item per tag (its time, which readers compare with each entry's `t`), no Scan. Entries in
   * this process's L1 go at once; other processes see it within `l1MaxAge` (at once with a bus).
   *
   * @example
   * await engine.deleteByTag(['customer:42']);
   */
  async deleteByTag(tags: readonly string[]): Promise<void> {
    const tS = Date.now() / 1000;
    const keys = [...new Set(tags)].map((tag) => tagMarkerKey(this.settings.keyPrefix, tag));
    for (const key of keys) this.markers.note(key, tS);
    const store = this.markers.store;
    const written = await Promise.allSettled(
      keys.map((key) => this.track(store.writeMarker(key, tS, `tag ${key}`))),
    );
    // `deleteByTag` concerns no one namespace: its events carry namespace ''.
    written.forEach((w, i) => {
      if (w.status !== 'fulfilled') return;
      this.ownStats.l2Deletes++;
      this.events.emit('delete', '', () => keys[i]);
    });
    const failed = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failed !== undefined) {
      const error = failed.reason as DynamoCacheError;
      this.ownStats.l2Errors++;
      this.events.emit('error', '', () => undefined, { error });
      // As for every other DynamoDB failure: logged by the store, thrown only under 'throw'.
      if (this.settings.onError === 'throw') throw error;
    }
    this.publish({
      source: this.leaseOwner,
      kind: 'markers',
      markers: keys.map((key) => ({ key, t: tS })),
    });
  }

  /**
   * Tells `observer` of every DynamoDB call the cache starts from then on (operation, table,
   * namespace, duration, failure), e.g. for a latency histogram; returns the function that stops
   * it. While no observer is registered, calls are not timed at all.
   *
   * @example
   * const off = engine.observeCalls((c) => histogram.record(c.durationMs, { operation: c.operation }));
   */
  observeCalls(observer: (call: L2Call) => void): () => void {
    this.callObservers.add(observer);
    return () => {
      this.callObservers.delete(observer);
    };
  }

  /**
   * Connects the bus (once): messages of other engines are applied to this one's L1. A bus that
   * fails to subscribe is logged, not thrown: the cache works without it (other processes'
   * invalidations arrive within `l1MaxAge`), and an application must start during an outage.
   *
   * @example
   * await engine.connectBus();
   */
  connectBus(): Promise<void> {
    const bus = this.settings.bus;
    if (bus === undefined) return Promise.resolve();
    return (this.subscribed ??= Promise.resolve()
      .then(() => bus.subscribe((message) => this.receive(message)))
      .catch((err: unknown) => {
        this.settings.logger.error(
          `cache bus: subscribing failed (${(err as Error)?.message ?? String(err)}); invalidations of other processes reach this one within l1MaxAge`,
        );
      }));
  }

  /** Applies another engine's invalidation (from the bus). */
  receive(message: DynamoCacheBusMessage): void {
    // What arrives is whatever a peer (or anyone who can write to the bus) sent: only a well-formed
    // message is applied, and markers only with a time that is a time (not past the clock skew
    // items are allowed), so a forged one can neither poison a marker nor switch a cache off.
    if (!isBusMessage(message) || message.source === this.leaseOwner) return;
    if (message.kind === 'markers') {
      const latest = Date.now() / 1000 + FUTURE_TOLERANCE_S;
      for (const marker of message.markers) {
        if (marker.t <= latest) this.markers.note(marker.key, marker.t);
      }
      return;
    }
    this.namespaces.get(message.namespace)?.dropLocally(message.keys, message.kind === 'expire');
  }

  private publish(message: DynamoCacheBusMessage): void {
    const bus = this.settings.bus;
    if (bus === undefined) return;
    try {
      Promise.resolve(bus.publish(message)).catch((err: unknown) => this.busFailed(err));
    } catch (err) {
      this.busFailed(err);
    }
  }

  private busFailed(err: unknown): void {
    // A lost message costs only delay: other processes still see the change within l1MaxAge.
    this.settings.logger.warn(
      `cache bus: publishing an invalidation failed (${(err as Error)?.message ?? String(err)}); other processes will see it within l1MaxAge`,
    );
  }

  /**
   * Records that `owner` produces namespace `name`. Throws a `config` DynamoCacheError naming both
   * when a different owner already did: two classes with one name (two modules, a minified
   * build) would otherwise share entries in silence.
   *
   * @example
   * engine.claim('UsersService.find', { value: UsersService, description: 'UsersService (in UsersModule)' });
   */
  claim(name: string, owner: NamespaceOwner): void {
    const known = this.owners.get(name);
    if (known === undefined) {
      this.owners.set(name, owner);
    } else if (known.value !== owner.value) {
      throw new DynamoCacheError(
        'config',
        `namespace "${name}" would be shared by two different classes, ${known.description} and ${owner.description}, ` +
          "which would serve each other's results; give one of them its own @DynamoCached({ namespace })",
        { namespace: name },
      );
    }
  }

  // A namespace's settings are fixed by its first use; say so when a later use asks otherwise,
  // since two decorated methods sharing a `namespace`, or a `get` before a `wrap` with options,
  // would otherwise disagree in silence.
  private warnIfDifferent(name: string, options: NamespaceOptions): void {
    const fixed = this.fixed.get(name);
    if (fixed === undefined) return;
    const differs = FIXED_SETTINGS.filter((k) => differentSetting(options[k], fixed[k]));
    if (differs.length === 0) return;
    this.warnedDifferent.add(name);
    this.settings.logger.warn(
      `namespace "${name}" is already in use with ${differs.map((k) => `${k}=${describeSetting(fixed[k])}`).join(', ')}; ` +
        `a later use asked for ${differs.map((k) => `${k}=${describeSetting(options[k])}`).join(', ')}, which is ignored ` +
        '(a namespace keeps the settings of its first use in the process: pass the same options to every use)',
    );
  }

  /**
   * A copy of every namespace's counters and their total, which also holds what concerns no
   * namespace (`deleteByTag`'s markers and failures).
   */
  stats(): CacheStatsSnapshot {
    const total = { ...this.ownStats };
    const namespaces: CacheStatsSnapshot['namespaces'] = {};
    for (const [name, ns] of this.namespaces) {
      const copy = { ...ns.stats, l1Size: ns.l1Size };
      namespaces[name] = copy;
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += copy[k];
    }
    return { total, namespaces };
  }

  /**
   * The tables this engine uses so far: its own first, then those of the namespaces created
   * since, each once.
   *
   * @example
   * engine.tables(); // ['app-cache', 'sessions-cache']
   */
  tables(): string[] {
    return [...new Set([this.settings.table, ...[...this.fixed.values()].map((f) => f.table)])];
  }

  /**
   * The circuit breaker's state for `table` (default: the engine's table). A table not used yet
   * is `closed`.
   *
   * @example
   * engine.circuit(); // 'closed' | 'open' | 'half-open'
   */
  circuit(table: string = this.settings.table): CircuitState {
    return this.stores.get(table)?.circuit ?? 'closed';
  }

  /**
   * Resolves when every computation and DynamoDB write started so far has settled (writes that
   * computations start meanwhile included), or is no longer worth waiting for: a computation past
   * its `computeTimeout` (it would write nothing), a write past `l2Timeout`. Stops the L1 sweeper.
   * Concurrent calls share one wait.
   *
   * @example
   * await engine.drain(); // before destroying the DynamoDB client
   */
  drain(): Promise<void> {
    this.stopSweeper();
    return this.settle();
  }

  /**
   * Closes the bus, if any (after {@link drain}), then calls the {@link onClose} listeners, even
   * when the bus fails to close.
   */
  async close(): Promise<void> {
    try {
      await this.settings.bus?.close?.();
    } finally {
      const listeners = [...this.closeListeners];
      this.closeListeners.clear();
      for (const listener of listeners) {
        try {
          listener();
        } catch {
          // One listener's fault must neither fail the shutdown nor keep the others uncalled.
        }
      }
    }
  }

  /**
   * Calls `listener` once, when {@link close} runs: after the module's last {@link drain}, so
   * whatever shutdown still did (writes of computations in flight, of other providers' shutdown
   * hooks) has been reported to {@link events} and call observers by then. What observes the
   * engine stops there, rather than in a Nest hook that runs before the drain. Returns the
   * function that removes it.
   *
   * @example
   * const off = engine.onClose(() => stopCounting());
   */
  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => {
      this.closeListeners.delete(listener);
    };
  }

  /**
   * Resolves when every computation and DynamoDB write started so far has settled, or is no
   * longer worth waiting for (see {@link drain}); the engine goes on working.
   *
   * @example
   * await engine.settle(); // the entries of the routes just answered are in DynamoDB
   */
  settle(): Promise<void> {
    return (this.draining ??= this.waitForPending().finally(() => {
      this.draining = undefined;
    }));
  }

  private async waitForPending(): Promise<void> {
    for (;;) {
      const now = Date.now();
      const { works: live, until } = this.pending.live(now);
      if (live.length === 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled(live),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timerDelay(until - now));
        }),
      ]);
      clearTimeout(timer);
    }
  }

  /** How long, beyond its own hold, a DynamoDB call of this engine may keep shutdown waiting. */
  private l2BoundMs(): number {
    const l2 =
      this.settings.l2Timeout === undefined ? DEFAULT_L2_TIMEOUT_MS : this.settings.l2Timeout;
    // Without an l2Timeout a call is unbounded; shutdown still gives up after the default.
    return (l2 ?? DEFAULT_L2_TIMEOUT_MS) + 100;
  }

  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const ns of this.namespaces.values()) ns.sweep(now);
      // Work past its deadline is no longer waited for; a promise that never settles must not
      // be held here for good either.
      this.pending.dropExpired(now);
    }, SWEEP_TICK_MS);
    // Housekeeping must never keep a process alive.
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private store(table: string): L2Store {
    let store = this.stores.get(table);
    if (store === undefined) {
      const s = this.settings;
      store = new L2Store(s.client, table, this.codec, s.consistentRead, {
        timeoutMs: s.l2Timeout === undefined ? DEFAULT_L2_TIMEOUT_MS : s.l2Timeout,
        circuitBreaker: s.circuitBreaker === undefined ? DEFAULT_CIRCUIT_BREAKER : s.circuitBreaker,
        onError: s.onError,
        logger: s.logger,
        abortRequests: s.abortRequests,
        observers: this.callObservers,
        writeIds: this.writeIds,
      });
      this.stores.set(table, store);
    }
    return store;
  }

  private track<T>(work: Promise<T>, holdMs = 0, settled?: () => void): Promise<T> {
    const entry = this.pending.add(work, Date.now() + holdMs + this.l2BoundMs());
    const done = (): void => {
      this.pending.remove(entry);
      settled?.();
    };
    work.then(done, done);
    return work;
  }
}

/**
 * Past this many namespaces, one warning: names made from what varies (`tenant:${id}`) would
 * grow memory without bound, each with an L1 of its own.
 */
const MANY_NAMESPACES = 1000;

/** The settings of a namespace that a later use cannot change (see `CacheEngine.namespace`). */
interface FixedSettings {
  ttl: TtlOption;
  maxsize: number | null;
  table: string;
  computeTimeout: number;
  grace: number;
  graceBackoff: number;
  /** `null`: no soft timeout. */
  timeout: number | null;
  l1MaxAge: number | null;
  tags: TagsOption | undefined;
  unless: ((value: never, ...args: never[]) => boolean) | undefined;
}

const FIXED_SETTINGS = [
  'ttl',
  'maxsize',
  'table',
  'computeTimeout',
  'grace',
  'graceBackoff',
  'timeout',
  'l1MaxAge',
  'tags',
  'unless',
] as const satisfies readonly (keyof FixedSettings & keyof NamespaceOptions)[];

/**
 * Whether a later use's setting (`undefined`: not given) asks for something other than the
 * fixed one. Two functions cannot be compared (each use may build its own), a function and a
 * value can; tag lists are compared as sets.
 */
function differentSetting(asked: unknown, fixed: unknown): boolean {
  if (asked === undefined || asked === fixed) return false;
  if (typeof asked === 'function' && typeof fixed === 'function') return false;
  if (Array.isArray(asked) && Array.isArray(fixed)) {
    const known = new Set<unknown>(fixed);
    return new Set<unknown>(asked).size !== known.size || asked.some((tag) => !known.has(tag));
  }
  return true;
}

function describeSetting(value: unknown): string {
  if (value === undefined) return 'unset';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return JSON.stringify(value);
  return String(value);
}
