/**
 * Thrown out of the cached computation to carry a result that must not be stored (a stream, a
 * private response, a status not listed, a partial GraphQL result). The engine never stores a
 * rejected computation, so this keeps it out of both layers, and requests that waited on it run
 * the handler themselves. It is the handler's answer, not a failure: grace does not hide it with
 * an older response (see `staleOnError` of the route's namespace).
 *
 * @example
 * if (response.getHeader('set-cookie') !== undefined) throw new UncacheableResult(body);
 */
export class UncacheableResult {
  constructor(readonly value: unknown) {}
}
