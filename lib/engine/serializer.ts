import { deserialize, serialize } from 'node:v8';

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
  serialize(value: unknown): Uint8Array;
  deserialize(bytes: Uint8Array): unknown;
}

/**
 * The default serializer: Node's structured serialization (`node:v8`), which keeps `undefined`,
 * Dates, Maps, Sets, BigInts, typed arrays and cycles. Class instances come back as plain
 * objects, as with `structuredClone`.
 */
export const v8Serializer: CacheSerializer = {
  serialize: (value) => serialize(value),
  deserialize: (bytes) =>
    deserialize(
      Buffer.isBuffer(bytes)
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    ),
};
