import {
  ClassSerializerInterceptor,
  Controller,
  Get,
  Header,
  Param,
  UseGuards,
  UseInterceptors,
  VersioningType,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import {
  DynamoCached,
  DynamoCacheError,
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { settleAll, sleep } from './support/apps.js';
import { fetch, LetInGuard, type Reply } from './support/fast-path-fixtures.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { countInterceptions } from './support/interceptions.js';

/*
 * `fastPath`: a GET whose response is in L1 is answered by a middleware before Nest's pipeline,
 * for routes where that pipeline could change nothing; everything else takes the usual path.
 * "Through the pipeline" is told by counting DynamoCacheInterceptor.intercept calls.
 */

const runs: Record<string, number> = {};
const ran = (name: string): void => {
  runs[name] = (runs[name] ?? 0) + 1;
};

@Controller('open')
class OpenController {
  @Get('rates/:id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    ran('rate');
    return { id, rate: 1.0842, label: 'é✓' };
  }

  @Get('varied')
  @DynamoCached({ ttl: 60, vary: ['accept-language'] })
  varied() {
    ran('varied');
    return { at: Date.now(), n: runs.varied };
  }

  @Get('headed')
  @Header('x-custom', 'yes')
  @DynamoCached(60)
  headed() {
    ran('headed');
    return { headed: true };
  }
}

@Controller('guarded')
class GuardedController {
  @Get('report')
  @UseGuards(LetInGuard)
  @DynamoCached(60)
  report() {
    ran('guarded');
    return { secret: 'only for x-let-in' };
  }
}

@Controller('serialized')
@UseInterceptors(ClassSerializerInterceptor)
class SerializedController {
  @Get('item')
  @DynamoCached(60)
  item() {
    ran('serialized');
    return { item: 1 };
  }
}

const adapters = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const;

describe.each(adapters)(`fastPath on %s (${testServerKind()})`, (_name, makeAdapter) => {
  const fx = useTestDynamo();
  const interceptions = countInterceptions();

  beforeEach(() => {
    for (const k of Object.keys(runs)) delete runs[k];
  });

  async function boot(
    options: Partial<DynamoCacheModuleOptions> = {},
    setup: (app: INestApplication) => void = () => undefined,
    providers: { provide: symbol | string; useClass: new () => unknown }[] = [],
  ): Promise<{ app: INestApplication; url: string }> {
    const table = await fx.dynamo.table();
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({
          table,
          client: fx.dynamo.client(),
          fastPath: true,
          ...options,
        }),
      ],
      controllers: [OpenController, GuardedController, SerializedController],
      providers: [LetInGuard, ...providers],
    }).compile();
    const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
    setup(app);
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
  }

  /** The headers that describe the response (not the connection, not the clock). */
  const described = (r: Reply): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.headers)) {
      if (!['date', 'connection', 'keep-alive'].includes(k)) out[k] = v;
    }
    return out;
  };

  /** Miss, then a hit through the pipeline (which tells the fast path about the path), then more. */
  async function warm(app: INestApplication, url: string, headers?: Record<string, string>) {
    const miss = await fetch(url, headers);
    await settleAll([app]);
    const viaPipeline = await fetch(url, headers);
    return { miss, viaPipeline };
  }

  it('hits are answered before the pipeline with the same status, headers and bytes as through it', async () => {
    const { app, url } = await boot();
    const { miss, viaPipeline } = await warm(app, `${url}/open/rates/eur`);
    expect(miss.headers['x-cache']).toBe('MISS');
    expect(viaPipeline.headers['x-cache']).toBe('HIT');
    const before = interceptions.count;

    const fast = await fetch(`${url}/open/rates/eur`);

    expect(interceptions.count).toBe(before); // Nest's pipeline never ran
    expect(fast.status).toBe(viaPipeline.status);
    expect(fast.body.equals(viaPipeline.body)).toBe(true);
    expect(fast.body.toString()).toBe(JSON.stringify({ id: 'eur', rate: 1.0842, label: 'é✓' }));
    expect(described(fast)).toEqual(described(viaPipeline));
    expect(runs.rate).toBe(1);
    // Another key of the same route (not yet cached) takes the usual path, and is right.
    const other = await fetch(`${url}/open/rates/usd`);
    expect(other.headers['x-cache']).toBe('MISS');
    expect(JSON.parse(other.body.toString())).toEqual({ id: 'usd', rate: 1.0842, label: 'é✓' });
    expect(interceptions.count).toBe(before + 1);
  });

  it('a second instance on the table: the first instance’s entry from L2, then from its own fast path; a delete elsewhere reaches it within l1MaxAge', async () => {
    const table = await fx.dynamo.table();
    const a = await boot({ table, l1MaxAge: 1 });
    const b = await boot({ table, l1MaxAge: 1 });
    const miss = await fetch(`${a.url}/open/rates/nok`);
    expect(miss.headers['x-cache']).toBe('MISS');
    await settleAll([a.app]);
    // B has never computed it: its pipeline finds A's entry in DynamoDB.
    const fromL2 = await fetch(`${b.url}/open/rates/nok`);
    expect(fromL2.headers['x-cache']).toBe('HIT');
    const before = interceptions.count;
    const fast = await fetch(`${b.url}/open/rates/nok`);
    expect(interceptions.count).toBe(before);
    expect(fast.body.equals(miss.body)).toBe(true);
    expect(described(fast)).toEqual(described(fromL2));
    await a.app
      .get(DynamoCacheService)
      .delete('OpenController.rate', ['GET', 'shop.example', '/open/rates/nok', '']);
    // Past l1MaxAge B's entry must be checked: the fast path stands aside, the pipeline sees
    // the delete and computes again.
    await sleep(1100);
    const after = await fetch(`${b.url}/open/rates/nok`);
    expect(after.headers['x-cache']).toBe('MISS');
    expect(interceptions.count).toBe(before + 1);
    expect(runs.rate).toBe(2);
  });

  it('keys as the interceptor does: vary headers and credentials', async () => {
    const { app, url } = await boot();
    await warm(app, `${url}/open/varied`, { 'accept-language': 'fr' });
    const before = interceptions.count;
    const fr = await fetch(`${url}/open/varied`, { 'accept-language': 'fr' });
    expect(interceptions.count).toBe(before);
    expect(fr.headers['x-cache']).toBe('HIT');
    // Another language: not in L1, so the pipeline computes it.
    const de = await fetch(`${url}/open/varied`, { 'accept-language': 'de' });
    expect(de.headers['x-cache']).toBe('MISS');
    expect(de.body.equals(fr.body)).toBe(false);
    // A credential the route does not vary on: neither served from the cache nor stored.
    const withCookie = await fetch(`${url}/open/varied`, {
      'accept-language': 'fr',
      cookie: 'session=abc',
    });
    expect(withCookie.headers['x-cache']).toBeUndefined();
    expect(runs.varied).toBe(3);
  });

  it('conditional and HEAD requests, and hits after a delete, take the usual path', async () => {
    const { app, url } = await boot();
    const { viaPipeline } = await warm(app, `${url}/open/rates/gbp`);
    const etag = viaPipeline.headers.etag as string;
    const before = interceptions.count;
    const notModified = await fetch(`${url}/open/rates/gbp`, { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(interceptions.count).toBe(before + 1);
    const head = await fetch(`${url}/open/rates/gbp`, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(interceptions.count).toBe(before + 2);
    await app
      .get(DynamoCacheService)
      .delete('OpenController.rate', ['GET', 'shop.example', '/open/rates/gbp', '']);
    const after = await fetch(`${url}/open/rates/gbp`);
    expect(after.headers['x-cache']).toBe('MISS');
    expect(runs.rate).toBe(2);
  });

  it('routes with a guard, another interceptor or @Header() always take the pipeline', async () => {
    const { app, url } = await boot();
    // The guard decides every time: a cached response never reaches a request it refuses.
    await warm(app, `${url}/guarded/report`, { 'x-let-in': 'yes' });
    expect((await fetch(`${url}/guarded/report`, { 'x-let-in': 'yes' })).headers['x-cache']).toBe(
      'HIT',
    );
    expect((await fetch(`${url}/guarded/report`)).status).toBe(403);
    await warm(app, `${url}/serialized/item`);
    await warm(app, `${url}/open/headed`);
    const before = interceptions.count;
    await fetch(`${url}/guarded/report`, { 'x-let-in': 'yes' });
    await fetch(`${url}/serialized/item`);
    const headed = await fetch(`${url}/open/headed`);
    expect(headed.headers['x-custom']).toBe('yes');
    expect(interceptions.count).toBe(before + 3);
  });

  it('a global guard (APP_GUARD or useGlobalGuards) keeps every route on the pipeline', async () => {
    for (const variant of ['app-guard', 'use-global'] as const) {
      const { app, url } = await boot(
        {},
        (a) => {
          if (variant === 'use-global') a.useGlobalGuards(new LetInGuard());
        },
        variant === 'app-guard' ? [{ provide: APP_GUARD, useClass: LetInGuard }] : [],
      );
      await warm(app, `${url}/open/rates/chf`, { 'x-let-in': 'yes' });
      const before = interceptions.count;
      expect((await fetch(`${url}/open/rates/chf`, { 'x-let-in': 'yes' })).headers['x-cache']).toBe(
        'HIT',
      );
      expect((await fetch(`${url}/open/rates/chf`)).status).toBe(403);
      expect(interceptions.count).toBe(before + 1); // the refused request never reached the interceptor
    }
  });

  it('a global interceptor other than the cache, or header versioning, keeps every route on the pipeline', async () => {
    const withSerializer = await boot({}, (a) =>
      a.useGlobalInterceptors(new ClassSerializerInterceptor(a.get(Reflector))),
    );
    await warm(withSerializer.app, `${withSerializer.url}/open/rates/jpy`);
    let before = interceptions.count;
    await fetch(`${withSerializer.url}/open/rates/jpy`);
    expect(interceptions.count).toBe(before + 1);

    const versioned = await boot({}, (a) =>
      a.enableVersioning({ type: VersioningType.HEADER, header: 'x-api-version' }),
    );
    await warm(versioned.app, `${versioned.url}/open/rates/jpy`);
    before = interceptions.count;
    await fetch(`${versioned.url}/open/rates/jpy`);
    expect(interceptions.count).toBe(before + 1);
  });

  it('off by default: every hit goes through the pipeline', async () => {
    const { app, url } = await boot({ fastPath: undefined });
    await warm(app, `${url}/open/rates/sek`);
    const before = interceptions.count;
    expect((await fetch(`${url}/open/rates/sek`)).headers['x-cache']).toBe('HIT');
    expect(interceptions.count).toBe(before + 1);
  });

  it('rejects a fastPath that is not a boolean at bootstrap, naming it', async () => {
    const table = await fx.dynamo.table();
    await expect(
      Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({
            table,
            client: fx.dynamo.client(),
            fastPath: 'yes' as unknown as boolean,
          }),
        ],
      }).compile(),
    ).rejects.toThrow(DynamoCacheError);
  });
});
