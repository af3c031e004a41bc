import { Controller, Get, Param, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { baseUrl, fetch } from './support/fast-path-fixtures.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * With `fastPath`, a hit the fast path looks at but cannot send (a body not stored as JSON) goes
 * on to Nest's pipeline, which answers it from L1: one request, one hit, in `stats()` and events
 * (and so in the OpenTelemetry counter that listens to them).
 */

@Controller('counted')
class CountedController {
  @Get('text/:id')
  @DynamoCached(60)
  text(@Param('id') id: string) {
    return `plain ${id}`;
  }

  @Get('json/:id')
  @DynamoCached(60)
  json(@Param('id') id: string) {
    return { id };
  }
}

const adapters = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const;

describe.each(adapters)(`fastPath hit counts on %s (${testServerKind()})`, (_name, makeAdapter) => {
  const fx = useTestDynamo();

  async function boot(): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({
          table: await fx.dynamo.table(),
          client: fx.dynamo.client(),
          fastPath: true,
        }),
      ],
      controllers: [CountedController],
    }).compile();
    const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return app;
  }

  it.each(['text', 'json'])(
    'a %s hit is counted once, whether the fast path or the pipeline sends it',
    async (kind) => {
      const app = await boot();
      const cache = app.get(DynamoCacheService);
      const events: string[] = [];
      cache.on('hit', (e) => events.push(`${e.layer}`));
      const url = `${baseUrl(app)}/counted/${kind}/a`;
      const miss = await fetch(url);
      expect(miss.headers['x-cache']).toBe('MISS');
      await settleAll([app]);
      for (let i = 0; i < 3; i++) {
        const hit = await fetch(url);
        expect(hit.headers['x-cache']).toBe('HIT');
      }
      const ns = kind === 'text' ? 'CountedController.text' : 'CountedController.json';
      const stats = cache.stats().namespaces[ns];
      expect(stats).toMatchObject({ l1Hits: 3, l2Hits: 0, misses: 1 });
      expect(events).toEqual(['l1', 'l1', 'l1']);
    },
  );
});
