import { ConfigurableModuleBuilder } from '@nestjs/common';
import { DYNAMO_CACHE_RAW_OPTIONS } from './dynamo-cache.constants.js';
import type { DynamoCacheModuleOptions } from './interfaces/dynamo-cache-module-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableDynamoCacheModule,
  OPTIONS_TYPE: DYNAMO_CACHE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: DYNAMO_CACHE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<DynamoCacheModuleOptions>({
  moduleName: 'DynamoCache',
  optionsInjectionToken: DYNAMO_CACHE_RAW_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createDynamoCacheOptions')
  .setExtras({ isGlobal: false }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
