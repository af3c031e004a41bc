/**
 * Whether `value` is a Promise or another thenable: what decorated methods must return, and what
 * `trackBy` may return.
 */
export function isThenable<T = unknown>(value: unknown): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
