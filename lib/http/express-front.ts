import type { FastAnswer, FastPathRoutes } from './fast-path.js';
import { expressJsonIsOwn, plainExpressJsonApp } from './json-replay.js';
import type { KeyedRequest } from './request-key.js';

// Express only: answering a hit where Express's router is entered. On Express, routing and
// middleware cost several times what the route's fast path does (a small hit: ~85 µs of ~100).
// When nothing but Nest's own pieces stands before a route in the application's router (Nest's
// adapter layer with no request or response hook, body parsers, which do nothing for a request
// without a body, and other routes, which take a URL or not), what the router does with a GET is
// fixed by the URL it routes: so once the route's fast path has answered a URL, later GETs of
// that URL are answered by the same calls (`sendFastAnswer`) on the same response object, before
// the router. Express's `app.handle` (and whatever wraps it, or a parent application mounting
// this one) still runs first. Any other layer before the route (an `app.use()` middleware, Nest
// middleware, CORS, static files, an Express route taking GETs of the path), an `app.param()`
// callback, a request hook, a request with a body, a router whose `handle` is wrapped, or a
// change of the layers before the route, and the request goes the usual way.

interface ExpressLayer {
  readonly handle: unknown;
  readonly route?: ExpressRoute;
  match?(path: string): unknown;
}

interface ExpressRoute {
  _handlesMethod?(method: string): boolean;
}

interface ExpressRouter {
  readonly stack: readonly ExpressLayer[];
  readonly params?: Readonly<Record<string, unknown>>;
  handle(req: FrontRequest, res: FrontResponse, callback: unknown): unknown;
}

interface ExpressApp {
  (req: FrontRequest, res: FrontResponse, next?: unknown): unknown;
  readonly router?: ExpressRouter;
  get(setting: string): unknown;
}

/** The parts of a request read here. */
export interface FrontRequest extends KeyedRequest {
  readonly method?: string;
  readonly url?: string;
  readonly originalUrl?: string;
  readonly app?: ExpressApp;
}

/** The Express response methods a fast answer is sent with. */
export interface FrontResponse {
  status(code: number): unknown;
  set(name: string, value: string): unknown;
  send(body: Buffer): unknown;
}

/** Nest's Express adapter, as far as it is read here. */
interface NestExpressAdapter {
  readonly onRequestHook?: unknown;
  readonly onResponseHook?: unknown;
  getInstance(): unknown;
  registerParserMiddleware?(): void;
  useBodyParser?(type: string): unknown;
}

/**
 * Layers of a router as they were, with their handlers: a layer whose `handle` is replaced in
 * place (an auth check put where a body parser was) is not the layer it was.
 */
interface LayerSnapshot {
  readonly layers: readonly ExpressLayer[];
  readonly handles: readonly unknown[];
}

/** Where a URL's GETs were routed, and what could change that. */
interface Learned {
  readonly routes: FastPathRoutes;
  readonly route: object;
  /** The URL the route keyed the answer by (`originalUrl`: a mounting app may have cut it). */
  readonly keyUrl: string;
  /** The router's layers up to the route's, as they were (shared by the route's URLs). */
  readonly layers: LayerSnapshot;
  readonly length: number;
  /** Earlier routes of the same path that did not take GETs (one may come to). */
  readonly passing: readonly ExpressRoute[];
}

/**
 * URLs remembered per application, and their total length in characters; past either the memory
 * starts over (clients choose URLs: the memory must not grow with them). A URL forgotten is
 * answered at the route and learned again; one longer than {@link FRONT_URL_MAX} never is.
 */
export const FRONT_URL_LIMIT = 10_000;
export const FRONT_URL_BUDGET = 1_000_000;
export const FRONT_URL_MAX = 1_024;

/** A body parser, Nest's hook layer, or anything else. */
type LayerKind = 'parser' | 'hook' | 'other';

const BODY_PARSERS = new Set(['jsonParser', 'urlencodedParser', 'rawParser', 'textParser']);

const fronts = new WeakMap<object, ExpressFront | null>();

/**
 * Sends a fast answer with Express's own response methods: the route's fast path and the front
 * both send this way, so both go out alike (extensions of those methods, and wrappers of the
 * response's writes, included).
 *
 * @example
 * sendFastAnswer(res, routes.find(route, url, req)!);
 */
export function sendFastAnswer(res: FrontResponse, answer: FastAnswer): unknown {
  res.status(answer.status);
  for (const name of Object.keys(answer.headers)) res.set(name, answer.headers[name]!);
  return res.send(answer.bytes);
}

/**
 * The front of the Express application `req` was routed in, when one can be installed there (the
 * adapter is Nest's own `ExpressAdapter`, the router's `handle` Express's own and not wrapped):
 * `undefined` otherwise.
 *
 * @example
 * sendFastAnswer(res, answer);
 * expressFront(adapter, req)?.learn(req, routes, route, url);
 */
export function expressFront(adapter: unknown, req: FrontRequest): ExpressFront | undefined {
  // An Express application is a function (the server's request listener).
  const app = req.app;
  if (typeof app !== 'function') return undefined;
  let front = fronts.get(app);
  if (front === undefined) {
    front = ExpressFront.install(app, adapter);
    fronts.set(app, front);
  }
  return front ?? undefined;
}

/** The answers given where an Express application's router is entered (one per application). */
export class ExpressFront {
  private readonly urls = new Map<string, Learned>();
  private urlChars = 0;
  /** What each layer's handler is, known by its text. */
  private readonly kinds = new WeakMap<object, LayerKind>();
  /** Per route, the stack length at which a layer not Nest's was found before it. */
  private readonly blockedAt = new WeakMap<object, number>();
  /** Per route, the layers up to it as last seen (one array for all its URLs). */
  private readonly layersOf = new WeakMap<object, LayerSnapshot>();

  private constructor(
    private readonly app: ExpressApp,
    private readonly router: ExpressRouter,
    private readonly adapter: NestExpressAdapter,
    private readonly parserSources: ReadonlySet<string>,
    private readonly hookSource: string,
  ) {}

  /** Wraps the router's `handle`, or `null` when that cannot be done safely (see expressFront). */
  static install(app: ExpressApp, adapter: unknown): ExpressFront | null {
    const router = app.router;
    const sources = nestLayerSources(adapter);
    if (router === undefined || sources === undefined || !expressOwnHandle(router)) return null;
    const front = new ExpressFront(
      app,
      router,
      adapter as NestExpressAdapter,
      sources.parsers,
      sources.hook,
    );
    const original = router.handle;
    Object.defineProperty(router, 'handle', {
      configurable: true,
      writable: true,
      value: function frontHandle(
        this: ExpressRouter,
        req: FrontRequest,
        res: FrontResponse,
        callback: unknown,
      ) {
        if (req.method === 'GET' && front.answer(req, res)) return undefined;
        return original.call(this, req, res, callback);
      },
    });
    return front;
  }

  /** After the route's fast path answered `req`: remembers its URL, when it may. */
  learn(req: FrontRequest, routes: FastPathRoutes, route: object, keyUrl: string): void {
    const url = req.url;
    // The URL the answer is keyed by is kept too: a mounting app may have rewritten `req.url`
    // from a longer one.
    if (url === undefined || !learnable(url) || keyUrl.length > FRONT_URL_MAX) return;
    if (!bodyless(req) || !this.ready()) return;
    const stack = this.router.stack;
    // A route found behind a layer that is not Nest's stays so until the stack changes: its
    // hits (every one of them answered at the route) need not look again.
    if (this.blockedAt.get(route) === stack.length) return;
    const index = stack.findIndex((layer) => layer.route === route);
    if (index < 0) return;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const passing: ExpressRoute[] = [];
    let hooks = 0;
    for (let i = 0; i < index; i++) {
      const layer = stack[i]!;
      if (layer.route !== undefined) {
        const matched = matches(layer, path);
        // A route before this one that takes this GET would have been asked first: it may
        // pass it on for some requests and not for others.
        if (matched === undefined || (matched && handlesGet(layer.route))) return;
        if (matched) passing.push(layer.route);
        continue;
      }
      const kind = this.kindOf(layer);
      // Two hook layers: two Nest applications on this Express instance, whose other adapter's
      // hooks are not the ones `ready` checks.
      if (kind === 'other' || (kind === 'hook' && ++hooks > 1)) {
        this.blockedAt.set(route, stack.length);
        return;
      }
    }
    let layers = this.layersOf.get(route);
    if (layers === undefined || !sameLayers(stack, layers)) {
      const kept = stack.slice(0, index + 1);
      layers = { layers: kept, handles: kept.map((layer) => layer.handle) };
      this.layersOf.set(route, layers);
    }
    // Counted on every learning (a URL learned again included): at worst the memory starts
    // over a little early.
    const chars = url.length + (keyUrl === url ? 0 : keyUrl.length);
    if (this.urls.size >= FRONT_URL_LIMIT || this.urlChars + chars > FRONT_URL_BUDGET) {
      this.urls.clear();
      this.urlChars = 0;
    }
    this.urlChars += chars;
    this.urls.set(url, { routes, route, keyUrl, layers, length: stack.length, passing });
  }

  /** Answers `req` as the route's fast path would, when nothing before the route changed. */
  answer(req: FrontRequest, res: FrontResponse): boolean {
    const url = req.url;
    if (url === undefined) return false;
    const learned = this.urls.get(url);
    if (learned === undefined || (req.originalUrl ?? url) !== learned.keyUrl) return false;
    const stack = this.router.stack;
    if (
      stack.length !== learned.length ||
      !sameLayers(stack, learned.layers) ||
      learned.passing.some(handlesGet) ||
      !bodyless(req) ||
      !this.ready() ||
      !expressJsonIsOwn(res)
    ) {
      return false;
    }
    const answer = learned.routes.find(learned.route, learned.keyUrl, req);
    if (answer === undefined) return false;
    sendFastAnswer(res, answer);
    return true;
  }

  /** No request or response hook on Nest's adapter, no `app.param()` callback, plain JSON. */
  private ready(): boolean {
    if (this.adapter.onRequestHook !== undefined || this.adapter.onResponseHook !== undefined) {
      return false;
    }
    return !hasKeys(this.router.params) && plainExpressJsonApp(this.app);
  }

  private kindOf(layer: ExpressLayer): LayerKind {
    const handle = layer.handle;
    if (typeof handle !== 'function') return 'other';
    let kind = this.kinds.get(handle);
    if (kind === undefined) {
      const source = Function.prototype.toString.call(handle);
      kind = this.parserSources.has(source)
        ? 'parser'
        : source === this.hookSource
          ? 'hook'
          : 'other';
      this.kinds.set(handle, kind);
    }
    return kind;
  }
}

/** The layers before and at the route are still those (the same objects, in place). */
function sameLayers(stack: readonly ExpressLayer[], snapshot: LayerSnapshot): boolean {
  const { layers, handles } = snapshot;
  for (let i = 0; i < layers.length; i++) {
    const layer = stack[i];
    if (layer !== layers[i] || layer.handle !== handles[i]) return false;
  }
  return true;
}

/** Whether a route layer matches `path`; `undefined` when it cannot say. */
function matches(layer: ExpressLayer, path: string): boolean | undefined {
  if (typeof layer.match !== 'function') return undefined;
  try {
    return layer.match(path) !== false;
  } catch {
    return undefined;
  }
}

function handlesGet(route: ExpressRoute): boolean {
  return route._handlesMethod?.('GET') !== false;
}

/**
 * The router's `handle` is the router package's own, unwrapped (a tracer wrapping it, on the
 * router or its prototype, must run for every request, so the front then stays out).
 */
function expressOwnHandle(router: ExpressRouter): boolean {
  if (Object.hasOwn(router, 'handle')) return false;
  const handle = router.handle as unknown;
  return (
    typeof handle === 'function' &&
    handle.name === 'handle' &&
    Function.prototype.toString.call(handle).includes('argument callback is required')
  );
}

/**
 * URLs learned: origin-form, not too long, and without a fragment (Express routes on the path
 * before `#`, which would differ from the one matched here).
 */
function learnable(url: string): boolean {
  return url.startsWith('/') && url.length <= FRONT_URL_MAX && !url.includes('#');
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

/**
 * The text of the handlers Nest's `ExpressAdapter` puts in every application (its request and
 * response hook layer; the JSON, urlencoded, raw and text body parsers), taken from a throwaway
 * adapter of the application's own adapter class, so they are this installation's. `undefined`
 * for an adapter of another class (a subclass's layers are not known).
 */
function nestLayerSources(adapter: unknown): { parsers: Set<string>; hook: string } | undefined {
  const ctor = (adapter as { constructor?: unknown } | null)?.constructor;
  if (typeof ctor !== 'function' || ctor.name !== 'ExpressAdapter') return undefined;
  try {
    const probe = new (ctor as new () => NestExpressAdapter)();
    probe.registerParserMiddleware?.();
    probe.useBodyParser?.('raw');
    probe.useBodyParser?.('text');
    const stack = (probe.getInstance() as ExpressApp).router?.stack ?? [];
    const parsers = new Set<string>();
    let hook: string | undefined;
    for (const layer of stack) {
      if (layer.route !== undefined || typeof layer.handle !== 'function') continue;
      const source = Function.prototype.toString.call(layer.handle);
      if (BODY_PARSERS.has(layer.handle.name)) parsers.add(source);
      // Inert only while no hook is set, which `ready` checks by these names.
      else if (source.includes('this.onRequestHook') && source.includes('this.onResponseHook')) {
        hook = source;
      }
    }
    return hook === undefined ? undefined : { parsers, hook };
  } catch {
    return undefined;
  }
}
