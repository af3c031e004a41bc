import { Controller, Get, Param } from '@nestjs/common';
import { DynamoCached } from '../lib/index.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { expressFrontHarness } from './support/express-front-harness.js';
import type { ExpressApp, ExpressReq as Req, ExpressRes as Res } from './support/express-types.js';

/*
 * Review 3 of the Express front: a layer before the route that stays the same object but whose
 * `handle` is replaced after a URL was learned (an auth check wrapped around the JSON parser).
 */

@Controller('open')
class RatesController {
  @Get('rates/:id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    return { id, rate: 1.0842 };
  }
}

describe(`fastPath on Express, before the router: a layer's handler replaced in place (${testServerKind()})`, () => {
  const fx = useTestDynamo();
  const h = expressFrontHarness<ExpressApp>(fx, [RatesController]);

  it('F1 the handle of a body-parser layer replaced in place after learning (same layer object): the new handle runs', async () => {
    const { app, express: instance, get } = await h.boot({});
    await h.learn(app, get, '/open/rates/eur');
    const stack = instance.router.stack as unknown as {
      handle: (...a: unknown[]) => unknown;
      route?: unknown;
    }[];
    const index = stack.findIndex((l) => l.route !== undefined);
    const parser = stack
      .slice(0, index)
      .find((l) => (l.handle as { name?: string }).name === 'jsonParser');
    expect(parser).toBeDefined();
    const original = parser!.handle;
    parser!.handle = function authThenParse(this: unknown, req: Req, res: Res, next: () => void) {
      if ((req as unknown as { headers: Record<string, unknown> }).headers['x-token'] !== 'ok') {
        (res as unknown as { statusCode: number; end(b: string): void }).statusCode = 401;
        (res as unknown as { end(b: string): void }).end('unauthorized');
        return;
      }
      return original.call(this, req, res, next);
    } as never;
    // The pipeline's answer: a URL not learned goes through the router, and the new handle.
    expect((await get('/open/rates/usd')).status).toBe(401);
    const after = await get('/open/rates/eur');
    expect(after.status).toBe(401);
  });
});
