import { buildCacheKey, encodeKey } from '../lib/index.js';
import { hostOf, normalisePath, requestKey, type KeyedRequest } from '../lib/http/request-key.js';

/*
 * The route key's path and host part (lib/http/request-key.ts): the path ends at `#` and its
 * percent-encoding is normalised (RFC 3986 §6.2.2), the host part says ` https` for a direct TLS
 * connection. Route keys are a stored format: a path without `#` or `%` and a request over plain
 * HTTP keep the key they had (golden cache_keys below, computed with the code before the change).
 */

const plain: KeyedRequest = { headers: { host: 'shop.example' } };

/** A request as Express gives it on an HTTPS server: its socket is a TLSSocket. */
const overTls: KeyedRequest = { headers: { host: 'shop.example' }, socket: { encrypted: true } };

/** A Fastify request object whose socket is read from its raw request. */
const fastifyOverTls: KeyedRequest = {
  headers: { host: 'shop.example' },
  raw: { socket: { encrypted: true } },
};

const cacheKey = (namespace: string, material: unknown[] | undefined): string =>
  buildCacheKey('', namespace, encodeKey(material!));

describe('route keys: path and scheme', () => {
  // Golden cases: these cache_keys are the persisted format of route entries as written before
  // fragments, percent-encoding and the scheme of the connection joined the key. They must not
  // change.
  it.each<[string, string, 'all' | string[], KeyedRequest, string]>([
    [
      'a static path, query: []',
      '/promo/banner',
      [],
      plain,
      'BannerController.banner/1928d7c704b55248c007ee6c486d965a',
    ],
    [
      'a path with a parameter',
      '/promo/tag/sale',
      'all',
      plain,
      'TagController.tag/ccda48d1a79ec9c69ae3a44f50611943',
    ],
    [
      'plain HTTP',
      '/links/self',
      'all',
      plain,
      'LinksController.self/7327685e3ad9e94004a9342628a63e51',
    ],
    [
      'a sorted query',
      '/r/echo?b=2&a=1',
      'all',
      plain,
      'EchoController.echo/53f35b44416ec450aaddb4ec4025120f',
    ],
  ])('golden (unchanged): %s', (_name, url, query, request, expected) => {
    const namespace = expected.slice(0, expected.indexOf('/'));
    expect(cacheKey(namespace, requestKey('GET', url, request, query, []))).toBe(expected);
  });

  // Changed deliberately: what a proxy says follows a line feed (no header value can hold one),
  // so no Host or header value of a client's can spell it (it followed a space).
  it('golden (changed): plain HTTP behind a proxy saying https', () => {
    expect(
      cacheKey(
        'LinksController.self',
        requestKey(
          'GET',
          '/links/self',
          { headers: { host: 'shop.example', 'x-forwarded-proto': 'https' } },
          'all',
          [],
        ),
      ),
    ).toBe('LinksController.self/0a678c530a24a11bee1be1ef0f06c0fb');
  });

  it('a Host or header value of a client cannot spell a proxy part or the TLS scheme', () => {
    const forged = [
      { headers: { host: 'shop.example https' } },
      { headers: { host: 'shop.example x-forwarded-proto=https' } },
      { headers: { host: 'shop.example', 'x-forwarded-host': 'a x-forwarded-proto=https' } },
    ];
    const genuine = [
      overTls,
      { headers: { host: 'shop.example', 'x-forwarded-proto': 'https' } },
      { headers: { host: 'shop.example', 'x-forwarded-host': 'a', 'x-forwarded-proto': 'https' } },
    ];
    const keys = [...forged, ...genuine].map((r) => hostOf(r));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it.each<[string, string, 'all' | string[], string]>([
    [
      'a fragment',
      '/promo/banner#1',
      [],
      'BannerController.banner/1928d7c704b55248c007ee6c486d965a',
    ],
    [
      'an empty fragment',
      '/promo/banner#',
      'all',
      'BannerController.banner/1928d7c704b55248c007ee6c486d965a',
    ],
    [
      'a fragment holding a query',
      '/promo/banner#x?utm=1',
      [],
      'BannerController.banner/1928d7c704b55248c007ee6c486d965a',
    ],
    [
      'a query and a fragment',
      '/promo/banner?utm=1#x',
      [],
      'BannerController.banner/1928d7c704b55248c007ee6c486d965a',
    ],
    [
      'an escaped unreserved character',
      '/promo/b%61nner',
      [],
      'BannerController.banner/1928d7c704b55248c007ee6c486d965a',
    ],
    [
      'escapes in two segments, lower-case hex',
      '/%70romo/b%61%6e%6Eer#2',
      [],
      'BannerController.banner/1928d7c704b55248c007ee6c486d965a',
    ],
    [
      'an escaped parameter',
      '/promo/tag/s%61l%65',
      'all',
      'TagController.tag/ccda48d1a79ec9c69ae3a44f50611943',
    ],
    [
      'escapes in every segment',
      '/%70romo/t%61g/%73ale',
      'all',
      'TagController.tag/ccda48d1a79ec9c69ae3a44f50611943',
    ],
  ])('golden: %s maps to the plain path’s key', (_name, url, query, expected) => {
    const namespace = expected.slice(0, expected.indexOf('/'));
    expect(cacheKey(namespace, requestKey('GET', url, plain, query, []))).toBe(expected);
  });

  it('normalises percent-encoding as RFC 3986 §6.2.2 says, and leaves malformed paths as sent', () => {
    expect(normalisePath('/promo/banner')).toBe('/promo/banner');
    expect(normalisePath('/%41%5a%61%7A%30%39%2D%2E%5F%7E')).toBe('/AZaz09-._~');
    // Reserved and other characters stay escaped, their hex digits upper-cased.
    expect(normalisePath('/a%2fb%2Fc%3a%40%25%20%c3%a9')).toBe('/a%2Fb%2Fc%3A%40%25%20%C3%A9');
    // `%25` is never decoded: `%2541` is not `%41` nor `A`.
    expect(normalisePath('/%2541')).toBe('/%2541');
    // A `%` that starts no escape: the path as sent (`%%41` must not become `%A`, another URI's
    // spelling of byte 0xA1 next to `1`).
    expect(normalisePath('/%%411')).toBe('/%%411');
    expect(normalisePath('/%zz%61')).toBe('/%zz%61');
    expect(normalisePath('/a%6')).toBe('/a%6');
    expect(normalisePath('/%A1')).toBe('/%A1');
    expect(normalisePath('/%30%39%2d%2e%5f%7e')).toBe('/09-._~');
  });

  it('the query of a URL with a fragment: keyed as without it when Express and Fastify read it alike, else not cached', () => {
    const key = (url: string, query: 'all' | string[]) => requestKey('GET', url, plain, query, []);
    // Express reads `q=1`, Fastify `q=1#x`: a key shared with `?q=1` could answer one with the
    // other's body.
    expect(key('/r/echo?q=1#x', 'all')).toBeUndefined();
    expect(key('/r/echo?q=1#x', ['q'])).toBeUndefined();
    // Express reads no query, Fastify `q=2`.
    expect(key('/r/echo#q=2', 'all')).toBeUndefined();
    expect(key('/r/echo#q=2', ['q'])).toBeUndefined();
    // The fragment touches no parameter the route keys by: the key of the URL without it.
    expect(key('/r/echo?q=1&utm=a#x', ['q'])).toEqual(key('/r/echo?q=1', ['q']));
    expect(key('/r/echo#q=2', [])).toEqual(key('/r/echo', []));
    expect(key('/r/echo?q=1#x', [])).toEqual(key('/r/echo', []));
    expect(key('/r/echo#', 'all')).toEqual(key('/r/echo', 'all'));
    expect(key('/r/echo?q=1', 'all')).toEqual(['GET', 'shop.example', '/r/echo', 'q=1']);
  });

  it('the host part says https for a TLS connection (Express socket, Fastify raw request)', () => {
    expect(hostOf(plain)).toBe('shop.example');
    expect(hostOf({ ...plain, socket: { encrypted: false } })).toBe('shop.example');
    expect(hostOf({ ...plain, socket: null })).toBe('shop.example');
    expect(hostOf(overTls)).toBe('shop.example\nhttps');
    expect(hostOf(fastifyOverTls)).toBe('shop.example\nhttps');
    expect(
      hostOf({
        headers: { host: 'Shop.Example', 'x-forwarded-proto': 'https' },
        socket: { encrypted: true },
      }),
    ).toBe('shop.example\nx-forwarded-proto=https\nhttps');
    expect(requestKey('GET', '/links/self', overTls, 'all', [])).toEqual([
      'GET',
      'shop.example\nhttps',
      '/links/self',
      '',
    ]);
    expect(
      cacheKey('LinksController.self', requestKey('GET', '/links/self', overTls, 'all', [])),
    ).not.toBe('LinksController.self/7327685e3ad9e94004a9342628a63e51');
  });
});
