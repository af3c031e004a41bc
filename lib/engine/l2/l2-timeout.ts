/**
 * The `cause` of the `DynamoCacheError` raised when a DynamoDB call took longer than `l2Timeout`
 * and was abandoned (its HTTP request aborted); `timeoutMs` is the limit that was exceeded.
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
 * The abort signal handed to the SDK: the minimal `AbortSignal` of `@smithy/types`
 * (`aborted` + `onabort`), which the SDK's HTTP handler honours by destroying the request.
 * A DOM `AbortController` costs tens of microseconds per call (EventTarget listeners), a
 * measurable share of an L2 hit; this costs an object.
 */
export class L2AbortSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: ((this: L2AbortSignal, event: { type: 'abort' }) => void) | null = null;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.onabort?.call(this, { type: 'abort' });
  }
}

/**
 * Runs `call` with an abort signal that fires after `timeoutMs` (unless not `abortable`), and
 * rejects with {@link L2TimeoutError} at that moment even if `call` ignores the signal (the SDK
 * honours it during connection, request and retry back-off; the timer is the guarantee).
 * `null` = no limit.
 *
 * @example
 * await withTimeout(50, (abortSignal) => client.send(new GetItemCommand(input), { abortSignal }));
 */
export function withTimeout<T>(
  timeoutMs: number | null,
  call: (signal: L2AbortSignal | undefined) => Promise<T>,
  abortable = true,
): Promise<T> {
  if (timeoutMs === null) return call(undefined);
  const signal = abortable ? new L2AbortSignal() : undefined;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new L2TimeoutError(timeoutMs);
      signal?.abort(error);
      reject(error);
    }, timeoutMs);
    const settle = (): void => clearTimeout(timer);
    let running: Promise<T>;
    try {
      running = call(signal);
    } catch (err) {
      settle();
      reject(err);
      return;
    }
    running.then(
      (value) => {
        settle();
        resolve(value);
      },
      (err: unknown) => {
        settle();
        reject(err);
      },
    );
  });
}
