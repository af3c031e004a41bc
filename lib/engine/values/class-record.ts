/*
 * The class record: which objects of a value are instances of which class, so that a process
 * reading the value back from DynamoDB can give them their prototypes again (the serializer keeps
 * data, not classes). Stored as JSON in the item's `c` attribute:
 *
 *   { "User": [[]], "Address": [["address"]], "Order": [["orders", 0], ["orders", 1]] }
 *
 * Each class name maps to the paths of its instances. A path step is a property name (string),
 * an array index (number), or, inside a Map or a Set, `["k", i]` (the i-th key), `["v", i]` (the
 * i-th value) or `["s", i]` (the i-th element), in insertion order, which the serializer keeps.
 * `[]` is the value itself. Objects created with a `null` prototype (or an empty prototype on
 * `null`, as query-string parsers make) are recorded under `#null`.
 * An object reached twice (shared or cyclic) is recorded once, at the first path found.
 */

/** One step of a path into a value. */
export type ClassPathStep = string | number | readonly ['k' | 'v' | 's', number];

/** Class name → paths of its instances. */
export type ClassRecord = Record<string, (readonly ClassPathStep[])[]>;

/** The record's name for objects with a `null` prototype (no class name can start with `#`). */
export const NULL_PROTOTYPE = '#null';

import { types } from 'node:util';

/** Built-in classes the serializer restores by itself (their state included). */
const NATIVE_CLASSES: readonly { readonly prototype: unknown }[] = [
  Object,
  Array,
  Map,
  Set,
  Date,
  RegExp,
  ArrayBuffer,
  SharedArrayBuffer,
  DataView,
  Buffer,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
  Boolean,
  Number,
  String,
  BigInt,
];

/** Prototypes the serializer restores by itself: never recorded. */
const NATIVE_PROTOTYPES: ReadonlySet<object> = new Set<object>(
  NATIVE_CLASSES.map((c) => c.prototype as object),
);

/** A class as the registry holds it: anything with a prototype to give back. */
export type ClassRef = abstract new (...args: never[]) => unknown;

/** Why a value cannot be stored with its classes (it is then kept in L1 only). */
export class UnrecordableValueError extends Error {
  override readonly name = 'UnrecordableValueError';
}

// Captured once: a Map or Set subclass may override its iterators, but the serializer walks the
// built-in entries, in insertion order, and so must the record.
const mapEntries = Map.prototype.entries as (
  this: Map<unknown, unknown>,
) => IterableIterator<[unknown, unknown]>;
const setValues = Set.prototype.values as (this: Set<unknown>) => IterableIterator<unknown>;

/**
 * How many levels of objects a stored value may nest (the value itself is the first; an array's
 * elements, an object's properties, a Map's or Set's entries and an Error's cause are one level
 * down). Node's deserializer recurses once per level and runs out of stack well before its
 * serializer does: a plain object nested about 2,000 levels deep (Node 20) is written, and then no
 * reader can read it back. Half of that leaves room for the reader's own stack.
 */
export const MAX_VALUE_DEPTH = 1000;

/**
 * The most path steps a record can hold and still fit in a DynamoDB item (400 KB): each step takes
 * two bytes of JSON at least (`0,`). Paths grow with the depth of each instance, so without this
 * bound 20,000 instances 900 levels down (a 200 KB value) made a 70 MB record, in seconds.
 */
const MAX_RECORD_STEPS = 200_000;

/** One object met by the walk: how it was reached, for the paths of the record. */
interface Node {
  readonly obj: object;
  readonly parent: Node | undefined;
  readonly step: ClassPathStep | undefined;
  /** The object's level: 1 for the value itself. */
  readonly depth: number;
}

function pathOf(node: Node): ClassPathStep[] {
  const path: ClassPathStep[] = [];
  for (let n: Node | undefined = node; n?.step !== undefined; n = n.parent) path.push(n.step);
  return path.reverse();
}

/**
 * Finds every class instance in `value` (the same objects the serializer writes: array elements
 * and properties, own enumerable properties, Map keys and values, Set elements) and calls
 * `onClass` once per instance. Returns the record, or `undefined` when the value holds no class
 * instance (the common case: no `c` attribute). Iterative: the depth is bounded by
 * {@link MAX_VALUE_DEPTH}, not by the stack.
 *
 * Throws {@link UnrecordableValueError} for what another process could not get back as it was:
 * an instance of a class that could not be found again by name (anonymous, or a prototype that is
 * not a class's), of a built-in class whose state is internal (`URL`, `Blob`…), a Map, Set,
 * Error, Date or other built-in carrying own properties the serializer drops, objects nested
 * deeper than {@link MAX_VALUE_DEPTH} levels, or a record too large for an item.
 */
export function recordClasses(
  value: unknown,
  onClass: (cls: ClassRef, name: string) => void,
  { copiesShared = false }: { copiesShared?: boolean } = {},
): ClassRecord | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  let record: ClassRecord | undefined;
  let steps = 0;
  const seen = new Set<object>();
  let shared: Node | undefined;
  const stack: Node[] = [{ obj: value, parent: undefined, step: undefined, depth: 1 }];
  const push = (child: unknown, parent: Node, step: ClassPathStep): void => {
    if (child === null || typeof child !== 'object') return;
    const depth = parent.depth + 1;
    if (!seen.has(child)) stack.push({ obj: child, parent, step, depth });
    else shared ??= { obj: child, parent, step, depth };
  };
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const obj = node.obj;
    if (seen.has(obj)) {
      shared ??= node;
      continue;
    }
    // Met in the serializer's order, so at the level the serializer (and a reader) recurses to.
    // Checked before the paths below grow with the depth: a long chain of instances would make
    // a record quadratic in its length (gigabytes for a list of 20,000).
    if (node.depth > MAX_VALUE_DEPTH) {
      throw new UnrecordableValueError(
        `it nests objects more than ${MAX_VALUE_DEPTH} levels deep, deeper than a reader's deserializer can read back (a chain: store it as a list)`,
      );
    }
    seen.add(obj);
    if (types.isRegExp(obj) && (obj as RegExp).lastIndex !== 0) {
      throw new UnrecordableValueError(
        `${formatClassPath(pathOf(node))} is a RegExp whose lastIndex (${(obj as RegExp).lastIndex}) the serializer does not keep`,
      );
    }
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto === null || !isNativePrototype(obj, proto)) {
      const bare = proto === null || isBarePrototype(proto);
      const name = bare ? NULL_PROTOTYPE : classNameOf(obj, proto, node);
      if (!bare) onClass((proto as { constructor: ClassRef }).constructor, name);
      // Counted before the path is built: the walk stops once the record could not be stored.
      steps += node.depth;
      if (steps > MAX_RECORD_STEPS) {
        throw new UnrecordableValueError(
          `its class record (the path of each instance) would be larger than a DynamoDB item can hold`,
        );
      }
      // No prototype: a class may be named `toString` or `constructor` (no inherited entry).
      record ??= Object.create(null) as ClassRecord;
      (record[name] ??= []).push(pathOf(node));
    }
    // Children are pushed in reverse, so the walk meets them (and records shared objects at their
    // first path) in the serializer's order.
    const children: [unknown, ClassPathStep][] = [];
    if (Array.isArray(obj)) {
      const keys = Object.keys(obj);
      // An array's `length` is its one own property that is not enumerable.
      assertOnlyEnumerable(obj, node, keys.length + 1);
      for (const k of keys) {
        const index = Number(k);
        children.push([
          (obj as unknown as Record<string, unknown>)[k],
          Number.isInteger(index) && String(index) === k ? index : k,
        ]);
      }
    } else if (types.isMap(obj)) {
      let i = 0;
      for (const [k, v] of mapEntries.call(obj as Map<unknown, unknown>)) {
        children.push([k, ['k', i]], [v, ['v', i]]);
        i++;
      }
      assertNoOwnProperties(obj, node, 'a Map');
    } else if (types.isSet(obj)) {
      let i = 0;
      for (const v of setValues.call(obj as Set<unknown>)) children.push([v, ['s', i++]]);
      assertNoOwnProperties(obj, node, 'a Set');
    } else if (ArrayBuffer.isView(obj) || types.isAnyArrayBuffer(obj)) {
      // Bytes: their own keys are their indices (listing them would cost as much as the bytes).
    } else if (isOpaqueBuiltin(obj)) {
      assertNoOwnProperties(obj, node, 'a built-in object (Date, RegExp, Error, boxed value)');
      // An Error's cause goes with it (the serializer keeps it), instances included.
      if (types.isNativeError(obj) && Object.prototype.hasOwnProperty.call(obj, 'cause')) {
        children.push([(obj as { cause?: unknown }).cause, 'cause']);
      }
    } else {
      const keys = Object.keys(obj);
      assertOnlyEnumerable(obj, node, keys.length);
      for (const k of keys) children.push([(obj as Record<string, unknown>)[k], k]);
    }
    for (let i = children.length - 1; i >= 0; i--) {
      const [child, step] = children[i] as [unknown, ClassPathStep];
      push(child, node, step);
    }
  }
  // A serializer that copies what the value shares (JSON) gives each copy its own path: only the
  // first would get its class back.
  if (copiesShared && record !== undefined && shared !== undefined) {
    throw new UnrecordableValueError(
      `${formatClassPath(pathOf(shared))} is an object found at another place of the value too, which the serializer copies apart, so its classes could not all be restored`,
    );
  }
  return record;
}

/**
 * A prototype that is an empty object on `null` (what query-string parsers such as Fastify's use
 * for a fast dictionary): nothing to restore but the absence of `Object.prototype`, so such an
 * object is recorded like one with a `null` prototype.
 */
function isBarePrototype(proto: object): boolean {
  return Object.getPrototypeOf(proto) === null && Reflect.ownKeys(proto).length === 0;
}

/** Built-ins whose data the serializer keeps in its own way, never as their own properties. */
function isOpaqueBuiltin(obj: object): boolean {
  return (
    types.isDate(obj) ||
    types.isRegExp(obj) ||
    types.isNativeError(obj) ||
    types.isBoxedPrimitive(obj)
  );
}

/**
 * Symbol-keyed and non-enumerable own properties: the serializer drops them without a word, so
 * another process would get the object without them. `names`: how many own string-keyed
 * properties an object with no such property has.
 */
function assertOnlyEnumerable(obj: object, node: Node, names: number): void {
  const symbols = Object.getOwnPropertySymbols(obj);
  if (symbols.length > 0) {
    throw new UnrecordableValueError(
      `${formatClassPath(pathOf(node))} has a symbol-keyed property (${String(symbols[0])}), which the serializer does not keep`,
    );
  }
  const own = Object.getOwnPropertyNames(obj);
  if (own.length === names) return;
  const hidden = own.find(
    (k) =>
      !Object.prototype.propertyIsEnumerable.call(obj, k) &&
      !(k === 'length' && Array.isArray(obj)),
  );
  throw new UnrecordableValueError(
    `${formatClassPath(pathOf(node))} has a non-enumerable property (${String(hidden)}), which the serializer does not keep`,
  );
}

/**
 * Own properties of a built-in the serializer writes in its own way (Map, Set, Date, RegExp,
 * Error, boxed value): it drops every one, enumerable or not, symbol-keyed too (an error class
 * that defines its `name` as a non-enumerable own property would come back named `Error`).
 */
function assertNoOwnProperties(obj: object, node: Node, what: string): void {
  const string = types.isStringObject(obj);
  // A String object's characters are its own index properties, and its `length` its own too:
  // they are its value, kept.
  const characters = string ? String.prototype.valueOf.call(obj).length : 0;
  const own = Reflect.ownKeys(obj).filter(
    (k) =>
      !(types.isNativeError(obj) && (k === 'message' || k === 'stack' || k === 'cause')) &&
      !(string && (k === 'length' || (typeof k === 'string' && isCharacterIndex(k, characters)))) &&
      // Its own slot, kept when 0 (any other value is refused before).
      !(k === 'lastIndex' && types.isRegExp(obj)),
  );
  if (own.length > 0) {
    throw new UnrecordableValueError(
      `${formatClassPath(pathOf(node))} is ${what} with own properties (${own.slice(0, 3).map(String).join(', ')}), which the serializer does not keep`,
    );
  }
}

function isCharacterIndex(key: string, characters: number): boolean {
  return /^\d+$/.test(key) && Number(key) < characters;
}

/**
 * Whether `proto` is one the serializer restores by itself. Objects from another realm (a `vm`
 * context, a worker's structured clone) have their own built-in prototypes, recognised by shape.
 */
function isNativePrototype(obj: object, proto: object): boolean {
  if (NATIVE_PROTOTYPES.has(proto)) return true;
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name !== 'string' || !isBuiltinPrototypeChain(proto)) return false;
  switch (name) {
    case 'Object':
      return Object.getPrototypeOf(proto) === null;
    case 'Array':
      return Array.isArray(obj);
    case 'Map':
      return types.isMap(obj);
    case 'Set':
      return types.isSet(obj);
    case 'Date':
      return types.isDate(obj);
    case 'RegExp':
      return types.isRegExp(obj);
    case 'ArrayBuffer':
    case 'SharedArrayBuffer':
      return types.isAnyArrayBuffer(obj);
    case 'DataView':
      return types.isDataView(obj);
    case 'Boolean':
    case 'Number':
    case 'String':
    case 'BigInt':
      return types.isBoxedPrimitive(obj);
    default:
      return (
        (ArrayBuffer.isView(obj) && TYPED_ARRAY_NAME.test(name)) ||
        (types.isNativeError(obj) && /^(?:Eval|Range|Reference|Syntax|Type|URI)?Error$/.test(name))
      );
  }
}

/** A built-in's prototype sits at most two steps above `null` (Uint8Array → TypedArray → Object). */
function isBuiltinPrototypeChain(proto: object): boolean {
  let depth = 0;
  for (
    let p = Object.getPrototypeOf(proto) as object | null;
    p !== null;
    p = Object.getPrototypeOf(p) as object | null
  ) {
    if (++depth > 2) return false;
  }
  return true;
}

function classNameOf(obj: object, proto: object, node: Node): string {
  const ctor = (proto as { constructor?: unknown }).constructor;
  const name = typeof ctor === 'function' ? ctor.name : '';
  const where = formatClassPath(pathOf(node));
  if (typeof ctor !== 'function' || ctor.prototype !== proto || name === '') {
    throw new UnrecordableValueError(
      `the value at ${where} has a prototype that is not a named class's, so another process could not restore it`,
    );
  }
  // A built-in or host class (URL, Blob, Headers…) keeps its state where the serializer cannot
  // see it: it would come back as an empty shell that throws.
  if ((globalThis as Record<string, unknown>)[name] === ctor || isNodeInternal(obj)) {
    throw new UnrecordableValueError(
      `the value at ${where} is a ${name}, whose state the serializer cannot keep; store what it holds instead (e.g. a URL's href)`,
    );
  }
  // So does a class of one's own built on such a class (`class Link extends URL`).
  for (
    let p = Object.getPrototypeOf(proto) as object | null;
    p !== null;
    p = Object.getPrototypeOf(p) as object | null
  ) {
    const base = (p as { constructor?: unknown }).constructor;
    if (
      typeof base === 'function' &&
      (globalThis as Record<string, unknown>)[base.name] === base &&
      !KEPT_BASES.has(base) &&
      !TYPED_ARRAY_NAME.test(base.name)
    ) {
      throw new UnrecordableValueError(
        `the value at ${where} is a ${name}, a subclass of ${base.name}, whose state the serializer cannot keep; store what it holds instead`,
      );
    }
  }
  return name;
}

/**
 * Built-in classes whose state the serializer keeps, so classes built on them can be restored;
 * typed arrays by name too ({@link TYPED_ARRAY_NAME}: `Float16Array` where Node has it).
 */
const KEPT_BASES: ReadonlySet<unknown> = new Set<unknown>(NATIVE_CLASSES);

/** The typed arrays the serializer keeps, whichever this Node has. */
const TYPED_ARRAY_NAME = /^(?:Big)?(?:Int|Uint|Float)\d+(?:Clamped)?Array$/;

/** Objects of Node's own classes that hide their state from property walks. */
function isNodeInternal(obj: object): boolean {
  return (
    types.isPromise(obj) ||
    types.isProxy(obj) ||
    types.isWeakMap(obj) ||
    types.isWeakSet(obj) ||
    types.isExternal(obj)
  );
}

/** A path as a reader would write it: `value.orders[0]`. */
export function formatClassPath(path: readonly ClassPathStep[]): string {
  let out = 'value';
  for (const s of path) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (typeof s === 'string')
      out += /^[A-Za-z_$][\w$]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
    else
      out +=
        s[0] === 'k' ? `<key #${s[1]}>` : s[0] === 'v' ? `<value #${s[1]}>` : `<element #${s[1]}>`;
  }
  return out;
}

/** Checks that parsed JSON is a well-formed record; returns why not, or `undefined`. */
export function invalidRecord(record: unknown): string | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    return 'the class record is not an object';
  }
  for (const [name, paths] of Object.entries(record as Record<string, unknown>)) {
    if (!Array.isArray(paths)) return `the paths of class ${name} are not a list`;
    for (const p of paths as unknown[]) {
      if (!Array.isArray(p) || !p.every(isStep)) return `a path of class ${name} is malformed`;
    }
  }
  return undefined;
}

function isStep(s: unknown): boolean {
  if (typeof s === 'string') return true;
  if (typeof s === 'number') return Number.isInteger(s) && s >= 0;
  return (
    Array.isArray(s) &&
    s.length === 2 &&
    (s[0] === 'k' || s[0] === 'v' || s[0] === 's') &&
    Number.isInteger(s[1]) &&
    (s[1] as number) >= 0
  );
}

/**
 * Gives the objects of a deserialized `value` the prototypes `record` names, resolved by
 * `resolve`. Returns the value, or a reason it cannot be restored: a class this process does not
 * know (`unknown`), or a path that does not lead to an object (`malformed`), in which case some
 * objects may already carry their prototypes: the caller must discard the value. Throws what
 * `Object.setPrototypeOf` throws on an object that cannot take a prototype (a frozen one).
 */
export function restoreClasses(
  value: unknown,
  record: ClassRecord,
  resolve: (name: string) => ClassRef | undefined,
):
  | { readonly ok: true }
  | { readonly ok: false; readonly unknown?: string; readonly reason: string } {
  const prototypes = new Map<string, object | null>();
  for (const name of Object.keys(record)) {
    if (name === NULL_PROTOTYPE) {
      prototypes.set(name, null);
      continue;
    }
    const cls = resolve(name);
    if (cls === undefined)
      return { ok: false, unknown: name, reason: `class ${name} is unknown here` };
    prototypes.set(name, cls.prototype as object);
  }
  // Map and Set positions, listed once per container rather than once per path.
  const listed = new Map<object, unknown[]>();
  const entries = (container: Map<unknown, unknown> | Set<unknown>): unknown[] => {
    let list = listed.get(container);
    if (list === undefined) {
      list = [];
      if (types.isMap(container)) {
        for (const [k, v] of mapEntries.call(container as Map<unknown, unknown>)) list.push(k, v);
      } else {
        for (const v of setValues.call(container as Set<unknown>)) list.push(v);
      }
      listed.set(container, list);
    }
    return list;
  };
  for (const [name, paths] of Object.entries(record)) {
    const proto = prototypes.get(name) as object | null;
    for (const path of paths) {
      let at: unknown = value;
      for (const s of path) {
        if (at === null || typeof at !== 'object') break;
        if (typeof s === 'string' || typeof s === 'number') {
          at = Object.prototype.hasOwnProperty.call(at, s)
            ? (at as Record<string, unknown>)[s]
            : undefined;
        } else if (s[0] === 's' && types.isSet(at)) {
          at = entries(at as Set<unknown>)[s[1]];
        } else if (s[0] !== 's' && types.isMap(at)) {
          at = entries(at as Map<unknown, unknown>)[2 * s[1] + (s[0] === 'k' ? 0 : 1)];
        } else {
          at = undefined;
        }
      }
      if (at === null || typeof at !== 'object') {
        return {
          ok: false,
          reason: `the record's path ${formatClassPath(path)} is not an object in the value`,
        };
      }
      Object.setPrototypeOf(at, proto);
    }
  }
  return { ok: true };
}
