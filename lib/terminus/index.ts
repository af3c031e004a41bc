export {
  DynamoCacheHealthIndicator,
  type DynamoCacheHealthOptions,
} from './dynamo-cache.health.js';
