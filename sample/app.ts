import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

/** Builds the sample application (used by main.ts and by the tests). */
export async function createSampleApp(
  logger: false | undefined = undefined,
): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule, logger === false ? { logger: false } : {});
  app.enableShutdownHooks();
  return app;
}
