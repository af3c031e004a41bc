import type { INestApplication, LoggerService } from '@nestjs/common';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { DynamoCacheModule, type DynamoCacheModuleOptions } from '../../lib/index.js';
import { settleAll } from './apps.js';
import type { DynamoFixture } from './dynamo-server.js';
import { countRouted } from './fast-path-fixtures.js';
import { raw, type Answer } from './raw-http.js';

// Nest applications on Express with `fastPath`, standing alone or mounted in a parent Express
// application, for the specs of the answers given before Express's router.

const require = createRequire(import.meta.url);
type Controller = new () => unknown;
/** A GET (or `method`) of `target` with `headers`: the answer as sent. */
export type Get = (
  target: string,
  headers?: Record<string, string>,
  method?: string,
) => Promise<Answer>;

/**
 * The helpers of a spec file: `boot` (an app on its own server), `bootMounted` (its Express
 * instance mounted in a parent application), `learn` (a miss, then a hit at the route, which
 * teaches the front the URL). `E` is how the spec types an Express application.
 */
export function expressFrontHarness<E>(fx: DynamoFixture, controllers: Controller[]) {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map((s) => new Promise((r) => s.close(() => r(undefined)))),
    );
  });

  /** A Nest app (not listening yet) on `instance`, or on a new Express application. */
  async function nest(
    instance: E | undefined,
    options: Partial<DynamoCacheModuleOptions> = {},
    with_: Controller[] = controllers,
    logger: LoggerService | false = false,
  ): Promise<NestExpressApplication> {
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
      controllers: with_,
    }).compile();
    const app = moduleRef.createNestApplication<NestExpressApplication>(
      new ExpressAdapter(instance),
      { logger },
    );
    fx.apps.push(app);
    return app;
  }

  /** A Nest app listening on its own adapter's server. */
  async function boot(
    options: Partial<DynamoCacheModuleOptions> = {},
    setup: (app: NestExpressApplication, express: E) => void | Promise<void> = () => undefined,
    with_: Controller[] = controllers,
    logger: LoggerService | false = false,
  ) {
    const app = await nest(undefined, options, with_, logger);
    const express = app.getHttpAdapter().getInstance() as E;
    await setup(app, express);
    await app.listen(0, '127.0.0.1');
    const counter = countRouted(express as never);
    const port = (app.getHttpServer() as { address(): AddressInfo }).address().port;
    const get: Get = (target, headers, method) => raw(port, target, headers, method);
    return { app, express, counter, get, port };
  }

  /** A Nest app whose Express instance is mounted in a parent Express app (`parent.use([path,] child)`). */
  async function bootMounted(parentSetup: (parent: E) => void, mount?: string) {
    const express = require('express') as () => E & {
      use(...args: unknown[]): unknown;
    };
    const child = express();
    const app = await nest(child);
    await app.init();
    const parent = express();
    parentSetup(parent);
    if (mount === undefined) parent.use(child);
    else parent.use(mount, child);
    const server = createServer(parent as never);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const counter = countRouted(child as never);
    const port = (server.address() as AddressInfo).port;
    const get: Get = (target, headers, method) => raw(port, target, headers, method);
    return { app, child, parent, counter, get, port };
  }

  /** A miss (through the pipeline), then a hit at the route (which learns the URL). */
  async function learn(
    app: INestApplication,
    get: Get,
    target: string,
    headers?: Record<string, string>,
  ) {
    const miss = await get(target, headers);
    await settleAll([app]);
    const route = await get(target, headers);
    expect(route.head).toMatch(/x-cache: HIT/i);
    return { miss, route };
  }

  return { servers, nest, boot, bootMounted, learn };
}
