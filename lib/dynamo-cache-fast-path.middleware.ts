import { Injectable, type NestMiddleware } from '@nestjs/common';
import { FastPathRoutes, type FastRequest, type FastResponse } from './http/fast-path.js';

/**
 * `fastPath`: answers a GET from L1 before Nest routes it through guards and interceptors, when
 * `DynamoCacheInterceptor` has found its route eligible and would answer it with a stored JSON
 * response anyway (see {@link FastPathRoutes}); any other request goes on untouched. Applied to
 * every GET route by `DynamoCacheModule` when the option is on.
 *
 * @example
 * DynamoCacheModule.forRoot({ table: 'app-cache', fastPath: true })
 */
@Injectable()
export class DynamoCacheFastPathMiddleware implements NestMiddleware {
  constructor(private readonly routes: FastPathRoutes) {}

  use(req: FastRequest, res: FastResponse, next: (error?: unknown) => void): void {
    if (!this.routes.answer(req, res)) next();
  }
}
