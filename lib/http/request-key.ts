import { unescape } from 'node:querystring';

/*
 * What identifies a cached route response (RFC 9111 §4: the method and the target URI): the
 * method (HEAD as GET), the host (lower-cased, port included, `https` when the connection itself
 * is TLS, and what a proxy says of the original host and scheme when it sends X-Forwarded-Host,
 * X-Forwarded-Proto or Forwarded's host= and proto=), the path (up to `?` or `#`, percent-encoding normalised), and
 * the query parameters sorted by name (or only those a route allows), then the values of the
 * headers the route varies on. Nothing here knows NestJS.
 */

/** The parts of an Express or Fastify request read here. */
export interface KeyedRequest {
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The connection: Node's request's (Express), or the one a Fastify request passes on from its
   * raw request. Only its `encrypted` is read.
   */
  readonly socket?: unknown;
  /** Fastify: Node's request under it (its `socket`, when the request passes none on). */
  readonly raw?: unknown;
}

/**
 * More query parameters than this and a request is served uncached: sorting and filtering cost
 * grows with them, and frameworks stop parsing at some count (Express: 1,000), past which the key
 * and what the handler sees could disagree.
 */
export const MAX_QUERY_PARAMETERS = 256;

/**
 * The key material of a request: `[method, host, path, query, ...vary header values]`, or
 * `undefined` when the request is not to be cached (too many query parameters, or a fragment
 * that changes what a framework reads as the query).
 *
 * The path ends where routers end it, at the first `?` or `#` (a fragment: clients never send
 * one, but anyone can), and its percent-encoding is normalised ({@link normalisePath}), so every
 * spelling a router takes to one path is one key. A URL without `#` or `%` keys as it always did.
 *
 * What follows a `#` is read differently by the two frameworks: Express drops it (its query is
 * what lies between `?` and `#`), Fastify's router reads everything after the path's end as the
 * query (`/a?q=1#x` gives `q` = `1#x`, `/a#q=1` gives `q` = `1`). A request with a fragment is
 * keyed as the same URL without it when both readings give the same query key (always with
 * `query: []`, and whenever the parameters the route allows are untouched by the fragment); else
 * it is served uncached, so no reading can share an entry with another.
 *
 * @param url the request URL as the framework reports it (path and query, global prefix included)
 * @param query `'all'`, or the names of the parameters that join the key
 *
 * @example
 * requestKey('GET', '/promo/b%61nner#1', req, [], []) // ['GET', 'shop.example', '/promo/banner', '']
 */
export function requestKey(
  method: string,
  url: string,
  request: KeyedRequest,
  query: 'all' | readonly string[],
  vary: readonly string[],
): unknown[] | undefined {
  const headers = request.headers ?? {};
  const q = url.indexOf('?');
  const hash = url.indexOf('#');
  const end = q === -1 || (hash !== -1 && hash < q) ? hash : q;
  const path = end === -1 ? url : url.slice(0, end);
  // Fastify's `useSemicolonDelimiter` ends the path at `;`: its query then starts there, and the
  // parameter after `?` is read as part of the one before it. Sorted or filtered, two queries it
  // reads apart would share a key: after a `;`, the query string is kept as sent.
  const normalise = path.includes(';') ? queryAsSent : normaliseQuery;
  let normalised: string | undefined;
  if (hash === -1) {
    const search = q === -1 ? '' : url.slice(q + 1);
    normalised = search === '' ? '' : normalise(search, query);
  } else {
    // Fastify's query: all that follows the path's end; Express's: from `?` up to `#`.
    const fastify = url.slice(end + 1);
    const express = end === q ? url.slice(q + 1, hash) : '';
    normalised = fastify === '' ? '' : normalise(fastify, query);
    const alike = express === '' ? '' : normalise(express, query);
    if (normalised !== alike) return undefined;
  }
  if (normalised === undefined) return undefined;
  const material: unknown[] = [
    method === 'HEAD' ? 'GET' : method,
    hostOf(request),
    normalisePath(path),
    normalised,
  ];
  for (const name of vary) material.push(headerValue(headers[name]));
  return material;
}

/**
 * The query string with its parameters sorted by name, kept as sent (no decoding, so two strings
 * the framework would parse differently never share a key), and only the `allowed` ones unless it
 * is `'all'`: a name allowed admits its bracket and dot forms too (`filter[status]`,
 * `filter.status`), which extended query parsers read as that parameter. `undefined` past
 * {@link MAX_QUERY_PARAMETERS}.
 *
 * The sort is by each name's root as a parser may read it (decoded as leniently as Node's
 * `querystring`, up to its first `[` or `.`, a leading `[x]` read as `x`, as `qs` reads it), and
 * stable: parameters one parser could merge into one (`a=1&a=2`, `a=1&a[]=2`, two names that
 * decode alike) keep their order, which decides what the handler gets.
 *
 * @example
 * normaliseQuery('b=2&a=1&utm=x', ['a', 'b']) // 'a=1&b=2'
 */
export function normaliseQuery(
  search: string,
  allowed: 'all' | readonly string[],
): string | undefined {
  if (allowed !== 'all' && allowed.length === 0) return '';
  const pairs = search.split('&').filter((pair) => pair !== '');
  if (pairs.length > MAX_QUERY_PARAMETERS) return undefined;
  const named: [string, string][] = [];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = decodeName(eq === -1 ? pair : pair.slice(0, eq));
    const root = rootOf(name);
    if (allowed === 'all' || allowed.some((a) => a === name || a === root)) {
      named.push([root, pair]);
    }
  }
  named.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return named.map(([, pair]) => pair).join('&');
}

/**
 * The query string of a path with `;` (see requestKey): as sent, neither sorted nor filtered
 * (none with `query: []`); `undefined` past {@link MAX_QUERY_PARAMETERS}.
 */
function queryAsSent(search: string, allowed: 'all' | readonly string[]): string | undefined {
  if (allowed !== 'all' && allowed.length === 0) return '';
  let count = 0;
  for (const pair of search.split('&'))
    if (pair !== '' && ++count > MAX_QUERY_PARAMETERS) return undefined;
  return search;
}

/**
 * The parameter a decoded name stands for in the parsers that read structure into names:
 * `filter[status]` and `filter.status` are `filter`; `qs` reads a leading `[page]` as `page`.
 */
function rootOf(name: string): string {
  let rest = name;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close > 0) rest = rest.slice(1, close) + rest.slice(close + 1);
  }
  const cut = rest.search(/[[.]/);
  return cut === -1 ? rest : rest.slice(0, cut);
}

/** An escape of a byte: `%` and two hex digits. */
const ESCAPE = /%([0-9A-Fa-f]{2})/g;

/**
 * A path with its percent-encoding normalised as RFC 3986 §6.2.2.2 says: escapes of unreserved
 * characters (`A-Z a-z 0-9 - . _ ~`) decoded, the hex digits of every other escape upper-cased.
 * A path without `%` is returned as it is; one with a `%` that starts no escape (not a URI, and
 * what a decoded character next to it could be mistaken for) too.
 *
 * @example
 * normalisePath('/%70romo/b%61nner%2f%c3%a9') // '/promo/banner%2F%C3%A9'
 */
export function normalisePath(path: string): string {
  const first = path.indexOf('%');
  if (first === -1) return path;
  // Every `%` must start an escape: `%%41` would otherwise read as `%A`.
  for (let i = first; i !== -1; i = path.indexOf('%', i + 3)) {
    if (!isHex(path.charCodeAt(i + 1)) || !isHex(path.charCodeAt(i + 2))) return path;
  }
  return path.replace(ESCAPE, (escape, hex: string) => {
    const code = parseInt(hex, 16);
    return unreserved(code) ? String.fromCharCode(code) : escape.toUpperCase();
  });
}

function isHex(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x46) ||
    (code >= 0x61 && code <= 0x66)
  );
}

/** RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`. */
function unreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

/** A name decoded as Node's `querystring` decodes it: malformed escapes become U+FFFD. */
function decodeName(raw: string): string {
  return unescape(raw.replace(/\+/g, ' '));
}

/** What a proxy says of the original host and scheme. */
const PROXY_HEADERS = ['x-forwarded-host', 'x-forwarded-proto', 'forwarded'] as const;

/**
 * The host part of a key: the `Host` header, lower-cased, what a proxy says of the original host
 * and scheme (`X-Forwarded-Host`, `X-Forwarded-Proto`, `Forwarded`'s `host=` and `proto=`, see
 * {@link forwardedUriParts}) when it sends them, and `https` when the request came on a TLS
 * connection to this process (an application listening on HTTPS itself), each after a line feed.
 * A request over plain HTTP has no scheme in it.
 *
 * @example
 * hostOf({ headers: { host: 'Shop.Example', 'x-forwarded-proto': 'https' } }) // 'shop.example\nx-forwarded-proto=https'
 * hostOf({ headers: { host: 'shop.example' }, socket: tlsSocket }) // 'shop.example\nhttps'
 */
export function hostOf(request: KeyedRequest): string {
  const headers = request.headers ?? {};
  let host = headerValue(headers.host ?? headers[':authority'])?.toLowerCase() ?? '';
  // What a proxy says of the original request is what an app behind it may render (absolute
  // links, tenants): it joins the key, never replaces the Host it came with. Each part follows a
  // line feed, which no header value can hold (Node answers 400): a Host or header value of a
  // client's cannot spell another request's parts (`Host: shop x-forwarded-proto=https`).
  for (const name of PROXY_HEADERS) {
    let value = headerValue(headers[name]);
    if (value !== null && name === 'forwarded') {
      // Only what it says of the original URI: its `for=` is the client's address.
      value = forwardedUriParts(value);
      if (value === '') continue;
    }
    if (value !== null) host += `\n${name}=${value.toLowerCase()}`;
  }
  // So does the scheme of the connection itself (`req.protocol` without a proxy): an instance
  // serving HTTPS and one serving HTTP on one table do not share entries.
  if (encrypted(request)) host += '\nhttps';
  return host;
}

/**
 * What a `Forwarded` header (RFC 7239) says of the original request URI: its `host=` and `proto=`
 * pairs as sent (a quoted value kept quoted, so no value can spell other pairs), each element's
 * in its place; not the address of the client (`for=`) nor of the proxy (`by=`), which each
 * client and each node of a load balancer spell their own, and which keyed every client apart
 * (one entry, and one DynamoDB write, per client and URL). `''` when it has neither; the value
 * as it is when it cannot be read (a quote left open).
 *
 * @example
 * forwardedUriParts('for=198.51.100.7;host=shop.example;proto=https, for=10.0.0.1') // 'host=shop.example;proto=https,'
 */
export function forwardedUriParts(value: string): string {
  const elements: string[][] = [[]];
  let pair = '';
  let quoted = false;
  const endPair = (): void => {
    const text = pair.trim();
    const eq = text.indexOf('=');
    const name = (eq === -1 ? text : text.slice(0, eq)).trim().toLowerCase();
    if (name === 'host' || name === 'proto') elements[elements.length - 1]!.push(text);
    pair = '';
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      pair += c;
      if (c === '\\' && i + 1 < value.length) pair += value[++i];
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      pair += c;
    } else if (c === ';') {
      endPair();
    } else if (c === ',') {
      endPair();
      elements.push([]);
    } else {
      pair += c;
    }
  }
  if (quoted) return value;
  endPair();
  if (elements.every((element) => element.length === 0)) return '';
  return elements.map((element) => element.join(';')).join(',');
}

/** Whether the request came on a TLS connection (Express's, or Fastify's raw request's, socket). */
function encrypted(request: KeyedRequest): boolean {
  const socket = (request.socket ?? (request.raw as { socket?: unknown } | undefined)?.socket) as
    { encrypted?: unknown } | null | undefined;
  return socket?.encrypted === true;
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Request headers that identify a client, whatever the options say. */
export const CREDENTIAL_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
];

/**
 * Whether a request may use the shared cache: it may not carry a credential (`private`, lower-cased
 * names) unless the route varies on every one it carries, so each client gets its own entry.
 */
export function mayShare(
  request: KeyedRequest,
  privateHeaders: readonly string[],
  vary: readonly string[],
): boolean {
  const headers = request.headers ?? {};
  // The usual case, the built-in credentials and no vary, read as three named properties.
  if (privateHeaders === CREDENTIAL_HEADERS && vary.length === 0) {
    return (
      headers.authorization === undefined &&
      headers['proxy-authorization'] === undefined &&
      headers.cookie === undefined
    );
  }
  for (const name of privateHeaders) {
    if (headers[name] !== undefined && !vary.includes(name)) return false;
  }
  return true;
}
