import { LRUCache } from 'lru-cache';
import type { CacheNamespace } from '../engine/namespace/cache-namespace.js';
import { DynamoCacheRouteResponse } from './cached-response.js';
import { storedJsonBytes } from './json-replay.js';
import { mayShare, requestKey, type KeyedRequest } from './request-key.js';

/** How a route served through the fast path keys its requests (what the interceptor uses). */
export interface FastRoute {
  readonly ns: CacheNamespace;
  readonly query: 'all' | readonly string[];
  readonly vary: readonly string[];
  readonly privateHeaders: readonly string[];
}

/** The parts of a Node, Express or Fastify (raw) request the fast path reads. */
export interface FastRequest extends KeyedRequest {
  readonly method?: string;
  readonly url?: string;
  readonly originalUrl?: string;
}

/** The parts of a Node (or Express) response the fast path writes. */
export interface FastResponse {
  statusCode: number;
  setHeader(name: string, value: string | number): unknown;
  end(chunk?: Uint8Array): unknown;
}

/** Paths remembered at most: a client inventing paths cannot grow the table past this. */
const MAX_PATHS = 10_000;

/**
 * The routes a request may be answered for before Nest's pipeline: each path the interceptor
 * served for a route where guards and other interceptors could change nothing, with how that
 * route keys its requests. A path maps to one handler (versioning by header or host excluded),
 * so a request for it is keyed exactly as the interceptor would key it, and only an L1 hit whose
 * response went out as plain JSON is answered here; anything else goes on to Nest.
 *
 * @example
 * routes.remember('/rates/EUR/USD', { ns, query: 'all', vary: [], privateHeaders });
 * if (!routes.answer(req, res)) next();
 */
export class FastPathRoutes {
  private readonly byPath = new LRUCache<string, FastRoute>({ max: MAX_PATHS });

  /** Records that requests for `url`'s path reach `route`. */
  remember(url: string, route: FastRoute): void {
    const path = pathOf(url);
    if (this.byPath.get(path) !== route) this.byPath.set(path, route);
  }

  /**
   * Answers a GET from L1 when the interceptor would answer it with a stored JSON response: the
   * stored status and headers, `X-Cache: HIT`, its ETag and its bytes. `false` (nothing written)
   * for anything else: another method, a conditional request, credentials the route does not
   * vary on, a path not remembered, a miss, an entry past `l1MaxAge`, a body not stored as JSON.
   */
  answer(req: FastRequest, res: FastResponse): boolean {
    if (req.method !== 'GET') return false;
    const headers = req.headers ?? {};
    // Conditional requests take the usual path, which answers them (304) the usual way.
    if (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined) {
      return false;
    }
    const url = req.originalUrl ?? req.url ?? '/';
    const route = this.byPath.get(pathOf(url));
    if (route === undefined || !mayShare(req, route.privateHeaders, route.vary)) return false;
    const key = requestKey('GET', url, req, route.query, route.vary);
    if (key === undefined) return false;
    const hit = route.ns.peek(key);
    const stored = hit?.hit === true ? hit.value : undefined;
    if (!(stored instanceof DynamoCacheRouteResponse) || stored.json !== true) return false;
    const bytes = storedJsonBytes(stored.body);
    if (bytes === undefined) return false;
    res.statusCode = stored.status;
    for (const name of Object.keys(stored.headers)) {
      res.setHeader(name, stored.headers[name] as string);
    }
    if (stored.headers['content-type'] === undefined) {
      res.setHeader('content-type', 'application/json; charset=utf-8');
    }
    res.setHeader('x-cache', 'HIT');
    const etag = stored.headers.etag ?? stored.etag;
    if (etag !== undefined) res.setHeader('etag', etag);
    res.setHeader('content-length', bytes.byteLength);
    res.end(bytes);
    return true;
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
