/**
 * The HTTP benchmark's server, in a process of its own (pinned to the server core; the load
 * generator runs on the other one). One Nest app on Express or Fastify (argv), with the same GET
 * route in three variants for each of two bodies (small, ~48 KB JSON): uncached, cached by
 * DynamoCacheInterceptor (`@DynamoCached`), cached by @nestjs/cache-manager's CacheInterceptor;
 * and the ceiling of an interceptor: one that answers every request with the body's JSON text
 * itself, without a cache or the handler.
 * With `fastPath` in its arguments, the module's `fastPath` option is on (a second server).
 * Every handler counts its calls; the parent asks for the counts over IPC (`'counts'`) to check
 * that the cached variants were all hits.
 */
import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Module,
  UseInterceptors,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common';
import { CacheInterceptor, CacheModule, CacheTTL } from '@nestjs/cache-manager';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { of, type Observable } from 'rxjs';
import { sendStoredJson } from '../lib/http/json-replay.js';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { LARGE_BODY, SMALL_BODY } from './bodies.js';

const calls: Record<string, number> = {};
const count = (route: string): void => {
  calls[route] = (calls[route] ?? 0) + 1;
};

@Controller('small')
class SmallPlainController {
  @Get('plain')
  body() {
    count('/small/plain');
    return SMALL_BODY;
  }
}

@Controller('small')
class SmallDynamoController {
  @Get('dynamo')
  @DynamoCached(3600)
  body() {
    count('/small/dynamo');
    return SMALL_BODY;
  }
}

/**
 * What no caching interceptor can beat: no key, no look-up, the handler never called; the body's
 * JSON text made once and sent as this package sends a hit's (a short text as a string on
 * Fastify, otherwise bytes), with the headers that spare the framework any work on it. A cached
 * route through Nest's interceptor chain costs at least this.
 */
@Injectable()
class ConstantInterceptor implements NestInterceptor {
  constructor(private readonly host: HttpAdapterHost) {}

  intercept(context: ExecutionContext): Observable<unknown> {
    const adapter = this.host.httpAdapter;
    const response: unknown = context.switchToHttp().getResponse();
    const body = context.getClass() === SmallFloorController ? SMALL_BODY : LARGE_BODY;
    adapter.setHeader(response, 'Content-Type', 'application/json; charset=utf-8');
    adapter.setHeader(response, 'ETag', 'W/"constant"');
    sendStoredJson(response, body);
    return of(body);
  }
}

@Controller('small')
@UseInterceptors(ConstantInterceptor)
class SmallFloorController {
  @Get('floor')
  body() {
    count('/small/floor');
    return SMALL_BODY;
  }
}

@Controller('large')
@UseInterceptors(ConstantInterceptor)
class LargeFloorController {
  @Get('floor')
  body() {
    count('/large/floor');
    return LARGE_BODY;
  }
}

@Controller('small')
@UseInterceptors(CacheInterceptor)
class SmallCacheManagerController {
  @Get('cache-manager')
  @CacheTTL(3_600_000)
  body() {
    count('/small/cache-manager');
    return SMALL_BODY;
  }
}

@Controller('large')
class LargePlainController {
  @Get('plain')
  body() {
    count('/large/plain');
    return LARGE_BODY;
  }
}

@Controller('large')
class LargeDynamoController {
  @Get('dynamo')
  @DynamoCached(3600)
  body() {
    count('/large/dynamo');
    return LARGE_BODY;
  }
}

@Controller('large')
@UseInterceptors(CacheInterceptor)
class LargeCacheManagerController {
  @Get('cache-manager')
  @CacheTTL(3_600_000)
  body() {
    count('/large/cache-manager');
    return LARGE_BODY;
  }
}

async function main(): Promise<void> {
  const { endpoint, table, adapter, fastPath } = JSON.parse(process.argv[2] ?? '{}') as {
    endpoint: string;
    table: string;
    adapter: 'express' | 'fastify';
    fastPath?: boolean;
  };
  @Module({
    imports: [
      DynamoCacheModule.forRoot({
        table,
        isGlobal: true,
        fastPath: fastPath === true,
        clientConfig: {
          endpoint,
          region: 'us-east-1',
          credentials: { accessKeyId: 'b', secretAccessKey: 'b' },
        },
      }),
      CacheModule.register(),
    ],
    controllers: [
      SmallPlainController,
      SmallFloorController,
      SmallDynamoController,
      SmallCacheManagerController,
      LargePlainController,
      LargeFloorController,
      LargeDynamoController,
      LargeCacheManagerController,
    ],
  })
  class HttpBenchModule {}
  const app: INestApplication =
    adapter === 'fastify'
      ? await NestFactory.create(HttpBenchModule, new FastifyAdapter(), { logger: false })
      : await NestFactory.create(HttpBenchModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.send?.({ port });
  process.on('message', (m) => {
    if (m === 'counts') process.send?.({ counts: { ...calls } });
    if (m === 'stop') void app.close().then(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
}

void main();
