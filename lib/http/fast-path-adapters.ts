import { plainExpressJson } from './json-replay.js';
import type { FastAnswer, FastPathRoutes, FastRouteKey } from './fast-path.js';
import type { KeyedRequest } from './request-key.js';

// Where the fast path answers, on each adapter: as late as the framework allows before Nest's
// route handler, so that everything the application put in front of its routes (middleware,
// Nest middleware of any module, Fastify hooks up to preHandler) has run first.

interface ExpressRequest extends KeyedRequest {
  readonly method: string;
  readonly url: string;
  readonly originalUrl?: string;
}

interface ExpressResponse {
  status(code: number): unknown;
  set(name: string, value: string): unknown;
  send(body: Buffer): unknown;
  json(body: unknown): unknown;
  app?: { get(setting: string): unknown };
}

interface ExpressLayer {
  readonly route?: unknown;
}

interface ExpressApp {
  readonly router?: { readonly stack?: ExpressLayer[] };
  readonly _router?: { readonly stack?: ExpressLayer[] };
  use(fn: (req: ExpressRequest, res: ExpressResponse, next: () => void) => void): unknown;
}

/**
 * Express: a layer placed just before the first route (after every middleware, Nest's included,
 * since Nest registers those first) that answers what the route would answer from the cache.
 * Routes are found by the path Express routes (after any rewrite); requests are keyed by the
 * URL as the interceptor keys it. `false` when the app's router cannot be reached.
 *
 * @example
 * installOnExpress(adapter.getInstance(), routes);
 */
export function installOnExpress(app: ExpressApp, routes: FastPathRoutes): boolean {
  const stack = (app.router ?? app._router)?.stack;
  if (!Array.isArray(stack)) return false;
  const before = stack.length;
  app.use((req, res, next) => {
    if (req.method !== 'GET' || !plainExpressJson(res)) return next();
    const answer = routes.find(req.url, req.originalUrl ?? req.url, req);
    if (answer === undefined) return next();
    res.status(answer.status);
    for (const name of Object.keys(answer.headers)) res.set(name, answer.headers[name] as string);
    res.send(answer.bytes);
  });
  if (stack.length !== before + 1) return false;
  const layer = stack.pop() as ExpressLayer;
  const firstRoute = stack.findIndex((l) => l.route !== undefined);
  stack.splice(firstRoute === -1 ? stack.length : firstRoute, 0, layer);
  return true;
}

interface FastifyRequest extends KeyedRequest {
  readonly method: string;
  readonly url: string;
  readonly raw?: { readonly url?: string };
  readonly routeOptions?: { readonly config?: object };
}

interface FastifyReply {
  code(status: number): FastifyReply;
  headers(values: Readonly<Record<string, string>>): FastifyReply;
  send(payload: Buffer): FastifyReply;
}

interface FastifyInstance {
  addHook(
    name: 'preHandler',
    hook: (request: FastifyRequest, reply: FastifyReply, done: () => void) => void,
  ): unknown;
}

/**
 * Fastify: a `preHandler` hook (after every `onRequest`, `preParsing` and `preValidation` hook
 * and the `preHandler` hooks added before it; `onSend` and `onResponse` still run) that answers
 * what the route Fastify chose would answer from the cache. Routes are found by their own
 * config object, so constrained routes sharing a path stay apart. `false` when the hook cannot
 * be added (the instance is already ready).
 *
 * @example
 * installOnFastify(adapter.getInstance(), routes);
 */
export function installOnFastify(instance: FastifyInstance, routes: FastPathRoutes): boolean {
  try {
    // Callback style: no Promise per request.
    instance.addHook('preHandler', (request, reply, done) => {
      if (request.method !== 'GET') return done();
      const route = fastifyRouteConfig(request);
      const answer =
        route === undefined
          ? undefined
          : routes.find(route, request.raw?.url ?? request.url, request);
      if (answer === undefined) return done();
      // Answered: the handler is skipped, and done() is not called.
      sendFastify(reply, answer);
    });
    return true;
  } catch {
    return false;
  }
}

/** The symbol under which a Fastify request keeps its route context, once found. */
let routeContextSymbol: symbol | null | undefined;

/**
 * The config object of the route Fastify chose for `request`: read from the request's route
 * context directly when it can be found (`request.routeOptions` builds a new object per call),
 * else through `routeOptions`.
 */
function fastifyRouteConfig(request: FastifyRequest): object | undefined {
  if (routeContextSymbol === undefined) {
    routeContextSymbol =
      Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') ??
      null;
  }
  if (routeContextSymbol !== null) {
    const context = (request as unknown as Record<symbol, { config?: object } | undefined>)[
      routeContextSymbol
    ];
    if (context?.config !== undefined) return context.config;
  }
  return request.routeOptions?.config;
}

function sendFastify(reply: FastifyReply, answer: FastAnswer): FastifyReply {
  return reply
    .code(answer.status)
    .headers({ ...answer.headers })
    .send(answer.bytes);
}

/** What identifies the route a request was routed to, as {@link installOnExpress} and {@link installOnFastify} look it up. */
export function fastRouteKey(request: {
  readonly url?: string;
  readonly routeOptions?: { readonly config?: object };
}): FastRouteKey | undefined {
  const config = request.routeOptions?.config;
  if (config !== undefined) return config;
  return typeof request.url === 'string' ? request.url : undefined;
}
