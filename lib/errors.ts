/**
 * What the cache was doing when it failed.
 *
 * DynamoDB operations carry the SDK command name; `'key'` is a key that cannot be encoded,
 * `'config'` an option that cannot work, `'serialize'` a value that could not be prepared for
 * DynamoDB (an unreadable item is never an error: it is a miss, and recomputed). It lets a
 * handler tell DynamoDB trouble from a mistake in the application.
 *
 * @example
 * const dynamoCalls: DynamoCacheOperation[] = ['GetItem', 'PutItem', 'DeleteItem'];
 * if (err instanceof DynamoCacheError && dynamoCalls.includes(err.operation)) alerts.cacheDown();
 */
export type DynamoCacheOperation =
  | 'GetItem'
  | 'PutItem'
  | 'DeleteItem'
  | 'BatchWriteItem'
  | 'BatchGetItem'
  | 'UpdateItem'
  | 'DescribeTable'
  | 'CreateTable'
  | 'key'
  | 'config'
  | 'serialize';

/**
 * Extra context attached to a {@link DynamoCacheError}: the constructor's third argument, for code
 * that raises cache errors itself (a test double of the cache, a wrapper) the way the cache does.
 *
 * @example
 * const details: DynamoCacheErrorDetails = { namespace: 'RatesService.rate', cause: err };
 * throw new DynamoCacheError('GetItem', 'GetItem on table "app-cache" failed', details);
 */
export interface DynamoCacheErrorDetails {
  /** The cache namespace (`Class.method` or the decorator's `namespace`), where known. */
  namespace?: string;
  /** The underlying error, usually the AWS SDK's. */
  cause?: unknown;
  /**
   * The value the cached method produced, when the failure happened after the method resolved
   * (a failed `PutItem` under `onError: 'throw'`). The value is never lost: it is also kept in L1.
   */
  result?: unknown;
}

/**
 * The one error type the cache raises.
 *
 * @example
 * try {
 *   await rates.rate('EUR', 'USD');
 * } catch (err) {
 *   if (err instanceof DynamoCacheError && err.operation === 'GetItem') {
 *     logger.warn(`cache unavailable: ${String(err.cause)}`);
 *   }
 * }
 */
export class DynamoCacheError extends Error {
  /** What the cache was doing when it failed. */
  readonly operation: DynamoCacheOperation;
  /** The cache namespace, where known. */
  readonly namespace?: string;
  /** The method's result, when it was computed before the failure (see {@link DynamoCacheErrorDetails.result}). */
  readonly result?: unknown;

  constructor(
    operation: DynamoCacheOperation,
    message: string,
    details: DynamoCacheErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DynamoCacheError';
    this.operation = operation;
    if (details.namespace !== undefined) this.namespace = details.namespace;
    if ('result' in details) this.result = details.result;
  }
}
