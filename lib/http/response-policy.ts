import { createHmac, randomBytes } from 'node:crypto';
import { serialize } from 'node:v8';

/*
 * Which responses a shared cache may store (RFC 9111 §3, §5.2), what of them a hit replays, and
 * their entity tags. Nothing here knows NestJS.
 */

/** The response headers as read after the handler ran: lower-cased names. */
export type ResponseHeaders = Readonly<Record<string, unknown>>;

/** Why a response may not be stored, or `undefined` when it may. */
export function refusalOf(
  status: number,
  headers: ResponseHeaders,
  statuses: readonly number[],
  vary: readonly string[],
): string | undefined {
  if (!statuses.includes(status)) return `status ${status}`;
  if (headers['set-cookie'] !== undefined) return 'it sets a cookie';
  const cacheControl = headerText(headers['cache-control']).toLowerCase();
  const directive = /(?:^|,)\s*(private|no-store|no-cache)\b/.exec(cacheControl);
  if (directive !== null) return `Cache-Control: ${directive[1]}`;
  // A response that says it varies on a header the key does not hold would be served to
  // requests it was not made for. CORS and compression middleware vary the headers they set and
  // the encoding, never the body this cache stores.
  for (const name of headerText(headers.vary).toLowerCase().split(',')) {
    const h = name.trim();
    if (h === '*') return 'Vary: *';
    if (h !== '' && !vary.includes(h) && !IGNORED_VARY.has(h)) return `Vary: ${h}`;
  }
  return undefined;
}

const IGNORED_VARY = new Set(['origin', 'accept-encoding']);

/**
 * The headers a hit replays: those that describe the body (`Content-*` but its length, which the
 * framework computes, and the validators and freshness headers the handler chose). Headers of
 * middleware that runs on every request (CORS, security headers) are theirs to set again.
 */
export function replayedHeaders(headers: ResponseHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if ((name.startsWith('content-') && !NOT_REPLAYED.has(name)) || REPLAYED.has(name)) {
      out[name] = headerText(value);
    }
  }
  return out;
}

// `vary` too: a hit that keeps `Cache-Control: public` must tell shared caches what it varies on.
const REPLAYED = new Set(['cache-control', 'expires', 'last-modified', 'etag', 'link', 'vary']);
/**
 * Computed by the framework, or set per request by middleware: a CSP nonce, the encoding of
 * compression middleware (which compresses a hit again as its request accepts).
 */
const NOT_REPLAYED = new Set([
  'content-length',
  'content-encoding',
  'content-security-policy',
  'content-security-policy-report-only',
]);

/**
 * Keys the entity tags this process makes. The value hashed is the handler's result, which may
 * hold what an outer `ClassSerializerInterceptor` leaves out of the body (`@Exclude()` fields):
 * an unkeyed hash let a client test guesses of them (a 4-digit PIN in 10,000 hashes).
 */
const TAG_KEY = randomBytes(32);

/**
 * A weak entity tag of a body (RFC 9110 §8.8.1): a keyed hash of the value before it is written to
 * the wire, so equal values made in this process share it (a stored entry carries its tag to every
 * process), and it tells nothing of the value.
 */
export function entityTag(body: unknown): string | undefined {
  try {
    return `W/"${createHmac('sha1', TAG_KEY).update(serialize(body)).digest('base64url')}"`;
  } catch {
    return undefined;
  }
}

/** Whether an `If-None-Match` request header matches `etag` (weak comparison, RFC 9110 §13.1.2). */
export function matchesIfNoneMatch(header: unknown, etag: string): boolean {
  const text = headerText(header).trim();
  if (text === '') return false;
  if (text === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return text.split(',').some((tag) => tag.trim().replace(/^W\//, '') === bare);
}

function headerText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}
