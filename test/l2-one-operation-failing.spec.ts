import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoCacheService } from '../lib/index.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { bootLogged, RecordingLogger } from './support/recording-logger.js';

/**
 * Makes every `command` call of `client` fail with an error named `name`, as the SDK reports it,
 * while `failing.on` holds (the only mock here: it stands for throttling or a denied permission).
 */
function failWhile(
  client: DynamoDBClient,
  command: string,
  name: string,
  failing: { on: boolean },
) {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (failing.on && String(context.commandName) === `${command}Command`) {
        const err = new Error(`${name} on ${command}`);
        err.name = name;
        throw err;
      }
      return next(args);
    },
    { step: 'initialize', name: `fail${command}` },
  );
}

describe('one operation failing on every call while the others answer (throttled, or denied)', () => {
  const fx = useTestDynamo();

  it.each([
    ['GetItem', 'ProvisionedThroughputExceededException'],
    ['PutItem', 'ThrottlingException'],
    ['BatchGetItem', 'AccessDeniedException'],
  ])(
    'every %s failing (%s): one warning for the outage, one when it answers again; no result lost',
    async (command, error) => {
      const table = await fx.dynamo.table();
      const writer = await bootLogged({ table, client: fx.dynamo.client() }, [], false);
      fx.apps.push(writer);
      const seed = writer.get(DynamoCacheService);
      for (let i = 0; i < 10; i++) await seed.set('k', [i], `stored ${i}`);
      await seed.settle();

      const failing = { on: true };
      const client = fx.dynamo.client();
      failWhile(client, command, error, failing);
      const logger = new RecordingLogger();
      const moduleRef = await bootLogged({ table, client }, [], logger);
      fx.apps.push(moduleRef);
      const cache = moduleRef.get(DynamoCacheService);
      // PutItem: keys nothing is stored under, so each call writes.
      const ns = command === 'PutItem' ? 'unstored' : 'k';
      const out: string[] = [];
      for (let i = 0; i < 7; i++) out.push(await cache.wrap(ns, [i], async () => `v${i}`));
      await cache.settle();
      expect(out).toHaveLength(7);
      expect(cache.stats().total.l2Errors).toBeGreaterThanOrEqual(5);
      expect(logger.matching(/serving without L2/)).toHaveLength(1);
      expect(logger.matching(/answers again; L2 is back in use/)).toHaveLength(0);

      failing.on = false;
      for (let i = 7; i < 10; i++) await cache.wrap(ns, [i], async () => `v${i}`);
      await cache.settle();
      expect(logger.matching(/serving without L2/)).toHaveLength(1);
      expect(logger.matching(/answers again; L2 is back in use/)).toHaveLength(1);
    },
  );
});
