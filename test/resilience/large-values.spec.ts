import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { createHash, randomBytes } from 'node:crypto';
import { brotliDecompressSync } from 'node:zlib';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheService,
  encodeKey,
  v8Serializer,
} from '../../lib/index.js';
import { countCalls, useTestDynamo } from '../support/dynamo-server.js';
import { bootLogged, RecordingLogger } from '../support/recording-logger.js';

const KB = 1024;

/** Text-like data of about `size` bytes: repetitive, so it compresses well, but not trivially. */
function compressibleText(size: number, seed: number): string {
  const words: string[] = [];
  for (let i = 0; i < 500; i++) words.push(`w${(i * 7919 + seed) % 1000}`);
  let out = '';
  for (let i = 0; out.length < size; i++) out += words[(i * 31 + seed) % words.length] + ' ';
  return out.slice(0, size);
}

/** 600 KB of random bytes per key, fixed for the test run: incompressible. */
const randomBlobs = new Map<string, Buffer>();
function randomBlob(key: string): Buffer {
  let blob = randomBlobs.get(key);
  if (blob === undefined) {
    blob = randomBytes(600 * KB);
    randomBlobs.set(key, blob);
  }
  return blob;
}

@Injectable()
class ReportService {
  calls = 0;

  @DynamoCached()
  async text(kb: number): Promise<{ kb: number; body: string }> {
    this.calls++;
    return { kb, body: compressibleText(kb * KB, kb) };
  }

  @DynamoCached()
  async blob(key: string): Promise<Buffer> {
    this.calls++;
    return randomBlob(key);
  }
}

const digest = (bytes: Uint8Array): string => createHash('sha1').update(bytes).digest('hex');

describe('large values: compression, and the 400 KB item limit', () => {
  const fx = useTestDynamo();

  async function app(table: string) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const logger = new RecordingLogger();
    const moduleRef = await bootLogged({ table, client }, [ReportService], logger);
    fx.apps.push(moduleRef);
    return { service: moduleRef.get(ReportService), calls, logger };
  }

  async function rawItem(table: string, namespace: string, args: unknown[]) {
    const out = await fx.admin.send(
      new GetItemCommand({
        TableName: table,
        Key: { cache_key: { S: buildCacheKey('', namespace, encodeKey(args)) } },
        ConsistentRead: true,
      }),
    );
    return out.Item;
  }

  it.each([300, 600])(
    '%s KB of compressible text: stored brotli-compressed (z = br) and read back by a second application',
    async (kb) => {
      const table = await fx.dynamo.table('large');
      const expected = { kb, body: compressibleText(kb * KB, kb) };
      expect(v8Serializer.serialize(expected).byteLength).toBeGreaterThan(kb * KB);

      const first = await app(table);
      expect(await first.service.text(kb)).toEqual(expected);
      expect(await first.service.text(kb)).toEqual(expected);
      expect(first.service.calls).toBe(1);
      expect(first.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
      expect(first.logger.warnings).toEqual([]);

      const item = await rawItem(table, 'ReportService.text', [kb]);
      expect(item!.z).toEqual({ S: 'br' });
      expect(item!.v!.B!.byteLength).toBeLessThan(390 * KB);
      // Any reader can decode it with the marker alone.
      expect(v8Serializer.deserialize(brotliDecompressSync(item!.v!.B!))).toEqual(expected);

      const second = await app(table);
      expect(await second.service.text(kb)).toEqual(expected);
      expect(second.service.calls).toBe(0);
      expect(second.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
    },
  );

  it('600 KB of random bytes: served from L1, not written to L2, one warning for the namespace', async () => {
    const table = await fx.dynamo.table('large');
    const first = await app(table);
    for (const key of ['a', 'b', 'c']) {
      const expected = digest(randomBlob(key));
      expect(digest(await first.service.blob(key))).toBe(expected);
      expect(digest(await first.service.blob(key))).toBe(expected);
    }
    expect(first.service.calls).toBe(3);
    expect(first.calls.get('PutItem')).toBe(0);
    for (const key of ['a', 'b', 'c']) {
      expect(await rawItem(table, 'ReportService.blob', [key])).toBeUndefined();
    }
    expect(first.logger.warnings).toHaveLength(1);
    expect(first.logger.warnings[0]).toMatch(
      /ReportService\.blob: a result is too large for DynamoDB .* kept in L1 only/,
    );

    // A second application finds nothing in L2 and computes it again, correctly.
    const second = await app(table);
    expect(digest(await second.service.blob('a'))).toBe(digest(randomBlob('a')));
    expect(second.service.calls).toBe(1);
  });

  it('200 KB of random bytes: brotli does not shrink them, so they are stored as they are (no z)', async () => {
    const table = await fx.dynamo.table('large');
    const { service } = await app(table);
    const blob = randomBytes(200 * KB);
    await (fx.apps[fx.apps.length - 1] as TestingModule)
      .get(DynamoCacheService)
      .set('blobs', ['b'], blob);
    const item = await rawItem(table, 'blobs', ['b']);
    expect(item!.z).toBeUndefined();
    expect(digest(v8Serializer.deserialize(item!.v!.B!) as Uint8Array)).toBe(digest(blob));
    expect(service.calls).toBe(0);
  });

  it('a value that outgrows the limit replaces the older item it had in L2 with a tombstone (no stale reads)', async () => {
    const table = await fx.dynamo.table('large');
    const { service, calls } = await app(table);
    const cache = (fx.apps[fx.apps.length - 1] as TestingModule).get(DynamoCacheService);
    await cache.set('reports', ['r1'], 'small');
    expect(await rawItem(table, 'reports', ['r1'])).toBeDefined();
    calls.reset();
    await cache.set('reports', ['r1'], randomBlob('big'));
    const tombstone = await rawItem(table, 'reports', ['r1']);
    expect(tombstone).toBeDefined();
    expect(tombstone!.v).toBeUndefined();
    expect(calls.counts).toEqual({ PutItem: 1 });
    expect(digest((await cache.get<Buffer>('reports', ['r1']))!)).toBe(digest(randomBlob('big')));
    expect(service.calls).toBe(0);
  });
});
