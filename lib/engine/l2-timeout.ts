/**
 * The `cause` of the `DynamoCacheError` raised when a DynamoDB call took longer than `l2Timeout`
 * and was abandoned (its HTTP request aborted).
 *
 * @example
 * if (err instanceof DynamoCacheError && err.cause instanceof L2TimeoutError) metrics.slowCache++;
 */
export class L2TimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms (l2Timeout)`);
    this.name = 'L2TimeoutError';
  }
}

/**
 * Runs `call` with an `AbortSignal` that fires after `timeoutMs`, and rejects with
 * {@link L2TimeoutError} at that moment even if `call` ignores the signal (the SDK honours it
 * during connection, request and retry back-off; the race is the guarantee). `null` = no limit.
 *
 * @example
 * await withTimeout(50, (abortSignal) => client.send(new GetItemCommand(input), { abortSignal }));
 */
export function withTimeout<T>(
  timeoutMs: number | null,
  call: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (timeoutMs === null) return call(undefined);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new L2TimeoutError(timeoutMs);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  let running: Promise<T>;
  try {
    running = call(controller.signal);
  } catch (err) {
    clearTimeout(timer);
    return Promise.reject(err);
  }
  return Promise.race([running, expired]).finally(() => clearTimeout(timer));
}
