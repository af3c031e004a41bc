import { Test } from '@nestjs/testing';
import {
  DYNAMO_CACHE_OPTIONS,
  DynamoCacheError,
  DynamoCacheModule,
  type DynamoCacheModuleOptions,
  type ResolvedDynamoCacheOptions,
} from '../../lib/index.js';
import { dummyClientConfig } from '../support/dynamo-server.js';

// Options are validated before any DynamoDB call, so no server is needed here.
const base = (): DynamoCacheModuleOptions => ({
  table: 'tbl',
  clientConfig: dummyClientConfig('http://127.0.0.1:9'),
});

async function resolved(patch: Record<string, unknown>): Promise<ResolvedDynamoCacheOptions> {
  const app = await Test.createTestingModule({
    imports: [DynamoCacheModule.forRoot({ ...base(), ...patch } as DynamoCacheModuleOptions)],
  }).compile();
  const options = app.get<ResolvedDynamoCacheOptions>(DYNAMO_CACHE_OPTIONS);
  await app.close();
  return options;
}

describe('resilience options', () => {
  it('default to l2Timeout 1000 ms and a breaker of 5 failures / 5 s', async () => {
    const options = await resolved({});
    expect(options.l2Timeout).toBe(1000);
    expect(options.circuitBreaker).toEqual({ failures: 5, cooldownMs: 5000 });
  });

  it.each<[string, Record<string, unknown>, Partial<ResolvedDynamoCacheOptions>]>([
    ['l2Timeout null (no limit)', { l2Timeout: null }, { l2Timeout: null }],
    ['l2Timeout 50', { l2Timeout: 50 }, { l2Timeout: 50 }],
    ['circuitBreaker false', { circuitBreaker: false }, { circuitBreaker: false }],
    [
      'circuitBreaker true',
      { circuitBreaker: true },
      { circuitBreaker: { failures: 5, cooldownMs: 5000 } },
    ],
    [
      'circuitBreaker partial',
      { circuitBreaker: { failures: 2 } },
      { circuitBreaker: { failures: 2, cooldownMs: 5000 } },
    ],
    [
      'circuitBreaker full',
      { circuitBreaker: { failures: 3, cooldownMs: 250 } },
      { circuitBreaker: { failures: 3, cooldownMs: 250 } },
    ],
  ])('accepts %s', async (_name, patch, expected) => {
    expect(await resolved(patch)).toMatchObject(expected);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'l2Timeout 0',
      { l2Timeout: 0 },
      /"l2Timeout" must be a positive number of milliseconds or null/,
    ],
    ['negative l2Timeout', { l2Timeout: -1 }, /"l2Timeout"/],
    ['infinite l2Timeout', { l2Timeout: Infinity }, /"l2Timeout"/],
    ['string l2Timeout', { l2Timeout: '50' }, /"l2Timeout"/],
    [
      'circuitBreaker a string',
      { circuitBreaker: 'on' },
      /"circuitBreaker" must be false, true or/,
    ],
    ['circuitBreaker null', { circuitBreaker: null }, /"circuitBreaker"/],
    [
      'zero failures',
      { circuitBreaker: { failures: 0 } },
      /"circuitBreaker.failures" must be a positive integer/,
    ],
    ['fractional failures', { circuitBreaker: { failures: 1.5 } }, /"circuitBreaker.failures"/],
    [
      'negative cooldown',
      { circuitBreaker: { cooldownMs: -5 } },
      /"circuitBreaker.cooldownMs" must be a positive number/,
    ],
    ['string cooldown', { circuitBreaker: { cooldownMs: '5s' } }, /"circuitBreaker.cooldownMs"/],
  ])('rejects %s at bootstrap, naming the option', async (_name, patch, message) => {
    const compiling = Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ ...base(), ...patch } as DynamoCacheModuleOptions)],
    }).compile();
    await expect(compiling).rejects.toThrow(message);
    await expect(compiling).rejects.toBeInstanceOf(DynamoCacheError);
    await expect(compiling).rejects.toMatchObject({ operation: 'config' });
  });
});
