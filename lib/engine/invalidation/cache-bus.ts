import { LONG_KEY_LENGTH } from '../keys/cache-key.js';

/**
 * What one process tells the others when it invalidates: entries of a namespace by key
 * (`delete`, `deleteMany`, `set`: drop them from L1; `expire`: keep them as stale), or markers
 * (`clear`, `deleteByTag`: entries older than `t` are invalid).
 *
 * @example
 * const message: DynamoCacheBusMessage = {
 *   source: 'b1f0…', kind: 'keys', namespace: 'UsersService.find', keys: ['[s2:u1]'],
 * };
 */
export type DynamoCacheBusMessage =
  | {
      /** The engine that sent it (its own messages are ignored when they come back). */
      readonly source: string;
      readonly kind: 'keys' | 'expire';
      readonly namespace: string;
      /**
       * Canonical key encodings (see `encodeKey`) as L1 holds them: one longer than 512
       * characters as `#` and its md5 (see `compactKey`).
       */
      readonly keys: readonly string[];
    }
  | {
      readonly source: string;
      readonly kind: 'markers';
      /** Marker item keys and their invalidation time (Unix seconds). */
      readonly markers: readonly { readonly key: string; readonly t: number }[];
    };

/**
 * Push invalidation between the processes of one application, on top of what DynamoDB already
 * guarantees: without a bus, another process sees an invalidation within `l1MaxAge`; with one, as
 * soon as the message arrives. A lost message costs nothing but that delay. Ship your own, or use
 * `RedisDynamoCacheBus` from `nestjs-dynamo-cache/redis-bus`.
 *
 * @example
 * class InMemoryBus implements DynamoCacheBus {
 *   private readonly handlers = new Set<(m: DynamoCacheBusMessage) => void>();
 *   publish(m: DynamoCacheBusMessage) { for (const h of this.handlers) h(m); }
 *   subscribe(h: (m: DynamoCacheBusMessage) => void) { this.handlers.add(h); }
 * }
 */
export interface DynamoCacheBus {
  /** Sends a message to every other process (best effort: failures are logged, not thrown). */
  publish(message: DynamoCacheBusMessage): void | Promise<void>;
  /** Called once at bootstrap with the function that applies incoming messages. */
  subscribe(handler: (message: DynamoCacheBusMessage) => void): void | Promise<void>;
  /** Called at shutdown. */
  close?(): void | Promise<void>;
}

/** A real marker key is a DynamoDB partition key: at most 2,048 bytes, so at most 2,048 characters. */
const MAX_MARKER_KEY_LENGTH = 2048;
/** A namespace is at most 1,024 bytes (checked where it is named). */
const MAX_NAMESPACE_LENGTH = 1024;

/** Entry keys as a process holds them: none is longer than a compacted one may be. */
const isKeyArray = (value: unknown): value is readonly string[] =>
  Array.isArray(value) &&
  value.every((item) => typeof item === 'string' && item.length <= LONG_KEY_LENGTH);

/**
 * Whether something received from a bus is a {@link DynamoCacheBusMessage}: the kind, and every
 * field it needs of the right type (marker times finite numbers), and no string longer than any
 * this library sends (the receiver keeps keys for a while: a forged 1 MB key must not be).
 *
 * @example
 * if (isBusMessage(received)) engine.receive(received);
 */
export function isBusMessage(value: unknown): value is DynamoCacheBusMessage {
  if (value === null || typeof value !== 'object') return false;
  const m = value as Record<string, unknown>;
  if (typeof m.source !== 'string') return false;
  if (m.kind === 'markers') {
    return (
      Array.isArray(m.markers) &&
      m.markers.every(
        (marker: unknown) =>
          marker !== null &&
          typeof marker === 'object' &&
          typeof (marker as { key?: unknown }).key === 'string' &&
          (marker as { key: string }).key.length <= MAX_MARKER_KEY_LENGTH &&
          Number.isFinite((marker as { t?: unknown }).t),
      )
    );
  }
  return (
    (m.kind === 'keys' || m.kind === 'expire') &&
    typeof m.namespace === 'string' &&
    m.namespace.length <= MAX_NAMESPACE_LENGTH &&
    isKeyArray(m.keys)
  );
}
