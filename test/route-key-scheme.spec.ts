import { Controller, Get, Req, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { scanTable, settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { countInterceptions } from './support/interceptions.js';

/*
 * The key holds the effective request URI (RFC 9111 §4), whose scheme is `https` when the
 * application serves TLS itself (Fastify's `https` option, Express's `httpsOptions`): an
 * instance listening on HTTPS and one on plain HTTP (an internal port, a second listener) on one
 * table do not share entries, two HTTPS instances do. A handler rendering absolute links
 * (`req.protocol`) shows which entry answered.
 */

const tlsDir = new URL('./fixtures/tls/', import.meta.url);
const tls = {
  key: readFileSync(new URL('key.pem', tlsDir)),
  cert: readFileSync(new URL('cert.pem', tlsDir)),
};

let runs = 0;

interface LinkRequest {
  protocol: string;
  headers: { host?: string };
  url: string;
  originalUrl?: string;
}

@Controller('links')
class LinksController {
  @Get('self')
  @DynamoCached(60)
  self(@Req() req: LinkRequest) {
    runs++;
    // An absolute link, as HAL or pagination bodies render them.
    return { self: `${req.protocol}://${req.headers.host}${req.originalUrl ?? req.url}` };
  }
}

/** Golden cache_keys of `GET /links/self` with `Host: shop.example`: over HTTP (as before), over TLS. */
const HTTP_KEY = 'LinksController.self/7327685e3ad9e94004a9342628a63e51';
const HTTPS_KEY = 'LinksController.self/83c9a46bfd6d929e6cfcc8b5b8503c19';

const HTTP_BODY = '{"self":"http://shop.example/links/self"}';
const HTTPS_BODY = '{"self":"https://shop.example/links/self"}';

interface Answer {
  status: number;
  cache: string | undefined;
  body: string;
}

interface Instance {
  port: number;
  secure: boolean;
}

function get({ port, secure }: Instance, path = '/links/self'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1',
      port,
      path,
      headers: { host: 'shop.example' },
      rejectUnauthorized: false,
    };
    const req = (secure ? httpsRequest : httpRequest)(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          cache: res.headers['x-cache'] as string | undefined,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe.each([
  ['express', false],
  ['express', true],
  ['fastify', false],
  ['fastify', true],
] as const)('%s (fastPath %s): HTTPS and HTTP instances on one table', (kind, fastPath) => {
  const fx = useTestDynamo();
  const interceptions = countInterceptions();

  beforeEach(() => {
    runs = 0;
  });

  async function boot(table: string, secure: boolean): Promise<Instance> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client(), fastPath })],
      controllers: [LinksController],
    }).compile();
    const app: INestApplication =
      kind === 'fastify'
        ? moduleRef.createNestApplication(
            secure ? new FastifyAdapter({ https: tls }) : new FastifyAdapter(),
            { logger: false },
          )
        : moduleRef.createNestApplication(new ExpressAdapter(), {
            logger: false,
            ...(secure ? { httpsOptions: tls } : {}),
          });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return { port: (app.getHttpServer().address() as AddressInfo).port, secure };
  }

  const keys = async (table: string): Promise<string[]> =>
    (await scanTable(fx.admin, table)).map((i) => i.cache_key!.S!).sort();

  async function fetchSettled(instance: Instance): Promise<Answer> {
    const answer = await get(instance);
    await settleAll(fx.apps);
    return answer;
  }

  it('an HTTPS request never gets the body made for HTTP (nor the reverse); HTTPS instances share theirs', async () => {
    const table = await fx.dynamo.table();
    const plain = await boot(table, false);
    const secureA = await boot(table, true);
    const secureB = await boot(table, true);

    expect(await fetchSettled(plain)).toEqual({ status: 200, cache: 'MISS', body: HTTP_BODY });
    // The HTTP entry is in DynamoDB: the HTTPS instance must not read it.
    expect(await fetchSettled(secureA)).toEqual({ status: 200, cache: 'MISS', body: HTTPS_BODY });
    expect(runs).toBe(2);
    expect(await keys(table)).toEqual([HTTP_KEY, HTTPS_KEY].sort());

    // Another HTTPS instance reads the first one's entry.
    expect(await fetchSettled(secureB)).toEqual({ status: 200, cache: 'HIT', body: HTTPS_BODY });
    expect(runs).toBe(2);

    // Hits from each instance's L1 (the fast path's when on), each with its own scheme's body.
    const before = interceptions.count;
    for (let i = 0; i < 3; i++) {
      expect(await fetchSettled(plain)).toEqual({ status: 200, cache: 'HIT', body: HTTP_BODY });
      expect(await fetchSettled(secureA)).toEqual({ status: 200, cache: 'HIT', body: HTTPS_BODY });
      expect(await fetchSettled(secureB)).toEqual({ status: 200, cache: 'HIT', body: HTTPS_BODY });
    }
    expect(runs).toBe(2);
    expect(interceptions.count - before).toBe(fastPath ? 0 : 9);
    expect(await keys(table)).toEqual([HTTP_KEY, HTTPS_KEY].sort());
  });

  it('an HTTPS instance first: the HTTP instance computes its own entry', async () => {
    const table = await fx.dynamo.table();
    const secure = await boot(table, true);
    const plain = await boot(table, false);
    expect(await fetchSettled(secure)).toEqual({ status: 200, cache: 'MISS', body: HTTPS_BODY });
    expect(await fetchSettled(plain)).toEqual({ status: 200, cache: 'MISS', body: HTTP_BODY });
    expect(await fetchSettled(plain)).toEqual({ status: 200, cache: 'HIT', body: HTTP_BODY });
    expect(await fetchSettled(secure)).toEqual({ status: 200, cache: 'HIT', body: HTTPS_BODY });
    expect(runs).toBe(2);
    expect(await keys(table)).toEqual([HTTP_KEY, HTTPS_KEY].sort());
  });
});
