import { Controller, Get, Param, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';

/** The Fastify instance under a Nest Fastify application. */
type FastifyInstance = ReturnType<
  ReturnType<NestFastifyApplication['getHttpAdapter']>['getInstance']
>;
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw, type Answer } from './support/raw-http.js';

/*
 * A hit sends the stored JSON text only where the framework would have sent exactly that text.
 * Where the application serializes bodies its own way on the way out, a hit goes that way too, as
 * the miss did: on Express a `res.json` of a middleware's or of the app's response object (one
 * that masks a field to the same length is the hard case: the miss's text is as long as the
 * plain JSON); on Fastify the text reaches `onSend` hooks as a string (what Fastify's serializer
 * gives them), and a route with `preSerialization` hooks is not answered by `fastPath`. Two
 * instances on one table, with `fastPath` off and on.
 */

const CARD = '4111111111111111';
const MASKED = '************1111';

@Controller()
class CardsController {
  @Get('card/:id')
  @DynamoCached(60)
  card(@Param('id') id: string) {
    return { id, card: CARD };
  }

  @Get('doc/:id')
  @DynamoCached(60)
  doc(@Param('id') id: string) {
    // Over 1,000 characters of JSON.
    return { id, card: CARD, text: 'x'.repeat(1200) };
  }
}

const mask = (body: unknown): unknown =>
  body !== null && typeof body === 'object' && 'card' in body
    ? { ...body, card: String((body as { card: unknown }).card).replace(/\d(?=\d{4})/g, '*') }
    : body;

interface JsonResponse {
  json(body: unknown): unknown;
}

type ExpressMasking = 'middleware' | 'app response';

describe('hits go through the application’s own serialization, as the miss did', () => {
  const fx = useTestDynamo();

  async function listen(app: INestApplication): Promise<number> {
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return (app.getHttpServer().address() as AddressInfo).port;
  }

  async function compile(table: string, fastPath: boolean) {
    return Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client(), fastPath })],
      controllers: [CardsController],
    }).compile();
  }

  /** An Express app whose `res.json` masks the card (set per response, or on the app). */
  async function bootExpress(
    table: string,
    fastPath: boolean,
    how: ExpressMasking,
    calls: unknown[],
  ): Promise<number> {
    const app = (await compile(table, fastPath)).createNestApplication(new ExpressAdapter(), {
      logger: false,
    });
    const masking = (json: JsonResponse['json']) =>
      function (this: JsonResponse, body: unknown): unknown {
        calls.push(body);
        return json.call(this, mask(body));
      };
    if (how === 'middleware') {
      app.use((_req: unknown, res: JsonResponse, next: () => void) => {
        res.json = masking(res.json);
        next();
      });
    } else {
      const response = (app.getHttpAdapter().getInstance() as unknown as { response: JsonResponse })
        .response;
      response.json = masking(response.json);
    }
    return listen(app);
  }

  async function hits(ports: readonly number[], path: string): Promise<Answer[]> {
    const [a, b] = ports as [number, number];
    const out: Answer[] = [];
    // L1 hits on A (the second and third may be fastPath's), B's first from L2, then its L1.
    for (const port of [a, a, a, b, b, b]) out.push(await raw(port, path));
    return out;
  }

  describe.each([false, true])('Express, fastPath %s', (fastPath) => {
    it.each<ExpressMasking>(['middleware', 'app response'])(
      'a res.json of the %s masks every hit, from L1 and from the other instance’s L2',
      async (how) => {
        const table = await fx.dynamo.table();
        const callsA: unknown[] = [];
        const callsB: unknown[] = [];
        const a = await bootExpress(table, fastPath, how, callsA);
        const b = await bootExpress(table, fastPath, how, callsB);
        const miss = await raw(a, '/card/c1');
        await settleAll(fx.apps);
        expect(miss.body.toString()).toBe(`{"id":"c1","card":"${MASKED}"}`);
        for (const hit of await hits([a, b], '/card/c1')) {
          expect(headersOf(hit.head)['x-cache']).toBe('HIT');
          expect(hit.body.toString()).toBe(miss.body.toString());
        }
        // The masking json ran for every request, hits included.
        expect(callsA).toHaveLength(4);
        expect(callsB).toHaveLength(3);
      },
    );
  });

  describe.each([false, true])('Fastify, fastPath %s', (fastPath) => {
    /** Two Fastify apps on one table, each given `hook` (added to its Fastify instance). */
    async function bootTwo(hook: (fastify: FastifyInstance) => void): Promise<[number, number]> {
      const table = await fx.dynamo.table();
      const boot = async (): Promise<number> => {
        const app = (await compile(table, fastPath)).createNestApplication<NestFastifyApplication>(
          new FastifyAdapter(),
          {
            logger: false,
          },
        );
        hook(app.getHttpAdapter().getInstance());
        return listen(app);
      };
      return [await boot(), await boot()];
    }

    it('an onSend hook gets every hit’s text as a string, as on the miss, and its change is sent', async () => {
      const seen: string[] = [];
      const [a, b] = await bootTwo((fastify) =>
        fastify.addHook('onSend', async (_req, _reply, payload) => {
          seen.push(typeof payload);
          return typeof payload === 'string' ? payload.replace(CARD, MASKED) : payload;
        }),
      );
      const miss = await raw(a, '/doc/d1');
      await settleAll(fx.apps);
      expect(miss.body.toString()).toContain(`"card":"${MASKED}"`);
      for (const hit of await hits([a, b], '/doc/d1')) {
        expect(headersOf(hit.head)['x-cache']).toBe('HIT');
        expect(hit.body.equals(miss.body)).toBe(true);
      }
      expect(seen).toEqual(Array(7).fill('string'));
    });

    it('a preSerialization hook masks every hit', async () => {
      const [a, b] = await bootTwo((fastify) =>
        fastify.addHook('preSerialization', async (_req, _reply, payload) => mask(payload)),
      );
      const miss = await raw(a, '/card/c1');
      await settleAll(fx.apps);
      expect(miss.body.toString()).toBe(`{"id":"c1","card":"${MASKED}"}`);
      for (const hit of await hits([a, b], '/card/c1')) {
        expect(headersOf(hit.head)['x-cache']).toBe('HIT');
        expect(hit.body.toString()).toBe(miss.body.toString());
      }
    });
  });
});
