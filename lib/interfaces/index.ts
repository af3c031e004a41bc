export * from './dynamo-cache-module-options.interface.js';
export * from './dynamo-cached-options.interface.js';
