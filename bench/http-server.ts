/**
 * The HTTP benchmark's server, run in a child process so the load generator does not share its
 * event loop. Three GET routes of one app, same shape: uncached, cached by
 * DynamoCacheInterceptor, cached by @nestjs/cache-manager's CacheInterceptor.
 */
import 'reflect-metadata';
import { Controller, Get, Module, UseInterceptors } from '@nestjs/common';
import { CacheInterceptor, CacheModule, CacheTTL } from '@nestjs/cache-manager';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';

const BODY = { from: 'EUR', to: 'USD', rate: 1.0842, at: '2026-11-25T00:00:00.000Z' };

@Controller()
class PlainController {
  @Get('plain')
  rate() {
    return BODY;
  }
}

@Controller()
class DynamoController {
  @Get('dynamo')
  @DynamoCached(3600)
  rate() {
    return BODY;
  }
}

@Controller()
@UseInterceptors(CacheInterceptor)
class CacheManagerController {
  @Get('cache-manager')
  @CacheTTL(3_600_000)
  rate() {
    return BODY;
  }
}

async function main(): Promise<void> {
  const { endpoint, table } = JSON.parse(process.argv[2] ?? '{}') as {
    endpoint: string;
    table: string;
  };
  @Module({
    imports: [
      DynamoCacheModule.forRoot({
        table,
        isGlobal: true,
        clientConfig: {
          endpoint,
          region: 'us-east-1',
          credentials: { accessKeyId: 'b', secretAccessKey: 'b' },
        },
      }),
      CacheModule.register(),
    ],
    controllers: [PlainController, DynamoController, CacheManagerController],
  })
  class HttpBenchModule {}
  const app = await NestFactory.create(HttpBenchModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.send?.({ port });
  process.on('message', (m) => {
    if (m === 'stop') void app.close().then(() => process.exit(0));
  });
}

void main();
