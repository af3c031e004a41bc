import { Controller, Get, Header, HttpCode, Param, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw, type Answer } from './support/raw-http.js';

/** The parts of Express's request and response the code below touches. */
interface Req {
  url: string;
}
interface Res {
  req: Req;
  app: object;
  locals: unknown;
  send(...args: unknown[]): unknown;
}

/** The URLs whose response went through Express's own `res.send`, per Express application. */
const expressSends = new Map<object, string[]>();
const counted = new WeakSet<object>();

/**
 * Counts the calls of Express's own `res.send` where Express keeps it (the prototype the app's
 * `response` object inherits from), so a response still finds it there as Express's.
 */
function countExpressSends(expressApp: { response: object }): void {
  const proto = Object.getPrototypeOf(expressApp.response) as Res;
  if (counted.has(proto)) return;
  counted.add(proto);
  const send = proto.send;
  proto.send = function (this: Res, ...args: unknown[]) {
    expressSends.get(this.app)?.push(this.req.url);
    return send.apply(this, args);
  };
}

/*
 * On Express, a hit that asks nothing more of `res.send` than its length and bytes (a 200 with its
 * ETag, no conditional request header, no Transfer-Encoding) ends the response itself. What goes
 * out must be what `res.send` sent: the miss's status, headers (but X-Cache) and bytes, from L1
 * and from another instance's L2 on one table, HEAD without the body; everything else goes
 * through `res.send`, which then does what it always did (a 304 for a fresh conditional request).
 */

const LAST_MODIFIED = 'Wed, 21 Oct 2015 07:28:00 GMT';

@Controller()
class DocsController {
  runs = 0;

  @Get('doc/:id')
  @DynamoCached(60)
  doc(@Param('id') id: string) {
    this.runs++;
    return { id, text: 'café ✓ 😀', n: [1, 2, 3] };
  }

  @Get('big/:id')
  @DynamoCached(60)
  big(@Param('id') id: string) {
    this.runs++;
    // A text of more than 1,000 characters: hits send it as bytes.
    return { id, rows: Array.from({ length: 100 }, (_, i) => ({ i, text: `row ${i} ✓` })) };
  }

  @Get('dated/:id')
  @DynamoCached(60)
  @Header('Last-Modified', LAST_MODIFIED)
  dated(@Param('id') id: string) {
    this.runs++;
    return { id, dated: true };
  }

  @Get('made/:id')
  @HttpCode(203)
  @DynamoCached({ ttl: 60, statuses: [203] })
  made(@Param('id') id: string) {
    this.runs++;
    return { id, made: true };
  }
}

describe(`hits on Express end the response themselves where res.send would only send (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  interface Booted {
    app: INestApplication;
    port: number;
    /** The URLs whose response went through Express's `res.send`, in order. */
    sends: string[];
    /** What an application's own `res.send` (set by its middleware) was given, when it has one. */
    ownSends: { url: string; body: unknown }[];
  }

  interface BootOptions {
    freezeLocals?: boolean;
    ownSend?: boolean;
    adapter?: ExpressAdapter;
  }

  async function boot(table: string, o: BootOptions = {}): Promise<Booted> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [DocsController],
    }).compile();
    const app = moduleRef.createNestApplication(o.adapter ?? new ExpressAdapter(), {
      logger: false,
    });
    const expressApp = app.getHttpAdapter().getInstance() as { response: object };
    countExpressSends(expressApp);
    const sends: string[] = [];
    expressSends.set(expressApp, sends);
    const ownSends: Booted['ownSends'] = [];
    app.use((req: Req, res: Res, next: () => void) => {
      if (o.freezeLocals) res.locals = Object.freeze(Object.create(null) as object);
      if (o.ownSend) {
        // What body-logging middleware does: a send of the response's own, around Express's.
        const send = res.send;
        res.send = function (this: Res, ...args: unknown[]) {
          ownSends.push({ url: req.url, body: args[0] });
          return send.apply(this, args);
        };
      }
      next();
    });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return { app, port: (app.getHttpServer().address() as AddressInfo).port, sends, ownSends };
  }

  /** The answer's headers, X-Cache aside (MISS on the miss, HIT on a hit). */
  const described = (answer: Answer): Record<string, string> => {
    const headers = headersOf(answer.head);
    delete headers['x-cache'];
    return headers;
  };

  const runs = (...apps: Booted[]): number =>
    apps.reduce((n, b) => n + b.app.get(DocsController).runs, 0);

  /** Two instances on one table: the miss on A, then a hit from A's L1 and one from B's L2. */
  async function missThenHits(
    path: string,
    o: BootOptions = {},
  ): Promise<{ a: Booted; b: Booted; miss: Answer; hits: Answer[] }> {
    const table = await fx.dynamo.table();
    const a = await boot(table, o);
    const b = await boot(table, o);
    const miss = await raw(a.port, path);
    await settleAll(fx.apps);
    const fromL1 = await raw(a.port, path);
    const fromL2 = await raw(b.port, path);
    return { a, b, miss, hits: [fromL1, fromL2] };
  }

  /** A hit went out as the miss did: its status, headers (but `X-Cache: HIT`) and bytes. */
  function expectAsMiss(hit: Answer, miss: Answer): void {
    expect(hit.status).toBe(miss.status);
    expect(headersOf(hit.head)['x-cache']).toBe('HIT');
    expect(described(hit)).toEqual(described(miss));
    expect(hit.body.equals(miss.body)).toBe(true);
  }

  it("GET hits from L1 and from another instance's L2: the miss's status, headers and bytes, without res.send; HEAD: the same head, no body", async () => {
    const { a, b, miss, hits } = await missThenHits('/doc/d1');
    const head = await raw(b.port, '/doc/d1', {}, 'HEAD');

    expect(miss.status).toBe(200);
    expect(headersOf(miss.head)['x-cache']).toBe('MISS');
    expect(JSON.parse(miss.body.toString('utf8'))).toEqual({
      id: 'd1',
      text: 'café ✓ 😀',
      n: [1, 2, 3],
    });
    for (const hit of hits) expectAsMiss(hit, miss);
    expect(head.status).toBe(200);
    expect(described(head)).toEqual(described(miss));
    expect(headersOf(head.head)['content-length']).toBe(String(miss.body.length));
    expect(head.body.length).toBe(0);
    // The miss went out through Express's res.json and res.send; the hits did not.
    expect([...a.sends, ...b.sends]).toEqual(['/doc/d1']);
    expect(runs(a, b)).toBe(1);
  });

  it('a conditional request goes through res.send: a fresh If-Modified-Since is answered 304 as Express answers it, a stale one 200 with the bytes', async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const miss = await raw(a.port, '/dated/x');
    await settleAll(fx.apps);
    const fresh = await raw(b.port, '/dated/x', { 'If-Modified-Since': LAST_MODIFIED });
    const stale = await raw(b.port, '/dated/x', {
      'If-Modified-Since': 'Tue, 20 Oct 2015 07:28:00 GMT',
    });
    // Express itself, on a route this package does not serve from the cache: a miss.
    const uncached = await raw(a.port, '/dated/y', { 'If-Modified-Since': LAST_MODIFIED });

    expect(headersOf(miss.head)['last-modified']).toBe(LAST_MODIFIED);
    expect(uncached.status).toBe(304);
    expect(fresh.status).toBe(304);
    expect(fresh.body.length).toBe(0);
    expect(headersOf(fresh.head)['x-cache']).toBe('HIT');
    expect(stale.status).toBe(200);
    expect(described(stale)).toEqual(described(miss));
    expect(stale.body.equals(miss.body)).toBe(true);
    expect(b.sends).toEqual(['/dated/x', '/dated/x']);
    expect(runs(a, b)).toBe(2);
  });

  it('another status the route stores (203) goes through res.send, with its status and bytes, from L1 and L2', async () => {
    const { a, b, miss, hits } = await missThenHits('/made/m');
    expect(miss.status).toBe(203);
    for (const hit of hits) expectAsMiss(hit, miss);
    expect(a.sends).toEqual(['/made/m', '/made/m']);
    expect(b.sends).toEqual(['/made/m']);
    expect(runs(a, b)).toBe(1);
  });

  it('res.locals frozen by middleware: hits still replay the stored bytes (noted elsewhere), without res.send', async () => {
    const { a, b, miss, hits } = await missThenHits('/doc/f', { freezeLocals: true });
    for (const hit of hits) expectAsMiss(hit, miss);
    expect([...a.sends, ...b.sends]).toEqual(['/doc/f']);
    expect(runs(a, b)).toBe(1);
  });

  it("an adapter that sets headers its own way (a subclass of ExpressAdapter) still sets a hit's headers", async () => {
    const table = await fx.dynamo.table();
    const set: string[] = [];
    class RecordingAdapter extends ExpressAdapter {
      override setHeader(response: unknown, name: string, value: string): unknown {
        set.push(name.toLowerCase());
        return super.setHeader(response, name, value);
      }
    }
    const a = await boot(table, { adapter: new RecordingAdapter() });
    const miss = await raw(a.port, '/doc/s');
    await settleAll(fx.apps);
    set.length = 0;
    const hit = await raw(a.port, '/doc/s');
    expect(described(hit)).toEqual(described(miss));
    expect(hit.body.equals(miss.body)).toBe(true);
    // The replayed headers (as stored), then X-Cache.
    expect(set).toEqual(['etag', 'content-type', 'x-cache']);
  });

  it("an application's own res.send (body-logging middleware) still gets every hit's text, as on the miss, from L1 and L2", async () => {
    const { a, b, miss, hits } = await missThenHits('/doc/o', { ownSend: true });
    for (const hit of hits) expectAsMiss(hit, miss);
    // The miss's send got the JSON text (from res.json); each hit's, the stored text (a short
    // one, as a string, as on the miss).
    expect(a.ownSends.map((s) => s.url)).toEqual(['/doc/o', '/doc/o']);
    expect(b.ownSends.map((s) => s.url)).toEqual(['/doc/o']);
    const [first, second] = a.ownSends;
    expect(first!.body).toBe(miss.body.toString('utf8'));
    for (const hit of [second!, b.ownSends[0]!]) expect(hit.body).toBe(first!.body);
    expect(runs(a, b)).toBe(1);
  });

  it("a long text goes out as bytes, the miss's, whether it ends here or goes through an application's res.send", async () => {
    const plain = await missThenHits('/big/p');
    expect(plain.miss.body.length).toBeGreaterThan(1000);
    for (const hit of plain.hits) expectAsMiss(hit, plain.miss);
    expect([...plain.a.sends, ...plain.b.sends]).toEqual(['/big/p']);
    const { a, b, miss, hits } = await missThenHits('/big/o', { ownSend: true });
    for (const hit of hits) expectAsMiss(hit, miss);
    const [first, second] = a.ownSends;
    expect(first!.body).toBe(miss.body.toString('utf8'));
    for (const hit of [second!, b.ownSends[0]!]) {
      expect(Buffer.isBuffer(hit.body)).toBe(true);
      expect((hit.body as Buffer).equals(miss.body)).toBe(true);
    }
    expect(runs(a, b)).toBe(1);
  });
});
