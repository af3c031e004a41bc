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
