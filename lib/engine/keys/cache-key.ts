import * as crypto from 'node:crypto';
import { types } from 'node:util';
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

/** Where a piece of key material sits: the argument list, or what a `key` function returned. */
export type KeyMaterialSource = 'arguments' | 'key';

/** A step into key material: a property name, an array index, or a Map/Set entry. */
type PathStep =
  string | number | { readonly entry: number; readonly of: 'Map key' | 'Map value' | 'Set' };

/** The walk's state: objects on the current path (cycles) and the path itself (messages). */
interface Walk {
  readonly seen: Set<object>;
  readonly path: PathStep[];
  readonly namespace: string | undefined;
  readonly source: KeyMaterialSource;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const TO_JSON = 'toJSON()';

function formatPath(path: readonly PathStep[], from: number): string {
  let out = '';
  for (let i = from; i < path.length; i++) {
    const step = path[i] as PathStep;
    if (typeof step === 'number') out += `[${step}]`;
    else if (typeof step === 'string')
      out += IDENTIFIER.test(step) || step === TO_JSON ? `.${step}` : `[${JSON.stringify(step)}]`;
    else out += `<${step.of} #${step.entry}>`;
  }
  return out;
}

/**
 * Throws the key error for the value at the walk's current path, e.g.
 * `RatesService.rate: argument 0 .socket.onClose is a function; give @DynamoCached a "key" function`.
 */
function fail(walk: Walk, problem: string): never {
  const { path, namespace, source } = walk;
  let where: string;
  let advice: string;
  if (source === 'arguments' && typeof path[0] === 'number') {
    const rest = formatPath(path, 1);
    where = `argument ${path[0]}${rest === '' ? '' : ' ' + rest}`;
    advice = 'give @DynamoCached a "key" function';
  } else {
    const rest = formatPath(path, 0);
    where = `key material${rest === '' ? '' : ' ' + rest}`;
    advice = 'make the "key" function return plain data';
  }
  const prefix = namespace === undefined ? '' : `${namespace}: `;
  throw new DynamoCacheError('key', `${prefix}${where} ${problem}; ${advice}`, { namespace });
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

function countPresent(array: readonly unknown[]): number {
  let n = 0;
  for (let i = 0; i < array.length; i++) if (i in array) n++;
  return n;
}

function withArticle(name: string): string {
  return (/^[AEIOUaeiou]/.test(name) ? 'an ' : 'a ') + name;
}

/** A prototype with no properties of its own and nothing above it. */
function isBarePrototype(proto: object): boolean {
  return Object.getPrototypeOf(proto) === null && Reflect.ownKeys(proto).length === 0;
}

function className(obj: object): string {
  const proto = Object.getPrototypeOf(obj) as { constructor?: { name?: unknown } } | null;
  const name = proto?.constructor?.name;
  return typeof name === 'string' ? name : '';
}

/** Encodes `value` reached by `step` from the current path. */
function child(value: unknown, step: PathStep, walk: Walk): string {
  walk.path.push(step);
  const out = encodeValue(value, walk);
  walk.path.pop();
  return out;
}

function encodeValue(value: unknown, walk: Walk): string {
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
      return fail(walk, `is a symbol (${String(value)})`);
    case 'function':
      return fail(walk, 'is a function');
  }
  if (value === null) return 'z';
  const obj = value as object;
  if (walk.seen.has(obj))
    return fail(walk, 'refers back to an object that contains it (a cyclic structure)');
  walk.seen.add(obj);
  try {
    return encodeObject(obj, walk);
  } finally {
    walk.seen.delete(obj);
  }
}

function encodeObject(obj: object, walk: Walk): string {
  if (Array.isArray(obj)) {
    let out = '[';
    for (let i = 0; i < obj.length; i++) {
      if (i > 0) out += ',';
      // A hole is not `undefined`: `[, 1]` and `[undefined, 1]` are two keys.
      out += i in obj ? child(obj[i], i, walk) : 'h';
    }
    if (Object.keys(obj).length !== countPresent(obj)) {
      return fail(walk, 'is an array with properties besides its elements, which keys cannot see');
    }
    const symbols = Object.getOwnPropertySymbols(obj);
    if (symbols.length > 0) {
      return fail(
        walk,
        `has a symbol-keyed property (${String(symbols[0])}), which keys cannot see`,
      );
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
    let i = 0;
    for (const [k, v] of obj) {
      entries.push(
        child(k, { entry: i, of: 'Map key' }, walk) +
          '>' +
          child(v, { entry: i, of: 'Map value' }, walk),
      );
      i++;
    }
    return 'M{' + entries.sort().join(',') + '}';
  }
  if (obj instanceof Set) {
    const items: string[] = [];
    let i = 0;
    for (const v of obj) items.push(child(v, { entry: i++, of: 'Set' }, walk));
    return 'S{' + items.sort().join(',') + '}';
  }
  if (obj instanceof RegExp) return 'R' + str(obj.toString());
  if (obj instanceof Number || obj instanceof String || obj instanceof Boolean) {
    return 'W' + encodeValue(obj.valueOf(), walk);
  }
  // Their state lives in internal slots, invisible to a walk of properties: keyed by their text.
  if (obj instanceof URL) return 'U' + str(obj.href);
  if (obj instanceof URLSearchParams) return 'Q' + str(obj.toString());
  if (obj instanceof Promise || obj instanceof WeakMap || obj instanceof WeakSet) {
    return fail(walk, `is a ${obj.constructor.name}`);
  }
  if (types.isNativeError(obj) || obj instanceof Error) {
    return fail(
      walk,
      `is an Error (${className(obj) || 'Error'}), whose state is not key material`,
    );
  }
  const keys = Object.keys(obj);
  // A class whose state is hidden (`#private` fields, internal slots) but that says how it
  // serializes is keyed by that, tagged with its class so two classes with the same JSON stay
  // apart. One with own properties is keyed by them, as 0.1.0 keyed it: `toJSON()` may leave out
  // what a method reads (a date library's locale or UTC offset), and two arguments would share
  // one entry.
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && keys.length === 0) {
    return 'J' + str(className(obj)) + child(toJSON.call(obj, ''), TO_JSON, walk);
  }
  const symbols = Object.getOwnPropertySymbols(obj);
  if (symbols.length > 0) {
    return fail(walk, `has a symbol-keyed property (${String(symbols[0])}), which keys cannot see`);
  }
  const proto = Object.getPrototypeOf(obj) as object | null;
  const plain = proto === null || proto === Object.prototype;
  keys.sort();
  // A bare prototype (no properties, itself with none above: what fast-querystring gives
  // Fastify's `request.query`) holds no hidden state: such an object is plain data, keyed as
  // 0.1.0 keyed it (`c0:{}` when empty).
  if (!plain && keys.length === 0 && !isBarePrototype(proto)) {
    return fail(
      walk,
      `is ${withArticle(className(obj) || 'class')} instance with no own enumerable properties (its state, if any, is hidden, e.g. in #private fields)`,
    );
  }
  // Plain objects and class instances both encode their own enumerable properties; the class
  // name keeps `new Point(1, 2)` apart from `{ x: 1, y: 2 }`.
  let out = plain ? 'o{' : 'c' + str(className(obj)) + '{';
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out += ',';
    const k = keys[i] as string;
    out += str(k) + '=' + child((obj as Record<string, unknown>)[k], k, walk);
  }
  return out + '}';
}

/**
 * Encodes key material canonically: equal values give equal strings in every process, different
 * values give different strings. Throws {@link DynamoCacheError} (`operation: 'key'`), naming the
 * namespace, the argument and the property path, for what cannot be told apart reliably:
 * functions, symbols, cycles, Errors, symbol-keyed properties, and class instances with no own
 * enumerable properties (state in `#private` fields). `URL`, `URLSearchParams` and objects with
 * `toJSON()` and no own enumerable properties are keyed by their text or JSON form.
 *
 * @param source `'arguments'` when `material` is a method's argument list (errors then name the
 *   argument's position), `'key'` when a `key` function returned it.
 *
 * @example
 * encodeKey(['EUR', 1]) // '[s3:EUR,d1]'
 */
export function encodeKey(
  material: unknown,
  namespace?: string,
  source: KeyMaterialSource = 'arguments',
): string {
  // Fast path for the common case: an argument list of primitives, no Set allocation. What a key
  // function returns may be an array with properties of its own (a RegExp match): the slow path
  // refuses them, as it does in an argument.
  if (Array.isArray(material) && (source === 'arguments' || plainArray(material))) {
    let out = '[';
    for (let i = 0; i < material.length; i++) {
      const v: unknown = material[i];
      if (i > 0) out += ',';
      if (typeof v === 'string') out += 's' + v.length + ':' + v;
      else if (typeof v === 'number') out += encodeNumber(v);
      else if (typeof v === 'boolean') out += v ? 'T' : 'F';
      else if (v === undefined) out += 'u';
      else if (v === null) out += 'z';
      else return encodeValue(material, newWalk(namespace, source));
      // A hole reads as undefined: the slow path tells them apart.
      if (v === undefined && !(i in material))
        return encodeValue(material, newWalk(namespace, source));
    }
    return out + ']';
  }
  return encodeValue(material, newWalk(namespace, source));
}

/** Whether an array has nothing but its elements (no other own property, no symbol). */
function plainArray(array: readonly unknown[]): boolean {
  return (
    Object.keys(array).length === array.length && Object.getOwnPropertySymbols(array).length === 0
  );
}

function newWalk(namespace: string | undefined, source: KeyMaterialSource): Walk {
  // Only an argument list is walked as arguments; anything else a key function returned.
  return { seen: new Set(), path: [], namespace, source };
}

/**
 * Encodings longer than this are kept in memory by their md5 (see {@link compactKey}): an L1 entry,
 * a computation in flight or a bus message then holds 33 characters, not a GraphQL query's
 * variables whole. Every process must use the same length (bus messages carry the form).
 */
export const LONG_KEY_LENGTH = 512;

/** Marks a compacted encoding; no canonical encoding starts with it (each starts with a tag). */
const COMPACT = '#';

/**
 * The form of an encoded key that this process keeps in memory: the encoding itself, or for one
 * longer than {@link LONG_KEY_LENGTH}, `#` and its md5, the same md5 that `cache_key` holds, so the
 * DynamoDB key is unchanged ({@link buildCacheKey} accepts either form).
 *
 * @example
 * compactKey(encodeKey([hugeFilter])) // '#9e107d9d372bb6826bd81d3542a419d6'
 */
export function compactKey(encoded: string): string {
  return encoded.length > LONG_KEY_LENGTH ? COMPACT + hashKey(encoded) : encoded;
}

/** md5 hex of an encoded key: the part of `cache_key` after the namespace. */
export function hashKey(encoded: string): string {
  // A compacted key carries its md5 already.
  if (encoded.charCodeAt(0) === 35 /* # */) return encoded.slice(1);
  // A lone surrogate would become U+FFFD in UTF-8, so two different strings could hash alike;
  // such (rare) keys are hashed in JSON-escaped form, which keeps every code unit.
  const text =
    (encoded as { isWellFormed?: () => boolean }).isWellFormed?.() === false
      ? JSON.stringify(encoded)
      : encoded;
  return md5Hex(text);
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

/** `crypto.hash` where Node has it (20.12+: one call, no Hash object), else a Hash. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string })
  .hash;
const md5Hex: (text: string) => string =
  oneShot !== undefined
    ? (text) => oneShot('md5', text, 'hex')
    : (text) => crypto.createHash('md5').update(text).digest('hex');
