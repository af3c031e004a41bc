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
}

interface FastifyLikeReply {
  send(payload: unknown): unknown;
  serialize(payload: unknown): string;
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
 * the text instead of serializing the body again.
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
 * The JSON text of each replayed body, made once per process and entry (L1 holds the body): a
 * short text as a string, a longer one as bytes (see {@link storedJsonPayload}).
 */
const payloads = new WeakMap<object, string | Buffer>();
/** The bytes of the short texts, for Express (made on its first hit). */
const shortBytes = new WeakMap<object, Buffer>();

/**
 * Texts shorter than this (in UTF-16 units) are kept as strings. A string body that size goes out
 * in one piece with the response's headers (bytes take a second buffer in the socket's write);
 * a longer one costs more to join to the headers and encode than that second buffer does.
 */
const SHORT_TEXT = 1000;

function payloadOf(body: object): string | Buffer {
  let payload = payloads.get(body);
  if (payload === undefined) {
    const text = JSON.stringify(body);
    payload = text.length < SHORT_TEXT ? text : Buffer.from(text);
    payloads.set(body, payload);
  }
  return payload;
}

/**
 * The stored JSON text of a replayed body as Fastify sends it cheapest: a string when short (what
 * Fastify itself sends after serializing), else bytes; `undefined` for a body that is not an object.
 */
export function storedJsonPayload(body: unknown): string | Buffer | undefined {
  return body === null || typeof body !== 'object' ? undefined : payloadOf(body);
}

/**
 * The stored JSON text of a replayed body as bytes (what Express sends); `undefined` for a body
 * that is not an object.
 */
export function storedJsonBytes(body: unknown): Buffer | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const payload = payloadOf(body);
  if (typeof payload !== 'string') return payload;
  let bytes = shortBytes.get(body);
  if (bytes === undefined) {
    bytes = Buffer.from(payload);
    shortBytes.set(body, bytes);
  }
  return bytes;
}

/**
 * Makes this response send `body` as its stored JSON text, without serializing it again: Express's
 * `res.json` and Fastify's `reply.send` are replaced, for this response only, by one that sends
 * the text when given this very object, and does exactly what it did before otherwise (a route
 * schema, the app's JSON settings). So an outer interceptor that passes the body on (logging,
 * timing) keeps the fast path, and one that returns another value (a mapping interceptor,
 * `ClassSerializerInterceptor`) gets that value serialized as usual. (One that changes the
 * cached object in place would be ignored: cached values are shared by every hit and must not
 * be changed.)
 *
 * @example
 * sendStoredJson(response, stored.body); // then return the body as usual
 */
export function sendStoredJson(response: unknown, body: unknown): void {
  if (body === null || typeof body !== 'object') return;
  const reply = asFastify(response);
  if (reply !== undefined) {
    const send = reply.send;
    // The text, with the JSON content type already set, goes out as it is.
    reply.send = function (this: FastifyLikeReply, payload: unknown) {
      return send.call(this, payload === body ? payloadOf(body) : payload);
    };
    return;
  }
  const res = asExpress(response);
  if (res === undefined || !plainExpressJson(res)) return;
  const json = res.json;
  res.json = function (this: ExpressLikeResponse, payload: unknown) {
    if (payload !== body) return json.call(this, payload);
    if (this.get?.('Content-Type') === undefined) {
      this.set?.('Content-Type', 'application/json; charset=utf-8');
    }
    return this.send(storedJsonBytes(body));
  };
}
