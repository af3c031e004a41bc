import { SetMetadata } from '@nestjs/common';
import { NO_DYNAMO_CACHE_METADATA } from '../dynamo-cache.constants.js';

/**
 * Keeps one route, or every route of a controller, out of a `DynamoCacheInterceptor` applied
 * more widely (globally or on the controller): such requests always reach the handler and carry
 * no `X-Cache` header. Useful for routes whose response must be fresh on every request.
 *
 * @example
 * @Get('now')
 * @NoDynamoCache()
 * now() {
 *   return { at: new Date().toISOString() };
 * }
 */
export function NoDynamoCache(): MethodDecorator & ClassDecorator {
  return SetMetadata(NO_DYNAMO_CACHE_METADATA, true);
}
