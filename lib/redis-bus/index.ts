export { RedisDynamoCacheBus, type RedisDynamoCacheBusOptions } from './redis-dynamo-cache.bus.js';
