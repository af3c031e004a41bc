import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEFAULT_L2_TIMEOUT_MS } from './engine/cache-engine.js';
import { resolveLease } from './engine/l2/cache-lease.js';
import {
  DEFAULT_CIRCUIT_BREAKER,
  type CircuitBreakerSettings,
} from './engine/l2/circuit-breaker.js';
import type { NamespaceOptions } from './engine/cache-engine.js';
import {
  DEFAULT_COMPUTE_TIMEOUT_MS,
  DEFAULT_GRACE_BACKOFF,
  DEFAULT_L1_MAX_AGE,
} from './engine/namespace/cache-namespace.js';
import { isWellFormed, MAX_TTL_S, tagsProblem } from './engine/namespace/entry-policy.js';
import type { LeaseSettings } from './engine/l2/cache-lease.js';
import type { DynamoCachedOptions } from './interfaces/dynamo-cached-options.interface.js';
import type { ClassRef } from './engine/values/class-record.js';
import { v8Serializer } from './engine/values/serializer.js';
import { DynamoCacheError } from './errors.js';
import type {
  DynamoCacheModuleOptions,
  ResolvedDynamoCacheOptions,
} from './interfaces/dynamo-cache-module-options.interface.js';
import { CREDENTIAL_HEADERS } from './http/request-key.js';

/**
 * Default L1 capacity per namespace: bounded, so a route keyed by what clients send (URLs, query
 * strings) cannot grow memory without limit. About 0.5 MB per namespace for small values.
 */
export const DEFAULT_MAXSIZE = 1000;

/** A finite number above zero: what every duration and ttl option must be. */
export function isPositiveNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

function configError(option: string, problem: string): DynamoCacheError {
  return new DynamoCacheError('config', `DynamoCacheModule option "${option}" ${problem}`);
}

/** Checks a ttl: `null`/`undefined`, a positive number of seconds (up to 1e10), or a function. */
export function assertTtl(value: unknown, where: string): void {
  if (value === null || value === undefined || typeof value === 'function') return;
  if (!isPositiveNumber(value) || value > MAX_TTL_S) {
    throw new DynamoCacheError(
      'config',
      `${where} "ttl" must be a positive number of seconds up to ${MAX_TTL_S}, null, or a function of the result, got ${String(value)}`,
    );
  }
}

/** Checks an entry ttl (`set`): `null`/`undefined`, or a positive number of seconds (up to 1e10). */
export function assertEntryTtl(value: unknown, where: string): void {
  if (value === null || value === undefined) return;
  if (!isPositiveNumber(value) || value > MAX_TTL_S) {
    throw new DynamoCacheError(
      'config',
      `${where} "ttl" must be a positive number of seconds up to ${MAX_TTL_S} or null, got ${String(value)}`,
    );
  }
}

/**
 * The most bytes (UTF-8) of a namespace: its keys and markers, after a `keyPrefix` of up to 512
 * bytes, must fit DynamoDB's 2,048-byte partition key.
 */
export const MAX_NAMESPACE_BYTES = 1024;

/** Why `value` cannot be a namespace, or `undefined`. */
export function namespaceProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') {
    return `must be a non-empty string, got ${value === '' ? 'an empty string' : describeValue(value)}`;
  }
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_NAMESPACE_BYTES) {
    return `must be at most ${MAX_NAMESPACE_BYTES} bytes (UTF-8), got ${bytes}`;
  }
  return isWellFormed(value)
    ? undefined
    : `must be a well-formed string, got one with a lone surrogate (${JSON.stringify(value)}): it would share DynamoDB keys with another name`;
}

/** DynamoDB's rule for table names. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

/** Why `value` cannot name a DynamoDB table (a name or a table ARN), or `undefined`. */
export function tableProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${describeValue(value)}`;
  if (TABLE_NAME.test(value) || (value.startsWith('arn:') && value.length <= 1024)) {
    return undefined;
  }
  return `must be a DynamoDB table name (3 to 255 letters, digits, "_", "-" or ".") or a table ARN, got ${JSON.stringify(value)}`;
}

/**
 * Checks a duration that may be zero (`grace`, `graceBackoff`, `timeout`), in `unit`, up to `max`
 * (what DynamoDB stores, for `grace`, which extends items' expiry).
 */
export function assertDuration(
  value: unknown,
  option: string,
  unit: string,
  where: string,
  max = Infinity,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    const bound = max === Infinity ? '' : ` up to ${max}`;
    throw new DynamoCacheError(
      'config',
      `${where} "${option}" must be a non-negative number of ${unit}${bound}, got ${String(value)}`,
    );
  }
}

/** Checks `l1MaxAge`: `undefined`, `null`, or a positive number of seconds. */
export function assertL1MaxAge(value: unknown, where: string): void {
  if (value === undefined || value === null) return;
  if (!isPositiveNumber(value)) {
    throw new DynamoCacheError(
      'config',
      `${where} "l1MaxAge" must be a positive number of seconds or null, got ${String(value)}`,
    );
  }
}

/** Checks `tags`: `undefined`, a function, or an array of tags. */
export function assertTags(value: unknown, where: string): void {
  if (value === undefined || typeof value === 'function') return;
  const problem = tagsProblem(value);
  if (problem !== undefined) {
    throw new DynamoCacheError(
      'config',
      `${where} "tags": ${problem}, or a function of the result`,
    );
  }
}

/**
 * Checks the freshness options shared by the module, `@DynamoCached` and service calls:
 * `ttl`, `grace`, `graceBackoff`, `timeout`, `l1MaxAge`, `tags`.
 */
export function assertFreshness(
  o: {
    ttl?: unknown;
    grace?: unknown;
    graceBackoff?: unknown;
    timeout?: unknown;
    l1MaxAge?: unknown;
    tags?: unknown;
  },
  where: string,
): void {
  assertTtl(o.ttl, where);
  assertDuration(o.grace, 'grace', 'seconds', where, MAX_TTL_S);
  assertDuration(o.graceBackoff, 'graceBackoff', 'seconds', where);
  assertDuration(o.timeout, 'timeout', 'milliseconds', where);
  assertL1MaxAge(o.l1MaxAge, where);
  assertTags(o.tags, where);
}

/**
 * The engine's namespace options from `@DynamoCached` options (already checked). `unwrap` maps
 * what the namespace stores to what `ttl`, `tags` and `unless` functions are given (a route's
 * stored response to its body).
 */
export function toNamespaceOptions(
  options: DynamoCachedOptions,
  unwrap?: (value: unknown) => unknown,
): NamespaceOptions {
  const out: NamespaceOptions = {};
  const fields = [
    'ttl',
    'maxsize',
    'table',
    'computeTimeout',
    'grace',
    'graceBackoff',
    'timeout',
    'l1MaxAge',
  ] as const;
  for (const field of fields) {
    if (options[field] !== undefined) (out as Record<string, unknown>)[field] = options[field];
  }
  // Resolved by the decorator already: LeaseSettings or false.
  if (options.lease !== undefined) out.lease = options.lease as LeaseSettings | false;
  if (options.key !== undefined) out.key = options.key;
  const seen = <F extends (value: never, ...args: never[]) => unknown>(fn: F): F =>
    (unwrap === undefined
      ? fn
      : (value: unknown, ...args: unknown[]) =>
          (fn as unknown as (value: unknown, ...args: unknown[]) => unknown)(
            unwrap(value),
            ...args,
          )) as F;
  if (typeof options.ttl === 'function') out.ttl = seen(options.ttl);
  if (options.tags !== undefined) {
    out.tags = typeof options.tags === 'function' ? seen(options.tags) : options.tags;
  }
  if (options.unless !== undefined) out.unless = seen(options.unless);
  return out;
}

/**
 * The longest `computeTimeout` (ms): the ttl's bound, {@link MAX_TTL_S}. Tombstones and expired
 * items are kept for `computeTimeout` past their time, an expiry DynamoDB must be able to store.
 */
export const MAX_COMPUTE_TIMEOUT_MS = MAX_TTL_S * 1000;

/** Checks a computeTimeout: `undefined`, or a positive number of milliseconds (up to 1e13). */
export function assertComputeTimeout(
  value: unknown,
  where: string,
): asserts value is number | undefined {
  if (value !== undefined && (!isPositiveNumber(value) || value > MAX_COMPUTE_TIMEOUT_MS)) {
    throw new DynamoCacheError(
      'config',
      `${where} "computeTimeout" must be a positive number of milliseconds up to ${MAX_COMPUTE_TIMEOUT_MS}, got ${String(value)}`,
    );
  }
}

/** Checks `unless`: `undefined`, or a function. */
export function assertUnless(value: unknown, where: string): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new DynamoCacheError(
      'config',
      `${where} "unless" must be a function of the result (and the arguments) returning true to skip storing it`,
    );
  }
}

/** Checks `types`: `undefined`, or an array of named classes. */
export function assertTypes(
  value: unknown,
  where: string,
): asserts value is readonly ClassRef[] | undefined {
  if (value === undefined) return;
  const bad = Array.isArray(value)
    ? (value as unknown[]).findIndex((c) => typeof c !== 'function' || c.name === '')
    : -2;
  if (bad !== -1) {
    throw new DynamoCacheError(
      'config',
      bad === -2
        ? `${where} "types" must be an array of classes`
        : `${where} "types"[${bad}] must be a named class, got ${describeValue((value as unknown[])[bad])}`,
    );
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'function') return 'an anonymous class';
  return value === null ? 'null' : typeof value;
}

/** Checks a maxsize: `null`/`undefined`, or a non-negative integer. */
export function assertMaxsize(
  value: unknown,
  where: string,
): asserts value is number | null | undefined {
  if (value === null || value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new DynamoCacheError(
      'config',
      `${where} "maxsize" must be a non-negative integer or null, got ${String(value)}`,
    );
  }
}

/**
 * Validates the module options and fills in the defaults. Every problem is a
 * `DynamoCacheError` with `operation: 'config'` whose message names the option, thrown at
 * bootstrap. Without `client`, a region must be found in the options or the SDK's usual sources.
 */
export async function resolveModuleOptions(
  raw: DynamoCacheModuleOptions | undefined,
): Promise<ResolvedDynamoCacheOptions> {
  if (raw === null || typeof raw !== 'object') {
    throw new DynamoCacheError(
      'config',
      'DynamoCacheModule needs an options object with at least "table"',
    );
  }
  const o = raw;
  if (typeof o.table !== 'string' || o.table.trim() === '') {
    throw configError(
      'table',
      'is required: the name of a DynamoDB table whose partition key is cache_key (S)',
    );
  }
  const badTable = tableProblem(o.table);
  if (badTable !== undefined) throw configError('table', badTable);
  if (o.client !== undefined) {
    if (o.client === null || typeof (o.client as { send?: unknown }).send !== 'function') {
      throw configError('client', 'must be a DynamoDBClient (an object with a send method)');
    }
    // The module uses a given client as it is: options for a client it would build are not
    // applied to it, which would go unnoticed.
    for (const other of ['clientConfig', 'region'] as const) {
      if (o[other] !== undefined) {
        throw configError(
          other,
          'cannot be combined with "client": configure the client you pass, or let the module build one',
        );
      }
    }
  }
  if (o.consistentRead !== undefined && typeof o.consistentRead !== 'boolean') {
    throw configError('consistentRead', `must be true or false, got ${String(o.consistentRead)}`);
  }
  assertFreshness({ ...o, tags: undefined }, 'DynamoCacheModule option');
  assertMaxsize(o.maxsize, 'DynamoCacheModule option');
  assertComputeTimeout(o.computeTimeout, 'DynamoCacheModule option');
  assertTypes(o.types, 'DynamoCacheModule option');
  assertUnless(o.unless, 'DynamoCacheModule option');
  if (o.keyPrefix !== undefined && typeof o.keyPrefix !== 'string') {
    throw configError('keyPrefix', 'must be a string');
  }
  // Keys and markers (`{keyPrefix}#tag:{tag}#`, tags up to 1,024 bytes) must fit 2,048 bytes.
  if (o.keyPrefix !== undefined && Buffer.byteLength(o.keyPrefix) > 512) {
    throw configError('keyPrefix', 'must be at most 512 bytes (UTF-8)');
  }
  if (o.keyPrefix !== undefined && !isWellFormed(o.keyPrefix)) {
    throw configError('keyPrefix', 'must be a well-formed string (no lone surrogate)');
  }
  if (o.onError !== undefined && o.onError !== 'throw' && o.onError !== 'bypass') {
    throw configError('onError', `must be 'throw' or 'bypass', got ${JSON.stringify(o.onError)}`);
  }
  if (
    o.serializer !== undefined &&
    (typeof o.serializer?.serialize !== 'function' ||
      typeof o.serializer?.deserialize !== 'function')
  ) {
    throw configError('serializer', 'must have serialize(value) and deserialize(bytes) methods');
  }
  if (o.region !== undefined && (typeof o.region !== 'string' || o.region === '')) {
    throw configError('region', 'must be a non-empty string');
  }
  const bus = o.bus as unknown;
  if (
    bus !== undefined &&
    (bus === null ||
      typeof (bus as { publish?: unknown }).publish !== 'function' ||
      typeof (bus as { subscribe?: unknown }).subscribe !== 'function')
  ) {
    throw configError('bus', 'must have publish(message) and subscribe(handler) methods');
  }
  if (o.verifyTable !== undefined && typeof o.verifyTable !== 'boolean') {
    throw configError('verifyTable', `must be true or false, got ${String(o.verifyTable)}`);
  }
  if (o.fastPath !== undefined && typeof o.fastPath !== 'boolean') {
    throw configError('fastPath', `must be true or false, got ${String(o.fastPath)}`);
  }
  const l2Timeout = resolveL2Timeout(o.l2Timeout);
  const circuitBreaker = resolveCircuitBreaker(o.circuitBreaker);
  const lease = resolveLease(o.lease, (problem) => configError('lease', problem));
  const clientConfig = { ...(o.clientConfig ?? {}) };
  if (o.region !== undefined) clientConfig.region = o.region;
  if (o.client === undefined && clientConfig.region === undefined) {
    await assertRegionFromEnvironment(clientConfig);
  }
  return {
    table: o.table,
    ttl: o.ttl ?? null,
    maxsize: o.maxsize === undefined ? DEFAULT_MAXSIZE : o.maxsize,
    grace: o.grace ?? 0,
    graceBackoff: o.graceBackoff ?? DEFAULT_GRACE_BACKOFF,
    timeout: o.timeout,
    l1MaxAge: o.l1MaxAge === undefined ? DEFAULT_L1_MAX_AGE : o.l1MaxAge,
    bus: o.bus,
    verifyTable: o.verifyTable ?? false,
    region: typeof clientConfig.region === 'string' ? clientConfig.region : undefined,
    clientConfig,
    client: o.client,
    keyPrefix: o.keyPrefix ?? '',
    onError: o.onError ?? 'bypass',
    serializer: o.serializer ?? v8Serializer,
    consistentRead: o.consistentRead ?? false,
    l2Timeout,
    circuitBreaker,
    lease,
    computeTimeout: o.computeTimeout ?? DEFAULT_COMPUTE_TIMEOUT_MS,
    types: o.types ?? [],
    privateHeaders: resolvePrivateHeaders(o.privateHeaders),
    fastPath: o.fastPath ?? false,
    unless: o.unless,
  };
}

function resolvePrivateHeaders(value: unknown): readonly string[] {
  if (value === undefined) return CREDENTIAL_HEADERS;
  if (!Array.isArray(value) || value.some((h) => typeof h !== 'string' || h.trim() === '')) {
    throw configError('privateHeaders', 'must be an array of header names');
  }
  const extra = (value as string[]).map((h) => h.trim().toLowerCase());
  return [...new Set([...CREDENTIAL_HEADERS, ...extra])];
}

function resolveL2Timeout(value: unknown): number | null {
  if (value === undefined) return DEFAULT_L2_TIMEOUT_MS;
  if (value === null) return null;
  if (!isPositiveNumber(value)) {
    throw configError(
      'l2Timeout',
      `must be a positive number of milliseconds or null, got ${String(value)}`,
    );
  }
  return value;
}

function resolveCircuitBreaker(value: unknown): CircuitBreakerSettings | false {
  if (value === undefined || value === true) return { ...DEFAULT_CIRCUIT_BREAKER };
  if (value === false) return false;
  if (value === null || typeof value !== 'object') {
    throw configError(
      'circuitBreaker',
      `must be false, true or { failures, cooldownMs }, got ${String(value)}`,
    );
  }
  const { failures, cooldownMs } = value as { failures?: unknown; cooldownMs?: unknown };
  if (
    failures !== undefined &&
    (typeof failures !== 'number' || !Number.isInteger(failures) || failures < 1)
  ) {
    throw configError(
      'circuitBreaker.failures',
      `must be a positive integer, got ${String(failures)}`,
    );
  }
  if (cooldownMs !== undefined && !isPositiveNumber(cooldownMs)) {
    throw configError(
      'circuitBreaker.cooldownMs',
      `must be a positive number of milliseconds, got ${String(cooldownMs)}`,
    );
  }
  return {
    failures: failures ?? DEFAULT_CIRCUIT_BREAKER.failures,
    cooldownMs: cooldownMs ?? DEFAULT_CIRCUIT_BREAKER.cooldownMs,
  };
}

// The SDK resolves a region lazily (AWS_REGION, the shared config files); ask it now,
// so that a missing region fails at bootstrap rather than on the first cache call.
async function assertRegionFromEnvironment(
  clientConfig: DynamoCacheModuleOptions['clientConfig'],
): Promise<void> {
  const probe = new DynamoDBClient(clientConfig ?? {});
  try {
    const region = await probe.config.region();
    if (typeof region !== 'string' || region === '') throw new Error('empty region');
  } catch (cause) {
    throw new DynamoCacheError(
      'config',
      'DynamoCacheModule option "region" is missing: set region, clientConfig.region, AWS_REGION or a profile region',
      { cause },
    );
  } finally {
    probe.destroy();
  }
}
