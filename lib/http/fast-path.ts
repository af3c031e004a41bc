import type { CacheNamespace } from '../engine/namespace/cache-namespace.js';
import { DynamoCacheRouteResponse } from './cached-response.js';
import { storedJsonBytes, storedJsonText, storedJsonUnread } from './json-replay.js';
import { mayShare, requestKey, type KeyedRequest } from './request-key.js';

/** How a route served through the fast path keys its requests (what the interceptor uses). */
export interface FastRoute {
  readonly ns: CacheNamespace;
  readonly query: 'all' | readonly string[];
  readonly vary: readonly string[];
  readonly privateHeaders: readonly string[];
}

/** A stored response the fast path may send: its status, headers and JSON text. */
export interface FastAnswer {
  readonly status: number;
  /** Lower-cased names: the stored headers, `x-cache`, `etag` and a JSON `content-type`. */
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON text, as bytes (Express). */
  readonly bytes: Buffer;
  /** The JSON text, as a string (Fastify: what its serializer gives `onSend` hooks). */
  readonly payload: string;
  /** The JSON text as Fastify sends it where no `onSend` hook reads it (storedJsonUnread). */
  readonly unread: string | Buffer;
  /**
   * The stored body the text is of (Fastify: a route with a serializer of its own compares what
   * it makes of the body with the text, see fastifySerializesAsStored).
   */
  readonly body: object;
}

/**
 * The routes whose hits may be answered before Nest's pipeline: each route the interceptor
 * served and found eligible, with how it keys its requests. A request is keyed exactly as the
 * interceptor would key it, and only an L1 hit whose response went out as plain JSON is answered;
 * anything else goes on to Nest.
 *
 * @example
 * routes.remember(req.route, { ns, query: 'all', vary: [], privateHeaders });
 * const answer = routes.find(req.route, req.originalUrl, req);
 */
export class FastPathRoutes {
  /** By the framework's own route object: one entry per route, however many paths it serves. */
  private readonly byRoute = new WeakMap<object, FastRoute>();

  /** Records that the framework's route `key` (Express route, Fastify route context) is `route`. */
  remember(key: object, route: FastRoute): void {
    this.byRoute.set(key, route);
  }

  /**
   * The answer the interceptor would give a GET of `url` (as it keys it) routed by `key`, when
   * it would answer with a stored JSON response from L1: `undefined` for a conditional request,
   * credentials the route does not vary on, a route not remembered, a miss, an entry past
   * `l1MaxAge`, a body not stored as JSON, or one `sendable` refuses (the adapter's own check).
   * Counted as an L1 hit only when answered: one declined is counted by the pipeline it goes to.
   */
  find(
    key: object,
    url: string,
    request: KeyedRequest,
    sendable?: (answer: FastAnswer) => boolean,
  ): FastAnswer | undefined {
    const headers = request.headers ?? {};
    // Conditional requests take the usual path, which answers them (304) the usual way.
    if (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined) {
      return undefined;
    }
    const route = this.byRoute.get(key);
    if (route === undefined || !mayShare(request, route.privateHeaders, route.vary))
      return undefined;
    const material = requestKey('GET', url, request, route.query, route.vary);
    if (material === undefined) return undefined;
    // Counted as a hit only when it is answered here: one declined goes on to the pipeline,
    // which counts it there.
    let answer: FastAnswer | undefined;
    const hit = route.ns.peek(material, (stored) => {
      if (!(stored instanceof DynamoCacheRouteResponse) || stored.json !== true) return false;
      answer = answerOf(stored);
      return answer !== undefined && (sendable === undefined || sendable(answer));
    });
    return hit === undefined ? undefined : answer;
  }
}

/** Each stored response's answer, made once per entry and process (L1 holds the entry). */
const answers = new WeakMap<DynamoCacheRouteResponse, FastAnswer | null>();

function answerOf(stored: DynamoCacheRouteResponse): FastAnswer | undefined {
  let answer = answers.get(stored);
  if (answer === undefined) {
    const body = stored.body;
    if (body === null || typeof body !== 'object') answer = null;
    else {
      const headers: Record<string, string> = { ...stored.headers };
      headers['content-type'] ??= 'application/json; charset=utf-8';
      headers['x-cache'] = 'HIT';
      const etag = stored.headers.etag ?? stored.etag;
      if (etag !== undefined) headers.etag = etag;
      let bytes: Buffer | undefined;
      let text: string | undefined;
      answer = {
        status: stored.status,
        headers: Object.freeze(headers),
        body,
        // Each made when first sent: an Express process never needs the text.
        get payload(): string {
          return (text ??= storedJsonText(body) as string);
        },
        get bytes(): Buffer {
          return (bytes ??= storedJsonBytes(body) as Buffer);
        },
        get unread(): string | Buffer {
          return storedJsonUnread(body) as string | Buffer;
        },
      };
    }
    answers.set(stored, answer);
  }
  return answer ?? undefined;
}
