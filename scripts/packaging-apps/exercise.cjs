// The body of the throwaway applications of scripts/packaging-test.mjs, shared by the ESM app
// (NestJS 12, main.mjs) and the CommonJS app (NestJS 11, main.cjs). It is CommonJS so that both
// can load it; each main loads @nestjs/*, the AWS SDK and nestjs-dynamo-cache its own way (import
// or require) and hands the modules in. Plain JavaScript: decorators are applied by hand.
//
// It boots a Nest HTTP application on loopback against the DynamoDB endpoint in ENDPOINT, then
// checks that a @DynamoCached service method runs once for two calls, that a @DynamoCached GET
// route answers twice with one handler call (X-Cache MISS, then HIT), and that a second application (empty L1) reads the value
// from DynamoDB without calling the method. Any failed check throws: the process exits non-zero.
'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const { URL } = require('node:url');

// Route entries are keyed by host: both applications are reached under one name, as behind a
// load balancer. fetch() may not set Host, so plain node:http does the GETs.
const HOST = 'quotes.example';

function get(url) {
  return new Promise((resolve, reject) => {
    const { hostname, port, pathname } = new URL(url);
    http
      .get({ host: hostname, port, path: pathname, headers: { host: HOST } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            xCache: res.headers['x-cache'],
            body: JSON.parse(text),
          }),
        );
      })
      .on('error', reject);
  });
}

module.exports = async function exercise({ label, common, core, cache, sdk }) {
  const { Controller, Get, Inject, Injectable, Module, Param } = common;
  const { NestFactory } = core;
  const { DynamoCached, DynamoCacheModule, DynamoCacheService, createCacheTable } = cache;
  const say = (msg) => console.log(`[${label}] ${msg}`);

  const clientConfig = {
    endpoint: process.env.ENDPOINT,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const table = process.env.TABLE;
  const admin = new sdk.DynamoDBClient(clientConfig);
  await createCacheTable(admin, table);
  admin.destroy();

  class RatesService {
    constructor() {
      this.calls = 0;
      this.quoteCalls = 0;
    }
    async rate(from, to) {
      this.calls++;
      return { pair: `${from}/${to}`, rate: (from.length * 7) / (to.length * 3) };
    }
    async quote(symbol) {
      this.quoteCalls++;
      return { symbol, price: symbol.length * 100 };
    }
  }
  Injectable()(RatesService);
  for (const name of ['rate', 'quote']) {
    DynamoCached(60)(
      RatesService.prototype,
      name,
      Object.getOwnPropertyDescriptor(RatesService.prototype, name),
    );
  }

  // The route: @DynamoCached on the handler is enough for DynamoCacheInterceptor to cache it
  // (CONTRACT §5).
  assert.equal(
    typeof cache.DynamoCacheInterceptor,
    'function',
    'DynamoCacheInterceptor is exported',
  );
  class QuotesController {
    constructor(rates) {
      this.rates = rates;
      this.handled = 0;
    }
    async quote(symbol) {
      this.handled++;
      return this.rates.quote(symbol);
    }
  }
  Inject(RatesService)(QuotesController, undefined, 0);
  Param('symbol')(QuotesController.prototype, 'quote', 0);
  const handler = Object.getOwnPropertyDescriptor(QuotesController.prototype, 'quote');
  DynamoCached(30)(QuotesController.prototype, 'quote', handler);
  Get(':symbol')(QuotesController.prototype, 'quote', handler);
  Controller('quotes')(QuotesController);

  class AppModule {}
  Module({
    imports: [DynamoCacheModule.forRoot({ table, clientConfig, ttl: 300 })],
    controllers: [QuotesController],
    providers: [RatesService],
  })(AppModule);

  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  try {
    const rates = app.get(RatesService);
    const first = await rates.rate('EUR', 'USD');
    const second = await rates.rate('EUR', 'USD');
    assert.deepEqual(second, first);
    assert.equal(rates.calls, 1, 'the cached method runs once for two calls');
    say(`service method: 2 calls, ${rates.calls} computation`);

    const responses = [];
    for (let i = 0; i < 2; i++) {
      const res = await get(`${base}/quotes/ACME`);
      assert.equal(res.status, 200);
      responses.push({ body: res.body, xCache: res.xCache });
    }
    assert.deepEqual(responses[1].body, responses[0].body);
    assert.deepEqual(responses[0].body, { symbol: 'ACME', price: 400 });
    assert.equal(app.get(QuotesController).handled, 1, 'the cached route handler runs once');
    assert.equal(rates.quoteCalls, 1);
    assert.deepEqual(
      responses.map((r) => r.xCache),
      ['MISS', 'HIT'],
    );
    say('route: 2 GETs, 1 handler call, X-Cache MISS then HIT (DynamoCacheInterceptor)');
  } finally {
    await app.close();
  }

  // A second application: empty L1, same table. Method and route must be served from DynamoDB.
  const again = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  await again.listen(0, '127.0.0.1');
  try {
    const rates = again.get(RatesService);
    assert.deepEqual(await rates.rate('EUR', 'USD'), { pair: 'EUR/USD', rate: 21 / 9 });
    assert.equal(rates.calls, 0, 'a fresh application reads the value from DynamoDB');
    const res = await get(`${(await again.getUrl()).replace('[::1]', '127.0.0.1')}/quotes/ACME`);
    assert.equal(res.status, 200);
    assert.equal(res.xCache, 'HIT');
    assert.deepEqual(res.body, { symbol: 'ACME', price: 400 });
    assert.equal(again.get(QuotesController).handled, 0, 'the route response comes from DynamoDB');
    const { total } = again.get(DynamoCacheService).stats();
    assert.equal(total.l2Hits, 2);
    say('fresh application: method and route served from DynamoDB (l2Hits 2, nothing computed)');
  } finally {
    await again.close();
  }
  say('ok');
};
