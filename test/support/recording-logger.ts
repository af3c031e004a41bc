import type { LoggerService } from '@nestjs/common';
import { bootCache } from './apps.js';

/** Keeps what the application logs, so a test can count warnings. */
export class RecordingLogger implements LoggerService {
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  log(): void {}
  warn(message: unknown): void {
    this.warnings.push(String(message));
  }
  error(message: unknown): void {
    this.errors.push(String(message));
  }
  /** Warnings that match `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.warnings.filter((w) => pattern.test(w));
  }
}

/** Boots an application context with the cache module and `providers`, logging into `logger`. */
export const bootLogged = bootCache;
