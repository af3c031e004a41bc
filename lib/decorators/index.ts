export * from './dynamo-cached.decorator.js';
export * from './no-dynamo-cache.decorator.js';
export * from './dynamo-cache-evict.decorator.js';
export * from './dynamo-cache-put.decorator.js';
