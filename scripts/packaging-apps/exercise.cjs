// The body of the throwaway applications of scripts/packaging-test.mjs, shared by the ESM app
// (NestJS 12, main.mjs) and the CommonJS app (NestJS 11, main.cjs). It is CommonJS so that both
// can load it; each main loads @nestjs/*, the AWS SDK and nestjs-dynamo-cache its own way (import
// or require) and hands the modules in. Plain JavaScript: decorators are applied by hand.
//
// It boots a Nest HTTP application on loopback against the DynamoDB endpoint in ENDPOINT, then
// checks that a @DynamoCached service method runs once for two calls, that a cached GET route
// answers twice with one computation, and that a second application (empty L1) reads the value
// from DynamoDB without calling the method. Any failed check throws: the process exits non-zero.
'use strict';

const assert = require('node:assert/strict');

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

  // The route is cached by DynamoCacheInterceptor when the package has it (CONTRACT §5:
  // @DynamoCached on the handler is enough); otherwise the route's service call is.
  const hasInterceptor = typeof cache.DynamoCacheInterceptor === 'function';
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
  if (hasInterceptor) DynamoCached(30)(QuotesController.prototype, 'quote', handler);
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
      const res = await globalThis.fetch(`${base}/quotes/ACME`);
      assert.equal(res.status, 200);
      responses.push({ body: await res.json(), xCache: res.headers.get('x-cache') });
    }
    assert.deepEqual(responses[1].body, responses[0].body);
    assert.deepEqual(responses[0].body, { symbol: 'ACME', price: 400 });
    if (hasInterceptor) {
      assert.equal(app.get(QuotesController).handled, 1, 'the cached route handler runs once');
      assert.deepEqual(
        responses.map((r) => r.xCache),
        ['MISS', 'HIT'],
      );
      say('route: 2 GETs, 1 handler call, X-Cache MISS then HIT (DynamoCacheInterceptor)');
    } else {
      assert.equal(app.get(QuotesController).handled, 2);
      assert.equal(rates.quoteCalls, 1, "the route's cached service call runs once");
      say('route: 2 GETs, 1 computation (the route calls a cached service method; no interceptor)');
    }
  } finally {
    await app.close();
  }

  // A second application: empty L1, same table. The value must come from DynamoDB.
  const again = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
  try {
    const rates = again.get(RatesService);
    assert.deepEqual(await rates.rate('EUR', 'USD'), {
      pair: 'EUR/USD',
      rate: (3 * 7) / (3 * 3),
    });
    assert.equal(rates.calls, 0, 'a fresh application reads the value from DynamoDB');
    const { total } = again.get(DynamoCacheService).stats();
    assert.equal(total.l2Hits, 1);
    say(`fresh application: served from DynamoDB (l2Hits ${total.l2Hits}, method not called)`);
  } finally {
    await again.close();
  }
  say('ok');
};
