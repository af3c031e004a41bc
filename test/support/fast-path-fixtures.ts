import {
  Injectable,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type NestMiddleware,
} from '@nestjs/common';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { settleAll } from './apps.js';

// Shared by the fastPath specs that check what runs before a cached answer.

/** FAST_PATH_OFF=1 runs those specs with `fastPath: false`: the pipeline's answers, the reference. */
export const FAST_PATH = process.env.FAST_PATH_OFF !== '1';

/** An HTTP answer: status, headers, body bytes. */
export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request with a fixed Host (the key includes it). */
export function fetch(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, headers: { host: 'shop.example', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The listening app's base URL. */
export const baseUrl = (app: INestApplication): string =>
  `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;

/** Miss (stores the entry), then a hit through the pipeline (which remembers the route). */
export async function warm(
  app: INestApplication,
  url: string,
  headers?: Record<string, string>,
): Promise<{ miss: Reply; hit: Reply }> {
  const miss = await fetch(url, headers);
  await settleAll([app]);
  const hit = await fetch(url, headers);
  expect(hit.headers['x-cache']).toBe('HIT');
  return { miss, hit };
}

/** Lets a request through when it says `x-let-in: yes`. */
@Injectable()
export class LetInGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context
      .switchToHttp()
      .getRequest<{ headers: Record<string, string | undefined> }>();
    return req.headers['x-let-in'] === 'yes';
  }
}

/** An authentication middleware: 401 unless `x-token: ok`. */
@Injectable()
export class TokenMiddleware implements NestMiddleware {
  use(
    req: { headers: Record<string, unknown> },
    res: { statusCode: number; setHeader(n: string, v: string): void; end(b?: string): void },
    next: () => void,
  ) {
    if (req.headers['x-token'] === 'ok') return next();
    res.statusCode = 401;
    res.setHeader('content-type', 'text/plain');
    res.end('unauthorized');
  }
}

/** What {@link countRouted} reads of an Express application. */
interface RoutedApp {
  router: { stack: readonly object[] };
}

/**
 * Counts the requests an Express application's router handles: its first layer (Nest's adapter
 * layer) is asked for each one. Counted on the layers' prototype, so the router itself and its
 * layers stay as they are (the fast path recognizes them).
 */
export function countRouted(app: RoutedApp): { routed: number } {
  const first = app.router.stack[0]!;
  const proto = Object.getPrototypeOf(first) as {
    handleRequest: (this: object, ...args: unknown[]) => unknown;
  };
  const counter = { routed: 0 };
  const handleRequest = proto.handleRequest;
  proto.handleRequest = function (this: object, ...args: unknown[]) {
    if (this === first) counter.routed++;
    return handleRequest.apply(this, args);
  };
  return counter;
}
