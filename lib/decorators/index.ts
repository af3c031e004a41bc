export * from './dynamo-cached.decorator.js';
export * from './no-dynamo-cache.decorator.js';
