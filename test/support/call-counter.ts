import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

// Kept apart from dynamo-server.ts (which uses jest's hooks) so the benchmark can count calls too.

/** Counts every command sent through `client`, by command name (GetItem, PutItem, …). */
export interface CallCounter {
  readonly counts: Record<string, number>;
  get(command: string): number;
  total(): number;
  /**
   * Items read whole by `GetItem` and `BatchGetItem` calls (a batch counts each of its keys),
   * whatever the calls were: what a test about "one read per call" counts now that reads are
   * batched. Reads of `t` only (revalidations, invalidation markers: a `BatchGetItem` with a
   * `ProjectionExpression`) are not counted here.
   */
  readKeys(): number;
  reset(): void;
}

export function countCalls(client: DynamoDBClient): CallCounter {
  const counts: Record<string, number> = {};
  let keys = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName).replace(/Command$/, '');
      counts[name] = (counts[name] ?? 0) + 1;
      if (name === 'GetItem') keys++;
      if (name === 'BatchGetItem') {
        const requests = (
          args.input as {
            RequestItems?: Record<string, { Keys?: unknown[]; ProjectionExpression?: string }>;
          }
        ).RequestItems;
        for (const table of Object.values(requests ?? {})) {
          if (table.ProjectionExpression === undefined) keys += table.Keys?.length ?? 0;
        }
      }
      return next(args);
    },
    { step: 'initialize', name: 'dynamoCacheTestCallCounter' },
  );
  return {
    counts,
    get: (command) => counts[command] ?? 0,
    total: () => Object.values(counts).reduce((a, b) => a + b, 0),
    readKeys: () => keys,
    reset: () => {
      for (const k of Object.keys(counts)) delete counts[k];
      keys = 0;
    },
  };
}
