import type { ResponseHeaders } from './response-policy.js';

/**
 * Whether a body went out as exactly `JSON.stringify(body)`: a JSON content type, and a
 * `Content-Length` equal to that text's length (the framework's serializer had no spaces or
 * replacer of its own). Only then may a hit send the text instead of serializing the body again.
 *
 * @example
 * if (sentAsJson(result, response.getHeaders())) stored.json = true;
 */
export function sentAsJson(body: unknown, headers: ResponseHeaders): boolean {
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return false;
  const type = headers['content-type'];
  if (typeof type !== 'string' || !type.toLowerCase().startsWith('application/json')) return false;
  const length = Number(headers['content-length']);
  if (!Number.isInteger(length)) return false;
  try {
    const text = JSON.stringify(body);
    return typeof text === 'string' && Buffer.byteLength(text) === length;
  } catch {
    return false;
  }
}

/** The JSON text of each replayed body, made once per process and entry (L1 holds the body). */
const texts = new WeakMap<object, string>();

function textOf(body: object): string {
  let text = texts.get(body);
  if (text === undefined) {
    text = JSON.stringify(body);
    texts.set(body, text);
  }
  return text;
}

interface ExpressLikeResponse {
  json(body: unknown): unknown;
  send(body: unknown): unknown;
  get?(name: string): unknown;
  set?(name: string, value: string): unknown;
}

interface FastifyLikeReply {
  serializer(fn: (payload: unknown) => string): unknown;
  raw: unknown;
}

/**
 * Makes this response send `body` as its stored JSON text, without serializing it again: Express's
 * `res.json` and Fastify's reply serializer are replaced, for this response only, by one that
 * sends the text when given this very object, and does what it did before otherwise. So an
 * outer interceptor that passes the body on (logging, timing) keeps the fast path, and one that
 * returns another value (a mapping interceptor, `ClassSerializerInterceptor`) gets that value
 * serialized as usual. (One that changes the cached object in place would be ignored: cached
 * values are shared by every hit and must not be changed.)
 *
 * @example
 * sendStoredJson(response, stored.body); // then return the body as usual
 */
export function sendStoredJson(response: unknown, body: unknown): void {
  if (body === null || typeof body !== 'object') return;
  const reply = response as Partial<FastifyLikeReply> & Partial<ExpressLikeResponse>;
  if (typeof reply.serializer === 'function' && reply.raw !== undefined) {
    reply.serializer((payload) => (payload === body ? textOf(body) : JSON.stringify(payload)));
    return;
  }
  if (typeof reply.json === 'function' && typeof reply.send === 'function') {
    const json = reply.json;
    const express = reply as ExpressLikeResponse;
    express.json = function (this: ExpressLikeResponse, payload: unknown) {
      if (payload !== body) return json.call(this, payload);
      if (this.get?.('Content-Type') === undefined) {
        this.set?.('Content-Type', 'application/json; charset=utf-8');
      }
      return this.send(textOf(body));
    };
  }
}
