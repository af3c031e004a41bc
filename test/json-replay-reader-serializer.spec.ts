import { Controller, Get, Param } from '@nestjs/common';
import { FastifyAdapter, RouteSchema, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw, type Answer } from './support/raw-http.js';
import { countInterceptions } from './support/interceptions.js';

/*
 * A hit sends the stored JSON text only where the instance answering it would send that very text
 * itself. Whether the text may be sent is recorded by the instance that wrote the entry (`json:
 * true`); on Fastify the instance that reads it checks its own route serializer too. A rolling
 * deploy on one table: version 1 of the app has no response schema and writes the entry;
 * version 2 serializes the route otherwise (a response schema that drops `internalNote`, a reply
 * serializer, a serializer compiler) and must answer its hits (from L2, then from L1) with what
 * its own miss sends, through the interceptor and with `fastPath`. A version 2 whose serializer
 * gives the stored text still sends it without serializing the body on every hit.
 */

type FastifyInstance = ReturnType<
  ReturnType<NestFastifyApplication['getHttpAdapter']>['getInstance']
>;

const user = (id: string) => ({ id, name: 'Ann', internalNote: 'fraud-review' });

const dropNote = (key: string, value: unknown): unknown =>
  key === 'internalNote' ? undefined : value;

const PUBLIC_USER = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' } },
};

const WHOLE_USER = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    internalNote: { type: 'string' },
  },
};

/** Counts how often it is serialized (by `JSON.stringify`, Fastify's own serializer included). */
class Counted {
  static serialized = 0;
  constructor(readonly id: string) {}
  toJSON(): unknown {
    Counted.serialized++;
    return { id: this.id, kind: 'counted' };
  }
}

let handlerRuns = 0;

/** Version 1: no response schema. */
@Controller('users')
class UsersV1 {
  @Get(':id')
  @DynamoCached({ ttl: 300, namespace: 'Users.get' })
  get(@Param('id') id: string) {
    handlerRuns++;
    return user(id);
  }

  @Get('counted/:id')
  @DynamoCached({ ttl: 300, namespace: 'Users.counted', types: [Counted] })
  counted(@Param('id') id: string) {
    handlerRuns++;
    return { item: new Counted(id) };
  }
}

/** Version 2: a response schema that keeps `internalNote` out of the body. */
@Controller('users')
class UsersV2 {
  @Get(':id')
  @RouteSchema({ response: { 200: PUBLIC_USER } })
  @DynamoCached({ ttl: 300, namespace: 'Users.get' })
  get(@Param('id') id: string) {
    handlerRuns++;
    return user(id);
  }
}

/** Version 2: a response schema that lists every field. */
@Controller('users')
class UsersV2Whole {
  @Get(':id')
  @RouteSchema({ response: { '2xx': WHOLE_USER } })
  @DynamoCached({ ttl: 300, namespace: 'Users.get' })
  get(@Param('id') id: string) {
    handlerRuns++;
    return user(id);
  }
}

interface Version2 {
  readonly name: string;
  readonly controller: new () => unknown;
  readonly setup?: (fastify: FastifyInstance) => void;
}

/** Version 2s whose route serializes the user without `internalNote`. */
const dropping: Version2[] = [
  { name: 'a response schema (Fastify’s own serializer compiler)', controller: UsersV2 },
  {
    name: 'a reply serializer of the instance (setReplySerializer)',
    controller: UsersV1,
    setup: (fastify) => fastify.setReplySerializer((payload) => JSON.stringify(payload, dropNote)),
  },
  {
    name: 'a serializer compiler (setSerializerCompiler) for a schema that lists every field',
    controller: UsersV2Whole,
    setup: (fastify) =>
      fastify.setSerializerCompiler(() => (data: unknown) => JSON.stringify(data, dropNote)),
  },
];

describe.each([false, true])(
  `Fastify, fastPath %s: a hit is serialized as the reading instance’s route serializes it (${testServerKind()})`,
  (fastPath) => {
    const fx = useTestDynamo();
    const interceptions = countInterceptions();

    async function boot(table: string, version: Omit<Version2, 'name'>): Promise<number> {
      const moduleRef = await Test.createTestingModule({
        imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client(), fastPath })],
        controllers: [version.controller],
      }).compile();
      const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
        logger: false,
      });
      version.setup?.(app.getHttpAdapter().getInstance());
      await app.listen(0, '127.0.0.1');
      fx.apps.push(app);
      return (app.getHttpServer().address() as AddressInfo).port;
    }

    /** Version 1 answers `path` (a miss, stored); then three GETs of it on `reader`: L2, L1, L1. */
    async function hitsOfV1Entry(
      writer: number,
      reader: number,
      path: string,
    ): Promise<{
      miss: Answer;
      hits: Answer[];
      runs: number;
      intercepted: number;
      counted: number;
    }> {
      const miss = await raw(writer, path);
      expect(headersOf(miss.head)['x-cache']).toBe('MISS');
      await settleAll(fx.apps);
      handlerRuns = 0;
      const interceptedBefore = interceptions.count;
      const countedBefore = Counted.serialized;
      const hits: Answer[] = [];
      for (let i = 0; i < 3; i++) {
        hits.push(await raw(reader, path));
        await settleAll(fx.apps);
      }
      return {
        miss,
        hits,
        runs: handlerRuns,
        intercepted: interceptions.count - interceptedBefore,
        counted: Counted.serialized - countedBefore,
      };
    }

    it.each(dropping)(
      'version 2 with $name: its hits of version 1’s entry are what its own miss sends',
      async (v2) => {
        // What version 2 sends on its own (its own miss, on a table of its own).
        const alone = await boot(await fx.dynamo.table(), v2);
        const own = await raw(alone, '/users/u1');
        expect(headersOf(own.head)['x-cache']).toBe('MISS');
        expect(own.body.toString()).toBe('{"id":"u1","name":"Ann"}');

        const table = await fx.dynamo.table();
        const writer = await boot(table, { controller: UsersV1 });
        const reader = await boot(table, v2);
        const { miss, hits, runs, intercepted } = await hitsOfV1Entry(writer, reader, '/users/u1');
        expect(miss.body.toString()).toBe(JSON.stringify(user('u1')));
        for (const hit of hits) {
          expect(hit.status).toBe(200);
          expect(headersOf(hit.head)['x-cache']).toBe('HIT');
          expect(headersOf(hit.head)['content-type']).toBe(headersOf(own.head)['content-type']);
          expect(hit.body.toString()).not.toContain('internalNote');
          expect(hit.body.equals(own.body)).toBe(true);
        }
        // Hits all (the handler never ran); each went to Nest's pipeline, which serialized it.
        expect(runs).toBe(0);
        expect(intercepted).toBe(3);
      },
    );

    it('version 2 with a response schema whose serializer gives the stored text: its hits send that text, the body serialized once (to compare), not on every hit', async () => {
      let serializerCalls = 0;
      const table = await fx.dynamo.table();
      const writer = await boot(table, { controller: UsersV1 });
      const reader = await boot(table, {
        controller: UsersV2Whole,
        setup: (fastify) =>
          fastify.setSerializerCompiler(() => (data: unknown) => {
            serializerCalls++;
            return JSON.stringify(data);
          }),
      });
      const { miss, hits, runs, intercepted } = await hitsOfV1Entry(writer, reader, '/users/u2');
      for (const hit of hits) {
        expect(headersOf(hit.head)['x-cache']).toBe('HIT');
        expect(hit.body.equals(miss.body)).toBe(true);
      }
      expect(runs).toBe(0);
      // Compared once, on the first hit; the verdict is kept with the entry.
      expect(serializerCalls).toBe(1);
      // With fastPath the L1 hits are answered before Nest's pipeline.
      expect(intercepted).toBe(fastPath ? 1 : 3);
    });

    it('version 2 without a schema or serializer of its own: its hits send the stored text, made once, without comparing', async () => {
      const table = await fx.dynamo.table();
      const writer = await boot(table, { controller: UsersV1 });
      const reader = await boot(table, { controller: UsersV1 });
      const { miss, hits, runs, intercepted, counted } = await hitsOfV1Entry(
        writer,
        reader,
        '/users/counted/c1',
      );
      for (const hit of hits) {
        expect(headersOf(hit.head)['x-cache']).toBe('HIT');
        expect(hit.body.equals(miss.body)).toBe(true);
      }
      expect(JSON.parse(miss.body.toString())).toEqual({ item: { id: 'c1', kind: 'counted' } });
      expect(runs).toBe(0);
      // Once, for the text on the first hit (L2); none to compare, none for the L1 hits.
      expect(counted).toBe(1);
      expect(intercepted).toBe(fastPath ? 1 : 3);
    });
  },
);
