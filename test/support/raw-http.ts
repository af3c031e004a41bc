import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';

// Requests written and answers read as bytes on a socket: what a client sees on the wire.

/** An answer as sent: the head (status line and headers, without `Date`), the body's bytes. */
export interface Answer {
  head: string;
  body: Buffer;
  status: number;
}

function parse(all: Buffer): Answer {
  const split = all.indexOf('\r\n\r\n');
  const head = all
    .subarray(0, split)
    .toString('latin1')
    .split('\r\n')
    .filter((line) => !/^date:/i.test(line))
    .join('\r\n');
  return { head, body: all.subarray(split + 4), status: Number(head.split(' ')[1]) };
}

/**
 * One request on its own connection (`target` as sent, any form; `Host: shop.example`), with an
 * optional body: the answer's bytes as sent.
 */
export function raw(
  port: number,
  target: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body = '',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const lines = [`${method} ${target} HTTP/1.1`, 'Host: shop.example', 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    socket.write(Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body, 'latin1'));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => resolve(parse(Buffer.concat(chunks))));
  });
}

/** The header lines of a head, as a lower-cased-name map. */
export function headersOf(head: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    out[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

/** A chunked body's bytes (no trailers). */
function dechunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) return Buffer.concat(parts);
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** An answer's JSON body, de-chunked and decoded as its headers say. */
export function decoded(answer: Answer): unknown {
  const headers = headersOf(answer.head);
  const body = headers['transfer-encoding'] === 'chunked' ? dechunked(answer.body) : answer.body;
  const bytes = headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
  return JSON.parse(bytes.toString());
}
