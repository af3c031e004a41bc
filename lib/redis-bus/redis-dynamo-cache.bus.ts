import { Logger } from '@nestjs/common';
import { ClientRedis, ServerRedis, type RedisOptions } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import type { DynamoCacheBus, DynamoCacheBusMessage } from '../engine/invalidation/cache-bus.js';

/**
 * Options of {@link RedisDynamoCacheBus}: `@nestjs/microservices`' Redis options (host, port,
 * password, tls, retries…), and the channel the processes of one application share. Unless
 * `retryAttempts` says otherwise, the bus reconnects after a Redis outage for as long as it takes,
 * every `retryDelay` (default 1000 ms); an application started while Redis is down starts, and
 * its bus connects once Redis answers (invalidations reach it within `l1MaxAge` until then).
 *
 * @example
 * const options: RedisDynamoCacheBusOptions = { host: 'redis', port: 6379, channel: 'orders-cache' };
 */
export type RedisDynamoCacheBusOptions = Required<RedisOptions>['options'] & {
  /** The Redis channel. Default `'nestjs-dynamo-cache'`; one per application (or `keyPrefix`). */
  channel?: string;
};

/**
 * A {@link DynamoCacheBus} on Redis pub/sub, through the Redis transport of
 * `@nestjs/microservices` (so `ioredis` and `@nestjs/microservices` must be installed): each
 * invalidation is published as an event, and every other process drops the entries at once.
 *
 * @example
 * import { RedisDynamoCacheBus } from 'nestjs-dynamo-cache/redis-bus';
 *
 * DynamoCacheModule.forRoot({
 *   table: 'app-cache',
 *   bus: new RedisDynamoCacheBus({ host: process.env.REDIS_HOST, port: 6379 }),
 * })
 */
export class RedisDynamoCacheBus implements DynamoCacheBus {
  private readonly channel: string;
  private readonly redis: Required<RedisOptions>['options'];
  private readonly client: ClientRedis;
  private server: ServerRedis | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly logger = new Logger('DynamoCache');

  constructor(options: RedisDynamoCacheBusOptions = {}) {
    const { channel = 'nestjs-dynamo-cache', ...given } = options;
    this.channel = channel;
    // The Redis transport reconnects only when told how often: without it, a Redis restart ended
    // the bus for good (invalidations then reached the other processes only within l1MaxAge).
    this.redis = {
      ...given,
      retryAttempts: given.retryAttempts ?? Number.MAX_SAFE_INTEGER,
      retryDelay: given.retryDelay ?? 1000,
    };
    this.client = new ClientRedis(this.redis);
  }

  /** Publishes the message on the channel (resolves once Redis took it). */
  async publish(message: DynamoCacheBusMessage): Promise<void> {
    await lastValueFrom(this.client.emit(this.channel, message), { defaultValue: undefined });
  }

  /**
   * Subscribes to the channel; resolves once the Redis connections are up (the subscription
   * itself follows at once: a message in between is only delayed to `l1MaxAge`), or once the
   * first attempt has failed: the application's start does not wait for Redis. A failed attempt's
   * connections are closed, and another attempt follows every `retryDelay` until one succeeds.
   */
  subscribe(handler: (message: DynamoCacheBusMessage) => void): Promise<void> {
    return new Promise((resolve) => this.listen(handler, 1, resolve));
  }

  private listen(
    handler: (message: DynamoCacheBusMessage) => void,
    attempt: number,
    settled?: () => void,
  ): void {
    // A server of its own per attempt: one closed after a failed attempt never reconnects.
    const server = new ServerRedis(this.redis);
    this.server = server;
    server.addHandler(
      this.channel,
      (message: DynamoCacheBusMessage) => {
        handler(message);
        return Promise.resolve();
      },
      true,
    );
    void server.listen((err?: unknown) => {
      if (err === undefined) {
        if (attempt > 1) this.logger.log(`the Redis bus is connected (attempt ${attempt})`);
        settled?.();
        return;
      }
      // The failed attempt's clients would go on reconnecting, never subscribed: ended.
      for (const redis of clientsOf(server)) redis.disconnect?.();
      if (attempt === 1) {
        this.logger.warn(
          `the Redis bus cannot connect (${(err as Error)?.message ?? String(err)}): invalidations of other processes reach this one within l1MaxAge until it does; retrying every ${this.redis.retryDelay} ms`,
        );
      }
      settled?.();
      if (this.closed) return;
      this.retry = setTimeout(() => {
        this.retry = undefined;
        if (!this.closed) this.listen(handler, attempt + 1);
      }, this.redis.retryDelay);
      this.retry.unref?.();
    });
  }

  /** Closes both Redis connections (one already closed by an outage is not an error). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await Promise.allSettled([this.client.close(), this.server?.close()]);
  }
}

/** The Redis clients of a server's attempt (none when it failed before making them). */
function clientsOf(server: ServerRedis): { disconnect?(): void }[] {
  try {
    return server.unwrap<{ disconnect?(): void }[]>();
  } catch {
    return [];
  }
}
