import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { tagsProblem } from '../namespace/entry-policy.js';
import { isValueCompression, type ValueCompression } from './value-compression.js';

/*
 * The stored item:
 *   cache_key (S)  {keyPrefix}{namespace}/{md5}
 *   v (B)          serialized value (compressed when `z` is present); absent in a tombstone
 *   t (N)          Unix seconds (fractional): when the computation that produced the value
 *                  started (a `set`: when it was made; `expire` leaves it); a
 *                  tombstone's: the deletion time
 *   e (N)          the entry's own expiry, Unix seconds (fractional), only when a ttl applies
 *   o (BOOL)       true when the expiry was set explicitly (`set` with a ttl, `null` included):
 *                  readers keep to `e` (or to no expiry) even when their own ttl is shorter
 *   x (N)          when the entry was expired (`expire`), only after one; `e` is then the same
 *   exp (N)        ceil(e + grace), only when a ttl applies, for DynamoDB's own TTL (a `set`'s
 *                  at least t + the tombstone lifetime: readers leave it that long too); a
 *                  tombstone's: ceil(t + its lifetime), always
 *   g (SS)         the entry's tags, only when it has some
 *   z (S)          'br' or 'gzip', only when `v` is compressed
 *   c (S)          the class record (JSON, see values/class-record.ts), only when the value holds
 *                  class instances
 *   w (S)          a token unique to the write that made the item (see write-id.ts): two writes
 *                  in one millisecond share `t`, not `w`; absent in items of 0.1.0 and earlier
 *                  0.2 writes, and in tombstones
 *
 * A tombstone (no `v`) is what `delete` leaves: readers take it as a miss, and a computation that
 * started before it was written may not replace it (see L2Store.write), so an invalidation made
 * by any process sticks. Items of 0.1.0 (no `c`, `e`, `o`, `g`) read as they always did: they
 * expire at `t` plus the reader's ttl.
 *
 * Invalidation markers (`clear`, `deleteByTag`) are items of their own, keyed
 * `{keyPrefix}#ns:{namespace}#` and `{keyPrefix}#tag:{tag}#` (no entry or lease key ends with `#`),
 * holding only `t`: the invalidation time. An entry whose `t` is older than a marker of its
 * namespace or of one of its tags is a miss. Markers have no `exp`: an entry without ttl may
 * outlive any bound.
 */

/** Name of the table's partition key. */
export const PARTITION_KEY = 'cache_key';

/** A decoded item: its bytes and creation time (`tRaw` is the stored string, for conditions). */
export interface DecodedItem {
  bytes: Uint8Array;
  t: number;
  tRaw: string;
  /** The entry's own expiry (seconds); absent when no ttl applies, and in items of 0.1.0. */
  e?: number;
  /** `e` was set explicitly: a reader's shorter ttl does not cut it. */
  own?: boolean;
  /** When the entry was expired (`expire`), if it was. */
  x?: number;
  /** When DynamoDB's TTL may remove it (Unix seconds), when it says. */
  exp?: number;
  /** The entry's tags. */
  tags?: readonly string[];
  /** How `bytes` are compressed; absent when they are the serializer's output as is. */
  compression?: ValueCompression;
  /** The class record, as stored (JSON); absent when the value holds no class instance. */
  classes?: string;
  /** The write's token (`w`); absent in items written without one. */
  writeId?: string;
}

/** A decoded tombstone: when the entry was deleted, and until when the tombstone matters. */
export interface DecodedTombstone {
  tombstone: true;
  t: number;
  tRaw: string;
  /** Whole seconds; absent only in a foreign item. */
  exp?: number;
}

/** How long an entry lives: its ttl from `t` (`null`: forever), grace after that, its tags. */
export interface EntryLife {
  /** Seconds from `t`; `null` = no expiry. */
  ttl: number | null;
  /** Seconds the entry is kept past its expiry, to be served when recomputing fails. */
  grace: number;
  /** The ttl was given for this entry (`set` with a ttl), not by the namespace. */
  own?: boolean;
  /**
   * Seconds from `t` the item stays for DynamoDB's TTL at least, whatever its expiry: an explicit
   * write refuses older computations in flight only while it is there (see L2Store.write).
   */
  keepSeconds?: number;
  tags?: readonly string[];
}

/** Builds the attribute map for `PutItem`. */
export function encodeItem(
  cacheKey: string,
  bytes: Uint8Array,
  tSeconds: number,
  life: EntryLife,
  compression?: ValueCompression,
  classes?: string,
  writeId?: string,
): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [PARTITION_KEY]: { S: cacheKey },
    v: { B: bytes },
    t: { N: String(tSeconds) },
  };
  if (life.ttl !== null) {
    const e = tSeconds + life.ttl;
    item.e = { N: String(e) };
    // Rounded up so DynamoDB's own TTL never removes an item a reader may still serve.
    item.exp = {
      N: String(Math.ceil(Math.max(e + life.grace, tSeconds + (life.keepSeconds ?? 0)))),
    };
  }
  // Also without ttl: `set(…, { ttl: null })` is kept forever by readers with a ttl of their own.
  if (life.own === true) item.o = { BOOL: true };
  if (life.tags !== undefined && life.tags.length > 0) item.g = { SS: [...new Set(life.tags)] };
  if (compression !== undefined) item.z = { S: compression };
  if (classes !== undefined) item.c = { S: classes };
  if (writeId !== undefined) item.w = { S: writeId };
  return item;
}

/** The key of the marker item of a namespace's `clear`. */
export function namespaceMarkerKey(keyPrefix: string, namespace: string): string {
  return `${keyPrefix}#ns:${namespace}#`;
}

/** The key of the marker item of a tag's `deleteByTag`. */
export function tagMarkerKey(keyPrefix: string, tag: string): string {
  return `${keyPrefix}#tag:${tag}#`;
}

/**
 * Builds the attribute map of a tombstone written at `tSeconds`, to matter for `lifeSeconds`;
 * `writeId` (its `w`) orders it among this process's writes of the key (see write-id.ts).
 */
export function encodeTombstone(
  cacheKey: string,
  tSeconds: number,
  lifeSeconds: number,
  writeId?: string,
): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [PARTITION_KEY]: { S: cacheKey },
    t: { N: String(tSeconds) },
    exp: { N: String(Math.ceil(tSeconds + lifeSeconds)) },
  };
  if (writeId !== undefined) item.w = { S: writeId };
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
    // Tags (a string set) count in full: up to 64 of up to 1,024 bytes each.
    else if (value.SS !== undefined) {
      for (const text of value.SS) size += Buffer.byteLength(text);
    } else if (value.BOOL !== undefined || value.NULL !== undefined) size += 1;
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
): DecodedItem | DecodedTombstone | { readonly corrupt: string } {
  const v = item.v;
  const t = item.t;
  const z = item.z;
  const c = item.c;
  const w = item.w;
  if (t === undefined) return { corrupt: 'no t attribute' };
  if (typeof t.N !== 'string') return { corrupt: 't is not a number (N) attribute' };
  const seconds = Number(t.N);
  if (!Number.isFinite(seconds) || seconds <= 0) return { corrupt: `t is ${t.N}` };
  if (v === undefined) {
    const exp = Number(item.exp?.N);
    return Number.isFinite(exp)
      ? { tombstone: true, t: seconds, tRaw: t.N, exp }
      : { tombstone: true, t: seconds, tRaw: t.N };
  }
  if (!(v.B instanceof Uint8Array)) return { corrupt: 'v is not a binary (B) attribute' };
  const decoded: DecodedItem = { bytes: v.B, t: seconds, tRaw: t.N };
  const life = inspectLife(item);
  if ('corrupt' in life) return life;
  if (life.e !== undefined) decoded.e = life.e;
  if (life.own) decoded.own = true;
  if (life.x !== undefined) decoded.x = life.x;
  const exp = Number(item.exp?.N);
  if (Number.isFinite(exp)) decoded.exp = exp;
  if (life.tags !== undefined) decoded.tags = life.tags;
  if (c !== undefined) {
    if (typeof c.S !== 'string') return { corrupt: 'c is not a string (S) attribute' };
    decoded.classes = c.S;
  }
  if (w !== undefined) {
    if (typeof w.S !== 'string') return { corrupt: 'w is not a string (S) attribute' };
    decoded.writeId = w.S;
  }
  if (z !== undefined) {
    if (typeof z.S !== 'string') return { corrupt: 'z is not a string (S) attribute' };
    if (!isValueCompression(z.S))
      return { corrupt: `unknown compression marker z=${JSON.stringify(z.S)}` };
    decoded.compression = z.S;
  }
  return decoded;
}

/** Reads `e`, `o`, `x` and `g` (also what a revalidation's projection returns). */
export function inspectLife(
  item: Record<string, AttributeValue>,
):
  | { e?: number; own: boolean; x?: number; tags?: readonly string[] }
  | { readonly corrupt: string } {
  const { e, o, g, x } = item;
  let expiry: number | undefined;
  if (e !== undefined) {
    expiry = typeof e.N === 'string' ? Number(e.N) : NaN;
    if (!Number.isFinite(expiry)) return { corrupt: 'e is not a finite number (N) attribute' };
  }
  let expiredAt: number | undefined;
  if (x !== undefined) {
    expiredAt = typeof x.N === 'string' ? Number(x.N) : NaN;
    if (!Number.isFinite(expiredAt)) return { corrupt: 'x is not a finite number (N) attribute' };
  }
  if (g !== undefined) {
    if (!Array.isArray(g.SS)) return { corrupt: 'g is not a string set (SS) attribute' };
    // Tags no writer could have written would make marker keys DynamoDB refuses: a miss instead.
    const problem = tagsProblem(g.SS);
    if (problem !== undefined) return { corrupt: `g: ${problem}` };
  }
  return { e: expiry, own: o?.BOOL === true, x: expiredAt, tags: g?.SS };
}
