import { unescape } from 'node:querystring';

/*
 * What identifies a cached route response (RFC 9111 §4: the method and the target URI): the
 * method (HEAD as GET), the host (lower-cased, port included, and what a proxy says of the
 * original host and scheme when it sends X-Forwarded-Host, X-Forwarded-Proto or Forwarded), the
 * path, and the query parameters sorted by name (or only those a route allows), then the values
 * of the headers the route varies on. Nothing here knows NestJS.
 */

/** The parts of an Express or Fastify request read here. */
export interface KeyedRequest {
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * More query parameters than this and a request is served uncached: sorting and filtering cost
 * grows with them, and frameworks stop parsing at some count (Express: 1,000), past which the key
 * and what the handler sees could disagree.
 */
export const MAX_QUERY_PARAMETERS = 256;

/**
 * The key material of a request: `[method, host, path, query, ...vary header values]`, or
 * `undefined` when the request is not to be cached (too many query parameters).
 *
 * @param url the request URL as the framework reports it (path and query, global prefix included)
 * @param query `'all'`, or the names of the parameters that join the key
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
  const path = q === -1 ? url : url.slice(0, q);
  const search = q === -1 ? '' : url.slice(q + 1);
  const normalised = search === '' ? '' : normaliseQuery(search, query);
  if (normalised === undefined) return undefined;
  const material: unknown[] = [
    method === 'HEAD' ? 'GET' : method,
    hostOf(headers),
    path,
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

/** A name decoded as Node's `querystring` decodes it: malformed escapes become U+FFFD. */
function decodeName(raw: string): string {
  return unescape(raw.replace(/\+/g, ' '));
}

/** What a proxy says of the original host and scheme. */
const PROXY_HEADERS = ['x-forwarded-host', 'x-forwarded-proto', 'forwarded'] as const;

/**
 * The host part of a key: the `Host` header, lower-cased, and what a proxy says of the original
 * host and scheme (`X-Forwarded-Host`, `X-Forwarded-Proto`, `Forwarded`) when it sends them.
 *
 * @example
 * hostOf({ host: 'Shop.Example', 'x-forwarded-proto': 'https' }) // 'shop.example x-forwarded-proto=https'
 */
export function hostOf(headers: Readonly<Record<string, string | string[] | undefined>>): string {
  let host = headerValue(headers.host ?? headers[':authority'])?.toLowerCase() ?? '';
  // What a proxy says of the original request is what an app behind it may render (absolute
  // links, tenants): it joins the key, never replaces the Host it came with.
  for (const name of PROXY_HEADERS) {
    const value = headerValue(headers[name]);
    if (value !== null) host += ` ${name}=${value.toLowerCase()}`;
  }
  return host;
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
