import { createHash } from 'node:crypto';
import { DynamoCacheError } from '../../errors.js';

/*
 * Canonical key encoding.
 *
 * The encoding is the persisted identity of a cache entry (its md5 is part of `cache_key`), so it
 * must be deterministic across processes, machines and Node versions, and injective: every value
 * is tagged with its type and every string is length-prefixed (`s3:EUR`), so no two different
 * inputs can meet. Length prefixes rather than JSON quoting keep the L1 hit path free of
 * JSON.stringify, which costs more than the whole LRU lookup.
 * Unordered containers (object keys, Maps, Sets) are sorted by their encoded form.
 *
 * Golden tests pin the format: changing anything here orphans every stored item.
 */

function fail(message: string, namespace?: string): never {
  throw new DynamoCacheError('key', message, { namespace });
}

function encodeNumber(n: number): string {
  // String() is the spec's shortest round-trip form, identical on every engine; -0 needs a tag.
  return Object.is(n, -0) ? 'd-0' : 'd' + String(n);
}

/** `{length}:{string}`: self-delimiting without escaping anything. */
function str(value: string): string {
  return value.length + ':' + value;
}

function bytesToBase64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

function encodeValue(value: unknown, seen: Set<object>, namespace?: string): string {
  switch (typeof value) {
    case 'string':
      return 's' + str(value);
    case 'number':
      return encodeNumber(value);
    case 'boolean':
      return value ? 'T' : 'F';
    case 'undefined':
      return 'u';
    case 'bigint':
      return 'n' + value.toString();
    case 'symbol':
      return fail(`cannot use a symbol (${String(value)}) as cache key material`, namespace);
    case 'function':
      return fail(
        `cannot use a function (${(value as { name?: string }).name || 'anonymous'}) as cache key material`,
        namespace,
      );
  }
  if (value === null) return 'z';
  const obj = value as object;
  if (seen.has(obj)) return fail('cannot use a cyclic structure as cache key material', namespace);
  seen.add(obj);
  try {
    return encodeObject(obj, seen, namespace);
  } finally {
    seen.delete(obj);
  }
}

function encodeObject(obj: object, seen: Set<object>, namespace?: string): string {
  if (Array.isArray(obj)) {
    let out = '[';
    for (let i = 0; i < obj.length; i++) {
      if (i > 0) out += ',';
      out += encodeValue(obj[i], seen, namespace);
    }
    return out + ']';
  }
  if (obj instanceof Date) return 'D' + String(obj.getTime());
  if (ArrayBuffer.isView(obj)) {
    if (obj instanceof DataView) return 'V' + bytesToBase64(obj);
    // The view's type is part of the value: Buffer, Uint8Array and Int8Array of one byte differ.
    const name = Buffer.isBuffer(obj) ? 'Buffer' : obj.constructor.name;
    return 'A' + str(name) + bytesToBase64(obj);
  }
  if (obj instanceof ArrayBuffer) return 'Y' + Buffer.from(obj).toString('base64');
  if (obj instanceof Map) {
    const entries: string[] = [];
    for (const [k, v] of obj) {
      entries.push(encodeValue(k, seen, namespace) + '>' + encodeValue(v, seen, namespace));
    }
    return 'M{' + entries.sort().join(',') + '}';
  }
  if (obj instanceof Set) {
    const items: string[] = [];
    for (const v of obj) items.push(encodeValue(v, seen, namespace));
    return 'S{' + items.sort().join(',') + '}';
  }
  if (obj instanceof RegExp) return 'R' + str(obj.toString());
  if (obj instanceof Number || obj instanceof String || obj instanceof Boolean) {
    return 'W' + encodeValue(obj.valueOf(), seen, namespace);
  }
  if (obj instanceof Promise || obj instanceof WeakMap || obj instanceof WeakSet) {
    return fail(`cannot use a ${obj.constructor.name} as cache key material`, namespace);
  }
  const proto = Object.getPrototypeOf(obj) as object | null;
  // Plain objects and class instances both encode their own enumerable properties; the class
  // name keeps `new Point(1, 2)` apart from `{ x: 1, y: 2 }`.
  const tag =
    proto === null || proto === Object.prototype
      ? 'o{'
      : 'c' + str((proto.constructor as { name?: string } | undefined)?.name ?? '') + '{';
  const keys = Object.keys(obj).sort();
  let out = tag;
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out += ',';
    const k = keys[i] as string;
    out += str(k) + '=' + encodeValue((obj as Record<string, unknown>)[k], seen, namespace);
  }
  return out + '}';
}

/**
 * Encodes key material canonically: equal values give equal strings in every process, different
 * values give different strings. Throws {@link DynamoCacheError} (`operation: 'key'`) for
 * functions, symbols and cycles.
 *
 * @example
 * encodeKey(['EUR', 1]) // '[s3:EUR,d1]'
 */
export function encodeKey(material: unknown, namespace?: string): string {
  // Fast path for the common case: an argument list of primitives, no Set allocation.
  if (Array.isArray(material)) {
    let out = '[';
    for (let i = 0; i < material.length; i++) {
      const v: unknown = material[i];
      if (i > 0) out += ',';
      if (typeof v === 'string') out += 's' + v.length + ':' + v;
      else if (typeof v === 'number') out += encodeNumber(v);
      else if (typeof v === 'boolean') out += v ? 'T' : 'F';
      else if (v === undefined) out += 'u';
      else if (v === null) out += 'z';
      else return encodeValue(material, new Set(), namespace);
    }
    return out + ']';
  }
  return encodeValue(material, new Set(), namespace);
}

/** md5 hex of an encoded key: the part of `cache_key` after the namespace. */
export function hashKey(encoded: string): string {
  // A lone surrogate would become U+FFFD in UTF-8, so two different strings could hash alike;
  // such (rare) keys are hashed in JSON-escaped form, which keeps every code unit.
  const text =
    (encoded as { isWellFormed?: () => boolean }).isWellFormed?.() === false
      ? JSON.stringify(encoded)
      : encoded;
  return createHash('md5').update(text).digest('hex');
}

/**
 * The DynamoDB partition key of an entry: `{keyPrefix}{namespace}/{md5 of the canonical key}`.
 *
 * @example
 * buildCacheKey('prod:', 'RatesService.rate', encodeKey(['EUR', 'USD']))
 */
export function buildCacheKey(keyPrefix: string, namespace: string, encoded: string): string {
  return keyPrefix + namespace + '/' + hashKey(encoded);
}
