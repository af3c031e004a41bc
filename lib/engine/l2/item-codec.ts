import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { isValueCompression, type ValueCompression } from './value-compression.js';

/*
 * The stored item, CONTRACT §4:
 *   cache_key (S)  {keyPrefix}{namespace}/{md5}
 *   v (B)          serialized value (compressed when `z` is present)
 *   t (N)          creation time, Unix seconds (fractional)
 *   exp (N)        ceil(t + ttl), only when a ttl applies, for DynamoDB's own TTL
 *   z (S)          'br' or 'gzip', only when `v` is compressed
 */

/** Name of the table's partition key. */
export const PARTITION_KEY = 'cache_key';

/** A decoded item: its bytes and creation time (`tRaw` is the stored string, for conditions). */
export interface DecodedItem {
  bytes: Uint8Array;
  t: number;
  tRaw: string;
  /** How `bytes` are compressed; absent when they are the serializer's output as is. */
  compression?: ValueCompression;
}

/** Builds the attribute map for `PutItem`. */
export function encodeItem(
  cacheKey: string,
  bytes: Uint8Array,
  tSeconds: number,
  ttl: number | null,
  compression?: ValueCompression,
): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [PARTITION_KEY]: { S: cacheKey },
    v: { B: bytes },
    t: { N: String(tSeconds) },
  };
  // Rounded up so DynamoDB's own TTL never removes an item before this library considers it expired.
  if (ttl !== null) item.exp = { N: String(Math.ceil(tSeconds + ttl)) };
  if (compression !== undefined) item.z = { S: compression };
  return item;
}

/**
 * An upper bound of the size DynamoDB charges for the item {@link encodeItem} would build
 * (attribute names plus values; numbers counted as their decimal strings, which over-estimates).
 */
export function itemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const name of Object.keys(item)) {
    const value = item[name] as AttributeValue;
    size += Buffer.byteLength(name);
    if (value.B !== undefined) size += value.B.byteLength;
    else if (value.S !== undefined) size += Buffer.byteLength(value.S);
    else if (value.N !== undefined) size += value.N.length + 1;
  }
  return size;
}

/**
 * Reads an item back, or says why it is not a well-formed cache item: a missing or wrongly typed
 * attribute, a `t` that is not a positive finite number, an unknown compression marker. The caller
 * treats such an item as a miss and overwrites it.
 */
export function inspectItem(
  item: Record<string, AttributeValue>,
): DecodedItem | { readonly corrupt: string } {
  const v = item.v;
  const t = item.t;
  const z = item.z;
  if (v === undefined) return { corrupt: 'no v attribute' };
  if (t === undefined) return { corrupt: 'no t attribute' };
  if (!(v.B instanceof Uint8Array)) return { corrupt: 'v is not a binary (B) attribute' };
  if (typeof t.N !== 'string') return { corrupt: 't is not a number (N) attribute' };
  const seconds = Number(t.N);
  if (!Number.isFinite(seconds) || seconds <= 0) return { corrupt: `t is ${t.N}` };
  const decoded: DecodedItem = { bytes: v.B, t: seconds, tRaw: t.N };
  if (z !== undefined) {
    if (typeof z.S !== 'string') return { corrupt: 'z is not a string (S) attribute' };
    if (!isValueCompression(z.S))
      return { corrupt: `unknown compression marker z=${JSON.stringify(z.S)}` };
    decoded.compression = z.S;
  }
  return decoded;
}
