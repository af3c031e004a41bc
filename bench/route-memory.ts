/**
 * Memory of a cached route under the default options: heap growth (after gc) over `count` GET
 * requests with unique query strings, served over loopback HTTP (one keep-alive connection) by an
 * Express app whose route is `@DynamoCached()` with the module's defaults. DynamoDB is unreachable
 * on purpose (the circuit opens at once, onError 'bypass'): the figure is what the process holds.
 */
import { Controller, Get, Module, Query } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Agent, get as httpGet } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';

@Controller('items')
class ItemsController {
  @Get()
  @DynamoCached()
  items(@Query('q') q: string) {
    return { q, title: `item ${q}`, tags: ['a', 'b'] };
  }
}

@Module({
  imports: [
    DynamoCacheModule.forRoot({
      table: 'unreachable',
      clientConfig: {
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
        maxAttempts: 1,
      },
      onError: 'bypass',
      circuitBreaker: { failures: 1, cooldownMs: 3_600_000 },
    }),
  ],
  controllers: [ItemsController],
})
class RouteMemoryModule {}

export async function routeMemory(
  count: number,
  gc: () => void,
): Promise<{ mb: number; l1Size: number }> {
  const app = await NestFactory.create(RouteMemoryModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const options = { host: '127.0.0.1', port, path, agent, headers: { host: 'shop.example' } };
      httpGet(options, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
  try {
    for (let i = 0; i < 200; i++) await get(`/items?q=warm-${i}`);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < count; i++) await get(`/items?q=${i}&r=${i * 7}`);
    gc();
    const mb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
    const l1Size =
      app.get(DynamoCacheService).stats().namespaces['ItemsController.items']?.l1Size ?? -1;
    return { mb, l1Size };
  } finally {
    agent.destroy();
    await app.close();
  }
}
