import { DefaultDeserializer, serialize } from 'node:v8';

/**
 * Turns cached values into bytes for DynamoDB's `v` attribute and back.
 *
 * @example
 * const json: CacheSerializer = {
 *   serialize: (value) => Buffer.from(JSON.stringify(value)),
 *   deserialize: (bytes) => JSON.parse(Buffer.from(bytes).toString('utf8')),
 * };
 */
export interface CacheSerializer {
  /** Throwing keeps that value in L1 only (logged once per namespace). */
  serialize(value: unknown): Uint8Array;
  /**
   * Gets what `serialize` returned (decompressed), possibly as a plain `Uint8Array` rather than a
   * `Buffer`. Throwing makes the item count as unreadable: it is logged and the value recomputed.
   */
  deserialize(bytes: Uint8Array): unknown;
}

/**
 * The default serializer: Node's structured serialization (`node:v8`), which keeps `undefined`,
 * Dates, Maps, Sets, BigInts, typed arrays and cycles. Class instances come back as plain
 * objects, as with `structuredClone`. Exported to build on, or to read items written by the cache.
 *
 * @example
 * const encrypted: CacheSerializer = {
 *   serialize: (value) => encrypt(v8Serializer.serialize(value)),
 *   deserialize: (bytes) => v8Serializer.deserialize(decrypt(bytes)),
 * };
 */
export const v8Serializer: CacheSerializer = {
  serialize: (value) => serialize(value),
  deserialize: (bytes) => {
    const deserializer = new OwnBytesDeserializer(
      Buffer.isBuffer(bytes)
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    );
    deserializer.readHeader();
    return deserializer.readValue();
  },
};

const readHostObject = (
  DefaultDeserializer.prototype as unknown as {
    _readHostObject(this: DefaultDeserializer): unknown;
  }
)._readHostObject;

/**
 * Node's deserializer, but each typed array, `DataView` and `Buffer` it reads gets an
 * `ArrayBuffer` of its own. Node's makes them views into the bytes it reads, which the AWS SDK
 * decodes into Node's shared 8 KB buffer pool: `value.buffer` then held whatever else shared the
 * slab (request signatures, other responses, the credentials' secret key), for any code that
 * sends `Buffer.from(arr.buffer)` on.
 */
class OwnBytesDeserializer extends DefaultDeserializer {
  // Node's hook for host objects (its typings leave it out).
  _readHostObject(): unknown {
    const view = readHostObject.call(this) as ArrayBufferView;
    const own = (view.buffer as ArrayBuffer).slice(
      view.byteOffset,
      view.byteOffset + view.byteLength,
    );
    if (Buffer.isBuffer(view)) return Buffer.from(own);
    if (view instanceof DataView) return new DataView(own);
    const Ctor = view.constructor as new (buffer: ArrayBuffer) => ArrayBufferView;
    return new Ctor(own);
  }
}
