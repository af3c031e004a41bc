import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants, gunzip } from 'node:zlib';

/*
 * DynamoDB items are limited to 400 KB. Large serialized values are compressed before they are
 * stored, and the item says how (attribute `z`), so that any reader can decode it. Compression runs
 * on libuv's thread pool (the async zlib API), never on the event loop.
 */

/** The `z` markers a reader understands; the writer uses `br`. */
export type ValueCompression = 'br' | 'gzip';

/** Serialized values larger than this are compressed. */
export const COMPRESSION_THRESHOLD_BYTES = 64 * 1024;

/**
 * The largest item this library writes: DynamoDB's 400 KB less a margin for its own accounting.
 * A value that does not fit even compressed stays in L1 only.
 */
export const MAX_ITEM_BYTES = 390 * 1024;

/**
 * The most a stored value may inflate to. Guards readers against a foreign or corrupt item that
 * decompresses to gigabytes; the writer never stores a value larger than this.
 */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const brotliCompressAsync = promisify(brotliCompress);
const brotliDecompressAsync = promisify(brotliDecompress);
const gunzipAsync = promisify(gunzip);

/** Whether `marker` is a `z` value this library can decode. */
export function isValueCompression(marker: unknown): marker is ValueCompression {
  return marker === 'br' || marker === 'gzip';
}

/**
 * Compresses `bytes` with brotli when they are over {@link COMPRESSION_THRESHOLD_BYTES} and the
 * result is smaller; otherwise returns them as they are, with no marker.
 *
 * @example
 * const { bytes, compression } = await compressValue(serialized); // compression: 'br' | undefined
 */
export async function compressValue(
  bytes: Uint8Array,
): Promise<{ bytes: Uint8Array; compression?: ValueCompression }> {
  if (bytes.byteLength <= COMPRESSION_THRESHOLD_BYTES) return { bytes };
  const packed = await brotliCompressAsync(bytes, {
    params: {
      // Quality 5 compresses text-like data nearly as well as 11 at a small fraction of the cost.
      [constants.BROTLI_PARAM_QUALITY]: 5,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength,
    },
  });
  return packed.byteLength < bytes.byteLength ? { bytes: packed, compression: 'br' } : { bytes };
}

/**
 * Reverses {@link compressValue} for a stored `z` marker. Rejects on bytes that do not decode or
 * that inflate beyond {@link MAX_INFLATED_BYTES}.
 *
 * @example
 * const serialized = await decompressValue(item.v.B, 'br');
 */
export function decompressValue(bytes: Uint8Array, compression: ValueCompression): Promise<Buffer> {
  const options = { maxOutputLength: MAX_INFLATED_BYTES };
  return compression === 'br' ? brotliDecompressAsync(bytes, options) : gunzipAsync(bytes, options);
}
