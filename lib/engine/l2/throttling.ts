import { DynamoCacheError } from '../../errors.js';

/**
 * The cause of a batch call given up on what DynamoDB kept leaving unprocessed: how DynamoDB
 * throttles the keys of a `BatchGetItem` or `BatchWriteItem` (a `GetItem` of the same key would
 * have failed with `ProvisionedThroughputExceededException`).
 *
 * @example
 * throw new DynamoCacheError('BatchGetItem', message, { cause: new UnprocessedRequestsError(3) });
 */
export class UnprocessedRequestsError extends Error {
  constructor(left: number) {
    super(`DynamoDB left ${left} requests unprocessed`);
    this.name = 'UnprocessedRequestsError';
  }
}

/** The errors by which DynamoDB says "too many requests", not "failing". */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'UnprocessedRequestsError',
]);

/**
 * Whether a failed DynamoDB call was throttled: the key or table is busy, most likely because
 * many processes want the same item at once. A lease waiter then waits rather than computes.
 */
export function isThrottled(err: unknown): boolean {
  if (!(err instanceof DynamoCacheError)) return false;
  const name = (err.cause as Error | undefined)?.name;
  return name !== undefined && THROTTLING.has(name);
}
