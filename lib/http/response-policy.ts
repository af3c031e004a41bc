import { createHash } from 'node:crypto';
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
): string | undefined {
  if (!statuses.includes(status)) return `status ${status}`;
  if (headers['set-cookie'] !== undefined) return 'it sets a cookie';
  const cacheControl = headerText(headers['cache-control']).toLowerCase();
  const directive = /(?:^|,)\s*(private|no-store|no-cache)\b/.exec(cacheControl);
  if (directive !== null) return `Cache-Control: ${directive[1]}`;
  return undefined;
}

/**
 * The headers a hit replays: those that describe the body (`Content-*` but its length, which the
 * framework computes, and the validators and freshness headers the handler chose). Headers of
 * middleware that runs on every request (CORS, security headers) are theirs to set again.
 */
export function replayedHeaders(headers: ResponseHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if ((name.startsWith('content-') && name !== 'content-length') || REPLAYED.has(name)) {
      out[name] = headerText(value);
    }
  }
  return out;
}

const REPLAYED = new Set(['cache-control', 'expires', 'last-modified', 'etag', 'link']);

/** A strong entity tag of a body: the hash of its serialized form, quoted. */
export function entityTag(body: unknown): string | undefined {
  try {
    return `"${createHash('sha1').update(serialize(body)).digest('base64url')}"`;
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
