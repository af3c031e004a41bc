/**
 * Thrown out of the cached computation to carry a result that must not be stored (a stream, a
 * private response, a status not listed, a partial GraphQL result). The engine never stores a
 * rejected computation, so this keeps it out of both layers, and requests that waited on it run
 * the handler themselves. It is the handler's answer, not a failure: grace does not hide it with
 * an older response (see `staleOnError` of the route's namespace).
 *
 * `supersedes`: the answer is everyone's, and not the stored one (a status the route does not
 * store, such as a 404): the stored response it replaces must not be served on. Not so for what
 * concerns one request (a 304 to its `If-None-Match`, a cookie set for its client, a response
 * its client left before it was sent).
 *
 * @example
 * if (response.getHeader('set-cookie') !== undefined) throw new UncacheableResult(body);
 */
export class UncacheableResult {
  constructor(
    readonly value: unknown,
    readonly supersedes = false,
  ) {}
}
