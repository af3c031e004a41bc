/** The longest delay `setTimeout` takes: a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A delay `setTimeout` keeps: `ms`, or at most {@link MAX_TIMER_MS} (about 24.8 days), so a very
 * long timeout (`timeout: 3e9`) waits that long instead of firing at once.
 *
 * @example
 * setTimeout(fire, timerDelay(options.timeout));
 */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
