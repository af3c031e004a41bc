import { ClientRedis, ServerRedis, type RedisOptions } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import type { DynamoCacheBus, DynamoCacheBusMessage } from '../engine/invalidation/cache-bus.js';

/**
 * Options of {@link RedisDynamoCacheBus}: `@nestjs/microservices`' Redis options (host, port,
 * password, tls, retries…), and the channel the processes of one application share. Unless
 * `retryAttempts` says otherwise, the bus reconnects after a Redis outage for as long as it takes,
 * every `retryDelay` (default 1000 ms).
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
  private readonly client: ClientRedis;
  private readonly server: ServerRedis;

  constructor(options: RedisDynamoCacheBusOptions = {}) {
    const { channel = 'nestjs-dynamo-cache', ...given } = options;
    this.channel = channel;
    // The Redis transport reconnects only when told how often: without it, a Redis restart ended
    // the bus for good (invalidations then reached the other processes only within l1MaxAge).
    const redis = {
      ...given,
      retryAttempts: given.retryAttempts ?? Number.MAX_SAFE_INTEGER,
      retryDelay: given.retryDelay ?? 1000,
    };
    this.client = new ClientRedis(redis);
    this.server = new ServerRedis(redis);
  }

  /** Publishes the message on the channel (resolves once Redis took it). */
  async publish(message: DynamoCacheBusMessage): Promise<void> {
    await lastValueFrom(this.client.emit(this.channel, message), { defaultValue: undefined });
  }

  /**
   * Subscribes to the channel; resolves once the Redis connections are up (the subscription
   * itself follows at once: a message in between is only delayed to `l1MaxAge`).
   */
  subscribe(handler: (message: DynamoCacheBusMessage) => void): Promise<void> {
    this.server.addHandler(
      this.channel,
      (message: DynamoCacheBusMessage) => {
        handler(message);
        return Promise.resolve();
      },
      true,
    );
    return new Promise((resolve, reject) => {
      void this.server.listen((err?: unknown) =>
        err === undefined ? resolve() : reject(err as Error),
      );
    });
  }

  /** Closes both Redis connections (one already closed by an outage is not an error). */
  async close(): Promise<void> {
    await Promise.allSettled([this.client.close(), this.server.close()]);
  }
}
