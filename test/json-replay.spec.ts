import {
  CallHandler,
  ClassSerializerInterceptor,
  Controller,
  ExecutionContext,
  Get,
  Injectable,
  NestInterceptor,
  Param,
  UseInterceptors,
  type INestApplication,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { Exclude } from 'class-transformer';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { map, type Observable } from 'rxjs';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * A hit answers with the JSON text the miss went out as, not with its body serialized again:
 * byte-identical on both adapters, from L1 and (another application) from L2; interceptors
 * outside this one still see the body, and what they return is what is sent.
 */

class Account {
  id: string;
  name: string;
  @Exclude()
  password: string;

  constructor(id: string, name: string, password: string) {
    this.id = id;
    this.name = name;
    this.password = password;
  }
}

/** Counts how often it is serialized. */
class Counted {
  static serialized = 0;
  constructor(readonly id: string) {}
  toJSON(): unknown {
    Counted.serialized++;
    return { id: this.id, kind: 'counted' };
  }
}

const big = (id: string) => ({
  id,
  rows: Array.from({ length: 700 }, (_v, i) => ({
    i,
    label: `row ${i} of ${id}`,
    price: i * 1.25,
    tags: ['a', 'é', '✓'],
  })),
});

/** Wraps whatever the route returns in an envelope: an outer interceptor that maps the body. */
@Injectable()
class Envelope implements NestInterceptor {
  seen: unknown[] = [];
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      map((body: unknown) => {
        this.seen.push(body);
        return { data: body };
      }),
    );
  }
}

@Controller()
class ReportsController {
  runs = 0;

  @Get('report/:id')
  @DynamoCached(60)
  report(@Param('id') id: string) {
    this.runs++;
    return big(id);
  }

  @Get('note/:id')
  @DynamoCached(60)
  note(@Param('id') id: string) {
    this.runs++;
    return { id, text: 'café ✓ 😀 "quoted" \\ \u2028 end' };
  }

  @Get('counted/:id')
  @DynamoCached({ ttl: 60, types: [Counted] })
  counted(@Param('id') id: string) {
    this.runs++;
    return { item: new Counted(id) };
  }
}

/** Interceptors on the class run outside the one `@DynamoCached` puts on the handler. */
@Controller()
@UseInterceptors(Envelope)
class EnvelopedController {
  runs = 0;

  @Get('enveloped/:id')
  @DynamoCached(60)
  enveloped(@Param('id') id: string) {
    this.runs++;
    return { id, at: 'fixed' };
  }
}

@Controller()
@UseInterceptors(ClassSerializerInterceptor)
class AccountsController {
  runs = 0;

  @Get('account/:id')
  @DynamoCached({ ttl: 60, types: [Account] })
  account(@Param('id') id: string) {
    this.runs++;
    return new Account(id, `user ${id}`, 'secret');
  }
}

const adapters = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const;

/** GET with a Host shared by every app (the key includes it), the body as raw bytes. */
function fetchRaw(
  url: string,
): Promise<{ cache: string | null; type: string | null; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers: { host: 'reports.example' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        try {
          expect(res.statusCode).toBe(200);
          resolve({
            cache: (res.headers['x-cache'] as string | undefined) ?? null,
            type: res.headers['content-type'] ?? null,
            bytes: Buffer.concat(chunks),
          });
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('error', reject);
  });
}

describe.each(adapters)(
  `replayed JSON bodies on %s (${testServerKind()})`,
  (_name, makeAdapter) => {
    const fx = useTestDynamo();

    async function boot(table: string): Promise<{ app: INestApplication; url: string }> {
      const moduleRef = await Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
        controllers: [ReportsController, EnvelopedController, AccountsController],
        providers: [Envelope],
      }).compile();
      const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
      await app.listen(0, '127.0.0.1');
      fx.apps.push(app);
      return {
        app,
        url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`,
      };
    }

    it("a 48 KB JSON body: the hit (L1) and another app's hit (L2) are byte-identical to the miss", async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      const miss = await fetchRaw(`${a.url}/report/r1`);
      expect(miss.cache).toBe('MISS');
      expect(miss.bytes.length).toBeGreaterThan(40_000);
      expect(miss.bytes.toString()).toBe(JSON.stringify(big('r1')));
      await settleAll(fx.apps);
      const hit = await fetchRaw(`${a.url}/report/r1`);
      expect(hit.cache).toBe('HIT');
      expect(hit.bytes.equals(miss.bytes)).toBe(true);
      expect(hit.type).toBe(miss.type);
      const b = await boot(table);
      const fromL2 = await fetchRaw(`${b.url}/report/r1`);
      expect(fromL2.cache).toBe('HIT');
      expect(fromL2.bytes.equals(miss.bytes)).toBe(true);
      expect(fromL2.type).toBe(miss.type);
      expect(a.app.get(ReportsController).runs + b.app.get(ReportsController).runs).toBe(1);
      // The stored response says the body went out as its JSON text.
      const stored = await a.app
        .get(DynamoCacheService)
        .lookup<{ json?: true }>('ReportsController.report', [
          'GET',
          'reports.example',
          '/report/r1',
          '',
        ]);
      expect(stored.hit && stored.value.json).toBe(true);
    });

    it('an outer mapping interceptor sees the body and what it returns is sent, on the miss and on the hit alike', async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      const miss = await fetchRaw(`${a.url}/enveloped/e1`);
      await settleAll(fx.apps);
      const hit = await fetchRaw(`${a.url}/enveloped/e1`);
      expect(miss.cache).toBe('MISS');
      expect(hit.cache).toBe('HIT');
      expect(JSON.parse(hit.bytes.toString())).toEqual({ data: { id: 'e1', at: 'fixed' } });
      expect(hit.bytes.equals(miss.bytes)).toBe(true);
      expect(a.app.get(EnvelopedController).runs).toBe(1);
      expect(a.app.get(Envelope).seen).toEqual([
        { id: 'e1', at: 'fixed' },
        { id: 'e1', at: 'fixed' },
      ]);
    });

    it('ClassSerializerInterceptor outside: the hit is the instance, serialized without its @Exclude()d field, also from L2', async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      const miss = await fetchRaw(`${a.url}/account/u1`);
      await settleAll(fx.apps);
      const hit = await fetchRaw(`${a.url}/account/u1`);
      const b = await boot(table);
      const fromL2 = await fetchRaw(`${b.url}/account/u1`);
      expect(JSON.parse(miss.bytes.toString())).toEqual({ id: 'u1', name: 'user u1' });
      expect([hit.cache, fromL2.cache]).toEqual(['HIT', 'HIT']);
      expect(hit.bytes.equals(miss.bytes)).toBe(true);
      expect(fromL2.bytes.equals(miss.bytes)).toBe(true);
      expect(fromL2.bytes.toString()).not.toContain('secret');
      expect(a.app.get(AccountsController).runs + b.app.get(AccountsController).runs).toBe(1);
    });

    it("a short body with non-ASCII text: the hit (L1) and another app's hit (L2) are byte-identical to the miss", async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      const miss = await fetchRaw(`${a.url}/note/n1`);
      await settleAll(fx.apps);
      const hit = await fetchRaw(`${a.url}/note/n1`);
      const b = await boot(table);
      const fromL2 = await fetchRaw(`${b.url}/note/n1`);
      expect([miss.cache, hit.cache, fromL2.cache]).toEqual(['MISS', 'HIT', 'HIT']);
      expect(JSON.parse(miss.bytes.toString())).toEqual({
        id: 'n1',
        text: 'café ✓ 😀 "quoted" \\ \u2028 end',
      });
      // Multi-byte characters: a Content-Length counted in characters would cut the body short.
      expect(miss.bytes.length).toBeGreaterThan(miss.bytes.toString().length);
      expect(hit.bytes.equals(miss.bytes)).toBe(true);
      expect(fromL2.bytes.equals(miss.bytes)).toBe(true);
      expect([hit.type, fromL2.type]).toEqual([miss.type, miss.type]);
    });

    it('a hit serializes nothing: the text is made once per entry, then every hit sends it as is', async () => {
      const table = await fx.dynamo.table();
      const a = await boot(table);
      Counted.serialized = 0;
      const miss = await fetchRaw(`${a.url}/counted/c1`);
      await settleAll(fx.apps);
      const afterMiss = Counted.serialized;
      const hits = [];
      for (let i = 0; i < 5; i++) hits.push(await fetchRaw(`${a.url}/counted/c1`));
      for (const hit of hits) expect(hit.bytes.equals(miss.bytes)).toBe(true);
      // Once for the first hit's text; the four after it serialize nothing.
      expect(Counted.serialized - afterMiss).toBe(1);
      expect(JSON.parse(miss.bytes.toString())).toEqual({ item: { id: 'c1', kind: 'counted' } });
    });
  },
);

describe(`replayed JSON bodies as Fastify's onSend hooks see them (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  it('a short body and a 48 KB one reach onSend as the same JSON string on the miss and on the hit', async () => {
    const table = await fx.dynamo.table();
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [ReportsController],
    }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
      logger: false,
    });
    const seen: { url: string; payload: unknown }[] = [];
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onSend', async (request, _reply, payload) => {
        seen.push({ url: request.url, payload });
        return payload;
      });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    for (const path of ['/note/s1', '/report/l1']) {
      expect((await fetchRaw(`${url}${path}`)).cache).toBe('MISS');
      await settleAll(fx.apps);
      expect((await fetchRaw(`${url}${path}`)).cache).toBe('HIT');
    }
    const [shortMiss, shortHit, longMiss, longHit] = seen.map((s) => s.payload);
    expect(seen.map((s) => s.url)).toEqual(['/note/s1', '/note/s1', '/report/l1', '/report/l1']);
    expect(typeof shortMiss).toBe('string');
    expect(shortHit).toBe(shortMiss);
    expect(typeof longMiss).toBe('string');
    expect(longHit).toBe(longMiss);
  });
});
