import { DynamoCacheError } from '../../errors.js';

/** The errors by which DynamoDB says "too many requests", not "failing". */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
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
