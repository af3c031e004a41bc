import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CacheEngineSettings } from '../../lib/engine/cache-engine.js';
import { DEFAULT_LEASE, v8Serializer } from '../../lib/index.js';

/** A logger that drops what it is given. */
export const quietLogger = { warn: () => undefined, error: () => undefined };

/**
 * The settings of one application instance's engine in tests that build engines themselves
 * (several on one table, one client each): a lease on, no circuit breaker, nothing logged,
 * `extra` over all of it.
 *
 * @example
 * const a = new CacheEngine(engineSettings(fx.dynamo.client(), table, { lease: false }));
 */
export function engineSettings(
  client: DynamoDBClient,
  table: string,
  extra: Partial<CacheEngineSettings> = {},
): CacheEngineSettings {
  return {
    client: () => client,
    table,
    ttl: 3600,
    maxsize: 1000,
    keyPrefix: '',
    onError: 'bypass',
    serializer: v8Serializer,
    consistentRead: false,
    logger: quietLogger,
    circuitBreaker: false,
    lease: { ...DEFAULT_LEASE },
    ...extra,
  };
}
