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
 * `[]` is the value itself. Objects created with a `null` prototype are recorded under `#null`.
 * An object reached twice (shared or cyclic) is recorded once, at the first path found.
 */

/** One step of a path into a value. */
export type ClassPathStep = string | number | readonly ['k' | 'v' | 's', number];

/** Class name → paths of its instances. */
export type ClassRecord = Record<string, (readonly ClassPathStep[])[]>;

/** The record's name for objects with a `null` prototype (no class name can start with `#`). */
export const NULL_PROTOTYPE = '#null';

import { types } from 'node:util';

/** Prototypes the serializer restores by itself: never recorded. */
const NATIVE_PROTOTYPES: ReadonlySet<object> = new Set<object>(
  [
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
  ].map((c) => c.prototype as object),
);

/** A class as the registry holds it: anything with a prototype to give back. */
export type ClassRef = abstract new (...args: never[]) => unknown;

/** Why a value cannot be stored with its classes (it is then kept in L1 only). */
export class UnrecordableValueError extends Error {
  override readonly name = 'UnrecordableValueError';
}

/**
 * Finds every class instance in `value` (the same objects the serializer writes: array elements,
 * own enumerable properties, Map keys and values, Set elements) and calls `onClass` once per class.
 * Returns the record, or `undefined` when the value holds no class instance (the common case: no
 * `c` attribute). Throws {@link UnrecordableValueError} for an instance of a class that could not be
 * found again by name (anonymous, or a prototype that is not a class's).
 */
export function recordClasses(
  value: unknown,
  onClass: (cls: ClassRef, name: string) => void,
): ClassRecord | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  let record: ClassRecord | undefined;
  const seen = new Set<object>();
  const path: ClassPathStep[] = [];
  const visit = (obj: object): void => {
    if (seen.has(obj)) return;
    seen.add(obj);
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto === null || !isNativePrototype(obj, proto)) {
      const name = proto === null ? NULL_PROTOTYPE : classNameOf(proto, path);
      if (proto !== null) onClass((proto as { constructor: ClassRef }).constructor, name);
      record ??= {};
      (record[name] ??= []).push(path.slice());
    }
    if (Array.isArray(obj)) {
      for (let i = 0; i < obj.length; i++) step(obj[i] as unknown, i);
    } else if (types.isMap(obj)) {
      let i = 0;
      for (const [k, v] of obj as Map<unknown, unknown>) {
        step(k, ['k', i]);
        step(v, ['v', i]);
        i++;
      }
    } else if (types.isSet(obj)) {
      let i = 0;
      for (const v of obj as Set<unknown>) step(v, ['s', i++]);
    } else if (!ArrayBuffer.isView(obj) && !types.isDate(obj) && !types.isRegExp(obj)) {
      for (const k of Object.keys(obj)) step((obj as Record<string, unknown>)[k], k);
    }
  };
  const step = (child: unknown, at: ClassPathStep): void => {
    if (child === null || typeof child !== 'object') return;
    path.push(at);
    visit(child);
    path.pop();
  };
  visit(value);
  return record;
}

/**
 * Whether `proto` is one the serializer restores by itself. Objects from another realm (a `vm`
 * context, a worker's structured clone) have their own built-in prototypes, recognised by shape.
 */
function isNativePrototype(obj: object, proto: object): boolean {
  if (NATIVE_PROTOTYPES.has(proto)) return true;
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  const base = Object.getPrototypeOf(proto) as object | null;
  switch (name) {
    case 'Object':
      return base === null;
    case 'Array':
      return Array.isArray(obj) && isRealmObjectPrototype(base);
    case 'Map':
      return types.isMap(obj) && isRealmObjectPrototype(base);
    case 'Set':
      return types.isSet(obj) && isRealmObjectPrototype(base);
    case 'Date':
      return types.isDate(obj) && isRealmObjectPrototype(base);
    default:
      return false;
  }
}

function isRealmObjectPrototype(proto: object | null): boolean {
  return proto !== null && Object.getPrototypeOf(proto) === null;
}

function classNameOf(proto: object, path: readonly ClassPathStep[]): string {
  const ctor = (proto as { constructor?: unknown }).constructor;
  const name = typeof ctor === 'function' ? ctor.name : '';
  if (typeof ctor !== 'function' || ctor.prototype !== proto || name === '') {
    throw new UnrecordableValueError(
      `the value at ${formatClassPath(path)} has a prototype that is not a named class's, so another process could not restore it`,
    );
  }
  return name;
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
 * objects may already carry their prototypes: the caller must discard the value.
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
      if (types.isMap(container)) for (const [k, v] of container) list.push(k, v);
      else for (const v of container) list.push(v);
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
