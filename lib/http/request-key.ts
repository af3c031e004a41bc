/*
 * What identifies a cached route response (RFC 9111 §4: the method and the target URI): the
 * method (HEAD as GET), the host (lower-cased, port included, and X-Forwarded-Host when a proxy
 * sent one), the path, and the query parameters sorted by name (or only those a route allows),
 * then the values of the headers the route varies on. Nothing here knows NestJS.
 */

/** The parts of an Express or Fastify request read here. */
export interface KeyedRequest {
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * The key material of a request: `[method, host, path, query, ...vary header values]`.
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
): unknown[] {
  const headers = request.headers ?? {};
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const search = q === -1 ? '' : url.slice(q + 1);
  const material: unknown[] = [
    method === 'HEAD' ? 'GET' : method,
    hostOf(headers),
    path,
    search === '' ? '' : normaliseQuery(search, query),
  ];
  for (const name of vary) material.push(headerValue(headers[name]));
  return material;
}

/**
 * The query string with its parameters sorted by name (stable: repeated parameters keep their
 * order, which may matter) and re-encoded, keeping only `allowed` ones unless it is `'all'`.
 */
export function normaliseQuery(search: string, allowed: 'all' | readonly string[]): string {
  if (allowed !== 'all' && allowed.length === 0) return '';
  const params = new URLSearchParams(search);
  if (allowed !== 'all') {
    for (const name of [...new Set(params.keys())])
      if (!allowed.includes(name)) params.delete(name);
  }
  params.sort();
  return params.toString();
}

function hostOf(headers: Readonly<Record<string, string | string[] | undefined>>): string {
  const host = headerValue(headers.host ?? headers[':authority'])?.toLowerCase() ?? '';
  const forwarded = headerValue(headers['x-forwarded-host'])?.toLowerCase();
  // A proxy's X-Forwarded-Host is what an app behind it may render: it joins the key, never
  // replaces the Host it came with.
  return forwarded === undefined ? host : `${host} ${forwarded}`;
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(', ') : value;
}

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
  for (const name of privateHeaders) {
    if (headers[name] !== undefined && !vary.includes(name)) return false;
  }
  return true;
}
