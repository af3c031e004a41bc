import type { LoggerService, Provider, Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DynamoCacheModule, type DynamoCacheModuleOptions } from '../../lib/index.js';

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
export async function bootLogged(
  options: DynamoCacheModuleOptions,
  providers: (Provider | Type)[],
  logger: LoggerService | false = false,
): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [DynamoCacheModule.forRoot(options)],
    providers,
  }).compile();
  moduleRef.useLogger(logger);
  await moduleRef.init();
  return moduleRef;
}
