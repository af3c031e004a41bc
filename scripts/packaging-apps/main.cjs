// The NestJS 11 CommonJS application of scripts/packaging-test.mjs: loads the package, which is
// ESM only, with `require()` (Node >= 20.19 / 22.12 load ES modules without top-level await).
'use strict';
require('reflect-metadata');
const sdk = require('@aws-sdk/client-dynamodb');
const common = require('@nestjs/common');
const core = require('@nestjs/core');
const cache = require('nestjs-dynamo-cache');
const exercise = require('./exercise.cjs');

// require() of an ES module returns its namespace object: proof the ESM build itself was loaded.
if (Object.prototype.toString.call(cache) !== '[object Module]') {
  throw new Error('nestjs-dynamo-cache did not load as an ES module through require()');
}
console.log(
  `[nest11-cjs] require('nestjs-dynamo-cache') loaded the ES module on Node ${process.version}`,
);

exercise({ label: 'nest11-cjs', common, core, cache, sdk }).catch((err) => {
  console.error(err);
  process.exit(1);
});
