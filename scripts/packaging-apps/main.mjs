// The NestJS 12 ESM application of scripts/packaging-test.mjs: loads the package with `import`.
import 'reflect-metadata';
import * as sdk from '@aws-sdk/client-dynamodb';
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';
import * as cache from 'nestjs-dynamo-cache';
import exercise from './exercise.cjs';

await exercise({ label: 'nest12-esm', common, core, cache, sdk });
