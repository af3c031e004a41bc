import type {
  DynamoDBClient,
  ServiceInputTypes,
  ServiceOutputTypes,
} from '@aws-sdk/client-dynamodb';
import type { FinalizeRequestMiddleware } from '@smithy/types';
import { L2TimeoutError } from './l2-timeout.js';

/** What the L2 store calls on a DynamoDB client: `send` alone. */
export type CacheClient = Pick<DynamoDBClient, 'send'>;

interface Deadline {
  readonly at: number;
  readonly timeoutMs: number;
}

/**
 * Where {@link withRetryDeadline} leaves a call's deadline: on its command's input, which the SDK
 * hands to every middleware as `args.input`. The inputs are the cache's own objects, and a symbol
 * key is never serialized into a request (an SDK `logger` that prints inputs shows it); a
 * `WeakMap` by input cost a measurable share of a hit.
 */
const DEADLINE = Symbol('nestjs-dynamo-cache:deadline');

type WithDeadline = { [DEADLINE]?: Deadline };

/** The wrappers made by {@link withRetryDeadline}, per client and timeout (made once each). */
const wrappers = new WeakMap<DynamoDBClient, Map<number, CacheClient>>();

/**
 * `client`, with each command sent through it given up by the SDK's retries once `timeoutMs` has
 * passed since it was sent (see {@link boundRetries}): the cache abandons the call then, and a
 * retry sent later would be a write the caller was told had failed. The wrapper is made once per
 * client and timeout, so a call costs one small object.
 *
 * @example
 * await withRetryDeadline(client, 1000).send(new GetItemCommand(input));
 */
export function withRetryDeadline(client: DynamoDBClient, timeoutMs: number): CacheClient {
  let byTimeout = wrappers.get(client);
  if (byTimeout === undefined) wrappers.set(client, (byTimeout = new Map()));
  let wrapper = byTimeout.get(timeoutMs);
  if (wrapper === undefined) {
    const send = (command: { input: object }, options?: unknown): unknown => {
      (command.input as WithDeadline)[DEADLINE] = { at: Date.now() + timeoutMs, timeoutMs };
      return (client.send as (command: unknown, options?: unknown) => unknown).call(
        client,
        command,
        options,
      );
    };
    wrapper = { send: send as DynamoDBClient['send'] };
    byTimeout.set(timeoutMs, wrapper);
  }
  return wrapper;
}

/**
 * Makes the SDK stop retrying a call past its deadline (set by {@link withRetryDeadline}): every
 * attempt checks it, and one that would start late fails instead, with an error the SDK does not
 * retry. For a client whose HTTP handler ends slow requests itself (no abort
 * signal per call): its handler's timeout fails the attempt, which the SDK would otherwise send
 * again, up to `maxAttempts`, after the cache has given the call up. Added before the client's
 * first call (a client built with `cacheMiddleware: true` resolves its middleware once).
 *
 * @example
 * const client = new DynamoDBClient({ cacheMiddleware: true, requestHandler: { socketTimeout: 1000 } });
 * boundRetries(client);
 */
export function boundRetries(client: DynamoDBClient): void {
  const middleware: FinalizeRequestMiddleware<ServiceInputTypes, ServiceOutputTypes> =
    (next) => (args) => {
      const deadline = (args.input as WithDeadline)[DEADLINE];
      if (deadline !== undefined && Date.now() >= deadline.at) {
        return Promise.reject(new L2TimeoutError(deadline.timeoutMs));
      }
      return next(args);
    };
  // Low priority in the finalizeRequest step: inside the SDK's retry middleware (high priority
  // there), so it runs before each attempt, without naming that middleware.
  client.middlewareStack.add(middleware, {
    step: 'finalizeRequest',
    priority: 'low',
    name: 'nestjsDynamoCacheRetryDeadline',
    override: true,
  });
}
