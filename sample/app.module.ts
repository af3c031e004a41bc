import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { DynamoCacheModule } from '../lib/index.js';
import { EmbeddedDynamo } from './embedded-dynamo.js';
import { RatesController } from './rates.controller.js';
import { RatesService } from './rates.service.js';

@Module({
  providers: [EmbeddedDynamo],
  exports: [EmbeddedDynamo],
})
class StorageModule {}

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true }),
    DynamoCacheModule.forRootAsync({
      isGlobal: true,
      imports: [StorageModule],
      inject: [EmbeddedDynamo, ConfigService],
      useFactory: async (storage: EmbeddedDynamo, config: ConfigService) => ({
        ...(await storage.cacheOptions()),
        keyPrefix: config.get<string>('DYNAMO_CACHE_KEY_PREFIX') ?? '',
      }),
    }),
  ],
  controllers: [RatesController],
  providers: [RatesService],
})
export class AppModule {}
