import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoCacheError } from '../../errors.js';
import { PARTITION_KEY } from './item-codec.js';

/**
 * How long {@link verifyCacheTable} waits for a table that is still being created (or updated)
 * to become ACTIVE, how often it looks, and how long one `DescribeTable` may take.
 */
export interface VerifyCacheTableOptions {
  /** Milliseconds the whole check may take, waiting for ACTIVE included; default 60 000. */
  timeoutMs?: number;
  /** Milliseconds between two `DescribeTable` calls while waiting; default 500. */
  pollMs?: number;
  /**
   * Milliseconds one `DescribeTable` may take before it is aborted and the check fails; default
   * 5 000. Never past `timeoutMs`.
   */
  callTimeoutMs?: number;
}

/** Default {@link VerifyCacheTableOptions.callTimeoutMs}. */
export const VERIFY_CALL_TIMEOUT_MS = 5_000;

/**
 * Checks, with `DescribeTable`, that `table` can hold the cache: it exists, is ACTIVE (a table
 * being created or updated is waited for) and has `cache_key` (String) as its only key. Throws a
 * `DynamoCacheError` (`operation: 'DescribeTable'`) naming the table, the region and what is
 * wrong, also when a `DescribeTable` gets no answer within `callTimeoutMs` or the check outlasts
 * `timeoutMs` (whatever timeouts `client` has, or lacks). Needs `dynamodb:DescribeTable`.
 *
 * @example
 * await verifyCacheTable(client, 'app-cache'); // at bootstrap, before serving
 */
export async function verifyCacheTable(
  client: DynamoDBClient,
  table: string,
  {
    timeoutMs = 60_000,
    pollMs = 500,
    callTimeoutMs = VERIFY_CALL_TIMEOUT_MS,
  }: VerifyCacheTableOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // A region provider of the application's client may be anything: it must not hang the check.
  const region = await bounded(
    () => client.config.region(),
    Math.min(callTimeoutMs, timeoutMs),
  ).catch(() => 'unknown');
  const fail = (problem: string, cause?: unknown): DynamoCacheError =>
    new DynamoCacheError(
      'DescribeTable',
      `DynamoDB table "${table}" (region ${region}) cannot hold the cache: ${problem}`,
      { cause },
    );
  let waitingFor: string | undefined;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw fail(
        waitingFor === undefined
          ? `no answer to DescribeTable within ${timeoutMs} ms`
          : `it is still ${waitingFor} after ${timeoutMs} ms`,
      );
    }
    const limitMs = Math.min(callTimeoutMs, left);
    let description;
    try {
      description = (
        await bounded(
          (abortSignal) =>
            client.send(new DescribeTableCommand({ TableName: table }), { abortSignal }),
          limitMs,
        )
      ).Table;
    } catch (cause) {
      if (cause instanceof VerifyTimeoutError) {
        throw fail(
          `DescribeTable did not answer within ${limitMs} ms: check the endpoint and the network, or set verifyTable: false`,
          cause,
        );
      }
      const name = (cause as Error | undefined)?.name;
      if (name === 'ResourceNotFoundException') {
        throw fail(
          'it does not exist; create it with a partition key "cache_key" of type String (see createCacheTable), or fix "table" and "region"',
          cause,
        );
      }
      if (name === 'AccessDeniedException' || name === 'UnrecognizedClientException') {
        throw fail(
          `DescribeTable was refused (${name}): grant dynamodb:DescribeTable on it, or set verifyTable: false`,
          cause,
        );
      }
      throw fail(`DescribeTable failed: ${(cause as Error)?.message ?? String(cause)}`, cause);
    }
    const keys = description?.KeySchema ?? [];
    const hash = keys.find((k) => k.KeyType === 'HASH');
    const range = keys.find((k) => k.KeyType === 'RANGE');
    if (hash?.AttributeName !== PARTITION_KEY) {
      throw fail(
        `its partition key is "${hash?.AttributeName ?? '?'}", not "${PARTITION_KEY}" (String)`,
      );
    }
    if (range !== undefined) {
      throw fail(
        `it has a sort key "${range.AttributeName ?? '?'}"; the cache needs "${PARTITION_KEY}" as its only key`,
      );
    }
    const type = description?.AttributeDefinitions?.find(
      (a) => a.AttributeName === PARTITION_KEY,
    )?.AttributeType;
    if (type !== 'S') {
      throw fail(`its partition key "${PARTITION_KEY}" is of type ${type ?? '?'}, not String (S)`);
    }
    const status = description?.TableStatus;
    if (status === 'ACTIVE') return;
    if (status !== 'CREATING' && status !== 'UPDATING') {
      throw fail(`its status is ${status ?? 'unknown'}, not ACTIVE`);
    }
    waitingFor = status;
    const wait = Math.min(pollMs, deadline - Date.now());
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** The `cause` of the error {@link verifyCacheTable} throws when a step got no answer in time. */
class VerifyTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * `work`, given up after `timeoutMs` with a {@link VerifyTimeoutError}. The signal lets the SDK
 * close the request's socket, but the timer is the guarantee: a client may ignore the signal
 * (or spend the time resolving credentials, before any request exists).
 */
async function bounded<T>(
  work: (abortSignal: AbortSignal) => Promise<T>,
  timeoutMs: number,
): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new VerifyTimeoutError(timeoutMs);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => work(controller.signal)), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
