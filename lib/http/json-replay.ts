import { ServerResponse } from 'node:http';
import { fastifyRouteContext, runsOnSendHooks } from './fastify-context.js';
import type { ResponseHeaders } from './response-policy.js';

/** The parts of an Express application read for its JSON settings. */
interface ExpressAppLike {
  get(setting: string): unknown;
  /** Express's own settings object (inheriting a parent application's when mounted). */
  settings?: Readonly<Record<string, unknown>>;
}

interface ExpressLikeResponse {
  json(body: unknown): unknown;
  send(body: unknown): unknown;
  get?(name: string): unknown;
  set?(name: string, value: string): unknown;
  app?: ExpressAppLike;
  /** Node's response, under Express's methods. */
  statusCode?: number;
  req?: { readonly method?: string; readonly headers?: Readonly<Record<string, unknown>> };
  getHeader?(name: string): unknown;
  setHeader?(name: string, value: number | string): unknown;
  end?(chunk?: Buffer | string): unknown;
}

interface FastifyLikeReply {
  send(payload: unknown): unknown;
  serialize(payload: unknown): string;
  /** The request this reply answers. */
  request?: unknown;
  /** Sets this reply's own serializer (`null`: the route's again). */
  serializer?(fn: ((payload: unknown) => unknown) | null): unknown;
  /** Sets the status (which `serialize` picks the route's response schema by). */
  code?(status: number): unknown;
  /** The status set so far. */
  readonly statusCode?: number;
  raw: unknown;
}

function asFastify(response: unknown): FastifyLikeReply | undefined {
  const reply = response as Partial<FastifyLikeReply> | null;
  return reply !== null &&
    typeof reply === 'object' &&
    typeof reply.serialize === 'function' &&
    typeof reply.send === 'function' &&
    reply.raw !== undefined
    ? (reply as FastifyLikeReply)
    : undefined;
}

function asExpress(response: unknown): ExpressLikeResponse | undefined {
  const res = response as Partial<ExpressLikeResponse> | null;
  return res !== null &&
    typeof res === 'object' &&
    typeof res.json === 'function' &&
    typeof res.send === 'function'
    ? (res as ExpressLikeResponse)
    : undefined;
}

/** Express's `res.json` is `JSON.stringify` only while the app sets none of its JSON options. */
export function plainExpressJson(res: { app?: ExpressAppLike }): boolean {
  const app = res.app;
  return app !== undefined && plainExpressJsonApp(app);
}

/** {@link plainExpressJson} of an Express application. */
export function plainExpressJsonApp(app: ExpressAppLike): boolean {
  // `settings` inherits a parent application's (a mounted one): a property read follows that
  // chain as `app.get` does, without its per-call walk.
  const settings = app.settings;
  if (settings !== null && typeof settings === 'object') {
    return (
      settings['json replacer'] === undefined &&
      settings['json spaces'] === undefined &&
      !settings['json escape']
    );
  }
  return (
    app.get('json replacer') === undefined &&
    app.get('json spaces') === undefined &&
    !app.get('json escape')
  );
}

/**
 * Whether a body went out as exactly `JSON.stringify(body)`: a JSON content type and a
 * `Content-Length` of that text's length, and a serializer that is `JSON.stringify` for this
 * body (Fastify: the reply's own serializer, route schema included, gives the same text;
 * Express: no `json replacer`, `json spaces` or `json escape` setting). Only then may a hit send
 * the text instead of serializing the body again; and only where the hit's own serializer gives
 * that text too (another instance on the table may serialize otherwise): Express's JSON settings
 * are checked on every hit, Fastify's route serializer by {@link fastifySerializesAsStored}.
 *
 * @example
 * if (sentAsJson(result, response.getHeaders(), response)) stored.json = true;
 */
export function sentAsJson(body: unknown, headers: ResponseHeaders, response: unknown): boolean {
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return false;
  const type = headers['content-type'];
  if (typeof type !== 'string' || !type.toLowerCase().startsWith('application/json')) return false;
  const length = Number(headers['content-length']);
  if (!Number.isInteger(length)) return false;
  try {
    const text = JSON.stringify(body);
    if (typeof text !== 'string' || Buffer.byteLength(text) !== length) return false;
    const reply = asFastify(response);
    if (reply !== undefined) return reply.serialize(body) === text;
    const res = asExpress(response);
    return res !== undefined && plainExpressJson(res);
  } catch {
    return false;
  }
}

/**
 * Texts shorter than this go out as strings (to Fastify whatever the hooks, and from Express's
 * replayed `json`): one write with the response's headers. A longer one goes as bytes (on
 * Fastify where no `onSend` hook reads it): the framework would otherwise measure and encode the
 * string on every hit (about 20 us for 48 KB).
 */
const SHORT_TEXT = 1000;

/** The JSON text of each replayed body, made once per process and entry (L1 holds the body). */
const texts = new WeakMap<object, string>();
/** The bytes of those texts, where they are sent as bytes (made on their first hit). */
const bytesOf = new WeakMap<object, Buffer>();

function textOf(body: object): string {
  let text = texts.get(body);
  if (text === undefined) {
    text = JSON.stringify(body);
    texts.set(body, text);
  }
  return text;
}

/**
 * The stored JSON text of a replayed body as Fastify sends it: a string, as its own serializer
 * gives it (so `onSend` hooks get what they got on the miss); `undefined` for a body that is not
 * an object.
 */
export function storedJsonText(body: unknown): string | undefined {
  return body === null || typeof body !== 'object' ? undefined : textOf(body);
}

/**
 * The stored JSON text of a replayed body as bytes (what Express sends); `undefined` for a body
 * that is not an object.
 */
export function storedJsonBytes(body: unknown): Buffer | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  let bytes = bytesOf.get(body);
  if (bytes === undefined) {
    // The text is not kept for them: a process that sends bytes (Express) holds each body's
    // JSON once, not twice.
    bytes = Buffer.from(texts.get(body) ?? JSON.stringify(body));
    bytesOf.set(body, bytes);
  }
  return bytes;
}

/**
 * The stored JSON text of a replayed body as it is sent where nothing reads it on the way (Express;
 * Fastify without an `onSend` hook): a short text as a string (one write with the headers), a
 * longer one as bytes (the framework need not measure and encode it); whichever form is kept
 * already. `undefined` for a body that is not an
 * object.
 *
 * @example
 * reply.send(hooks ? storedJsonText(body) : storedJsonUnread(body));
 */
export function storedJsonUnread(body: unknown): string | Buffer | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const kept = texts.get(body) ?? bytesOf.get(body);
  if (kept !== undefined) return kept;
  const text = JSON.stringify(body);
  if (text.length < SHORT_TEXT) {
    texts.set(body, text);
    return text;
  }
  const bytes = Buffer.from(text);
  bytesOf.set(body, bytes);
  return bytes;
}

/** The body each response replays (see {@link sendStoredJson}), until the response is collected. */
const replaying = new WeakMap<object, object>();
/**
 * Where an Express response notes the body it replays: its `res.locals` (Express's own
 * per-request object, with no prototype), under a symbol no view or middleware lists. One
 * property there costs a hit less than an insertion into {@link replaying} (~0.7% of a small
 * hit's server CPU, profiled).
 */
const REPLAYING = Symbol('nestjs-dynamo-cache.replaying');

/** Notes `body` in Express's `res.locals`; `false` when the response has none to note it in. */
function noteInLocals(res: object, body: object): boolean {
  const locals = (res as { locals?: unknown }).locals;
  if (locals === null || typeof locals !== 'object' || !Object.isExtensible(locals)) return false;
  (locals as Record<symbol, unknown>)[REPLAYING] = body;
  return true;
}

/** The body this response replays, if any. */
function replayedBy(res: object): object | undefined {
  const locals = (res as { locals?: Record<symbol, unknown> }).locals;
  const noted = locals !== null && typeof locals === 'object' ? locals[REPLAYING] : undefined;
  return noted !== undefined ? (noted as object) : replaying.get(res);
}
/** The Express response prototypes whose `json` looks the replayed body up. */
const patched = new WeakSet<object>();

/**
 * Makes this response send `body` as its stored JSON text, without serializing it again: Express's
 * `res.json` and Fastify's `reply.send`, when given this very object for this response, send the
 * text; given anything else, or for any other response, they do exactly what they did before (a
 * route schema, the app's JSON settings). So an outer interceptor that passes the body on
 * (logging, timing) keeps the fast path, and one that returns another value (a mapping
 * interceptor, `ClassSerializerInterceptor`) gets that value serialized as usual. (One that
 * changes the cached object in place would be ignored: cached values are shared by every hit and
 * must not be changed.)
 *
 * On Fastify the reply gets a serializer of its own for the text (see {@link serializeAsStored}),
 * unless the application gave it one (which then serializes the body, as on the miss), or this
 * process's route would serialize the body to another text than the stored one (a response
 * schema or reply serializer the instance that stored the entry did not have: see
 * {@link fastifySerializesAsStored}; the route's serializer then serializes it, as on a miss). On
 * Express `res.json` is wrapped once on the app's `response` prototype, and the body noted per
 * response in its `res.locals` (in a `WeakMap` where `res.locals` cannot take it), unless the
 * application or a middleware set a `json` of its own (masking fields, logging bodies), which
 * then serializes the body as on the miss. (A method set on each response object changed its
 * shape, and the framework's own code on that object then ran measurably slower.)
 *
 * @param adapter the HTTP adapter's type (`HttpAdapter.getType()`), when known: on `'express'`
 *   the response is not probed for Fastify's reply methods (a miss that walks its prototypes)
 *
 * @example
 * sendStoredJson(response, stored.body, adapter.getType()); // then return the body as usual
 */
export function sendStoredJson(response: unknown, body: unknown, adapter?: string): void {
  if (body === null || typeof body !== 'object') return;
  const reply = adapter === 'express' ? undefined : asFastify(response);
  if (reply !== undefined) {
    // A reply the application gave a serializer of its own (in a hook) has the body serialized
    // by it, as on the miss; so has one without Fastify's slot for it (not Fastify's own reply),
    // and one whose route serializes this body otherwise than the instance that stored it (a
    // response schema, a reply serializer of this instance's).
    if (serializerSlotFree(reply) && fastifySerializesAsStored(reply, body)) {
      serializeAsStored(reply, body);
    }
    return;
  }
  // On Express the response is Express's (its `json` is checked where it is wrapped).
  const res =
    adapter === 'express' && response !== null && typeof response === 'object'
      ? (response as ExpressLikeResponse)
      : asExpress(response);
  if (res === undefined || !plainExpressJson(res)) return;
  wrapJson(res);
  // A `json` of the application's or a middleware's (masking, logging) stands in front of ours:
  // it serializes the body as on the miss.
  if (!replaysJson(res)) return;
  if (!noteInLocals(res, body)) replaying.set(res, body);
}

/** The `json` wrappers {@link wrapJson} installed. */
const wrappers = new WeakSet<object>();

/**
 * Whether `res.json` is Express's own, as this package may replace it (its own wrapper over
 * Express's, or Express's method itself): no application or middleware `json` in front of it,
 * which a hit sending stored bytes would skip (one that masks fields, or logs bodies).
 *
 * @example
 * if (req.method === 'GET' && expressJsonIsOwn(res)) return sendFastAnswer(res, answer);
 */
export function expressJsonIsOwn(res: object): boolean {
  const json = (res as { json?: unknown }).json;
  return typeof json === 'function' && (wrappers.has(json) || json === expressJsonAbove(res));
}

/**
 * Express's own `json`, when it is the one `target` finds: the first `json` up its prototype
 * chain (past the app's response object, and a mounting app's) is on Express's response object,
 * the one right above Node's `ServerResponse`; `undefined` when another stands in front of it.
 */
function expressJsonAbove(target: object): unknown {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (!Object.prototype.hasOwnProperty.call(o, 'json')) continue;
    return Object.getPrototypeOf(o) === ServerResponse.prototype
      ? (o as { json?: unknown }).json
      : undefined;
  }
  return undefined;
}

/** Whether `res.json` is the wrapper that replays a noted body. */
function replaysJson(res: object): boolean {
  const json = (res as { json?: unknown }).json;
  return typeof json === 'function' && wrappers.has(json);
}

/**
 * Fastify's slot for a reply's own serializer (`Symbol('fastify.reply.serializer')`, `null` until
 * `reply.serializer(fn)`), found on the first reply that has it. A reply of another copy of
 * Fastify (another symbol) has no such property: it reads `undefined`, and its hits serialize the
 * body as usual.
 */
let serializerSlot: symbol | undefined;

type SerializableReply = FastifyLikeReply & Required<Pick<FastifyLikeReply, 'serializer'>>;

/**
 * Whether a Fastify reply has no serializer of its own (set with `reply.serializer(fn)`, e.g. in
 * a hook): one that has would serialize the body, not send a stored text.
 *
 * @example
 * if (fastifyReplySerializerFree(reply)) return reply.send(storedJsonText(body));
 */
export function fastifyReplySerializerFree(reply: unknown): boolean {
  const fastify = asFastify(reply);
  return fastify !== undefined && serializerSlotFree(fastify);
}

/**
 * Whether this Fastify reply has `reply.serializer` and no serializer of its own yet (Fastify's
 * slot for it holds `null`); `false` too for a reply without that slot (not Fastify's own).
 */
function serializerSlotFree(reply: FastifyLikeReply): reply is SerializableReply {
  if (typeof reply.serializer !== 'function') return false;
  let slot = serializerSlot;
  if (slot === undefined) {
    const found = Object.getOwnPropertySymbols(reply).find(
      (symbol) => symbol.description === 'fastify.reply.serializer',
    );
    // Only a reply that has the slot tells: one without (a stand-in) is not remembered.
    if (found === undefined) return false;
    slot = serializerSlot = found;
  }
  return (reply as unknown as Record<symbol, unknown>)[slot] === null;
}

/**
 * Fastify's slot for a route context's default reply serializer
 * (`Symbol('fastify.replySerializerDefault')`, set by `setReplySerializer`; every route context
 * has it, `null` when none), found on the first route context that has it.
 */
let replySerializerDefaultSlot: symbol | undefined;

/**
 * Whether a Fastify route serializes every body as `JSON.stringify` does: no response schema
 * (`schema.response`: which a serializer compiler, `setSerializerCompiler` or the route's own,
 * compiles) and no reply serializer set for the instance (`setReplySerializer`). Both are fixed
 * once the application is ready, so a caller checks a route once. `false` where that cannot be
 * told (a route context without Fastify's slot for the reply serializer: another version of
 * Fastify), so that its hits compare texts instead (see {@link fastifySerializesAsStored}).
 *
 * @example
 * plain ??= fastifyRouteSerializesAsJson(context); // once per route, on its first hit
 */
export function fastifyRouteSerializesAsJson(context: object): boolean {
  const schema = (context as { schema?: unknown }).schema;
  if (
    schema !== null &&
    typeof schema === 'object' &&
    (schema as { response?: unknown }).response !== undefined
  ) {
    return false;
  }
  let slot = replySerializerDefaultSlot;
  if (slot === undefined) {
    const found = Object.getOwnPropertySymbols(context).find(
      (symbol) => symbol.description === 'fastify.replySerializerDefault',
    );
    if (found === undefined) return false;
    slot = replySerializerDefaultSlot = found;
  }
  const serializer = (context as Record<symbol, unknown>)[slot];
  return serializer === null || serializer === undefined;
}

/**
 * What each Fastify route context (this process's own route: what serializes its bodies) was
 * found to do with stored texts: `true` where it serializes every body as `JSON.stringify` (so
 * every stored text is its own); otherwise, each replayed body's verdict (whether the route's
 * serializer gives the stored text), kept as long as the body is (the L1 entry's lifetime).
 */
const fastifyVerdicts = new WeakMap<object, true | WeakMap<object, boolean>>();

/**
 * Whether this reply's route, on this process, serializes `body` (at `status`, or the reply's
 * status) to the very text stored for it. The entry's `json` flag says that the instance that
 * wrote it sent `JSON.stringify(body)`; another instance on the same table (a rolling deploy)
 * may have a response schema that drops a field, or a reply serializer of its own, and its hits
 * must be what its own miss would send. A route without either (see
 * {@link fastifyRouteSerializesAsJson}) is checked once; any other compares
 * `reply.serialize(body)` with the stored text once per body (entry) and route, and caches the
 * verdict. A serializer that throws counts as not the same (the body is then serialized as on a
 * miss, which throws there as it would).
 *
 * Not for a reply with a serializer of its own (`reply.serializer(fn)`): see
 * {@link fastifyReplySerializerFree}.
 *
 * @example
 * if (fastifyReplySerializerFree(reply) && fastifySerializesAsStored(reply, body, 200)) { … }
 */
export function fastifySerializesAsStored(reply: unknown, body: object, status?: number): boolean {
  const fastify = asFastify(reply);
  if (fastify === undefined) return false;
  const context = fastifyRouteContext(fastify.request);
  // No route to remember the verdict by: compared on every hit.
  if (context === undefined) return serializesAsStored(fastify, body, status);
  let verdicts = fastifyVerdicts.get(context);
  if (verdicts === undefined) {
    verdicts = fastifyRouteSerializesAsJson(context) ? true : new WeakMap<object, boolean>();
    fastifyVerdicts.set(context, verdicts);
  }
  if (verdicts === true) return true;
  let same = verdicts.get(body);
  if (same === undefined) {
    same = serializesAsStored(fastify, body, status);
    verdicts.set(body, same);
  }
  return same;
}

/**
 * Whether `reply.serialize(body)` (the route's serializer, picked by status as Fastify picks it)
 * gives the stored text, with the reply's status set to `status` meanwhile when given.
 */
function serializesAsStored(reply: FastifyLikeReply, body: object, status?: number): boolean {
  const before = reply.statusCode;
  const recode =
    status !== undefined &&
    before !== undefined &&
    status !== before &&
    typeof reply.code === 'function';
  try {
    if (recode) reply.code!(status);
    // The stored text, without keeping it: a process that sends it as bytes keeps only those.
    const text = texts.get(body) ?? JSON.stringify(body);
    return reply.serialize(body) === text;
  } catch {
    return false;
  } finally {
    if (recode) reply.code!(before);
  }
}

/**
 * Fastify: gives this reply a serializer of its own (`reply.serializer(fn)`, in a slot every
 * reply has, so the reply keeps its shape and nothing is noted elsewhere) that returns the stored
 * text for the replayed body. Fastify calls it where it would have serialized the body, after the
 * route's `preSerialization` hooks, which so run on a hit as on the miss. Any other payload (an
 * outer interceptor's value, an error's reply, a hook's replacement) goes to the route's own
 * serializer, response schema included; a string is sent as it is, as Fastify sends one.
 */
function serializeAsStored(reply: SerializableReply, body: object): void {
  reply.serializer((value: unknown): unknown => {
    // Looked up only when Fastify serializes (not for a 304, which sends no body).
    if (value === body) {
      // `onSend` hooks get what Fastify's serializer gives them on the miss: a string.
      if (runsOnSendHooks(fastifyRouteContext(reply.request))) return textOf(body);
      return storedJsonUnread(body) as string | Buffer;
    }
    if (typeof value === 'string') return value;
    // The route's serializer from here on: the reply's own is Fastify's first choice.
    reply.serializer(null);
    return reply.serialize(value);
  });
}

/**
 * Wraps Express's `json` on the app's response object (the response's prototype; once per app),
 * as an own property that shadows the method it inherits from Express's: a call on a response
 * that replays a body, with that body as its only argument, sends the stored bytes
 * ({@link replayExpress}); any other goes to Express's method, with all its arguments. Nothing is
 * wrapped where the application set a `json` of its own (on the response or the app's response
 * object): that one serializes every body, hits included (see {@link replaysJson}).
 */
function wrapJson(target: object): void {
  if (Object.prototype.hasOwnProperty.call(target, 'json')) return;
  const holder = Object.getPrototypeOf(target) as object | null;
  if (holder === null || patched.has(holder)) return;
  // Only over Express's own `json`: not over the application's, nor a mounting app's.
  const original = expressJsonAbove(holder) as ((...args: unknown[]) => unknown) | undefined;
  if (typeof original !== 'function') return;
  patched.add(holder);
  const wrapper = function (this: object, ...args: unknown[]): unknown {
    const body = replayedBy(this);
    if (body === undefined || args.length !== 1 || args[0] !== body) {
      return original.apply(this, args);
    }
    return replayExpress(this, body);
  };
  wrappers.add(wrapper);
  Object.defineProperty(holder, 'json', {
    configurable: true,
    enumerable: enumerableIn(holder, 'json'),
    writable: true,
    value: wrapper,
  });
}

/** Whether `name` is enumerable where `target` finds it: the wrapper keeps what it shadows. */
function enumerableIn(target: object, name: string): boolean {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const descriptor = Object.getOwnPropertyDescriptor(o, name);
    if (descriptor !== undefined) return descriptor.enumerable === true;
  }
  return false;
}

/** Express: the stored bytes (the app's JSON settings were checked when the hit began). */
function replayExpress(self: object, body: object): unknown {
  const res = self as ExpressLikeResponse;
  if (res.get?.('Content-Type') === undefined) {
    res.set?.('Content-Type', 'application/json; charset=utf-8');
  }
  // A short text goes out as a string (as Express's own `json` sends it): Node writes it with the
  // headers in one piece, where bytes take a second buffer (a vectored write) on every hit.
  const payload = storedJsonUnread(body)!;
  if (!endsAsSendWould(res)) return res.send(payload);
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  res.setHeader('Content-Length', length);
  res.end(res.req.method === 'HEAD' ? undefined : payload);
  return res;
}

/**
 * Whether `res.send(bytes)` would do no more than set `Content-Length` and end the response with
 * those bytes (without the body for HEAD): `send` is Express's own (no middleware or application
 * set one of its own on the response or the app's response object, e.g. to log bodies), a 200
 * that carries its `ETag` already (Express makes none), no `Transfer-Encoding`, and a request
 * without `If-None-Match` or `If-Modified-Since` (Express would answer a fresh one with 304; the
 * interceptor has answered a matching `If-None-Match` before this). Ending it here spares a hit
 * Express's checks and header look-ups; everything else goes through `send`.
 */
function endsAsSendWould(res: ExpressLikeResponse): res is ExpressLikeResponse & {
  req: NonNullable<ExpressLikeResponse['req']>;
  setHeader(name: string, value: number | string): unknown;
  end(chunk?: Buffer | string): unknown;
} {
  const req = res.req;
  const headers = req?.headers;
  return (
    res.statusCode === 200 &&
    sendIsExpress(res) &&
    typeof res.getHeader === 'function' &&
    typeof res.setHeader === 'function' &&
    typeof res.end === 'function' &&
    headers !== undefined &&
    headers['if-none-match'] === undefined &&
    headers['if-modified-since'] === undefined &&
    res.getHeader('etag') !== undefined &&
    res.getHeader('transfer-encoding') === undefined
  );
}

/**
 * Whether `res.send` is the one Express's response prototype holds: the response inherits it from
 * the app's `response` object, which inherits it from Express's, with no `send` of its own on
 * either of the first two.
 */
function sendIsExpress(res: ExpressLikeResponse): boolean {
  const appResponse = Object.getPrototypeOf(res) as object | null;
  const expressResponse =
    appResponse === null ? null : (Object.getPrototypeOf(appResponse) as object | null);
  return (
    expressResponse !== null &&
    Object.prototype.hasOwnProperty.call(expressResponse, 'send') &&
    res.send === (expressResponse as { send?: unknown }).send
  );
}
