import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { createSampleApp } from '../sample/app.js';
import { startDynamo } from './support/dynamo-server.js';

const ENV_KEYS = [
  'DYNAMO_CACHE_ENDPOINT',
  'DYNAMO_CACHE_TABLE',
  'DYNAMO_CACHE_DATA_DIR',
  'AWS_ACCESS_KEY_ID',
  'AWS_PROFILE',
  'SAMPLE_SLOW_MS',
  'DYNAMO_CACHE_TTL',
];

async function get(
  app: INestApplication,
  path: string,
): Promise<{ source: string; rate: number; ms: number; className: string; inverse: number }> {
  const { port } = app.getHttpServer().address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  expect(res.status).toBe(200);
  return (await res.json()) as {
    source: string;
    rate: number;
    ms: number;
    className: string;
    inverse: number;
  };
}

async function start(): Promise<INestApplication> {
  const app = await createSampleApp(false);
  await app.listen(0, '127.0.0.1');
  return app;
}

describe('12. the sample application', () => {
  const saved: Record<string, string | undefined> = {};
  beforeEach(() => {
    for (const k of ENV_KEYS) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
    process.env.SAMPLE_SLOW_MS = '50';
  });
  afterEach(() => {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('boots with zero setup (embedded dynalite): miss, then L1 hit', async () => {
    const app = await start();
    try {
      const first = await get(app, '/rates/eur/usd');
      expect(first.source).toBe('method');
      expect(first.ms).toBeGreaterThanOrEqual(45);
      const second = await get(app, '/rates/eur/usd');
      expect(second.source).toBe('L1');
      expect(second.rate).toBe(first.rate);
    } finally {
      await app.close();
    }
  });

  it('caches the quote route as a whole response: MISS, then HIT with the same body', async () => {
    const app = await start();
    try {
      const { port } = app.getHttpServer().address() as AddressInfo;
      const url = `http://127.0.0.1:${port}/rates/quote/EUR/USD?amount=100`;
      const first = await fetch(url);
      expect(first.headers.get('x-cache')).toBe('MISS');
      const second = await fetch(url);
      expect(second.headers.get('x-cache')).toBe('HIT');
      expect(await second.json()).toEqual(await first.json());
      const other = await fetch(url.replace('amount=100', 'amount=5'));
      expect(other.headers.get('x-cache')).toBe('MISS');
    } finally {
      await app.close();
    }
  });

  it('a restarted sample on the same server gets an L2 hit', async () => {
    const dynamo = await startDynamo();
    process.env.DYNAMO_CACHE_ENDPOINT = dynamo.endpoint;
    process.env.DYNAMO_CACHE_TABLE = `sample-${Date.now()}`;
    try {
      const first = await start();
      const miss = await get(first, '/rates/gbp/jpy');
      expect(miss.source).toBe('method');
      expect((await get(first, '/rates/gbp/jpy')).source).toBe('L1');
      await first.close();

      const restarted = await start();
      const hit = await get(restarted, '/rates/gbp/jpy');
      expect(hit.source).toBe('L2');
      expect(hit.rate).toBe(miss.rate);
      // Restored as the class the method returned, getter included.
      expect(hit.className).toBe('Rate');
      expect(hit.inverse).toBe(miss.inverse);
      expect(hit.inverse).toBeCloseTo(1 / hit.rate, 5);
      expect((await get(restarted, '/rates/gbp/jpy')).source).toBe('L1');
      await restarted.close();
    } finally {
      await dynamo.close();
    }
  });

  it('grace: with the upstream down past the ttl, the last rate is served as stale, not a 503', async () => {
    process.env.DYNAMO_CACHE_TTL = '1';
    const app = await start();
    try {
      const { port } = app.getHttpServer().address() as AddressInfo;
      const first = await get(app, '/rates/chf/sek');
      expect(first.source).toBe('method');
      const down = await fetch(`http://127.0.0.1:${port}/rates/upstream/down`, { method: 'POST' });
      expect(await down.json()).toEqual({ upstreamDown: true });
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const stale = await get(app, '/rates/chf/sek');
      expect(stale.source).toBe('stale');
      expect(stale.rate).toBe(first.rate);
      // Never computed, nothing stale to serve: the upstream's error.
      const fresh = await fetch(`http://127.0.0.1:${port}/rates/nok/dkk`);
      expect(fresh.status).toBe(503);
    } finally {
      await app.close();
    }
  });

  it('POST /rates/:from/:to/refresh evicts the pair and every cached quote', async () => {
    const app = await start();
    try {
      const { port } = app.getHttpServer().address() as AddressInfo;
      const quote = `http://127.0.0.1:${port}/rates/quote/EUR/USD?amount=100`;
      expect((await get(app, '/rates/eur/usd')).source).toBe('method');
      expect((await get(app, '/rates/eur/usd')).source).toBe('L1');
      await fetch(quote);
      expect((await fetch(quote)).headers.get('x-cache')).toBe('HIT');
      const refreshed = await fetch(`http://127.0.0.1:${port}/rates/eur/usd/refresh`, {
        method: 'POST',
      });
      expect(refreshed.status).toBe(200);
      expect(await refreshed.json()).toEqual({ evicted: ['EUR', 'USD'] });
      expect((await get(app, '/rates/eur/usd')).source).toBe('method');
      expect((await fetch(quote)).headers.get('x-cache')).toBe('MISS');
    } finally {
      await app.close();
    }
  });
});
