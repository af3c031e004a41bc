import { LRUCache } from 'lru-cache';
import { FUTURE_TOLERANCE_S, type ItemHead, type L2Store } from '../l2/l2-store.js';

/** Markers remembered per engine, at most: beyond that the least used are read again. */
const MARKER_LIMIT = 10_000;

interface KnownMarker {
  /** The invalidation time (Unix seconds); 0 when there is no marker. */
  t: number;
  /** When it was last read from DynamoDB (ms); 0 when only known locally. */
  readAt: number;
}

/**
 * What this process knows of the invalidation markers (`clear`, `deleteByTag`): marker key →
 * latest invalidation time. Read from the table at most every `maxAgeMs` per marker (in the
 * background past half of it, on the caller's path past all of it), so an invalidation made by
 * another process is seen within `maxAgeMs`; one made here, or announced on the bus, at once.
 *
 * @example
 * const invalidatedAt = await markers.latest(['#ns:users#', '#tag:user:1#'], 'users');
 * if (item.t < invalidatedAt) treatAsMiss();
 */
export class InvalidationMarkers {
  private readonly known = new LRUCache<string, KnownMarker>({ max: MARKER_LIMIT });
  private readonly reading = new Map<
    string,
    { done: Promise<void>; readAt: number; consistent: boolean }
  >();
  /** Called with each marker key that became newer than what was known (to drop L1 entries). */
  onNewer: ((key: string, t: number) => void) | undefined;

  constructor(
    /** The table the markers live in (the module's). */
    readonly store: L2Store,
    private readonly maxAgeMs: number,
    private readonly track: <T>(work: Promise<T>) => Promise<T>,
  ) {}

  /** Records an invalidation made (or announced) now: entries older than `t` are invalid. */
  note(key: string, t: number): void {
    const known = this.known.get(key);
    if (known !== undefined && known.t >= t) return;
    this.known.set(key, { t, readAt: known?.readAt ?? 0 });
    this.onNewer?.(key, t);
  }

  /**
   * Records markers read from the table (by a revalidation that read them with its item). One
   * dated past the clock skew items are allowed ({@link FUTURE_TOLERANCE_S}) is not a time but a
   * bad item (a clock far ahead, a foreign write): taken at its word it would invalidate every
   * entry until then, so the cache of its namespace or tag would be off; it counts as none (the
   * next `clear` or `deleteByTag` replaces it).
   */
  learn(keys: readonly string[], heads: ReadonlyMap<string, ItemHead>, readAt: number): void {
    const latest = Date.now() / 1000 + FUTURE_TOLERANCE_S;
    for (const key of keys) {
      const read = heads.get(key)?.t ?? 0;
      const t = read > latest ? 0 : read;
      const known = this.known.get(key);
      // Two reads of a key may end out of order: the later one's time stands.
      this.known.set(key, {
        t: Math.max(t, known?.t ?? 0),
        readAt: Math.max(readAt, known?.readAt ?? 0),
      });
      // Newly learned or newer: entries held here that it invalidates go now, not one by one.
      if (t > (known?.t ?? 0)) this.onNewer?.(key, t);
    }
  }

  /** The latest invalidation time known locally among `keys`, without reading anything. */
  latestKnown(keys: readonly string[]): number {
    let latest = 0;
    for (const key of keys) latest = Math.max(latest, this.known.get(key)?.t ?? 0);
    return latest;
  }

  /**
   * Until when (ms) what is known of `keys` may be trusted: the oldest read of them plus
   * `maxAgeMs` (a marker only noted here, never read, counts as read now).
   */
  trustedUntil(keys: readonly string[], maxAgeMs = this.maxAgeMs): number {
    const now = Date.now();
    let until = Infinity;
    for (const key of keys) {
      const readAt = this.known.get(key)?.readAt ?? now;
      until = Math.min(until, (readAt === 0 ? now : readAt) + Math.min(maxAgeMs, this.maxAgeMs));
    }
    return until;
  }

  /**
   * The latest invalidation time among `keys` when every one of them was read less than half of
   * `maxAgeMs` ago (nothing to read, not even in the background); `undefined` otherwise: then
   * ask {@link latest}.
   */
  recentLatest(keys: readonly string[], maxAgeMs = this.maxAgeMs): number | undefined {
    const now = Date.now();
    const half = Math.min(maxAgeMs, this.maxAgeMs) / 2;
    let latest = 0;
    for (const key of keys) {
      const known = this.known.get(key);
      if (known === undefined || now - known.readAt >= half) return undefined;
      if (known.t > latest) latest = known.t;
    }
    return latest;
  }

  /**
   * The latest invalidation time among `keys`: read from the table those unknown or older than
   * `maxAgeMs` (at most the engine's) first, and refresh in the background those older than
   * half of it. `consistent`: read strongly consistent (a read that must see every marker written
   * before it began, not only within `maxAgeMs`). Throws `DynamoCacheError` when the read fails.
   */
  async latest(
    keys: readonly string[],
    namespace: string,
    maxAgeMs = this.maxAgeMs,
    consistent = false,
  ): Promise<number> {
    const now = Date.now();
    const maxAge = Math.min(maxAgeMs, this.maxAgeMs);
    const due: string[] = [];
    const soon: string[] = [];
    for (const key of keys) {
      const known = this.known.get(key);
      if (known === undefined || now - known.readAt >= maxAge) due.push(key);
      else if (now - known.readAt >= maxAge / 2) soon.push(key);
    }
    if (soon.length > 0) this.read(soon, namespace, now - maxAge, false).catch(() => undefined);
    if (due.length > 0) await this.read(due, namespace, now - maxAge, consistent);
    return this.latestKnown(keys);
  }

  /**
   * Reads `keys` from the table, joining a read of a key already on its way when it began at
   * `notBefore` (ms) or later, and is strongly consistent if `consistent` is asked: an older or
   * eventually consistent one may miss what the caller must see.
   */
  private read(
    keys: readonly string[],
    namespace: string,
    notBefore: number,
    consistent: boolean,
  ): Promise<void> {
    const waits: Promise<void>[] = [];
    const fresh: string[] = [];
    for (const key of keys) {
      const pending = this.reading.get(key);
      if (
        pending !== undefined &&
        pending.readAt >= notBefore &&
        (pending.consistent || !consistent)
      ) {
        waits.push(pending.done);
      } else fresh.push(key);
    }
    if (fresh.length > 0) {
      const readAt = Date.now();
      const heads = consistent
        ? this.store.readHeads(fresh, namespace, true)
        : this.store.readHeads(fresh, namespace);
      const reading = this.track(heads).then((read) => this.learn(fresh, read, readAt));
      const done = reading.finally(() => {
        for (const key of fresh) {
          if (this.reading.get(key)?.done === done) this.reading.delete(key);
        }
      });
      for (const key of fresh) this.reading.set(key, { done, readAt, consistent });
      waits.push(done);
    }
    return Promise.all(waits).then(() => undefined);
  }
}
