import type { CacheLogger } from './namespace/cache-namespace.js';

/**
 * The application's logger, with every call guarded: the cache logs on the way to a caller's
 * result (an unstorable value, a corrupt item, a lost bus message), and a logger that throws must
 * neither lose that result nor, from a background task, crash the process.
 *
 * @example
 * const logger = guardedLogger(settings.logger);
 * logger.warn('never throws'); // even when settings.logger.warn does
 */
export function guardedLogger(logger: CacheLogger): CacheLogger {
  return {
    warn(message: string): void {
      try {
        logger.warn(message);
      } catch {
        // The message is lost; the cache call it concerns goes on.
      }
    },
    error(message: string): void {
      try {
        logger.error(message);
      } catch {
        // As above.
      }
    },
  };
}
