import {
  BadRequestException,
  Controller,
  Get,
  Inject,
  Scope,
  UseGuards,
  type INestApplication,
} from '@nestjs/common';
import { REQUEST } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { baseUrl, FAST_PATH, fetch, LetInGuard, warm } from './support/fast-path-fixtures.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

/*
 * What the pipeline runs for a route that the fast path's eligibility check could miss (a mixin's
 * constructor, a request-scoped controller). Each test states what the pipeline answers
 * (FAST_PATH_OFF=1 runs the file with `fastPath: false`, the reference).
 */

class Timestamped {
  stamp(): number {
    return 1;
  }
}

/** The TypeScript handbook's `applyMixins` (copies every own property, `constructor` too). */
function applyMixins(derived: { prototype: object }, bases: { prototype: object }[]): void {
  for (const base of bases) {
    for (const name of Object.getOwnPropertyNames(base.prototype)) {
      Object.defineProperty(
        derived.prototype,
        name,
        Object.getOwnPropertyDescriptor(base.prototype, name) ?? Object.create(null),
      );
    }
  }
}

/** Guarded at the class; mixed in with the handbook's helper. */
@Controller('mixed')
@UseGuards(LetInGuard)
class MixedController {
  @Get('report')
  @DynamoCached(60)
  report() {
    return { secret: 'only for x-let-in' };
  }
}
applyMixins(MixedController, [Timestamped]);

/** A class decorator that returns a Proxy of the class (Nest registers its prototype). */
function Proxied<T extends abstract new (...args: never[]) => unknown>(cls: T): T {
  return new Proxy(cls, {});
}

@Controller('proxied')
@UseGuards(LetInGuard)
@Proxied
class ProxiedController {
  @Get('report')
  @DynamoCached(60)
  report() {
    return { secret: 'only for x-let-in' };
  }
}

/** A request-scoped tenant, refused without `x-tenant` (a common multi-tenancy pattern). */
const TENANT = Symbol('TENANT');
const tenantProvider = {
  provide: TENANT,
  scope: Scope.REQUEST,
  inject: [REQUEST],
  useFactory: (req: { headers: Record<string, string | undefined> }) => {
    const tenant = req.headers['x-tenant'];
    if (tenant === undefined) throw new BadRequestException('x-tenant required');
    return tenant;
  },
};

@Controller('scoped')
class ScopedController {
  constructor(@Inject(TENANT) private readonly tenant: string) {}

  @Get('catalog')
  @DynamoCached(60)
  catalog() {
    return { catalog: ['a', 'b'] };
  }
}

const adapters = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
] as const;

describe.each(adapters)(
  `fastPath and what its eligibility check could miss, on %s (${testServerKind()}, fastPath ${FAST_PATH ? 'on' : 'off'})`,
  (_name, makeAdapter) => {
    const fx = useTestDynamo();

    async function boot(): Promise<INestApplication> {
      const table = await fx.dynamo.table();
      const moduleRef = await Test.createTestingModule({
        imports: [
          DynamoCacheModule.forRoot({ table, client: fx.dynamo.client(), fastPath: FAST_PATH }),
        ],
        controllers: [MixedController, ProxiedController, ScopedController],
        providers: [LetInGuard, tenantProvider],
      }).compile();
      const app = moduleRef.createNestApplication(makeAdapter(), { logger: false });
      await app.listen(0, '127.0.0.1');
      fx.apps.push(app);
      return app;
    }

    it('G1 a controller guard on a class mixed in with applyMixins (constructor copied): a request the guard refuses is refused, not answered from the cache', async () => {
      const app = await boot();
      const url = `${baseUrl(app)}/mixed/report`;
      // Nest does apply the class guard (it reads the registered class, not `constructor`).
      expect((await fetch(url)).status).toBe(403);
      await warm(app, url, { 'x-let-in': 'yes' });
      const refused = await fetch(url);
      expect({ status: refused.status, xCache: refused.headers['x-cache'] }).toEqual({
        status: 403,
        xCache: undefined,
      });
    });

    it('G3 a request-scoped controller whose dependency refuses the request (400): refused on hits too', async () => {
      const app = await boot();
      const url = `${baseUrl(app)}/scoped/catalog`;
      expect((await fetch(url)).status).toBe(400);
      await warm(app, url, { 'x-tenant': 'acme' });
      const refused = await fetch(url);
      expect({ status: refused.status, xCache: refused.headers['x-cache'] }).toEqual({
        status: 400,
        xCache: undefined,
      });
    });
  },
);
