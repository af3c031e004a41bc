import type { FastAnswer, FastPathRoutes } from './fast-path.js';
import { plainExpressJsonApp } from './json-replay.js';
import type { KeyedRequest } from './request-key.js';

// Express only: answering a hit before Express's router. On Express, routing and middleware
// cost several times what the route's fast path does (a small hit: ~85 µs of ~100). When nothing
// but Nest's own pieces stands before a route in the application's router (Nest's adapter
// layer with no request or response hook, body parsers, which do nothing for a request without
// a body, and other routes, which match a URL or not), what Express does for a GET of a URL is
// fixed by the URL: so once the route's fast path has answered a URL, later GETs of that exact
// URL may be answered by the same code at `app.handle`, with the headers that answer went out
// with. Any other layer before the route (an `app.use()` middleware, Nest middleware, CORS,
// static files, an Express route of the same path), an `app.param()` callback, a request hook,
// a request with a body, or a change of the router's stack, and the request goes the usual way.

interface ExpressLayer {
  readonly handle: unknown;
  readonly route?: { _handlesMethod?(method: string): boolean };
  match?(path: string): unknown;
}

interface ExpressRouter {
  readonly stack: readonly ExpressLayer[];
  readonly params?: Readonly<Record<string, unknown>>;
}

interface ExpressApp {
  (req: FrontRequest, res: FrontResponse, next?: unknown): unknown;
  handle(this: ExpressApp, req: FrontRequest, res: FrontResponse, callback?: unknown): unknown;
  readonly router?: ExpressRouter;
  get(setting: string): unknown;
}

/** The parts of a Node request read here (Express's additions may not be there yet). */
export interface FrontRequest extends KeyedRequest {
  readonly method?: string;
  readonly url?: string;
  readonly originalUrl?: string;
  readonly app?: ExpressApp;
}

/** The parts of a Node response used here. */
export interface FrontResponse {
  readonly statusCode: number;
  getRawHeaderNames(): string[];
  getHeader(name: string): number | string | string[] | undefined;
  writeHead(status: number, headers: Record<string, number | string | string[]>): unknown;
  end(body: Buffer): unknown;
}

/** Nest's Express adapter, as far as it is read here. */
interface NestExpressAdapter {
  readonly onRequestHook?: unknown;
  readonly onResponseHook?: unknown;
  getInstance(): unknown;
  registerParserMiddleware?(): void;
  useBodyParser?(type: string): unknown;
}

/** Where a URL's GETs were routed: the route's layer, at its index in a stack of a length. */
interface Learned {
  readonly routes: FastPathRoutes;
  readonly route: object;
  readonly layer: ExpressLayer;
  readonly index: number;
  readonly length: number;
}

/** What the route's fast path sent for an answer: its status and headers as Express set them. */
interface Sent {
  readonly status: number;
  readonly headers: Record<string, number | string | string[]>;
}

/**
 * URLs remembered per application; past this many the memory starts over (clients choose URLs:
 * the memory must not grow with them). A URL forgotten is answered at the route and learned again.
 */
export const FRONT_URL_LIMIT = 10_000;

const BODY_PARSERS = new Set(['jsonParser', 'urlencodedParser', 'rawParser', 'textParser']);

const sentFor = new WeakMap<FastAnswer, Sent>();
const fronts = new WeakMap<object, Front | null>();

/**
 * Called after the route's fast path answered `req` with `answer` through Express: remembers the
 * URL for {@link Front}, when what stands before the route allows it (see the top of this file).
 *
 * @example
 * res.send(answer.bytes);
 * learnFront(adapter, req, res, routes, route, url, answer);
 */
export function learnFront(
  adapter: unknown,
  req: FrontRequest,
  res: FrontResponse,
  routes: FastPathRoutes,
  route: object,
  url: string,
  answer: FastAnswer,
): void {
  // An Express application is a function (the server's request listener).
  const app = req.app;
  if (typeof app !== 'function' || typeof app.handle !== 'function') return;
  let front = fronts.get(app);
  if (front === undefined) {
    front = Front.install(app, adapter);
    fronts.set(app, front);
  }
  if (front === null || res.statusCode !== answer.status) return;
  front.learn(req, res, routes, route, url, answer);
}

/** The answers given before an Express application's router (one per application). */
class Front {
  private readonly urls = new Map<string, Learned>();
  /** Layers known to do nothing for a GET without a body, by the text of their handler. */
  private readonly inertLayers = new WeakMap<object, boolean>();

  private constructor(
    private readonly app: ExpressApp,
    private readonly adapter: NestExpressAdapter,
    private readonly inertSources: ReadonlySet<string>,
  ) {}

  /**
   * Wraps `app.handle` (what the HTTP server calls for each request), or `null` when the
   * adapter is not Nest's own `ExpressAdapter` (its layers would not be recognized).
   */
  static install(app: ExpressApp, adapter: unknown): Front | null {
    const sources = inertSources(adapter);
    if (sources === undefined) return null;
    const front = new Front(app, adapter as NestExpressAdapter, sources);
    const original = app.handle;
    app.handle = function frontHandle(req, res, callback) {
      if (req.method === 'GET' && front.answer(req, res)) return undefined;
      return original.call(this, req, res, callback);
    };
    return front;
  }

  learn(
    req: FrontRequest,
    res: FrontResponse,
    routes: FastPathRoutes,
    route: object,
    url: string,
    answer: FastAnswer,
  ): void {
    const router = this.app.router;
    const path = req.url;
    if (router === undefined || path === undefined || !path.startsWith('/')) return;
    if (!bodyless(req) || !this.ready(router)) return;
    const stack = router.stack;
    const index = stack.findIndex((layer) => layer.route === route);
    if (index < 0) return;
    const q = path.indexOf('?');
    const pathname = q === -1 ? path : path.slice(0, q);
    for (let i = 0; i < index; i++) {
      const layer = stack[i]!;
      if (layer.route !== undefined) {
        // A route before this one that takes this GET would have been asked first: it may
        // pass it on for some requests and not for others.
        if (typeof layer.match !== 'function') return;
        if (layer.match(pathname) !== false && layer.route._handlesMethod?.('GET') !== false) {
          return;
        }
      } else if (!this.inert(layer)) return;
    }
    if (!sentFor.has(answer)) sentFor.set(answer, sentOf(res));
    if (this.urls.size >= FRONT_URL_LIMIT) this.urls.clear();
    this.urls.set(url, { routes, route, layer: stack[index]!, index, length: stack.length });
  }

  /** Answers `req` as the route's fast path answered its URL last, when nothing changed since. */
  answer(req: FrontRequest, res: FrontResponse): boolean {
    const url = req.originalUrl ?? req.url;
    if (url === undefined) return false;
    const learned = this.urls.get(url);
    if (learned === undefined || !bodyless(req)) return false;
    const router = this.app.router;
    if (
      router === undefined ||
      router.stack.length !== learned.length ||
      router.stack[learned.index] !== learned.layer ||
      !this.ready(router) ||
      !plainExpressJsonApp(this.app)
    ) {
      return false;
    }
    const answer = learned.routes.find(learned.route, url, req);
    const sent = answer === undefined ? undefined : sentFor.get(answer);
    if (answer === undefined || sent === undefined) return false;
    res.writeHead(sent.status, sent.headers);
    res.end(answer.bytes);
    return true;
  }

  /** No request or response hook on Nest's adapter, no `app.param()` callback. */
  private ready(router: ExpressRouter): boolean {
    if (this.adapter.onRequestHook !== undefined || this.adapter.onResponseHook !== undefined) {
      return false;
    }
    return !hasKeys(router.params);
  }

  private inert(layer: ExpressLayer): boolean {
    const handle = layer.handle;
    if (typeof handle !== 'function') return false;
    let inert = this.inertLayers.get(handle);
    if (inert === undefined) {
      inert = this.inertSources.has(Function.prototype.toString.call(handle));
      this.inertLayers.set(handle, inert);
    }
    return inert;
  }
}

function hasKeys(object: object | undefined): boolean {
  for (const key in object) if (Object.hasOwn(object, key)) return true;
  return false;
}

/** No body: Express's body parsers then only set `req.body` to `undefined`. */
function bodyless(req: FrontRequest): boolean {
  const headers = req.headers;
  return (
    headers !== undefined &&
    headers['content-length'] === undefined &&
    headers['transfer-encoding'] === undefined
  );
}

/** The status and headers (names as set) of a response that went out. */
function sentOf(res: FrontResponse): Sent {
  const headers: Record<string, number | string | string[]> = {};
  for (const name of res.getRawHeaderNames()) {
    const value = res.getHeader(name);
    if (value !== undefined) headers[name] = value;
  }
  return { status: res.statusCode, headers };
}

/**
 * The text of the handlers Nest's `ExpressAdapter` puts in every application (its request and
 * response hook layer, the JSON, urlencoded, raw and text body parsers), taken from a throwaway
 * adapter of the application's own adapter class, so they are this installation's. `undefined`
 * for an adapter of another class (a subclass's layers are not known).
 */
function inertSources(adapter: unknown): Set<string> | undefined {
  const ctor = (adapter as { constructor?: unknown } | null)?.constructor;
  if (typeof ctor !== 'function' || ctor.name !== 'ExpressAdapter') return undefined;
  try {
    const probe = new (ctor as new () => NestExpressAdapter)();
    probe.registerParserMiddleware?.();
    probe.useBodyParser?.('raw');
    probe.useBodyParser?.('text');
    const stack = (probe.getInstance() as ExpressApp).router?.stack ?? [];
    const sources = new Set<string>();
    for (const layer of stack) {
      if (layer.route !== undefined || typeof layer.handle !== 'function') continue;
      const source = Function.prototype.toString.call(layer.handle);
      // The hook layer is inert only while no hook is set, which `ready` checks by these names.
      if (
        BODY_PARSERS.has(layer.handle.name) ||
        (source.includes('this.onRequestHook') && source.includes('this.onResponseHook'))
      ) {
        sources.add(source);
      }
    }
    return sources.size > 0 ? sources : undefined;
  } catch {
    return undefined;
  }
}
