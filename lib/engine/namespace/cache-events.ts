import type { DynamoCacheError } from '../../errors.js';
import { isThenable } from './is-thenable.js';

/** What a cache event reports. */
export type CacheEventType = 'hit' | 'miss' | 'stale' | 'write' | 'refused' | 'delete' | 'error';

/**
 * One outcome of the cache, as {@link CacheEvents} listeners receive it.
 *
 * @example
 * cache.on('hit', (e) => metrics.increment(`cache.hit.${e.layer}`, { namespace: e.namespace }));
 */
export interface CacheEvent {
  readonly type: CacheEventType;
  /** The namespace; `''` for what concerns none (`deleteByTag`, and its failures). */
  readonly namespace: string;
  /** The entry's `cache_key` (computed for the listener), when the event concerns one entry. */
  readonly key: string | undefined;
  /** `hit`: the layer that answered. */
  readonly layer?: 'l1' | 'l2';
  /** `error`: the DynamoDB failure (whatever `onError` then did with it). */
  readonly error?: DynamoCacheError;
}

/** Receives cache events; a listener that throws is ignored (it never fails a call). */
export type CacheEventListener = (event: CacheEvent) => void;

/**
 * Listeners per event type. Emitting costs one property check while nobody listens, so the L1
 * hit path stays as it is; the key of an event is computed only when somebody listens.
 *
 * @example
 * const off = events.on('miss', (e) => log.debug(`miss ${e.namespace} ${e.key}`));
 * off();
 */
export class CacheEvents {
  /** Whether any listener is registered: callers test it before building an event. */
  active = false;
  private readonly listeners = new Map<CacheEventType, Set<CacheEventListener>>();

  /** Adds `listener` for `type`; returns the function that removes it. */
  on(type: CacheEventType, listener: CacheEventListener): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    this.active = true;
    return () => {
      set.delete(listener);
      this.active = [...this.listeners.values()].some((s) => s.size > 0);
    };
  }

  /** Delivers an event to the listeners of its type. */
  emit(
    type: CacheEventType,
    namespace: string,
    key: () => string | undefined,
    extra?: { layer?: 'l1' | 'l2'; error?: DynamoCacheError },
  ): void {
    const set = this.listeners.get(type);
    if (set === undefined || set.size === 0) return;
    const event: CacheEvent = { type, namespace, key: key(), ...extra };
    for (const listener of set) {
      try {
        const returned: unknown = listener(event);
        // An async listener's rejection would otherwise be unhandled, and end the process.
        if (isThenable(returned)) returned.then(undefined, ignore);
      } catch {
        // A listener's fault must not reach the call it observes.
      }
    }
  }
}

const ignore = (): void => undefined;
