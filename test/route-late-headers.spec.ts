import {
  Controller,
  Get,
  Header,
  Injectable,
  Query,
  Res,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common';
import { APP_INTERCEPTOR, HttpAdapterHost } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { tap, type Observable } from 'rxjs';
import request from 'supertest';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { scanTable, settleAll } from './support/apps.js';
import { countCalls, testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * Whether a response may be shared is decided on the response as sent: headers added after the
 * handler (an outer interceptor, a framework hook, middleware at writeHead) count too.
 */

const runs: Record<string, number> = {};
const run = (name: string): number => (runs[name] = (runs[name] ?? 0) + 1);

/** Adds a session cookie after the handler, as an outer (global) interceptor would. */
@Injectable()
class SessionCookieInterceptor implements NestInterceptor {
  constructor(private readonly host: HttpAdapterHost) {}
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const url = context.switchToHttp().getRequest<{ url: string }>().url;
    return next.handle().pipe(
      tap(() => {
        if (url.startsWith('/late/outer')) {
          this.host.httpAdapter.setHeader(
            context.switchToHttp().getResponse(),
            'Set-Cookie',
            `sid=${run('cookie')}`,
          );
        }
      }),
    );
  }
}

@Controller('late')
class LateController {
  @Get('outer')
  @DynamoCached(60)
  outer() {
    return { csrf: `token-${run('outer')}` };
  }

  @Get('hook')
  @DynamoCached(60)
  hook() {
    return { csrf: `token-${run('hook')}` };
  }

  @Get('vary')
  @DynamoCached(60)
  vary(@Res({ passthrough: true }) res: { header(name: string, value: string): unknown }) {
    res.header('Vary', 'Accept-Language');
    return { greeting: `bonjour ${run('vary')}` };
  }

  @Get('vary-declared')
  @DynamoCached({ ttl: 60, vary: ['accept-language'] })
  varyDeclared(@Res({ passthrough: true }) res: { header(name: string, value: string): unknown }) {
    res.header('Vary', 'Accept-Language');
    return { greeting: `hello ${run('varyDeclared')}` };
  }

  @Get('missing')
  @DynamoCached({ ttl: 60, statuses: [200, 404] })
  @Header('X-Kind', 'missing')
  missing(@Res({ passthrough: true }) res: { status(code: number): unknown }) {
    res.status(404);
    return { error: 'not found', n: run('missing') };
  }

  @Get('list')
  @DynamoCached({ ttl: 60, query: ['filter', 'page'] })
  list(@Query() query: Record<string, unknown>) {
    return { query, n: run('list') };
  }

  @Get('raw')
  @DynamoCached(60)
  raw(@Query('id') id: string) {
    return { id, n: run('raw') };
  }
}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(`late headers and keys on %s (${testServerKind()})`, (name, adapter) => {
  const fx = useTestDynamo();
  const settle = (): Promise<void> => settleAll(fx.apps);

  beforeEach(() => {
    for (const k of Object.keys(runs)) delete runs[k];
  });

  async function boot(table: string) {
    await settleAll(fx.apps);
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client })],
      controllers: [LateController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: SessionCookieInterceptor }],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication(adapter(), { logger: false });
    // A cookie set by the framework itself, once the handler is done: a Fastify onSend hook,
    // an Express middleware at writeHead (as express-session does).
    if (name === 'fastify') {
      (app as NestFastifyApplication)
        .getHttpAdapter()
        .getInstance()
        .addHook('onSend', (req, reply, payload, done) => {
          if (req.url.startsWith('/late/hook')) reply.header('set-cookie', `s=${run('hooked')}`);
          done(null, payload);
        });
    } else {
      app.use(
        (
          req: { url: string },
          res: { writeHead: (...a: unknown[]) => unknown; setHeader(n: string, v: string): void },
          next: () => void,
        ) => {
          const writeHead = res.writeHead;
          res.writeHead = function (this: unknown, ...args: unknown[]) {
            if (req.url.startsWith('/late/hook')) res.setHeader('Set-Cookie', `s=${run('hooked')}`);
            return writeHead.apply(this, args);
          };
          next();
        },
      );
    }
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    const { port } = app.getHttpServer().address() as AddressInfo;
    const get = (path: string, headers: Record<string, string> = {}) =>
      request(`http://127.0.0.1:${port}`)
        .get(path)
        .set({ Host: 'site.example', ...headers });
    return { get, calls };
  }

  it.each(['outer', 'hook'])(
    'a cookie added after the handler (%s) keeps the response out of the cache',
    async (route) => {
      const table = await fx.dynamo.table();
      const { get, calls } = await boot(table);
      const first = await get(`/late/${route}`).expect(200);
      const second = await get(`/late/${route}`).expect(200);
      expect(first.headers['set-cookie']).toBeDefined();
      // The second visitor gets a token of its own, never the first one's.
      expect(second.body).not.toEqual(first.body);
      expect(second.headers['x-cache']).toBe('MISS');
      expect(runs[route]).toBe(2);
      await settle();
      expect(calls.get('PutItem')).toBe(0);
      await settle();
      expect(await scanTable(fx.admin, table)).toEqual([]);
    },
  );

  it('a response that varies on a header the key lacks is not stored; declared in vary, it is', async () => {
    const table = await fx.dynamo.table();
    const { get } = await boot(table);
    await get('/late/vary', { 'Accept-Language': 'fr' }).expect(200);
    const en = await get('/late/vary', { 'Accept-Language': 'en' }).expect(200);
    expect(en.headers['x-cache']).toBe('MISS');
    expect(runs.vary).toBe(2);

    const fr1 = await get('/late/vary-declared', { 'Accept-Language': 'fr' }).expect(200);
    const en1 = await get('/late/vary-declared', { 'Accept-Language': 'en' }).expect(200);
    const fr2 = await get('/late/vary-declared', { 'Accept-Language': 'fr' }).expect(200);
    expect([fr1.headers['x-cache'], en1.headers['x-cache'], fr2.headers['x-cache']]).toEqual([
      'MISS',
      'MISS',
      'HIT',
    ]);
    expect(fr2.body).toEqual(fr1.body);
    expect(runs.varyDeclared).toBe(2);
  });

  it('a stored 404 answers a conditional request with its body, never 304', async () => {
    const table = await fx.dynamo.table();
    const { get } = await boot(table);
    const miss = await get('/late/missing').expect(404);
    const etag = miss.headers.etag as string;
    expect(etag).toMatch(/^W\/"/);
    const star = await get('/late/missing', { 'If-None-Match': '*' }).expect(404);
    expect(star.headers['x-cache']).toBe('HIT');
    expect(star.body).toEqual(miss.body);
    const tagged = await get('/late/missing', { 'If-None-Match': etag }).expect(404);
    expect(tagged.body).toEqual(miss.body);
    expect(runs.missing).toBe(1);
  });

  it('an allowed parameter in bracket form keys the entry: the plain URL cannot be poisoned', async () => {
    const table = await fx.dynamo.table();
    const { get } = await boot(table);
    const plain = await get('/late/list').expect(200);
    const bracket = await get('/late/list?filter[status]=deleted').expect(200);
    const again = await get('/late/list').expect(200);
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.body).toEqual(plain.body);
    expect(bracket.headers['x-cache']).toBe('MISS');
    expect(runs.list).toBe(2);
    // A parameter outside the list is still ignored.
    const junk = await get('/late/list?utm_source=x').expect(200);
    expect(junk.headers['x-cache']).toBe('HIT');
  });

  it('parameters are keyed as sent: escapes a decoder would merge stay apart', async () => {
    const table = await fx.dynamo.table();
    const { get } = await boot(table);
    const a = await get('/late/raw?id=%E9').expect(200);
    const b = await get('/late/raw?id=%FF').expect(200);
    expect(b.headers['x-cache']).toBe('MISS');
    expect(runs.raw).toBe(2);
    expect((await get('/late/raw?id=%E9').expect(200)).body).toEqual(a.body);
  });

  it('a request with more than 256 query parameters is served uncached', async () => {
    const table = await fx.dynamo.table();
    const { get, calls } = await boot(table);
    const many = Array.from({ length: 300 }, (_, i) => `p${i}=${i}`).join('&');
    const r1 = await get(`/late/raw?id=1&${many}`).expect(200);
    const r2 = await get(`/late/raw?id=1&${many}`).expect(200);
    expect(r1.headers['x-cache']).toBeUndefined();
    expect(r2.headers['x-cache']).toBeUndefined();
    expect(runs.raw).toBe(2);
    await settle();
    expect(calls.total()).toBe(0);
  });
});
