import {
  expressFront,
  sendFastAnswer,
  type FrontRequest,
  type FrontResponse,
} from './express-front.js';
import {
  expressJsonIsOwn,
  fastifyReplySerializerFree,
  fastifyRouteSerializesAsJson,
  fastifySerializesAsStored,
  plainExpressJson,
} from './json-replay.js';
import {
  fastifyRouteContext,
  runsOnSendHooks,
  type FastifyRouteContext,
} from './fastify-context.js';
import type { FastAnswer, FastPathRoutes } from './fast-path.js';
import type { KeyedRequest } from './request-key.js';

// Where the fast path answers: in the route handler's own position, by wrapping the handler the
// framework calls for the route (Express: the handle of the route's layer; Fastify: the route
// context's handler). Everything the framework runs before a handler (middleware of every kind,
// route-level middleware, every Fastify hook up to preHandler, route-level hooks) has run by
// then, whenever it was added; only Nest's own pipeline for the route is skipped, and the route
// is the one the framework chose. Installed per route, on its first eligible request.

/** How the interceptor keys a request's URL (the adapter's `getRequestUrl`). */
export type RequestUrlOf = (request: unknown) => string;

interface ExpressLayer {
  handle: (req: ExpressRequest, res: ExpressResponse, next: (err?: unknown) => void) => unknown;
  readonly method?: string;
}

interface ExpressRoute {
  readonly stack: ExpressLayer[];
}

interface ExpressRequest extends FrontRequest {
  readonly method: string;
  readonly route?: ExpressRoute;
}

interface ExpressResponse extends FrontResponse {
  app?: { get(setting: string): unknown };
}

interface FastifyReply {
  code(status: number): FastifyReply;
  headers(values: Readonly<Record<string, string>>): FastifyReply;
  send(payload: string | Buffer): FastifyReply;
}

interface FastifyContext extends Omit<FastifyRouteContext, 'handler'> {
  handler: (
    this: unknown,
    request: KeyedRequest & { method: string },
    reply: FastifyReply,
  ) => unknown;
}

/** The routes (Express route, Fastify route context) whose handler is wrapped already. */
const wrapped = new WeakSet<object>();

/**
 * Wraps the handler of the route `request` was routed to so that it answers GETs from the cache
 * (see {@link FastPathRoutes.find}) and calls the original otherwise. Returns the route's key for
 * {@link FastPathRoutes.remember}; `undefined` (nothing wrapped) when the route cannot be found
 * or is not shaped as expected (an Express route with other layers than Nest's handler).
 *
 * On Express, a URL so answered may then be answered before the router (see express-front.ts);
 * `adapter` is Nest's HTTP adapter, whose own layers that recognizes.
 *
 * @example
 * const key = installFastPath(request, routes, (r) => adapter.getRequestUrl(r), adapter);
 * if (key !== undefined) routes.remember(key, fastRoute);
 */
export function installFastPath(
  request: unknown,
  routes: FastPathRoutes,
  urlOf: RequestUrlOf,
  adapter?: unknown,
): object | undefined {
  const route = (request as ExpressRequest).route;
  if (route !== undefined) return wrapExpress(route, routes, urlOf, adapter);
  const context = fastifyRouteContext(request) as FastifyContext | undefined;
  return context === undefined ? undefined : wrapFastify(context, routes, urlOf);
}

function wrapExpress(
  route: ExpressRoute,
  routes: FastPathRoutes,
  urlOf: RequestUrlOf,
  adapter: unknown,
): object | undefined {
  if (wrapped.has(route)) return route;
  // Nest registers one handler per route; anything else is not ours to wrap.
  if (!Array.isArray(route.stack) || route.stack.length !== 1) return undefined;
  const layer = route.stack[0]!;
  const original = layer.handle;
  if (typeof original !== 'function' || original.length !== 3) return undefined;
  layer.handle = function fastPath(req, res, next) {
    // A `json` of the application's or a middleware's (masking fields) serializes every body.
    if (req.method === 'GET' && plainExpressJson(res) && expressJsonIsOwn(res)) {
      const url = urlOf(req);
      const answer = routes.find(route, url, req);
      if (answer !== undefined) {
        const sent = sendFastAnswer(res, answer);
        expressFront(adapter, req)?.learn(req, routes, route, url);
        return sent;
      }
    }
    return original.call(this, req, res, next);
  };
  wrapped.add(route);
  return route;
}

function wrapFastify(
  context: FastifyContext,
  routes: FastPathRoutes,
  urlOf: RequestUrlOf,
): object | undefined {
  if (wrapped.has(context)) return context;
  const original = context.handler;
  if (typeof original !== 'function') return undefined;
  // Whether the route serializes every body as JSON.stringify (no response schema, no reply
  // serializer of the instance's): fixed once the application is ready, read on its first hit.
  let plain: boolean | undefined;
  context.handler = function fastPath(request, reply) {
    // A stored text is sent as a string, which Fastify sends without its preSerialization hooks,
    // a serializer set on the reply, or the route's own serializer: where those could change the
    // body, Nest answers (and the body is serialized as on a miss).
    if (
      request.method === 'GET' &&
      (context.preSerialization ?? []).length === 0 &&
      fastifyReplySerializerFree(reply)
    ) {
      // The serializer is checked before the hit is counted: one Nest answers is counted there.
      const answer = routes.find(
        context,
        urlOf(request),
        request,
        (found) =>
          (plain ??= fastifyRouteSerializesAsJson(context)) ||
          fastifySerializesAsStored(reply, found.body, found.status),
      );
      if (answer !== undefined) return sendFastify(reply, answer, runsOnSendHooks(context));
    }
    return original.call(this, request, reply);
  };
  wrapped.add(context);
  return context;
}

/**
 * Sends a fast answer on Fastify: the JSON text as a string where `onSend` hooks may read it (what
 * Fastify's serializer gives them on the miss), else a long text's bytes, which Fastify sends
 * without measuring and encoding a string on every hit.
 */
function sendFastify(reply: FastifyReply, answer: FastAnswer, hooks: boolean): FastifyReply {
  return reply
    .code(answer.status)
    .headers(answer.headers)
    .send(hooks ? answer.payload : answer.unread);
}
