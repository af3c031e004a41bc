import type { FastAnswer, FastPathRoutes } from './fast-path.js';
import { plainExpressJsonApp } from './json-replay.js';
import type { KeyedRequest } from './request-key.js';

// Express only: answering a hit before Express's router. On Express, routing and middleware
// cost several times what the route's fast path does (a small hit: ~85 µs of ~100). When nothing
// but Nest's own pieces stands before a route in the application's router (Nest's adapter
// layer with no request or response hook, body parsers, which do nothing for a request without
// a body, and other routes, which take a URL or not), what the router does with a GET is fixed
// by the URL it routes: so once the route's fast path has answered a URL, later GETs of that
// URL may be answered by the same code where the router is entered, setting the headers that
// answer set. Express's `app.handle` (and whatever wraps it, or a parent application mounting
// this one) still runs first. Any other layer before the route (an `app.use()` middleware, Nest
// middleware, CORS, static files, an Express route of the same path), an `app.param()`
// callback, a request hook, a request with a body, an extended `res.send`, or a change of the
// router's stack, and the request goes the usual way.

interface ExpressLayer {
  readonly handle: unknown;
  readonly route?: { _handlesMethod?(method: string): boolean };
  match?(path: string): unknown;
}

interface ExpressRouter {
  readonly stack: readonly ExpressLayer[];
  readonly params?: Readonly<Record<string, unknown>>;
  handle(req: FrontRequest, res: FrontResponse, callback: unknown): unknown;
}

interface ExpressApp {
  (req: FrontRequest, res: FrontResponse, next?: unknown): unknown;
  readonly router?: ExpressRouter;
  readonly response?: object;
  get(setting: string): unknown;
}

/** The parts of a Node request read here. */
export interface FrontRequest extends KeyedRequest {
  readonly method?: string;
  readonly url?: string;
  readonly originalUrl?: string;
  readonly app?: ExpressApp;
}

/** The parts of a Node response used here. */
export interface FrontResponse {
  statusCode: number;
  getHeaders(): Record<string, number | string | string[] | undefined>;
  getRawHeaderNames(): string[];
  getHeader(name: string): number | string | string[] | undefined;
  setHeader(name: string, value: number | string | readonly string[]): unknown;
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
  /** The URL the route keyed the answer by (`originalUrl`: a mounting app may have cut it). */
  readonly keyUrl: string;
  readonly layer: ExpressLayer;
  readonly index: number;
  readonly length: number;
}

/** The headers (names as set) and status the route's fast path set for an answer. */
interface Sent {
  readonly status: number;
  readonly headers: readonly (readonly [string, number | string | string[]])[];
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
/** What the route's fast path calls on Express's response; an application may extend them. */
const RESPONSE_METHODS = ['status', 'set', 'header', 'send', 'setHeader', 'end'];

const sentFor = new WeakMap<FastAnswer, Sent>();
const fronts = new WeakMap<object, ExpressFront | null>();

/**
 * The front of the Express application `req` was routed in, when one can be installed there (the
 * adapter is Nest's own `ExpressAdapter`, the router's `handle` not already wrapped by someone):
 * `undefined` otherwise.
 *
 * @example
 * const front = expressFront(adapter, req);
 * const before = front?.headersBefore(req, route, res);
 * res.send(answer.bytes);
 * if (front && before) front.learn(req, res, routes, route, url, answer, before);
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
    if (router === undefined || sources === undefined) return null;
    // Someone wraps this router already (tracing): answering outside them would skip them.
    if (Object.hasOwn(router, 'handle')) return null;
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

  /**
   * Before the route's fast path answers `req`: the headers already set (by Express, or an
   * application mounting this one), when the URL may be learned; `undefined` otherwise.
   */
  headersBefore(
    req: FrontRequest,
    route: object,
    res: FrontResponse,
  ): Map<string, unknown> | undefined {
    const url = req.url;
    if (url === undefined || !learnable(url) || !bodyless(req) || !this.ready()) return undefined;
    if (this.indexOf(route, url) < 0) return undefined;
    const before = new Map<string, unknown>();
    const headers = res.getHeaders();
    for (const name of Object.keys(headers)) before.set(name, headers[name]);
    return before;
  }

  /** After the route's fast path answered `req` with `answer`: remembers its URL. */
  learn(
    req: FrontRequest,
    res: FrontResponse,
    routes: FastPathRoutes,
    route: object,
    keyUrl: string,
    answer: FastAnswer,
    before: ReadonlyMap<string, unknown>,
  ): void {
    const url = req.url as string;
    // The URL the answer is keyed by is kept too: a mounting app may have rewritten `req.url`
    // from a longer one.
    if (keyUrl.length > FRONT_URL_MAX) return;
    const stack = this.router.stack;
    const index = this.indexOf(route, url);
    if (index < 0 || res.statusCode !== answer.status) return;
    if (!sentFor.has(answer)) sentFor.set(answer, sentOf(res, answer, before));
    // Counted on every learning (a URL learned again included): at worst the memory starts
    // over a little early.
    const chars = url.length + (keyUrl === url ? 0 : keyUrl.length);
    if (this.urls.size >= FRONT_URL_LIMIT || this.urlChars + chars > FRONT_URL_BUDGET) {
      this.urls.clear();
      this.urlChars = 0;
    }
    this.urlChars += chars;
    this.urls.set(url, {
      routes,
      route,
      keyUrl,
      layer: stack[index]!,
      index,
      length: stack.length,
    });
  }

  /** Answers `req` as the route's fast path answered its URL, when nothing changed since. */
  answer(req: FrontRequest, res: FrontResponse): boolean {
    const url = req.url;
    if (url === undefined) return false;
    const learned = this.urls.get(url);
    if (learned === undefined || (req.originalUrl ?? url) !== learned.keyUrl) return false;
    const stack = this.router.stack;
    if (
      stack.length !== learned.length ||
      stack[learned.index] !== learned.layer ||
      !bodyless(req) ||
      !this.ready()
    ) {
      return false;
    }
    const answer = learned.routes.find(learned.route, learned.keyUrl, req);
    const sent = answer === undefined ? undefined : sentFor.get(answer);
    if (answer === undefined || sent === undefined) return false;
    res.statusCode = sent.status;
    for (const [name, value] of sent.headers) res.setHeader(name, value);
    res.end(answer.bytes);
    return true;
  }

  /**
   * The index of `route`'s layer when only Nest's own layers and routes that do not take a GET
   * of `url`'s path come before it; -1 otherwise.
   */
  private indexOf(route: object, url: string): number {
    const stack = this.router.stack;
    const index = stack.findIndex((layer) => layer.route === route);
    if (index < 0) return -1;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let hooks = 0;
    for (let i = 0; i < index; i++) {
      const layer = stack[i]!;
      if (layer.route !== undefined) {
        // A route before this one that takes this GET would have been asked first: it may
        // pass it on for some requests and not for others.
        if (takes(layer, path)) return -1;
        continue;
      }
      const kind = this.kindOf(layer);
      // Two hook layers: two Nest applications on this Express instance, whose other adapter's
      // hooks are not the ones `ready` checks.
      if (kind === 'other' || (kind === 'hook' && ++hooks > 1)) return -1;
    }
    return index;
  }

  /**
   * No request or response hook on Nest's adapter, no `app.param()` callback, Express's JSON
   * settings and response methods as they come.
   */
  private ready(): boolean {
    if (this.adapter.onRequestHook !== undefined || this.adapter.onResponseHook !== undefined) {
      return false;
    }
    const response = this.app.response;
    if (response === undefined) return false;
    for (const method of RESPONSE_METHODS) if (Object.hasOwn(response, method)) return false;
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

/** Whether a route layer takes a GET of `path` (a layer that cannot say is taken to). */
function takes(layer: ExpressLayer, path: string): boolean {
  if (typeof layer.match !== 'function') return true;
  try {
    return layer.match(path) !== false && layer.route?._handlesMethod?.('GET') !== false;
  } catch {
    return true;
  }
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
 * The status, and the headers (names as set) the answer set: its own, and any other it added or
 * changed (`Content-Length`). What was there before and is left alone (set by Express, or an
 * application mounting this one, on every request) is not replayed.
 */
function sentOf(
  res: FrontResponse,
  answer: FastAnswer,
  before: ReadonlyMap<string, unknown>,
): Sent {
  const headers: [string, number | string | string[]][] = [];
  for (const name of res.getRawHeaderNames()) {
    const value = res.getHeader(name);
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const own = Object.hasOwn(answer.headers, lower);
    if (!own && before.has(lower) && sameValue(before.get(lower), value)) continue;
    headers.push([name, value]);
  }
  return { status: res.statusCode, headers };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => v === b[i]);
  }
  return a === b;
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
