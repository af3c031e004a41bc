export * from './dynamo-cached.decorator.js';
