import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/*
 * The stored item, CONTRACT §4:
 *   cache_key (S)  {keyPrefix}{namespace}/{md5}
 *   v (B)          serialized value
 *   t (N)          creation time, Unix seconds (fractional)
 *   exp (N)        ceil(t + ttl), only when a ttl applies, for DynamoDB's own TTL
 */

/** Name of the table's partition key. */
export const PARTITION_KEY = 'cache_key';

/** A decoded item: its bytes and creation time (`tRaw` is the stored string, for conditions). */
export interface DecodedItem {
  bytes: Uint8Array;
  t: number;
  tRaw: string;
}

/** Builds the attribute map for `PutItem`. */
export function encodeItem(
  cacheKey: string,
  bytes: Uint8Array,
  tSeconds: number,
  ttl: number | null,
): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [PARTITION_KEY]: { S: cacheKey },
    v: { B: bytes },
    t: { N: String(tSeconds) },
  };
  // Rounded up so DynamoDB's own TTL never removes an item before this library considers it expired.
  if (ttl !== null) item.exp = { N: String(Math.ceil(tSeconds + ttl)) };
  return item;
}

/**
 * Reads an item back; `undefined` when it is not a well-formed cache item (missing or wrongly
 * typed attributes, a `t` that is not a finite number), which the caller treats as a miss.
 */
export function decodeItem(item: Record<string, AttributeValue>): DecodedItem | undefined {
  const v = item.v;
  const t = item.t;
  if (v === undefined || t === undefined || !('B' in v) || !('N' in t)) return undefined;
  if (!(v.B instanceof Uint8Array) || typeof t.N !== 'string') return undefined;
  const seconds = Number(t.N);
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  return { bytes: v.B, t: seconds, tRaw: t.N };
}
