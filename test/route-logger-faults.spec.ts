import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Controller, Get, Param, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { DynamoCached, DynamoCacheModule, type DynamoCacheModuleOptions } from '../lib/index.js';
import { settleAll, sleep } from './support/apps.js';
import { baseUrl, fetch } from './support/fast-path-fixtures.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { RecordingLogger } from './support/recording-logger.js';

/*
 * What the route interceptor logs goes through the application's logger like the rest of the
 * cache's: a logger that throws must neither fail a request nor (from the background, after the
 * response) crash the process.
 */

/** Makes every `command` call of `client` fail (stands for a permission the role lacks). */
function failAlways(
  client: DynamoDBClient,
  command: string,
  failing: { on: boolean } = { on: true },
): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (failing.on && String(context.commandName) === `${command}Command`) {
        const err = new Error(`AccessDeniedException on ${command}`);
        err.name = 'AccessDeniedException';
        throw err;
      }
      return next(args);
    },
    { step: 'initialize', name: `fail${command}` },
  );
}

class ThrowingLogger extends RecordingLogger {
  override warn(message: unknown): void {
    super.warn(message);
    throw new Error('the logger is down');
  }
  override error(message: unknown): void {
    super.error(message);
    throw new Error('the logger is down');
  }
}

let runs = 0;

@Controller('keyed')
class KeyedController {
  /** `key` is ignored on routes: the first request logs a warning, on its own path. */
  @Get(':id')
  @DynamoCached({ ttl: 60, key: (id: string) => id })
  keyed(@Param('id') id: string) {
    return { id };
  }
}

@Controller('rates')
class RatesController {
  @Get(':id')
  @DynamoCached(60)
  rate(@Param('id') id: string) {
    runs++;
    return { id, rate: 1.08 };
  }
}

describe('route interceptor and a logger that throws', () => {
  const fx = useTestDynamo();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));
  beforeEach(() => {
    unhandled.length = 0;
    runs = 0;
  });

  async function boot(
    options: Partial<DynamoCacheModuleOptions>,
    logger: RecordingLogger,
    failing?: { on: boolean },
  ): Promise<INestApplication> {
    const client = fx.dynamo.client();
    failAlways(client, 'PutItem', failing);
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table: await fx.dynamo.table(), client, ...options })],
      controllers: [RatesController, KeyedController],
    }).compile();
    const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return app;
  }

  it("onError 'throw': a route's write failing after its response neither crashes the process nor fails the request", async () => {
    const logger = new ThrowingLogger();
    const app = await boot({ onError: 'throw' }, logger);
    for (let i = 0; i < 3; i++) {
      const reply = await fetch(`${baseUrl(app)}/rates/${i}`);
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body.toString())).toEqual({ id: String(i), rate: 1.08 });
    }
    await settleAll([app]);
    await sleep(50);
    expect(runs).toBe(3);
    expect(unhandled).toEqual([]);
  });

  it('a warning logged on the request path does not fail the request', async () => {
    const logger = new ThrowingLogger();
    const app = await boot({}, logger);
    const reply = await fetch(`${baseUrl(app)}/keyed/a`);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body.toString())).toEqual({ id: 'a' });
    expect(logger.matching(/"key" of @DynamoCached is ignored/)).toHaveLength(1);
  });

  it("onError 'throw': a write permission missing is logged once per outage, not once per request", async () => {
    const logger = new RecordingLogger();
    const failing = { on: true };
    const app = await boot({ onError: 'throw' }, logger, failing);
    for (let i = 0; i < 5; i++) {
      const reply = await fetch(`${baseUrl(app)}/rates/${i}`);
      expect(reply.status).toBe(200);
    }
    await settleAll([app]);
    await sleep(50);
    expect(logger.matching(/PutItem/)).toHaveLength(1);
    // Writes answer again: said once; the next outage is logged again.
    failing.on = false;
    await fetch(`${baseUrl(app)}/rates/ok`);
    await settleAll([app]);
    expect(logger.matching(/answers again; L2 is back/)).toHaveLength(1);
    failing.on = true;
    await fetch(`${baseUrl(app)}/rates/again`);
    await settleAll([app]);
    await sleep(50);
    expect(logger.matching(/PutItem/)).toHaveLength(2);
  });
});
