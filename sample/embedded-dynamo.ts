import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import dynalite from 'dynalite';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCacheTable, type DynamoCacheModuleOptions } from '../lib/index.js';

/**
 * Decides where the sample's cache lives:
 * - DYNAMO_CACHE_ENDPOINT set: that server (DynamoDB Local, dynalite, LocalStack…);
 * - AWS_REGION plus credentials (AWS_ACCESS_KEY_ID or AWS_PROFILE): real DynamoDB;
 * - otherwise: dynalite started in this process, so the sample needs no setup at all
 *   (DYNAMO_CACHE_DATA_DIR keeps its data on disk across restarts).
 */
@Injectable()
export class EmbeddedDynamo implements OnApplicationShutdown {
  private readonly logger = new Logger('Sample');
  private server: Server | undefined;

  constructor(private readonly config: ConfigService) {}

  async cacheOptions(): Promise<DynamoCacheModuleOptions> {
    const table = this.config.get<string>('DYNAMO_CACHE_TABLE') ?? 'sample-cache';
    const ttl = Number(this.config.get<string>('DYNAMO_CACHE_TTL') ?? 3600);
    const common = { table, ttl, maxsize: 1000 };
    const region = this.config.get<string>('AWS_REGION');
    let endpoint = this.config.get<string>('DYNAMO_CACHE_ENDPOINT');
    if (
      !endpoint &&
      region &&
      (this.config.get('AWS_ACCESS_KEY_ID') || this.config.get('AWS_PROFILE'))
    ) {
      this.logger.log(`using DynamoDB in ${region}, table ${table} (create it first)`);
      return { ...common, region };
    }
    if (!endpoint) endpoint = await this.startDynalite();
    const clientConfig = {
      endpoint,
      region: region ?? 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    };
    const admin = new DynamoDBClient(clientConfig);
    try {
      await createCacheTable(admin, table);
    } finally {
      admin.destroy();
    }
    this.logger.log(`cache table ${table} at ${endpoint}`);
    return { ...common, clientConfig };
  }

  private async startDynalite(): Promise<string> {
    const path = this.config.get<string>('DYNAMO_CACHE_DATA_DIR');
    const server = dynalite({ createTableMs: 0, ...(path ? { path } : {}) });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.logger.log(`started an embedded DynamoDB (dynalite) on port ${port}`);
    return `http://127.0.0.1:${port}`;
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
