import { Injectable, Module, type OnModuleInit } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';

/**
 * Runs what the cache module must have done before any provider's `onModuleInit` (a warm-up
 * calling a `@DynamoCached` method must find it wrapped). Nest calls `onModuleInit` module by
 * module, the deepest first and global modules (distance `Number.MAX_VALUE`) before the rest: a
 * provider below a non-global `forRoot`, or in a global module of the application's, would
 * otherwise run its hook first. Its module is given a distance beyond every other, so its hook
 * runs before all of theirs, whatever the modules and `isGlobal`. It is a module of its own so
 * that the cache module's other hooks (checking the table, connecting the bus) keep their place
 * after the modules it imports.
 */
@Injectable()
export class FirstModuleInit implements OnModuleInit {
  private readonly steps: (() => void)[] = [];

  constructor(modules: ModulesContainer) {
    // Read by Nest when it first orders the hooks, at init: every instance exists by then.
    for (const moduleRef of modules.values()) {
      if (moduleRef.providers.has(FirstModuleInit)) moduleRef.distance = Number.POSITIVE_INFINITY;
    }
  }

  /** `step` runs in this provider's `onModuleInit`, before any other module's. */
  add(step: () => void): void {
    this.steps.push(step);
  }

  onModuleInit(): void {
    for (const step of this.steps.splice(0)) step();
  }
}

@Module({ providers: [FirstModuleInit], exports: [FirstModuleInit] })
export class DynamoCacheFirstInitModule {}
