import { Controller, Get, Injectable, Param, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../../lib/index.js';
import { RecordingLogger } from '../support/recording-logger.js';

/*
 * With the default options, a DynamoDB that does not answer is not an application outage: methods
 * and routes answer from the method, and the failure is logged once, not once per call.
 */

@Injectable()
class PricesService {
  calls = 0;
  @DynamoCached(60)
  async price(sku: string): Promise<number> {
    this.calls++;
    return sku.length * 100;
  }
}

@Controller('prices')
class PricesController {
  constructor(private readonly prices: PricesService) {}

  @Get(':sku')
  @DynamoCached(60)
  async get(@Param('sku') sku: string) {
    return { sku, price: await this.prices.price(sku) };
  }
}

describe('default options, DynamoDB down', () => {
  let dead: Server;
  let endpoint: string;

  beforeAll(async () => {
    // A port that accepts connections and closes them at once: DynamoDB is down.
    dead = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => dead.close(() => resolve()));
  });

  it('methods and routes answer from the method, with one log line', async () => {
    const logger = new RecordingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({
          table: 'app-cache',
          clientConfig: {
            endpoint,
            region: 'us-east-1',
            credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
            maxAttempts: 1,
          },
        }),
      ],
      controllers: [PricesController],
      providers: [PricesService],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication({ logger });
    await app.init();
    try {
      const prices = app.get(PricesService);
      expect(await prices.price('abc')).toBe(300);
      expect(await prices.price('abcd')).toBe(400);
      const server = app.getHttpServer();
      const r1 = await request(server).get('/prices/xy').expect(200);
      const r2 = await request(server).get('/prices/xyz').expect(200);
      expect(r1.body).toEqual({ sku: 'xy', price: 200 });
      expect(r2.body).toEqual({ sku: 'xyz', price: 300 });
      // Served from L1 afterwards, as without DynamoDB.
      expect(await prices.price('abc')).toBe(300);
      expect(prices.calls).toBe(4);
      await app.get(DynamoCacheService).settle();
      const { total } = app.get(DynamoCacheService).stats();
      expect(total.l2Errors).toBeGreaterThanOrEqual(4);
      const cacheLines = [...logger.warnings, ...logger.errors].filter((m) =>
        /app-cache|DynamoDB|L2/.test(m),
      );
      expect(cacheLines).toHaveLength(1);
      expect(cacheLines[0]).toMatch(/serving without L2 until it answers again/);
    } finally {
      await app.close();
    }
  });
});
