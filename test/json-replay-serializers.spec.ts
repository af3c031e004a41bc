import {
  Controller,
  Get,
  Injectable,
  Param,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, RouteSchema } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { createServer, get, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { map, type Observable } from 'rxjs';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { express } from './support/express-types.js';

/*
 * A hit sends the miss's JSON text only when the framework's serializer is JSON.stringify for
 * that body: an Express 'json replacer' or a Fastify response schema that changes the text
 * (even keeping its length) is honoured on every hit, as on the miss.
 */

@Controller()
class CardsController {
  @Get('card/:id')
  @DynamoCached(60)
  card(@Param('id') id: string) {
    return { id, card: '4111111111111111' };
  }
}

@Controller()
class SchemaController {
  @Get('typed/:id')
  @RouteSchema({
    response: {
      200: { type: 'object', properties: { n: { type: 'integer' }, s: { type: 'string' } } },
    },
  })
  @DynamoCached(60)
  typed(@Param('id') _id: string) {
    // The schema sends {"n":1,"s":"1"}: the same length as JSON.stringify of this body.
    return { n: 1.5, s: 1 };
  }
}

/** Adds an internal field that the route's response schema is there to drop. */
@Injectable()
class Internal implements NestInterceptor {
  intercept(_c: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((body: object) => ({ ...body, internal: 'db-host-7' })));
  }
}

@Controller()
@UseInterceptors(Internal)
class FilteredController {
  @Get('filtered/:id')
  @RouteSchema({ response: { 200: { type: 'object', properties: { id: { type: 'string' } } } } })
  @DynamoCached(60)
  filtered(@Param('id') id: string) {
    return { id };
  }
}

/** GETs `url`, with `host` as its Host header when given (instances are keyed by the host asked). */
function fetchText(
  url: string,
  host?: string,
): Promise<{ cache: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: host === undefined ? {} : { host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          cache: res.headers['x-cache'] as string | undefined,
          text: Buffer.concat(chunks).toString(),
        }),
      );
    }).on('error', reject);
  });
}

describe(`replayed JSON text and the framework's own serializer (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function boot(
    table: string,
    adapter: ExpressAdapter | FastifyAdapter,
    controllers: unknown[],
    setup: (app: INestApplication) => void = () => undefined,
  ): Promise<string> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: controllers as never[],
      providers: [Internal],
    }).compile();
    const app = moduleRef.createNestApplication(adapter, { logger: false });
    setup(app);
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  }

  it("Express with a masking 'json replacer' that keeps the length: every hit is masked like the miss", async () => {
    const table = await fx.dynamo.table();
    const url = await boot(table, new ExpressAdapter(), [CardsController], (app) => {
      (app.getHttpAdapter().getInstance() as { set(k: string, v: unknown): void }).set(
        'json replacer',
        (k: string, v: unknown) =>
          k === 'card' && typeof v === 'string' ? v.replace(/\d(?=\d{4})/g, '*') : v,
      );
    });
    const miss = await fetchText(`${url}/card/c1`);
    await settleAll(fx.apps);
    const hit = await fetchText(`${url}/card/c1`);
    expect(miss).toEqual({ cache: 'MISS', text: '{"id":"c1","card":"************1111"}' });
    expect(hit).toEqual({ cache: 'HIT', text: miss.text });
  });

  it('Express: a JSON setting made after the entry was stored, on the app or inherited from the parent it is mounted in, is honoured by the next hit', async () => {
    const table = await fx.dynamo.table();
    const parent = express();
    const child = express();
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [CardsController],
    }).compile();
    const app = moduleRef.createNestApplication(new ExpressAdapter(child), { logger: false });
    await app.init();
    fx.apps.push(app);
    parent.use('/api', child);
    const server = createServer(parent as unknown as RequestListener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/card/c2`;
      const body = { id: 'c2', card: '4111111111111111' };
      const miss = await fetchText(url);
      await settleAll(fx.apps);
      const plainHit = await fetchText(url);
      expect([miss.cache, plainHit.cache]).toEqual(['MISS', 'HIT']);
      expect(plainHit.text).toBe(JSON.stringify(body));
      // Inherited: the mounted app's settings fall back to its parent's.
      parent.set('json spaces', 2);
      const spaced = await fetchText(url);
      expect(spaced).toEqual({ cache: 'HIT', text: JSON.stringify(body, null, 2) });
      child.set('json spaces', 1);
      const own = await fetchText(url);
      expect(own).toEqual({ cache: 'HIT', text: JSON.stringify(body, null, 1) });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('Fastify with a response schema that coerces (same length): every hit is serialized by the schema like the miss', async () => {
    const table = await fx.dynamo.table();
    const url = await boot(table, new FastifyAdapter(), [SchemaController]);
    const miss = await fetchText(`${url}/typed/t1`);
    await settleAll(fx.apps);
    const hit = await fetchText(`${url}/typed/t1`);
    expect(miss).toEqual({ cache: 'MISS', text: '{"n":1,"s":"1"}' });
    expect(hit).toEqual({ cache: 'HIT', text: miss.text });
  });

  it('Fastify: a body an outer interceptor replaced is still serialized by the route schema on a hit', async () => {
    const table = await fx.dynamo.table();
    const url = await boot(table, new FastifyAdapter(), [FilteredController]);
    const miss = await fetchText(`${url}/filtered/f1`);
    await settleAll(fx.apps);
    const hit = await fetchText(`${url}/filtered/f1`);
    expect(miss).toEqual({ cache: 'MISS', text: '{"id":"f1"}' });
    expect(hit).toEqual({ cache: 'HIT', text: miss.text });
  });

  it("Fastify: preSerialization hooks get the body on every hit, as on the miss, and the hits' bytes are the miss's (L1 and another instance's L2)", async () => {
    const table = await fx.dynamo.table();
    const seen: { app: string; payload: unknown }[] = [];
    const withHook = (name: string) => (app: INestApplication) => {
      const fastify = (app.getHttpAdapter() as FastifyAdapter).getInstance();
      fastify.addHook('preSerialization', (_req, _reply, payload, done) => {
        seen.push({ app: name, payload });
        done(null, payload);
      });
    };
    const a = await boot(table, new FastifyAdapter(), [CardsController], withHook('a'));
    const b = await boot(table, new FastifyAdapter(), [CardsController], withHook('b'));
    const miss = await fetchText(`${a}/card/c1`, 'api.test');
    await settleAll(fx.apps);
    const l1 = await fetchText(`${a}/card/c1`, 'api.test');
    const l2 = await fetchText(`${b}/card/c1`, 'api.test');
    const body = { id: 'c1', card: '4111111111111111' };
    expect(miss).toEqual({ cache: 'MISS', text: JSON.stringify(body) });
    expect(l1).toEqual({ cache: 'HIT', text: miss.text });
    expect(l2).toEqual({ cache: 'HIT', text: miss.text });
    expect(seen).toEqual([
      { app: 'a', payload: body },
      { app: 'a', payload: body },
      { app: 'b', payload: body },
    ]);
  });

  it("Fastify: a serializer the application gives the reply (in a hook) serializes every hit, as it did the miss (L1 and another instance's L2)", async () => {
    const table = await fx.dynamo.table();
    const serialized: { app: string; payload: unknown }[] = [];
    const withSerializer = (name: string) => (app: INestApplication) => {
      const fastify = (app.getHttpAdapter() as FastifyAdapter).getInstance();
      fastify.addHook('onRequest', (_req, reply, done) => {
        // With a serializer of its own a reply gets no JSON type from Fastify: the app sets it.
        reply.type('application/json; charset=utf-8');
        reply.serializer((payload: unknown) => {
          serialized.push({ app: name, payload });
          return JSON.stringify(payload);
        });
        done();
      });
    };
    const a = await boot(table, new FastifyAdapter(), [CardsController], withSerializer('a'));
    const b = await boot(table, new FastifyAdapter(), [CardsController], withSerializer('b'));
    const miss = await fetchText(`${a}/card/c2`, 'api.test');
    await settleAll(fx.apps);
    const afterMiss = serialized.length;
    const l1 = await fetchText(`${a}/card/c2`, 'api.test');
    const l2 = await fetchText(`${b}/card/c2`, 'api.test');
    const body = { id: 'c2', card: '4111111111111111' };
    expect(miss).toEqual({ cache: 'MISS', text: JSON.stringify(body) });
    // Not the stored text handed to it as a string (and serialized once more, in quotes).
    expect(l1).toEqual({ cache: 'HIT', text: miss.text });
    expect(l2).toEqual({ cache: 'HIT', text: miss.text });
    expect(serialized.slice(afterMiss)).toEqual([
      { app: 'a', payload: body },
      { app: 'b', payload: body },
    ]);
  });
});

/** A constant body served by a cached route and by an uncached one. */
const SHARED = { kind: 'shared', n: 7 };

@Controller()
class MixedController {
  @Get('cached/:id')
  @DynamoCached(60)
  cached(@Param('id') id: string) {
    return { id, cached: true };
  }

  @Get('shared-cached')
  @DynamoCached(60)
  sharedCached() {
    return SHARED;
  }

  @Get('plain/:id')
  plain(@Param('id') id: string) {
    return { id, cached: false };
  }

  @Get('shared-plain')
  sharedPlain() {
    return SHARED;
  }
}

/**
 * Notes, once each response has gone out, whether it carries a `json` or `send` of its own, and
 * whether its framework's method (Express `json`, Fastify `send`) is still listed by `for…in`.
 */
const ownMethods: string[] = [];
const unlisted: string[] = [];

@Injectable()
class ShapeProbe implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const response = context.switchToHttp().getResponse<object & { raw?: object }>();
    const node = (response.raw ?? response) as { once(e: string, f: () => void): void };
    node.once('finish', () => {
      for (const name of ['json', 'send']) {
        if (Object.prototype.hasOwnProperty.call(response, name)) ownMethods.push(name);
      }
      const method = response.raw === undefined ? 'json' : 'send';
      let listed = false;
      for (const key in response) if (key === method) listed = true;
      if (!listed) unlisted.push(method);
    });
    return next.handle();
  }
}

describe(`replayed JSON text: the rest of the app (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function boot(
    table: string,
    adapter: ExpressAdapter | FastifyAdapter,
    setup: (app: INestApplication) => void = () => undefined,
  ): Promise<string> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [MixedController],
      providers: [ShapeProbe],
    }).compile();
    const app = moduleRef.createNestApplication(adapter, { logger: false });
    app.useGlobalInterceptors(app.get(ShapeProbe));
    setup(app);
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  }

  for (const kind of ['Express', 'Fastify'] as const) {
    it(`${kind}: after hits, from L2 on a second instance and from L1, the apps' uncached routes (the same body object included) answer as before, and no response gets a method of its own`, async () => {
      const table = await fx.dynamo.table();
      const adapter = () => (kind === 'Express' ? new ExpressAdapter() : new FastifyAdapter());
      // Two instances on one table: A stores the entries, B's first hits come from L2.
      const a = await boot(table, adapter());
      const b = await boot(table, adapter());
      ownMethods.length = 0;
      unlisted.length = 0;
      const first = await fetchText(`${a}/cached/a`);
      const shared = await fetchText(`${a}/shared-cached`);
      await settleAll(fx.apps);
      const texts: string[] = [];
      const rounds = [b, a, b];
      // Both asked under A's host: route entries are keyed by it.
      const host = new URL(a).host;
      for (const [i, url] of rounds.entries()) {
        const hit = await fetchText(`${url}/cached/a`, host);
        const sharedHit = await fetchText(`${url}/shared-cached`, host);
        const plain = await fetchText(`${url}/plain/p${i}`, host);
        const sharedPlain = await fetchText(`${url}/shared-plain`, host);
        expect([hit.cache, sharedHit.cache, plain.cache, sharedPlain.cache]).toEqual([
          'HIT',
          'HIT',
          undefined,
          undefined,
        ]);
        texts.push(hit.text, sharedHit.text, plain.text, sharedPlain.text);
      }
      expect([first.cache, shared.cache]).toEqual(['MISS', 'MISS']);
      for (let i = 0; i < rounds.length; i++) {
        expect(texts.slice(i * 4, i * 4 + 4)).toEqual([
          first.text,
          shared.text,
          JSON.stringify({ id: `p${i}`, cached: false }),
          JSON.stringify(SHARED),
        ]);
      }
      expect(first.text).toBe(JSON.stringify({ id: 'a', cached: true }));
      expect(ownMethods).toEqual([]);
      expect(unlisted).toEqual([]);
    });
  }

  it("Express: two apps in one process, one with 'json spaces': each app's hits and other routes keep to its own settings", async () => {
    const plainUrl = await boot(await fx.dynamo.table(), new ExpressAdapter());
    const spacedUrl = await boot(await fx.dynamo.table(), new ExpressAdapter(), (app) => {
      (app.getHttpAdapter().getInstance() as { set(k: string, v: unknown): void }).set(
        'json spaces',
        2,
      );
    });
    const body = { id: 'a', cached: true };
    const misses = [
      await fetchText(`${plainUrl}/cached/a`),
      await fetchText(`${spacedUrl}/cached/a`),
    ];
    await settleAll(fx.apps);
    for (let i = 0; i < 2; i++) {
      const plainHit = await fetchText(`${plainUrl}/cached/a`);
      const spacedHit = await fetchText(`${spacedUrl}/cached/a`);
      const spacedPlain = await fetchText(`${spacedUrl}/shared-plain`);
      expect(plainHit).toEqual({ cache: 'HIT', text: JSON.stringify(body) });
      expect(spacedHit).toEqual({ cache: 'HIT', text: JSON.stringify(body, null, 2) });
      expect(spacedPlain.text).toBe(JSON.stringify(SHARED, null, 2));
    }
    expect(misses.map((m) => m.text)).toEqual([
      JSON.stringify(body),
      JSON.stringify(body, null, 2),
    ]);
  });
});
