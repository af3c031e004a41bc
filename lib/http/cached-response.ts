/**
 * A route response as the cache stores it: what a hit must reproduce (status, the headers that
 * describe the body, the body) and the entity tag of the body. A class, so a stored response is
 * told apart from a raw body (a `trackBy` key shared with entries of 0.1.0, which stored the body
 * alone), and restored as one by any process (the interceptor declares it in the registry).
 *
 * @example
 * const stored = await cache.get<DynamoCacheRouteResponse>('RatesController.rate', key);
 * stored?.status; // 200
 */
export class DynamoCacheRouteResponse {
  constructor(
    /** The status the handler answered with. */
    readonly status: number,
    /** Lower-cased names: the headers the handler set that describe the body (see response-policy). */
    readonly headers: Readonly<Record<string, string>>,
    /** What the handler returned (before serialization to the wire). */
    readonly body: unknown,
    /** A strong entity tag of the body, quoted; `undefined` when it could not be computed. */
    readonly etag: string | undefined,
    /**
     * `true` when the body went out as exactly `JSON.stringify(body)`, so a hit may send that
     * text without serializing the body again. Absent in entries written before 0.2.
     */
    readonly json?: true,
  ) {}
}
