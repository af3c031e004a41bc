/** A Fastify route context: what Fastify calls for a route, and its hooks. */
export interface FastifyRouteContext {
  handler: (this: unknown, request: never, reply: never) => unknown;
  /** The route's `onSend` hooks (`null` when none). */
  readonly onSend?: readonly unknown[] | null;
  /** The route's `preSerialization` hooks (`null` when none). */
  readonly preSerialization?: readonly unknown[] | null;
}

/** The symbol under which a Fastify request keeps its route context, once found. */
let contextSymbol: symbol | null | undefined;

/**
 * The route context of a Fastify request (`undefined` for anything else), found by Fastify's own
 * symbol (`Symbol('fastify.context')`) on the first request that has it.
 *
 * @example
 * const context = fastifyRouteContext(reply.request);
 * if (context?.onSend == null) reply.send(bytes);
 */
export function fastifyRouteContext(request: unknown): FastifyRouteContext | undefined {
  if (request === null || typeof request !== 'object') return undefined;
  if (contextSymbol === undefined) {
    contextSymbol =
      Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') ??
      null;
  }
  if (contextSymbol === null) return undefined;
  const context = (request as Record<symbol, unknown>)[contextSymbol];
  return context !== null &&
    typeof context === 'object' &&
    typeof (context as Partial<FastifyRouteContext>).handler === 'function'
    ? (context as FastifyRouteContext)
    : undefined;
}

/** Whether a route runs `onSend` hooks (a context not found counts as running some). */
export function runsOnSendHooks(context: FastifyRouteContext | undefined): boolean {
  const hooks = context?.onSend;
  return context === undefined || (hooks !== null && hooks !== undefined && hooks.length > 0);
}
