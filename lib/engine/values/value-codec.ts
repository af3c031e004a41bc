import {
  invalidRecord,
  recordClasses,
  restoreClasses,
  UnrecordableValueError,
  type ClassRecord,
} from './class-record.js';
import { ClassNameConflictError, type ClassRegistry } from './class-registry.js';
import type { CacheSerializer } from './serializer.js';

/** A value ready for L2: the serializer's bytes and, when it holds class instances, its record. */
export interface EncodedValue {
  readonly bytes: Uint8Array;
  /** The class record as stored in `c` (JSON); absent when there is no class instance. */
  readonly classes?: string;
}

/** Why a value cannot go to L2 (it is served, and kept in L1 only). */
export class UnstorableValueError extends Error {
  override readonly name = 'UnstorableValueError';
}

/** What reading a stored value gave: the value, or why it cannot be used. */
export type DecodedValue =
  | { readonly status: 'value'; readonly value: unknown }
  /** Bytes or record that cannot be read: the item is overwritten by the next computation. */
  | { readonly status: 'corrupt'; readonly reason: string }
  /** A class this process cannot restore: a miss, recomputed, never a plain object instead. */
  | { readonly status: 'unrestorable'; readonly reason: string };

/**
 * Turns values into what the item stores and back, classes included: the serializer keeps the
 * data, the class record (see class-record.ts) the prototypes, found again through the registry.
 */
export class ValueCodec {
  /** Whether the serializer copies apart what a value shares (JSON does; `node:v8` does not). */
  private copiesShared: boolean | undefined;

  constructor(
    readonly serializer: CacheSerializer,
    readonly registry: ClassRegistry,
  ) {}

  /** Asked of the serializer once: does an object shared by two properties come back shared? */
  private serializerCopiesShared(): boolean {
    if (this.copiesShared === undefined) {
      try {
        const probe = {};
        const back = this.serializer.deserialize(
          this.serializer.serialize({ a: probe, b: probe }),
        ) as { a?: unknown; b?: unknown } | null;
        this.copiesShared = back?.a !== back?.b;
      } catch {
        this.copiesShared = true;
      }
    }
    return this.copiesShared;
  }

  /**
   * Serializes `value` and records its classes (admitting each to the registry). Throws
   * {@link UnstorableValueError} saying why when it cannot be stored faithfully.
   */
  async encode(value: unknown, namespace: string): Promise<EncodedValue> {
    await this.registry.ready();
    let record: ClassRecord | undefined;
    try {
      record = recordClasses(value, (cls, name) => this.registry.admit(cls, name, namespace), {
        copiesShared: this.serializerCopiesShared(),
      });
    } catch (err) {
      // Whatever stops the walk (a getter that throws, too) stops the value at L1, never the call.
      throw new UnstorableValueError(
        err instanceof UnrecordableValueError || err instanceof ClassNameConflictError
          ? err.message
          : `its classes could not be recorded (${err instanceof Error ? err.message : String(err)})`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = this.serializer.serialize(value);
    } catch (cause) {
      throw new UnstorableValueError(
        `the serializer rejected it (${cause instanceof Error ? cause.message : String(cause)})`,
      );
    }
    return record === undefined ? { bytes } : { bytes, classes: JSON.stringify(record) };
  }

  /**
   * Deserializes stored bytes and gives the value's objects their classes back: at once for a
   * value without classes (an L2 hit then waits for no Promise here), else once the class
   * registry is ready.
   */
  decode(
    bytes: Uint8Array,
    classes: string | undefined,
    namespace: string,
  ): DecodedValue | Promise<DecodedValue> {
    let value: unknown;
    try {
      value = this.serializer.deserialize(bytes);
    } catch (cause) {
      return {
        status: 'corrupt',
        reason: `value cannot be decoded (${cause instanceof Error ? cause.message : String(cause)})`,
      };
    }
    if (classes === undefined) return { status: 'value', value };
    return this.restore(value, classes, namespace);
  }

  private async restore(value: unknown, classes: string, namespace: string): Promise<DecodedValue> {
    let record: unknown;
    try {
      record = JSON.parse(classes);
    } catch {
      return { status: 'corrupt', reason: 'the class record (c) is not JSON' };
    }
    const invalid = invalidRecord(record);
    if (invalid !== undefined) return { status: 'corrupt', reason: invalid };
    await this.registry.ready();
    let missing: string | undefined;
    let restored: ReturnType<typeof restoreClasses>;
    try {
      restored = restoreClasses(value, record as ClassRecord, (name) => {
        const found = this.registry.resolve(name, namespace);
        if (typeof found === 'function') return found;
        missing = found.missing;
        return undefined;
      });
    } catch (cause) {
      // What a custom serializer returns may refuse a prototype (frozen or sealed objects, a
      // Proxy): an item this process cannot read, never an error of the caller's or DynamoDB's.
      return {
        status: 'corrupt',
        reason: `its classes cannot be restored on what the serializer returned (${cause instanceof Error ? cause.message : String(cause)})`,
      };
    }
    if (restored.ok) return { status: 'value', value };
    return missing !== undefined
      ? { status: 'unrestorable', reason: missing }
      : { status: 'corrupt', reason: restored.reason };
  }
}
