import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

// Kept apart from dynamo-server.ts (which uses jest's hooks) so the benchmark can count calls too.

/** Counts every command sent through `client`, by command name (GetItem, PutItem, …). */
export interface CallCounter {
  readonly counts: Record<string, number>;
  get(command: string): number;
  total(): number;
  reset(): void;
}

export function countCalls(client: DynamoDBClient): CallCounter {
  const counts: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName).replace(/Command$/, '');
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'dynamoCacheTestCallCounter' },
  );
  return {
    counts,
    get: (command) => counts[command] ?? 0,
    total: () => Object.values(counts).reduce((a, b) => a + b, 0),
    reset: () => {
      for (const k of Object.keys(counts)) delete counts[k];
    },
  };
}
